//! Businesses (served by the contacts function): list and read them with their owners and
//! decision makers; enrich one from Apollo (an enrichment job: the organisation's missing
//! fields, its decision makers as contacts, each then graded).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{BusinessId, TeamId};
use nextier_http::{open_team, ApiError, Credential, Id, Ids, Page, PageQuery};
use nextier_store::businesses::{self, Business, Member};
use nextier_store::enrichment::Job;
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_businesses)).routes(routes!(get_business)).routes(routes!(enrich_business))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BusinessQuery {
    /// Part of the name.
    q: Option<String>,
    /// The sector, exactly (case-insensitive).
    sector: Option<String>,
}

fn text_param(field: &str, v: &Option<String>) -> Result<Option<String>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > 100 || s.chars().any(char::is_control) => {
            Err(ApiError::field(field, "must be at most 100 printable characters"))
        }
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// Businesses in id order, with how many people and decision makers each has.
#[utoipa::path(get, path = "/teams/{teamId}/businesses", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery, BusinessQuery),
    responses((status = 200, description = "A page of businesses", body = Page<Business>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_businesses(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    Query(f): Query<BusinessQuery>,
) -> Result<Json<Page<Business>>, ApiError> {
    let page = q.page()?;
    let name = text_param("q", &f.q)?;
    let sector = text_param("sector", &f.sector)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = businesses::list(&tx, name.as_deref(), sector.as_deref(), &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |b| b.id.to_string())))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BusinessView {
    #[serde(flatten)]
    pub business: Business,
    /// Owners, executives and managers: decision makers first.
    pub people: Vec<Member>,
}

#[utoipa::path(get, path = "/teams/{teamId}/businesses/{businessId}", tag = "contacts",
    params(("teamId" = String, Path), ("businessId" = String, Path, description = "biz_<ULID>")),
    responses((status = 200, description = "The business and its people", body = BusinessView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_business(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, BusinessId)>,
) -> Result<Json<BusinessView>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let business = businesses::get(&tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such business".into()),
        other => other.into(),
    })?;
    let people = businesses::people(&tx, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(BusinessView { business, people }))
}

/// Enriches the business from Apollo (202, an enrichment job): fields nobody filled are filled
/// (never overwritten), its decision makers become contacts (or are linked to the contact that
/// has their email or number) and are graded like any other. Counts against the team's daily
/// Apollo cap.
#[utoipa::path(post, path = "/teams/{teamId}/businesses/{businessId}/enrich", tag = "contacts",
    params(("teamId" = String, Path), ("businessId" = String, Path, description = "biz_<ULID>")),
    responses((status = 202, description = "Started", body = Job),
              (status = 409, description = "Already being enriched")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn enrich_business(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, BusinessId)>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    businesses::get(&tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such business".into()),
        other => other.into(),
    })?;
    let started = nextier_enrichment::start_business(&tx, &team, &id, &access.actor.label(), app.clock.now()).await?;
    let Some((job, staged)) = started else {
        return Err(ApiError::Conflict("the business is already being enriched".into()));
    };
    let job = nextier_store::enrichment::get(&tx, &job).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[staged]).await;
    Ok((StatusCode::ACCEPTED, Json(job)))
}
