use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use nextier_http::problem::{Problem, ProblemField};
use serde_json::json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Doc, RefOr, ResponseBuilder};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// `info.version` is the contract's version, not the crate's: the major is the API's (`1`,
/// served without a path prefix); a change that adds (an operation, an optional field or
/// parameter, a response) raises the minor; one that only corrects the document raises the
/// patch. A breaking change is a new major, served beside this one (see README, "API contract").
#[derive(OpenApi)]
#[openapi(
    info(title = "Nextier API", description = "Multi-tenant sales outreach: teams, contacts, campaigns, messages, inbox.", version = "1.0.0", license(name = "Proprietary")),
    components(schemas(Problem, ProblemField)),
    tags((name = "admin", description = "Teams, members, invitations, API keys, settings"),
         (name = "contacts", description = "One contact per person per team: phones, emails, addresses, merges, lead states, timeline"),
         (name = "inbox", description = "Replies in buckets with SLAs: list, conversation, move, process, escalate, stats, classification preview"),
         (name = "calls", description = "The call queue, call history and power-dialer sessions"),
         (name = "meta", description = "Health and this document"))
)]
struct Base;

pub fn base() -> Doc {
    Base::openapi()
}

/// Adds the security schemes and, to every operation, the problem+json answers that every
/// route can give (so each handler only documents what is particular to it).
pub fn finish(mut doc: Doc) -> Doc {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut common = vec![("400", "Invalid input; `errors` names each field"), ("500", "Internal error")];
            if secured {
                common.extend([
                    ("401", "Missing or invalid credentials"),
                    ("403", "Authenticated but not allowed"),
                    ("404", "No such resource, or not a member of the team"),
                ]);
            }
            if op.request_body.is_some() {
                common.extend([("413", "Body over 64 KiB"), ("415", "Body is not application/json")]);
            }
            for (code, desc) in common {
                op.responses.responses.entry(code.into()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(desc)
                            .content(
                                "application/problem+json",
                                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem")))),
                            )
                            .build(),
                    )
                });
            }
        }
    }
    doc
}

/// `/health` and `/openapi.json`, served by the admin function.
pub fn meta() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(openapi_json))
}

#[utoipa::path(get, path = "/health", tag = "meta", operation_id = "health", responses((status = 200, description = "Up, database reachable"), (status = 503, description = "Database unreachable")))]
pub async fn health(State(app): State<AppState>) -> impl IntoResponse {
    let db = app.db.ping().await;
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if db { "ok" } else { "degraded" }, "database": db})))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOC.get_or_init(|| crate::openapi_document().to_json().unwrap_or_default());
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.clone())
}
