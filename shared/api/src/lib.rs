//! The API groups. Each group is a router served by its own Lambda (`functions/api-*`);
//! the local runtime serves them all. The OpenAPI document is generated from the handlers'
//! annotations, so it cannot drift from the routes.

pub mod admin;
pub mod ai;
pub mod analytics;
pub mod businesses;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod enrichment;
pub mod events;
pub mod feed;
pub mod imports;
pub mod inbox;
pub mod integrations;
pub mod messages;
pub mod openapi;
mod parents;
pub mod property;
pub mod skip_traces;
mod state;
pub mod suppressions;
pub mod workflows;

pub use state::{AppConfig, AppState};

use axum::Router;
use nextier_http::jwt::JwtVerifier;
use utoipa_axum::router::OpenApiRouter;

/// Every API group with its documentation, before state is attached.
fn groups() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::meta())
        .merge(admin::router())
        .merge(feed::router())
        .merge(contacts::router())
        .merge(imports::router())
        .merge(campaigns::router())
        .merge(workflows::router())
        .merge(analytics::router())
        .merge(suppressions::router())
        .merge(messages::router())
        .merge(skip_traces::router())
        .merge(enrichment::router())
        .merge(businesses::router())
        .merge(inbox::router())
        .merge(ai::router())
        .merge(calls::router())
        .merge(property::router())
        .merge(integrations::router())
}

/// The complete OpenAPI 3.1 document for all groups.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(groups().into_openapi())
}

/// The admin Lambda's router: its group plus `/health` and `/openapi.json`.
pub fn admin_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    let group = OpenApiRouter::with_openapi(openapi::base())
        .merge(openapi::meta())
        .merge(admin::router())
        .merge(feed::router());
    serve(group, state, local_auth)
}

/// The contacts Lambda's router.
pub fn contacts_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(
        OpenApiRouter::with_openapi(openapi::base())
            .merge(contacts::router())
            .merge(imports::router())
            .merge(suppressions::router())
            .merge(messages::router())
            .merge(skip_traces::router())
            .merge(enrichment::router())
            .merge(businesses::router()),
        state,
        local_auth,
    )
}

/// The campaigns Lambda's router: campaigns, steps, enrolments, templates, saved filters.
pub fn campaigns_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(
        OpenApiRouter::with_openapi(openapi::base())
            .merge(campaigns::router())
            .merge(workflows::router())
            .merge(analytics::router()),
        state,
        local_auth,
    )
}

/// The inbox Lambda's router.
pub fn inbox_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(OpenApiRouter::with_openapi(openapi::base()).merge(inbox::router()).merge(ai::router()), state, local_auth)
}

/// The calls Lambda's router: the call queue, call history, dialer sessions.
pub fn calls_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(OpenApiRouter::with_openapi(openapi::base()).merge(calls::router()), state, local_auth)
}

/// The property Lambda's router: searches, properties, owners.
pub fn property_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(OpenApiRouter::with_openapi(openapi::base()).merge(property::router()), state, local_auth)
}

/// The integrations Lambda's router: the CRM connection, exports, webhook endpoints.
pub fn integrations_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(OpenApiRouter::with_openapi(openapi::base()).merge(integrations::router()), state, local_auth)
}

/// Runs an API group as a Lambda: everything is built once per cold start from the
/// environment, then `lambda_http` serves the router.
pub async fn run_lambda(
    function: &str,
    build: fn(AppState, Option<JwtVerifier>) -> Router,
) -> Result<(), nextier_http::lambda_http::Error> {
    nextier_platform::start(function).await?;
    let db = nextier_store::Db::from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    let clock = std::sync::Arc::new(nextier_platform::ports::clock::SystemClock);
    nextier_http::limits::install(platform.limiter.clone(), clock.clone());
    let state = AppState {
        outbox: platform.outbox(&db),
        blobs: platform.blobs.clone(),
        gate: std::sync::Arc::new(nextier_providers::LazyGate::new(platform.limiter.clone())),
        suggester: std::sync::Arc::new(nextier_providers::llm::LazySuggester::default()),
        researcher: nextier_providers::llm::researcher_from_env(),
        property_data: nextier_providers::realestate::property_data_from_env(),
        limiter: platform.limiter.clone(),
        skip_tracer: std::sync::Arc::new(nextier_providers::realestate::LazySkipTracer::default()),
        numbers: std::sync::Arc::new(nextier_providers::signalhouse_numbers::LazyNumbers::default()),
        crm: nextier_providers::zoho::crm_from_env(),
        db,
        config: std::sync::Arc::new(AppConfig::from_env()),
        clock,
    };
    nextier_http::run_lambda(build(state, nextier_http::jwt::local_verifier_from_env())).await
}

/// Every group in one router, as the local runtime serves them.
pub fn full_app(state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    serve(groups(), state, local_auth)
}

/// `local_auth` stands in for API Gateway's JWT authorizer on the local platform; deployed
/// (and in tests that place claims in the request context, as API Gateway does) it is `None`.
fn serve(group: OpenApiRouter<AppState>, state: AppState, local_auth: Option<JwtVerifier>) -> Router {
    let (router, _) = group.split_for_parts();
    let router = router.with_state(state);
    let router = match local_auth {
        Some(verifier) => router.layer(axum::middleware::from_fn_with_state(verifier, nextier_http::jwt::authorize)),
        None => router,
    };
    nextier_http::finish(router)
}
