//! Enrichment jobs and scores (served by the contacts function): start a job over some
//! contacts, a saved filter, a filter or an import; follow its progress and what each
//! provider cost; read a contact's score and why.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, EnrichmentJobId, FilterId, ImportId, TeamId};
use nextier_domain::score::Breakdown;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::contacts::{self, Filter, Selection};
use nextier_store::enrichment::{self as store, DailyCost, Job, SourceKind};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::campaigns::enrolments::filter_from;
use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_enrichment_job, list_enrichment_jobs))
        .routes(routes!(get_enrichment_job))
        .routes(routes!(cancel_enrichment_job))
        .routes(routes!(enrichment_costs))
        .routes(routes!(get_contact_score, rescore_contact))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartJob {
    /// 1 to 10,000 contacts.
    contact_ids: Option<Vec<String>>,
    /// A saved filter (an audience) of this team.
    filter_id: Option<String>,
    /// A filter as the contact list takes it (`tag`, `state`, `minScore`, ...).
    #[schema(value_type = Option<Object>)]
    filter: Option<std::collections::BTreeMap<String, String>>,
    /// The contacts an import created.
    import_id: Option<String>,
}

fn not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}

/// Starts a job (202): each contact is traced when it has no textable number, its numbers
/// are graded, the team's rules decide ready or rejected, and it is re-scored. Provider calls
/// count against the team's daily caps (`enrichment.daily_cap_<provider>`); a cap reached
/// makes the job wait for the next day, never drop contacts.
#[utoipa::path(post, path = "/teams/{teamId}/enrichment-jobs", tag = "contacts", request_body = StartJob,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 202, description = "Started", body = Job),
              (status = 400, description = "Not exactly one of contactIds, filterId, filter, importId; or a bad one"),
              (status = 404, description = "A contact, filter or import this team does not have")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn start_enrichment_job(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<StartJob>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let mut problems = Problems::default();
    let given = [body.contact_ids.is_some(), body.filter_id.is_some(), body.filter.is_some(), body.import_id.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        problems.0.push(FieldError::new("contactIds", "give exactly one of contactIds, filterId, filter or importId"));
    }
    let max = nextier_enrichment::MAX_CONTACTS as usize;
    let ids = body.contact_ids.as_ref().map(|raw| problems.ids("contactIds", raw, max, ContactId::parse));
    let filter_id = body.filter_id.as_ref().and_then(|f| problems.take(FilterId::parse("filterId", f)));
    let import_id = body.import_id.as_ref().and_then(|i| problems.take(ImportId::parse("importId", i)));
    let mut filter: Option<Filter> = body.filter.as_ref().and_then(|f| filter_from(&mut problems, "filter", f));
    problems.finish()?;

    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    if let Some(fid) = &filter_id {
        let saved = nextier_store::campaigns::get_filter(&tx, fid).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::field("filterId", "no such saved filter in this team"),
            other => other.into(),
        })?;
        let map: std::collections::BTreeMap<String, String> = serde_json::from_value(saved.filter).unwrap_or_default();
        let mut p = Problems::default();
        filter = filter_from(&mut p, "filterId", &map);
        p.finish()?;
    }
    let limit = nextier_enrichment::MAX_CONTACTS;
    let (kind, source, contacts) = match (&ids, &filter, &import_id) {
        (Some(ids), _, _) => {
            let found = contacts::ids_of(&tx, Selection::Ids(ids), limit).await?;
            if let Some(i) = ids.iter().position(|id| !found.contains(id)) {
                return Err(ApiError::NotFound(format!("contactIds[{i}]: no such contact; nothing was started")));
            }
            (SourceKind::Contacts, json!({}), ids.clone())
        }
        (_, Some(f), _) => {
            let found = contacts::ids_of(&tx, Selection::Filter(f), limit + 1).await?;
            if found.len() as i64 > limit {
                return Err(ApiError::field("filter", "matches more than 10,000 contacts; narrow it"));
            }
            let source = match &filter_id {
                Some(fid) => json!({"filterId": fid}),
                None => json!({"filter": body.filter}),
            };
            (SourceKind::Filter, source, found)
        }
        (_, _, Some(imp)) => {
            let i = nextier_store::imports::get(&tx, imp).await.map_err(not_found("import"))?;
            if i.status != "completed" {
                return Err(ApiError::Conflict(format!("the import is {}; enrich it once it has completed", i.status)));
            }
            let found = store::contacts_of_import(&tx, imp, nextier_enrichment::MAX_IMPORT_CONTACTS).await?;
            (SourceKind::Import, json!({"importId": imp}), found)
        }
        _ => return Err(ApiError::field("contactIds", "give exactly one of contactIds, filterId, filter or importId")),
    };
    if contacts.is_empty() {
        return Err(ApiError::field(
            if import_id.is_some() { "importId" } else { "filter" },
            "covers no contacts; nothing was started",
        ));
    }
    let started = nextier_enrichment::start(&tx, &team, kind, &source, &contacts, &access.actor.label()).await?;
    let (job, staged) = match started {
        nextier_enrichment::Started::Job { job, first, .. } => (job, first),
        nextier_enrichment::Started::Busy => {
            return Err(ApiError::Conflict("every one of these contacts is being enriched by a running job".into()))
        }
        nextier_enrichment::Started::Duplicate => {
            return Err(ApiError::Conflict("this import already has its enrichment job".into()))
        }
    };
    let job = store::get(&tx, &job).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[staged]).await;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

