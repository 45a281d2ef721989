//! The mail function's two public doors (function URL, no login):
//! - `POST /webhooks/sendgrid`, SendGrid's Event Webhook: verified (ECDSA P-256 over the
//!   timestamp and the raw body), each event stored once by its `sg_event_id` with its queue
//!   job in one statement, answered. The inbound consumer applies it (`nextier_inbound::mail_events`).
//!   401 for an unsigned, mis-signed or stale request, 400 for a signed body that is not a list
//!   of events, 503 when unconfigured or the database is unavailable (SendGrid retries).
//! - `/unsubscribe/{token}`, the link in every campaign email: GET shows a confirmation page
//!   (link scanners must not unsubscribe anyone), POST with `List-Unsubscribe=One-Click` (RFC
//!   8058, or the page's button) records the person's opt-out at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::DateTime;
use nextier_domain::sendgrid_signature::{self, VerifyingKey};
use nextier_domain::unsubscribe;
use nextier_domain::validation::FieldError;
use nextier_domain::webhook_signature::SignatureError;
use nextier_http::ApiError;
use nextier_inbound::event::without_nul;
use nextier_inbound::intake::{self, MailDelivery};
use nextier_inbound::mail_events::{self, PROVIDER};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_store::Db;
use serde_json::{json, Value};

pub const WEBHOOK_PATH: &str = "/webhooks/sendgrid";
pub const UNSUBSCRIBE_PATH: &str = "/unsubscribe/{token}";
/// The Event Webhook's verification key, base64 DER (SubjectPublicKeyInfo).
pub const PUBLIC_KEY_ENV: &str = "SENDGRID_WEBHOOK_PUBLIC_KEY";
/// How long the webhook may spend on the database before it answers 503.
const BUDGET: Duration = Duration::from_millis(5000);

#[derive(Clone)]
pub struct MailState {
    pub db: Db,
    pub outbox: OutboxPublisher,
    /// `None`: the webhook answers 503 until configured.
    pub key: Option<Arc<VerifyingKey>>,
    /// The secret unsubscribe tokens are signed with; `None`: links answer 503.
    pub unsubscribe_secret: Option<Arc<Vec<u8>>>,
    pub clock: Arc<dyn Clock>,
}

impl MailState {
    /// [`PUBLIC_KEY_ENV`] and `UNSUBSCRIBE_SECRET` (missing or invalid: logged, and that door
    /// answers 503).
    pub fn from_env(db: Db, outbox: OutboxPublisher) -> Self {
        let key = match nextier_runtime::config::get(PUBLIC_KEY_ENV) {
            Some(k) => match sendgrid_signature::public_key(&k) {
                Ok(k) => Some(Arc::new(k)),
                Err(e) => {
                    tracing::error!(error = %e, "{PUBLIC_KEY_ENV} is not a P-256 public key");
                    None
                }
            },
            None => None,
        };
        let secret = nextier_runtime::config::get("UNSUBSCRIBE_SECRET");
        Self {
            db,
            outbox,
            key,
            unsubscribe_secret: secret.map(|s| Arc::new(s.trim().as_bytes().to_vec())),
            clock: Arc::new(SystemClock),
        }
    }
}

fn inner(state: MailState) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(sendgrid))
        .route(UNSUBSCRIBE_PATH, get(confirm_page).post(one_click))
        .with_state(state)
}

/// The mail function: the routes, the layers and problem+json fallbacks.
pub fn router(state: MailState) -> Router {
    nextier_http::finish(inner(state))
}

/// The routes with their layers, to merge into a router with fallbacks (the local runtime).
pub fn routes(state: MailState) -> Router {
    nextier_http::layered(inner(state))
}

