//! Twilio voice webhooks (a function URL), answered in TwiML:
//! - `POST /webhooks/twilio/voice`: an inbound call, answered with the team's greeting and a
//!   voicemail recording (`nextier_inbound::voice::inbound_call`).
//! - `POST /webhooks/twilio/voice/recording`: the voicemail (the `<Record>` action).
//! - `POST /webhooks/twilio/voice/status`: call progress.
//!
//! Every request must carry a valid `X-Twilio-Signature` over the URL Twilio called
//! (`TWILIO_WEBHOOK_BASE_URL` + path + query) and the form parameters; 403 otherwise, 503
//! when unconfigured or when the call could not be recorded (Twilio retries).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use nextier_domain::webhook_signature::verify_twilio;
use nextier_http::extract::url_pairs;
use nextier_http::ApiError;
use nextier_inbound::voice::{self, field, CallAnswer};
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_store::Db;

pub const PATH: &str = "/webhooks/twilio/voice";

#[derive(Clone)]
pub struct VoiceState {
    pub db: Db,
    pub auth_token: Arc<String>,
    /// The public base URL Twilio calls (the function URL), without a trailing slash.
    pub base_url: Arc<String>,
    pub clock: Arc<dyn Clock>,
}

impl VoiceState {
    /// `TWILIO_AUTH_TOKEN` and `TWILIO_WEBHOOK_BASE_URL`.
    pub fn from_env(db: Db) -> Self {
        let var = |n: &str| nextier_runtime::config::get(n).unwrap_or_default();
        Self {
            db,
            auth_token: Arc::new(var("TWILIO_AUTH_TOKEN")),
            base_url: Arc::new(var("TWILIO_WEBHOOK_BASE_URL").trim_end_matches('/').to_owned()),
            clock: Arc::new(SystemClock),
        }
    }
}

fn routes_inner(state: VoiceState) -> Router {
    Router::new()
        .route(PATH, post(inbound_call))
        .route(&format!("{PATH}/recording"), post(recording))
        .route(&format!("{PATH}/status"), post(status))
        .with_state(state)
}

/// As its own function, with the problem+json fallbacks.
pub fn router(state: VoiceState) -> Router {
    nextier_http::finish(routes_inner(state))
}

/// To merge into a router with fallbacks (the local runtime).
pub fn routes(state: VoiceState) -> Router {
    nextier_http::layered(routes_inner(state))
}

fn twiml(body: &str) -> Response {
    let xml = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{body}</Response>");
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// The form, after the signature over it checks out.
fn verified(s: &VoiceState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    if s.auth_token.is_empty() || s.base_url.is_empty() {
        tracing::error!("TWILIO_AUTH_TOKEN or TWILIO_WEBHOOK_BASE_URL is not set; refusing voice webhooks");
        return Err(ApiError::Unavailable("the voice webhook is not configured".into()));
    }
    let form = url_pairs(std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the form is not UTF-8".into()))?);
    let url = match uri.query() {
        Some(q) => format!("{}{}?{q}", s.base_url, uri.path()),
        None => format!("{}{}", s.base_url, uri.path()),
    };
    let sig = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    verify_twilio(&s.auth_token, &url, &form, sig).map_err(|e| {
        tracing::warn!(error = %e, "voice webhook refused");
        ApiError::Forbidden(format!("X-Twilio-Signature: {e}"))
    })?;
    // PostgreSQL stores no NUL in text: drop them rather than fail on every retry.
    Ok(form.into_iter().map(|(k, v)| (k.replace('\0', ""), v.replace('\0', ""))).collect())
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "voice webhook not stored");
    ApiError::Unavailable("could not record the call; retry".into())
}

async fn inbound_call(
    State(s): State<VoiceState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = verified(&s, &uri, &headers, &body)?;
    let (Some(sid), Some(from), Some(to)) = (field(&form, "CallSid"), field(&form, "From"), field(&form, "To")) else {
        return Err(ApiError::Validation(vec![nextier_domain::FieldError::new(
            "CallSid",
            "CallSid, From and To are required",
        )]));
    };
    let answer = voice::inbound_call(&s.db, sid, from, to, &form, &body, s.clock.now()).await.map_err(unavailable)?;
    Ok(match answer {
        CallAnswer::CannotTake => twiml("<Say>Sorry, this number cannot take your call.</Say><Hangup/>"),
        CallAnswer::NotInService => twiml("<Say>The number you called is not in service.</Say><Hangup/>"),
        CallAnswer::Greeting(greeting) => {
            let action = xml_escape(&format!("{}{PATH}/recording", s.base_url));
            twiml(&format!(
                "<Say>{}</Say><Record maxLength=\"120\" playBeep=\"true\" action=\"{action}\" method=\"POST\"/><Hangup/>",
                xml_escape(&greeting)
            ))
        }
    })
}

async fn recording(
    State(s): State<VoiceState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = verified(&s, &uri, &headers, &body)?;
    voice::voicemail(&s.db, &form, &body, s.clock.now()).await.map_err(unavailable)?;
    Ok(twiml("<Say>Thank you. Goodbye.</Say><Hangup/>"))
}

async fn status(State(s): State<VoiceState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let form = verified(&s, &uri, &headers, &body)?;
    voice::call_status(&s.db, &form, &body, s.clock.now()).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
