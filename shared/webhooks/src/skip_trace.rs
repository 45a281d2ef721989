//! The skip-trace provider's completion webhook (a function URL). The provider does not sign
//! its callbacks: each job's callback URL carries its own random token
//! (`nextier_inbound::skiptrace`), signed with our key, so a callback proves which job it is
//! for, and a forged token is refused before any database work.
//!
//! Answers: 200 (with `duplicate` when the job had already ended); 404 for a token no job
//! has; 400 for a body that is not a JSON object or names another job; 413 over 8 MiB; 503
//! when the results could not be applied (the provider retries).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use nextier_domain::FieldError;
use nextier_http::ApiError;
use nextier_inbound::skiptrace::{self, CallbackError, Completion, CALLBACK_PATH};
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_store::Db;
use serde_json::{json, Value};

/// A callback carries the results of up to 1,000 contacts.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct CallbackState {
    pub db: Db,
    /// The key callback tokens are signed with (`SKIP_TRACE_CALLBACK_SECRET`).
    pub key: Arc<Vec<u8>>,
    pub clock: Arc<dyn Clock>,
}

impl CallbackState {
    /// The key from the environment (or the local default).
    pub fn new(db: Db) -> Self {
        Self { db, key: Arc::new(skiptrace::callback_key()), clock: Arc::new(SystemClock) }
    }
}

fn routes_inner(state: CallbackState) -> Router {
    Router::new().route(CALLBACK_PATH, post(callback).layer(DefaultBodyLimit::max(BODY_LIMIT))).with_state(state)
}

/// As its own function, with the problem+json fallbacks.
pub fn router(state: CallbackState) -> Router {
    nextier_http::finish(routes_inner(state))
}

/// To merge into a router with fallbacks (the local runtime).
pub fn routes(state: CallbackState) -> Router {
    nextier_http::layered(routes_inner(state))
}

async fn callback(
    State(s): State<CallbackState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    match skiptrace::complete(&s.db, &s.key, &token, &body, s.clock.now()).await {
        Ok(done) => Ok(Json(json!({"received": true, "duplicate": done == Completion::Duplicate}))),
        Err(CallbackError::UnknownToken) => Err(ApiError::NotFound("no skip-trace job has this callback".into())),
        Err(CallbackError::NotAnObject) => {
            Err(ApiError::Validation(vec![FieldError::new("body", "must be a JSON object")]))
        }
        Err(CallbackError::WrongJob) => {
            Err(ApiError::Validation(vec![FieldError::new("jobId", "does not match the job this callback is for")]))
        }
        Err(CallbackError::Store(e)) => {
            tracing::warn!(error = %e, "skip-trace callback not applied");
            Err(ApiError::Unavailable("could not apply the results; retry".into()))
        }
    }
}