/// The events of a body: a JSON array of objects, each with a `sg_event_id` and an `event`.
fn events(body: &[u8]) -> Result<Vec<MailDelivery>, ApiError> {
    let bad = |field: String, why: &str| ApiError::Validation(vec![FieldError::new(field, why)]);
    let list: Vec<Value> = serde_json::from_slice::<Value>(body)
        .map_err(|e| bad("body".into(), &format!("is not JSON: {e}")))?
        .as_array()
        .cloned()
        .ok_or_else(|| bad("body".into(), "must be a JSON array of events"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().map(without_nul).enumerate() {
        let text =
            |k: &str| e.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty() && s.len() <= 200);
        let id = text("sg_event_id").ok_or_else(|| bad(format!("[{i}].sg_event_id"), "must be 1 to 200 characters"))?;
        let event = text("event").ok_or_else(|| bad(format!("[{i}].event"), "must be a non-empty string"))?;
        out.push(MailDelivery { id: id.to_owned(), event: event.to_ascii_lowercase(), payload: e.clone() });
    }
    Ok(out)
}

async fn sendgrid(State(s): State<MailState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let Some(key) = &s.key else {
        tracing::error!("{PUBLIC_KEY_ENV} is not set; refusing SendGrid events");
        return Err(ApiError::Unavailable("the webhook has no verification key configured".into()));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = sendgrid_signature::verify(header, &body, key, s.clock.now().timestamp()).map_err(|e| {
        tracing::warn!(error = %e, "SendGrid webhook refused");
        ApiError::Unauthorized(match e {
            SignatureError::Unsigned => "the request is not signed (X-Twilio-Email-Event-Webhook-Signature)".into(),
            other => other.to_string(),
        })
    })?;
    let events = events(&body)?;
    let signed_at = DateTime::from_timestamp(signed, 0);
    let stored = tokio::time::timeout(BUDGET, intake::sendgrid(&s.db, &events, &body, signed_at))
        .await
        .map_err(|_| ApiError::Unavailable("the database did not answer in time".into()))?
        .map_err(|e| {
            tracing::warn!(error = %format!("{e:#}"), "SendGrid events not stored");
            ApiError::Unavailable("could not store the events; retry".into())
        })?;
    let duplicates = events.len() - stored.len();
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function()), ("Provider", PROVIDER)],
        &[
            ("WebhookDeliveries", events.len() as f64, nextier_runtime::metrics::Unit::Count),
            ("WebhookDuplicates", duplicates as f64, nextier_runtime::metrics::Unit::Count),
        ],
    );
    if !stored.is_empty() {
        let _ = tokio::time::timeout(Duration::from_millis(500), s.outbox.publish(&stored)).await;
    }
    Ok(Json(json!({"received": events.len(), "duplicates": duplicates})))
}

fn page(title: &str, text: &str, button: bool) -> Html<String> {
    let form = if button {
        "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>"
    } else {
        ""
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{form}</body></html>"
    ))
}

fn verified(s: &MailState, token: &str) -> Result<unsubscribe::Unsubscribe, ApiError> {
    let Some(secret) = &s.unsubscribe_secret else {
        tracing::error!("UNSUBSCRIBE_SECRET is not set; unsubscribe links cannot be checked");
        return Err(ApiError::Unavailable("unsubscribing is unavailable; try again later".into()));
    };
    unsubscribe::verify(secret, token).map_err(|_| ApiError::NotFound("this unsubscribe link is not valid".into()))
}

/// The confirmation page: nothing changes until the person presses the button.
async fn confirm_page(State(s): State<MailState>, Path(token): Path<String>) -> Result<Html<String>, ApiError> {
    let u = verified(&s, &token)?;
    Ok(page("Unsubscribe", &format!("Stop all email and messages to {}?", html_escape(&u.address)), true))
}

/// RFC 8058 one-click (and the page's button): the person's opt-out, recorded now.
async fn one_click(
    State(s): State<MailState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Html<String>, ApiError> {
    let u = verified(&s, &token)?;
    let form = String::from_utf8_lossy(&body);
    if !form.contains(unsubscribe::ONE_CLICK_BODY) {
        return Err(ApiError::Validation(vec![FieldError::new("List-Unsubscribe", "must be One-Click")]));
    }
    mail_events::unsubscribe(&s.db, &u).await?;
    Ok(page("Unsubscribed", &format!("{} will get nothing more from us.", html_escape(&u.address)), false))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
