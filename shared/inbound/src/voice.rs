//! Twilio voice webhooks (a function URL), answered in TwiML:
//! - `POST /webhooks/twilio/voice`: an inbound call. The team is the owner of the number
//!   called; the caller is found among that team's contacts (or becomes one, for review); the
//!   call is recorded as an inbound VOICE message and answered with the team's greeting and a
//!   voicemail recording.
//! - `POST /webhooks/twilio/voice/recording`: the voicemail (the `<Record>` action): it joins
//!   the call's timeline and lands in the inbox as an item to call back.
//! - `POST /webhooks/twilio/voice/status`: call progress, appended to the call's timeline.
//!
//! Every request must carry a valid `X-Twilio-Signature` over the URL Twilio called
//! (`TWILIO_WEBHOOK_BASE_URL` + path + query) and the form parameters; there is no timestamp
//! in the scheme, so repeats are recognised by CallSid (and status).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_domain::inbox::{Assessment, Bucket, Classification, Priority};
use nextier_domain::phone::E164;
use nextier_domain::webhook_signature::verify_twilio;
use nextier_http::extract::url_pairs;
use nextier_http::ApiError;
use nextier_store::campaigns::Channel;
use nextier_store::inbox::{self, NewItem};
use nextier_store::webhooks::{self, Delivery};
use nextier_store::{messages, scope, settings, Db, Scope, StoreError, Tx};

pub const PATH: &str = "/webhooks/twilio/voice";
pub const DEFAULT_GREETING: &str =
    "Thanks for calling. Please leave a message after the tone and we will call you back.";

#[derive(Clone)]
pub struct VoiceState {
    pub db: Db,
    pub auth_token: Arc<String>,
    /// The public base URL Twilio calls (the function URL), without a trailing slash.
    pub base_url: Arc<String>,
    pub now: fn() -> DateTime<Utc>,
}

impl VoiceState {
    /// `TWILIO_AUTH_TOKEN` and `TWILIO_WEBHOOK_BASE_URL`.
    pub fn from_env(db: Db) -> Self {
        let var = |n: &str| nextier_runtime::config::get(n).unwrap_or_default();
        Self {
            db,
            auth_token: Arc::new(var("TWILIO_AUTH_TOKEN")),
            base_url: Arc::new(var("TWILIO_WEBHOOK_BASE_URL").trim_end_matches('/').to_owned()),
            now: Utc::now,
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

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "voice webhook not stored");
    ApiError::Unavailable("could not record the call; retry".into())
}

/// Records a delivery once (`twilio`, `key`); false when seen before.
async fn first_time(
    tx: &Tx<'_>,
    key: &str,
    event: &str,
    form: &[(String, String)],
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let payload = serde_json::Value::Object(
        form.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
    );
    let d = Delivery {
        provider: "twilio",
        delivery_id: key,
        event,
        payload: &payload,
        raw,
        signed_at: None,
        source: "webhook",
    };
    let stored = webhooks::receive(tx, &d).await?;
    if let Some(id) = &stored {
        webhooks::finish(tx, id.as_str(), None, "answered", now).await?;
    }
    Ok(stored.is_some())
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
    let now = (s.now)();
    let (Ok(from), Ok(to)) = (E164::parse(from), E164::parse(to)) else {
        return Ok(twiml("<Say>Sorry, this number cannot take your call.</Say><Hangup/>"));
    };
    let mut conn = s.db.conn().await.map_err(unavailable)?;
    let tx = scope::begin(&mut conn, &Scope::default()).await.map_err(unavailable)?;
    first_time(&tx, &format!("call:{sid}"), "voice.inbound", &form, &body, now).await.map_err(unavailable)?;
    let Some(team) = webhooks::team_for_number(&tx, to.as_str()).await.map_err(unavailable)? else {
        tx.commit().await.map_err(unavailable)?;
        return Ok(twiml("<Say>The number you called is not in service.</Say><Hangup/>"));
    };
    scope::apply(&tx, &Scope::team(team.clone())).await.map_err(unavailable)?;
    record_call(&tx, &team, &from, &to, sid, now).await.map_err(unavailable)?;
    let greeting = settings::strings_in(&tx, "voice")
        .await
        .map_err(unavailable)?
        .get("greeting")
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| DEFAULT_GREETING.to_owned());
    tx.commit().await.map_err(unavailable)?;
    let action = xml_escape(&format!("{}{PATH}/recording", s.base_url));
    Ok(twiml(&format!(
        "<Say>{}</Say><Record maxLength=\"120\" playBeep=\"true\" action=\"{action}\" method=\"POST\"/><Hangup/>",
        xml_escape(&greeting)
    )))
}

