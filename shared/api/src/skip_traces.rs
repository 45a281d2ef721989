//! Skip traces (served by the contacts function): ask the skip-trace provider for some
//! contacts' phones and emails; the results arrive at the skip-trace webhook and join the
//! contacts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, SkipTraceId, TeamId};
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody};
use nextier_inbound::skiptrace::{self, RequestError};
use nextier_store::skip_trace::Job;
use nextier_store::StoreError;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::Problems;
use crate::AppState;

pub const LIMIT: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request)).routes(routes!(get_job))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SkipTraceRequest {
    /// 1 to 1,000 contacts.
    contact_ids: Vec<String>,
}

/// Asks the provider for the contacts' phones and emails (202: the results come later, by
/// the provider's callback). A provider refusal is recorded on the job (`failed`, `error`).
#[utoipa::path(post, path = "/teams/{teamId}/skip-traces", tag = "contacts", request_body = SkipTraceRequest,
    params(("teamId" = String, Path)),
    responses((status = 202, description = "Requested (or failed, with the provider's reason)", body = Job)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn request(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<SkipTraceRequest>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let mut problems = Problems::default();
    let ids = problems.ids("contactIds", &body.contact_ids, LIMIT, ContactId::parse);
    problems.finish()?;
    let actor = {
        let mut conn = app.db.conn().await?;
        let (_tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
        access.actor.label()
    };
    let callback = skiptrace::Callback { base_url: &app.config.webhook_base_url, key: &app.config.callback_key };
    let job = skiptrace::request(&app.db, app.skip_tracer.as_ref(), &team, &ids, &actor, &callback).await.map_err(
        |e| match e {
            RequestError::UnknownContact(i) => {
                ApiError::NotFound(format!("contactIds[{i}]: no such contact; nothing was requested"))
            }
            RequestError::Store(e) => e.into(),
        },
    )?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[utoipa::path(get, path = "/teams/{teamId}/skip-traces/{jobId}", tag = "contacts",
    params(("teamId" = String, Path), ("jobId" = String, Path, description = "stj_<ULID>")),
    responses((status = 200, description = "The job: requested, completed (with what was added) or failed", body = Job)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_job(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, SkipTraceId)>,
) -> Result<Json<Job>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let job = nextier_store::skip_trace::get(&tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such skip-trace job".into()),
        other => other.into(),
    })?;
    tx.commit().await.map_err(|e| ApiError::from(StoreError::from(e)))?;
    Ok(Json(job))
}
