//! The SignalHouse webhook (a function URL): verify, store once, enqueue through the outbox,
//! answer. Nothing else happens here, so the answer comes well inside SignalHouse's 3 s.
//!
//! Answers: 200 for a delivery stored now or before (a duplicate is acknowledged, never
//! processed twice); 401 for an unsigned, mis-signed or stale request and 400 for a signed
//! body that is not an event (retrying either cannot help); 413 for an oversized body; 503
//! when the database is unavailable or slow (SignalHouse retries 5xx, and nothing was kept).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use chrono::DateTime;
use nextier_domain::validation::FieldError;
use nextier_domain::webhook_signature::{verify_signalhouse, SignatureError};
use nextier_http::ApiError;
use nextier_inbound::event::{normalise, payload, without_nul};
use nextier_inbound::{intake, PROVIDER};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_store::Db;
use serde_json::{json, Value};
use sha2::Digest;

pub const PATH: &str = "/webhooks/signalhouse";
/// The signing secrets, comma-separated: during a rotation both the old and the new.
pub const SECRETS_ENV: &str = "SIGNALHOUSE_WEBHOOK_SECRETS";
/// How long the handler may spend on the database before it answers 503.
const BUDGET: Duration = Duration::from_millis(2000);

#[derive(Clone)]
pub struct WebhookState {
    pub db: Db,
    pub outbox: OutboxPublisher,
    pub secrets: Arc<Vec<Vec<u8>>>,
    /// The clock the signature's freshness is checked against (tests move it).
    pub clock: Arc<dyn Clock>,
}

impl WebhookState {
    pub fn new(db: Db, outbox: OutboxPublisher, secrets: Vec<Vec<u8>>) -> Self {
        Self { db, outbox, secrets: Arc::new(secrets), clock: Arc::new(SystemClock) }
    }
}

/// What the local platform (`PLATFORM=local`: the local runtime, `cargo lambda watch`, SAM
/// local) verifies with when [`SECRETS_ENV`] is unset. Never used deployed.
pub const LOCAL_SECRET: &str = "local-signalhouse-webhook-secret";

/// The secrets from [`SECRETS_ENV`]; unset, the local default on the local platform and none
/// deployed (every request is then refused).
pub fn secrets_from_env() -> Vec<Vec<u8>> {
    let mut secrets: Vec<Vec<u8>> = nextier_runtime::config::get(SECRETS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    if secrets.is_empty() && nextier_runtime::config::is_local() {
        secrets.push(LOCAL_SECRET.as_bytes().to_vec());
    }
    secrets
}

/// The webhook as its own function: the route, the layers and problem+json fallbacks.
pub fn router(state: WebhookState) -> Router {
    nextier_http::finish(Router::new().route(PATH, post(signalhouse)).with_state(state))
}

/// The route with its layers, to merge into a router with fallbacks (the local runtime).
pub fn routes(state: WebhookState) -> Router {
    nextier_http::layered(Router::new().route(PATH, post(signalhouse)).with_state(state))
}

async fn signalhouse(State(s): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    if s.secrets.is_empty() {
        // Misconfigured, not the sender's fault: 503 keeps SignalHouse retrying until fixed.
        tracing::error!("{SECRETS_ENV} is not set; refusing webhooks");
        return Err(ApiError::Unavailable("the webhook has no signing secret configured".into()));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secrets: Vec<&[u8]> = s.secrets.iter().map(Vec::as_slice).collect();
    let now = s.clock.now();
    let signed_ms = verify_signalhouse(header, &body, &secrets, now.timestamp_millis()).map_err(|e| {
        tracing::warn!(error = %e, "webhook refused");
        ApiError::Unauthorized(match e {
            SignatureError::Unsigned => "the request is not signed (X-SignalHouse-Signature-V1)".into(),
            other => other.to_string(),
        })
    })?;
    let payload: Value = payload(&body)
        .map(without_nul)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("body", format!("is not JSON: {e}"))]))?;
    let event = match payload.get("event") {
        Some(Value::String(e)) if !e.trim().is_empty() && e.len() <= 100 => normalise(e),
        _ => return Err(ApiError::Validation(vec![FieldError::new("event", "must be a non-empty string")])),
    };
    // The same id on every retry; without one, the body's hash stands in for it.
    let delivery_id = match header("x-signalhouse-delivery-id").map(str::trim) {
        Some(d) if !d.is_empty() && d.len() <= 200 => d.to_owned(),
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "X-SignalHouse-Delivery-Id",
                "must be 1 to 200 characters",
            )]))
        }
        None => format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body))),
    };
    let signed_at = DateTime::from_timestamp_millis(signed_ms);
    let stored =
        tokio::time::timeout(BUDGET, intake::signalhouse(&s.db, &delivery_id, &event, &payload, &body, signed_at))
            .await
            .map_err(|_| ApiError::Unavailable("the database did not answer in time".into()))?
            .map_err(|e| {
                tracing::warn!(error = %format!("{e:#}"), "webhook not stored");
                ApiError::Unavailable("could not store the delivery; retry".into())
            })?;
    let duplicate = stored.is_none();
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function()), ("Provider", PROVIDER)],
        &[
            ("WebhookDeliveries", 1.0, nextier_runtime::metrics::Unit::Count),
            ("WebhookDuplicates", if duplicate { 1.0 } else { 0.0 }, nextier_runtime::metrics::Unit::Count),
        ],
    );
    if let Some((id, outbox_id)) = &stored {
        tracing::info!(webhook_event = %id, delivery_id, event, "webhook stored");
        // Best effort: the sweeper publishes whatever this misses.
        let _ =
            tokio::time::timeout(Duration::from_millis(500), s.outbox.publish(std::slice::from_ref(outbox_id))).await;
    } else {
        tracing::info!(delivery_id, event, "duplicate webhook acknowledged");
    }
    Ok(Json(json!({"received": true, "duplicate": duplicate, "deliveryId": delivery_id})))
}
