//! Who a campaign reaches: enrolment by ids, by a saved filter, by an inline filter or by
//! score band (the original's sync-lead-campaign), and removal.

use axum::extract::State;
use axum::Json;
use nextier_campaigns::lifecycle::{self, Who};
use nextier_campaigns::{staging, team_rules};
use nextier_domain::access::Permission;
use nextier_domain::ids::{CampaignId, ContactId, FilterId, TeamId};
use nextier_domain::FieldError;
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Ids, JsonBody, Page, PageQuery};
use nextier_store::campaigns::{self, EnrolRules, Enrolled, Enrolment};
use nextier_store::contacts::{Filter, Selection};
use nextier_store::parents::Parent;
use nextier_store::{settings, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{lifecycle_err, who};
use crate::contacts::input::{self, Problems};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_enrolments, enrol)).routes(routes!(unenrol))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnrolInput {
    /// Up to 10,000 contact ids.
    contact_ids: Option<Vec<String>>,
    /// A saved filter (`flt_…`).
    filter_id: Option<String>,
    /// The contact list filters as an object, e.g. `{"tag": "florida", "minScore": "50"}`.
    #[schema(value_type = Option<Object>)]
    filter: Option<std::collections::BTreeMap<String, String>>,
    /// A score band: every contact with minScore ≤ score ≤ maxScore.
    min_score: Option<i32>,
    max_score: Option<i32>,
}

/// Turns a filter object into the contact list filter, naming problems under `at`.
pub(crate) fn filter_from(
    p: &mut Problems,
    at: &str,
    f: &std::collections::BTreeMap<String, String>,
) -> Option<Filter> {
    if let Some((k, _)) = f.iter().find(|(k, v)| k.chars().chain(v.chars()).any(char::is_control)) {
        p.0.push(FieldError::new(
            format!("{at}.{}", k.replace(char::is_control, "")),
            "must not contain control characters",
        ));
        return None;
    }
    let pairs: Vec<(String, String)> = f.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    match input::filter(&pairs) {
        Ok(f) => Some(f),
        Err(ApiError::Validation(errs)) => {
            p.0.extend(errs.into_iter().map(|e| e.clone().at(format!("{at}.{}", e.field))));
            None
        }
        Err(_) => {
            p.0.push(FieldError::new(at, "is not a valid filter"));
            None
        }
    }
}

