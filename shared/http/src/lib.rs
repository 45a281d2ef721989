//! lambda_http + axum glue shared by every API group: problem+json errors, extractors that
//! name the offending field, the correlation-id / logging / metrics middleware, the caller's
//! credential and team access, and the local runtime's JWT check.

pub mod access;
pub mod auth;
pub mod extract;
pub mod jwt;
pub mod limits;
pub mod middleware;
pub mod problem;

pub use access::{open_team, open_user, Actor, TeamAccess};
pub use auth::Credential;
pub use extract::{Id, Ids, JsonBody, OptionalJson, Page, PageQuery, PathParam};
pub use lambda_http;
pub use problem::ApiError;

/// Requests larger than this are refused with 413 before any handler runs.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Adds the layers every API router needs and the problem+json fallbacks.
pub fn finish(router: axum::Router) -> axum::Router {
    layered(router.fallback(problem::not_found).method_not_allowed_fallback(problem::method_not_allowed))
}

/// The layers alone (body limit, correlation id, logs and metrics, panics as problem+json),
/// for routes merged into a router that has its own fallbacks.
pub fn layered(router: axum::Router) -> axum::Router {
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(problem::panic_response))
}

/// Serves a router as a Lambda behind API Gateway (HTTP API, payload v2) or a function URL.
pub async fn run_lambda(router: axum::Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(router).await
}