/// The call as an inbound VOICE message from the caller (once per CallSid), the caller
/// found among the team's contacts or made one for review.
async fn record_call(
    tx: &Tx<'_>,
    team: &TeamId,
    from: &E164,
    to: &E164,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let contact = match crate::received::sender(tx, team, from, "inbound_call").await {
        Ok((c, false)) => c,
        // The caller's contact was deleted: answer the call, record nothing against it.
        Ok((_, true)) | Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    let call = messages::Inbound {
        team,
        channel: Channel::Voice,
        contact: &contact.id,
        campaign: None,
        from: from.as_str(),
        to: to.as_str(),
        body: "Inbound call",
        provider: "twilio",
        provider_message_id: Some(sid),
        at: now,
    };
    messages::record_inbound(tx, &call).await?;
    Ok(())
}

/// The call's message, by CallSid, in the team that owns the number called.
async fn call_message(tx: &Tx<'_>, form: &[(String, String)]) -> Result<Option<(TeamId, String, String)>, StoreError> {
    let (Some(sid), Some(to)) = (field(form, "CallSid"), field(form, "To")) else { return Ok(None) };
    let Ok(to) = E164::parse(to) else { return Ok(None) };
    let Some(team) = webhooks::team_for_number(tx, to.as_str()).await? else { return Ok(None) };
    scope::apply(tx, &Scope::team(team.clone())).await?;
    let found = messages::by_provider_id(tx, "twilio", sid).await?;
    Ok(found.map(|(id, contact)| (team, id, contact.unwrap_or_default())))
}

async fn recording(
    State(s): State<VoiceState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = verified(&s, &uri, &headers, &body)?;
    let now = (s.now)();
    let sid = field(&form, "CallSid").unwrap_or_default().to_owned();
    let mut conn = s.db.conn().await.map_err(unavailable)?;
    let tx = scope::begin(&mut conn, &Scope::default()).await.map_err(unavailable)?;
    let fresh = first_time(&tx, &format!("recording:{sid}"), "voice.recording", &form, &body, now)
        .await
        .map_err(unavailable)?;
    if let (true, Some((team, message, contact))) = (fresh, call_message(&tx, &form).await.map_err(unavailable)?) {
        let url = field(&form, "RecordingUrl").unwrap_or_default();
        let secs: i32 = field(&form, "RecordingDuration").and_then(|d| d.parse().ok()).unwrap_or(0);
        let detail = format!("voicemail, {secs} s: {url}");
        messages::add_event(&tx, &team, &message, "voicemail", Some(&detail), now).await.map_err(unavailable)?;
        if secs > 0 && !contact.is_empty() {
            // Someone who called and left a message: a person should call back, soon.
            let a = Assessment {
                classification: Classification::Neutral,
                confidence: 100,
                labels: vec!["voicemail".into(), "wants_call".into()],
                score_delta: 0,
                score: 75,
                priority: Priority::Hot,
                bucket: Bucket::UniversalInbox,
                requires_review: true,
                opt_out: false,
            };
            let text = format!("Voicemail ({secs} s): {url}");
            let phone = field(&form, "From").unwrap_or_default();
            inbox::create(
                &tx,
                &team,
                &NewItem {
                    contact: &nextier_domain::ids::ContactId::from_trusted(contact),
                    message: &nextier_domain::ids::MessageId::from_trusted(message),
                    campaign: None,
                    phone,
                    text: &text,
                    assessment: &a,
                    now,
                },
            )
            .await
            .map_err(unavailable)?;
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(twiml("<Say>Thank you. Goodbye.</Say><Hangup/>"))
}

async fn status(State(s): State<VoiceState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let form = verified(&s, &uri, &headers, &body)?;
    let now = (s.now)();
    let sid = field(&form, "CallSid").unwrap_or_default().to_owned();
    let call_status = field(&form, "CallStatus").unwrap_or("unknown").to_owned();
    let mut conn = s.db.conn().await.map_err(unavailable)?;
    let tx = scope::begin(&mut conn, &Scope::default()).await.map_err(unavailable)?;
    let fresh = first_time(&tx, &format!("status:{sid}:{call_status}"), "voice.status", &form, &body, now)
        .await
        .map_err(unavailable)?;
    if let (true, Some((team, message, _))) = (fresh, call_message(&tx, &form).await.map_err(unavailable)?) {
        let detail = field(&form, "CallDuration").map(|d| format!("{d} s"));
        messages::add_event(&tx, &team, &message, &format!("call:{call_status}"), detail.as_deref(), now)
            .await
            .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