#[utoipa::path(get, path = "/teams/{teamId}/enrichment-jobs", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery),
    responses((status = 200, description = "Jobs, newest first, with their progress", body = Page<Job>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_enrichment_jobs(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Job>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = store::list(&tx, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |j| j.id.to_string())))
}

/// A job's progress: contacts done, ready, rejected, graded (a person decides) and failed; what
/// each provider was asked, what it cost, what the cache saved; and, when waiting for a daily
/// cap, until when and why.
#[utoipa::path(get, path = "/teams/{teamId}/enrichment-jobs/{enrichmentJobId}", tag = "contacts",
    params(("teamId" = String, Path), ("enrichmentJobId" = String, Path, description = "enj_<ULID>")),
    responses((status = 200, description = "The job", body = Job)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_enrichment_job(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, EnrichmentJobId)>,
) -> Result<Json<Job>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let job = store::get(&tx, &id).await.map_err(not_found("enrichment job"))?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(job))
}

/// Stops a job: no more provider calls; what was found stays.
#[utoipa::path(post, path = "/teams/{teamId}/enrichment-jobs/{enrichmentJobId}/cancel", tag = "contacts",
    params(("teamId" = String, Path), ("enrichmentJobId" = String, Path, description = "enj_<ULID>")),
    responses((status = 200, description = "Cancelled", body = Job), (status = 409, description = "Already ended")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn cancel_enrichment_job(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, EnrichmentJobId)>,
) -> Result<Json<Job>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    store::lock_status(&tx, &id).await.map_err(not_found("enrichment job"))?;
    if !store::cancel(&tx, &id, app.clock.now()).await? {
        return Err(ApiError::Conflict("the job has already ended".into()));
    }
    let job = store::get(&tx, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(job))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// How many days back (1-366, default 30).
    days: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Costs {
    pub days: Vec<DailyCost>,
}

/// What enrichment cost the team, per provider and UTC day: calls, credits, cache hits.
#[utoipa::path(get, path = "/teams/{teamId}/enrichment-costs", tag = "contacts",
    params(("teamId" = String, Path), CostQuery),
    responses((status = 200, description = "Per provider and day, newest first", body = Costs)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn enrichment_costs(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<CostQuery>,
) -> Result<Json<Costs>, ApiError> {
    let days = match q.days.as_deref() {
        None => 30,
        Some(d) => d
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::field("days", "must be a whole number of days from 1 to 366"))?,
    };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let days = store::daily_costs(&tx, days).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Costs { days }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreView {
    /// 0-100.
    pub score: i32,
    /// How it was reached; absent until the contact was first scored.
    pub breakdown: Option<Breakdown>,
    pub scored_at: Option<DateTime<Utc>>,
}

/// The contact's score and why: each part (data quality, reachability, role value, property
/// opportunity, business fit) with its weight, points and reasons.
#[utoipa::path(get, path = "/teams/{teamId}/contacts/{contactId}/score", tag = "contacts",
    params(("teamId" = String, Path), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The score and its breakdown", body = ScoreView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_contact_score(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<ScoreView>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let c = contacts::get(&tx, &id).await.map_err(not_found("contact"))?;
    let saved = nextier_store::scoring::breakdown(&tx, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let (breakdown, scored_at) = match saved {
        Some((b, at)) => (Some(b), Some(at)),
        None => (None, None),
    };
    Ok(Json(ScoreView { score: c.score, breakdown, scored_at }))
}

/// Scores the contact now with the team's weights (settings scope `scoring`); a changed
/// score may enrol it in a running campaign's auto-enrol band.
#[utoipa::path(post, path = "/teams/{teamId}/contacts/{contactId}/score", tag = "contacts",
    params(("teamId" = String, Path), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The new score and its breakdown", body = ScoreView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn rescore_contact(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<ScoreView>, ApiError> {
    let now = app.clock.now();
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    contacts::get(&tx, &id).await.map_err(not_found("contact"))?;
    let (before, b) = nextier_store::scoring::rescore(&tx, &id, now).await?;
    let mut staged = vec![];
    if before != b.total {
        let body = json!({"teamId": team, "contactId": id});
        staged.push(crate::events::stage_queue(&tx, &team, nextier_campaigns::SYNC_QUEUE, body).await?);
    }
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&staged).await;
    Ok(Json(ScoreView { score: b.total, breakdown: Some(b), scored_at: Some(now) }))
}