/// Enrols contacts. Contacts that opted out, lack a merge field the steps need (with no
/// fallback), or are already in a live campaign of the team (unless the team setting
/// `campaigns/allow_overlapping_enrolments` is true) are skipped, each with its reason. On
/// an APPROVED or PAUSED campaign this is an audience change: it goes back to STAGED. A
/// RUNNING campaign must be paused first (the auto-enrol band still adds contacts while it
/// runs: that rule is part of what was approved).
#[utoipa::path(post, path = "/teams/{teamId}/campaigns/{campaignId}/enrolments", tag = "campaigns", request_body = EnrolInput,
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "How many were enrolled, and who was skipped and why", body = Enrolled),
              (status = 409, description = "The campaign is running or finished")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn enrol(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    JsonBody(body): JsonBody<EnrolInput>,
) -> Result<Json<Enrolled>, ApiError> {
    let mut problems = Problems::default();
    let given = [
        body.contact_ids.is_some(),
        body.filter_id.is_some(),
        body.filter.is_some(),
        body.min_score.is_some() || body.max_score.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        problems.0.push(FieldError::new(
            "contactIds",
            "give exactly one of contactIds, filterId, filter or minScore/maxScore",
        ));
    }
    let ids: Option<Vec<ContactId>> = body.contact_ids.as_ref().map(|ids| {
        if ids.is_empty() || ids.len() > 10_000 {
            problems.0.push(FieldError::new("contactIds", "give 1 to 10,000 ids; use a filter for more"));
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, raw)| problems.take(ContactId::parse(&format!("contactIds[{i}]"), raw)))
            .collect()
    });
    let filter_id = body.filter_id.as_ref().and_then(|f| problems.take(FilterId::parse("filterId", f)));
    let mut filter = body.filter.as_ref().and_then(|f| filter_from(&mut problems, "filter", f));
    if given[3] {
        let (min, max) = (body.min_score.unwrap_or(0), body.max_score.unwrap_or(100));
        if !(0..=100).contains(&min) {
            problems.0.push(FieldError::new("minScore", "must be between 0 and 100"));
        }
        if !(0..=100).contains(&max) || max < min {
            problems.0.push(FieldError::new("maxScore", "must be between minScore and 100"));
        }
        filter = Some(Filter { min_score: Some(min), max_score: Some(max), ..Filter::default() });
    }
    problems.finish()?;

    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let c = campaigns::lock(&tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such campaign".into()),
        other => other.into(),
    })?;
    lifecycle::editable(&c, "audience").map_err(lifecycle_err)?;
    if let Some(fid) = &filter_id {
        let saved = campaigns::get_filter(&tx, fid).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::field("filterId", "no such saved filter in this team"),
            other => other.into(),
        })?;
        let map: std::collections::BTreeMap<String, String> = serde_json::from_value(saved.filter).unwrap_or_default();
        let mut p = Problems::default();
        filter = filter_from(&mut p, "filterId", &map);
        p.finish()?;
    }
    let steps = campaigns::steps(&tx, &id).await?;
    let required = staging::required_fields(&steps);
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    let exclusive = !settings::flag(&tx, team_rules::SCOPE, team_rules::ALLOW_OVERLAP).await?;
    let label = access.actor.label();
    let rules = EnrolRules {
        team: &team,
        campaign: &id,
        required_fields: &required,
        exclusive,
        first_run_at: None,
        actor: &label,
    };
    let selection = match (&ids, &filter) {
        (Some(ids), _) => Selection::Ids(ids),
        (_, Some(f)) => Selection::Filter(f),
        _ => {
            return Err(ApiError::field(
                "contactIds",
                "give exactly one of contactIds, filterId, filter or minScore/maxScore",
            ))
        }
    };
    let out = campaigns::enrol(&tx, selection, &rules).await?;
    let mut events = vec![];
    if out.enrolled > 0 {
        let (label, user, admin) = who(&access);
        let w = Who { label: &label, user: user.as_ref(), admin };
        if let Some(m) =
            lifecycle::after_edit(&tx, &team, &id, "audience", w, app.clock.now()).await.map_err(lifecycle_err)?
        {
            events.push(m.event);
        }
    }
    tx.commit().await?;
    app.outbox.publish(&events).await;
    Ok(Json(out))
}

/// Enrolments in id order; `status` (active, completed, exited, failed, removed) filters.
#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}/enrolments", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path), PageQuery, ("status" = Option<String>, Query)),
    responses((status = 200, description = "A page of enrolments", body = Page<Enrolment>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_enrolments(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    uri: axum::http::Uri,
) -> Result<Json<Page<Enrolment>>, ApiError> {
    let page = q.page()?;
    let mut status = None;
    for (k, v) in url_pairs(uri.query().unwrap_or("")) {
        match k.as_str() {
            "status" if ["active", "completed", "exited", "failed", "removed"].contains(&v.as_str()) => {
                status = Some(v)
            }
            "status" => return Err(ApiError::field("status", "must be active, completed, exited, failed or removed")),
            "cursor" | "limit" => {}
            other => return Err(ApiError::field(other, "is not a filter of this list")),
        }
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    crate::parents::require(&tx, Parent::Campaign(&id)).await?;
    let rows = campaigns::enrolments(&tx, &id, status.as_deref(), &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| e.id.to_string())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UnenrolInput {
    /// Up to 10,000 contact ids.
    contact_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    removed: u64,
}

/// Takes contacts out of the campaign at any time, running or not; their pending steps are
/// never sent. Narrowing the audience needs no new approval.
#[utoipa::path(post, path = "/teams/{teamId}/campaigns/{campaignId}/enrolments/remove", tag = "campaigns", request_body = UnenrolInput,
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "How many active enrolments ended", body = Removed)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn unenrol(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    JsonBody(body): JsonBody<UnenrolInput>,
) -> Result<Json<Removed>, ApiError> {
    let mut problems = Problems::default();
    if body.contact_ids.is_empty() || body.contact_ids.len() > 10_000 {
        problems.0.push(FieldError::new("contactIds", "give 1 to 10,000 ids"));
    }
    let ids: Vec<ContactId> = body
        .contact_ids
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| problems.take(ContactId::parse(&format!("contactIds[{i}]"), raw)))
        .collect();
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    campaigns::lock(&tx, &id).await.map_err(super::not_found)?;
    let removed = campaigns::unenrol(&tx, &id, &ids, &access.actor.label()).await?;
    tx.commit().await?;
    Ok(Json(Removed { removed }))
}
