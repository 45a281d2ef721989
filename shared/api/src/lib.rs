//! The API groups. Each group is a router served by its own Lambda (`functions/api-*`);
//! the local runtime serves them all. The OpenAPI document is generated from the handlers'
//! annotations, so it cannot drift from the routes.

pub mod admin;
pub mod events;
pub mod openapi;
mod state;

pub use state::{AppConfig, AppState};

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

/// Every API group with its documentation, before state is attached.
fn groups() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::meta())
        .merge(admin::router())
}

/// The complete OpenAPI 3.1 document for all groups.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(groups().into_openapi())
}

/// The admin Lambda's router: its group plus `/health` and `/openapi.json`.
pub fn admin_app(state: AppState) -> Router {
    let (router, _) = OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::meta())
        .merge(admin::router())
        .split_for_parts();
    nextier_http::finish(router.with_state(state))
}

/// Every group in one router, as the local runtime serves them. `local_auth` stands in for
/// API Gateway's JWT authorizer (the local runtime passes one; tests that place claims in
/// the request context themselves, as API Gateway does, pass `None`).
pub fn full_app(state: AppState, local_auth: Option<nextier_http::jwt::JwtVerifier>) -> Router {
    let (router, _) = groups().split_for_parts();
    let router = router.with_state(state);
    let router = match local_auth {
        Some(verifier) => router.layer(axum::middleware::from_fn_with_state(
            verifier,
            nextier_http::jwt::authorize,
        )),
        None => router,
    };
    nextier_http::finish(router)
}
