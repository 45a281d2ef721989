//! The campaigns API group: campaigns and their lifecycle, steps, enrolments, per-step
//! stats and state history; message templates and saved audiences.

pub(crate) mod enrolments;
mod library;
mod numbers;
mod provisioning;
pub(crate) mod steps;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_campaigns::lifecycle::{self, LifecycleError, Who};
use nextier_domain::access::Permission;
use nextier_domain::campaign::CampaignStatus;
use nextier_domain::ids::{CampaignId, TeamId};
use nextier_domain::FieldError;
use nextier_http::{
    open_team, ApiError, Credential, Id, Ids, JsonBody, OptionalJson, Page, PageQuery, PathParam, TeamAccess,
};
use nextier_store::campaign_changes::CampaignChange;
use nextier_store::campaigns::{self, Campaign, ScoreBand, Settings, StateChange, StepStats};
use nextier_store::parents::Parent;
use nextier_store::StoreError;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(transition))
        .routes(routes!(history))
        .routes(routes!(changes))
        .routes(routes!(stats))
        .merge(steps::router())
        .merge(enrolments::router())
        .merge(library::router())
        .merge(numbers::router())
        .merge(provisioning::router())
}

/// The lifecycle's refusals as HTTP: 404, 409 naming from and to, 403, 400 per problem.
/// `{numberId}`: a sending number's row (the numbers' and the provisioning routes').
pub(crate) struct NumberId(pub(crate) nextier_domain::ids::RowId);

impl nextier_http::PathParam for NumberId {
    const NAME: &'static str = "numberId";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        Ok(NumberId(nextier_domain::ids::RowId::parse(Self::NAME, raw)?))
    }
}

pub(crate) fn lifecycle_err(e: LifecycleError) -> ApiError {
    match e {
        LifecycleError::NotFound => ApiError::NotFound("no such campaign".into()),
        LifecycleError::Refused(r) => ApiError::Conflict(r.to_string()),
        LifecycleError::Forbidden(m) => ApiError::Forbidden(m),
        LifecycleError::Invalid(problems) => ApiError::Validation(problems),
        LifecycleError::Conflict(m) => ApiError::Conflict(m),
        LifecycleError::Store(s) => s.into(),
    }
}

pub(crate) fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such campaign".into()),
        other => other.into(),
    }
}

pub(crate) fn who(access: &TeamAccess) -> (String, Option<nextier_domain::ids::UserId>, bool) {
    (access.actor.label(), access.actor.user().cloned(), access.authority.allows(Permission::CampaignsManage))
}

/// Distinguishes an absent field (keep) from `null` (clear) in PATCH bodies.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScoreBandInput {
    min_score: i32,
    max_score: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCampaign {
    name: String,
    description: Option<String>,
    /// When the starter may start it, once approved (absent: started by hand).
    starts_at: Option<DateTime<Utc>>,
    /// When the starter completes it.
    ends_at: Option<DateTime<Utc>>,
    /// Messages per minute (the 10DLC campaign class: T 75, E/F 240, C/D 2,400, A/B 4,500). Default 75.
    sends_per_minute: Option<i32>,
    /// End an enrolment on a reply (default true). An opt-out always ends it.
    exit_on_reply: Option<bool>,
    /// End an enrolment when a meeting is booked (default true).
    exit_on_meeting: Option<bool>,
    /// Enrol contacts whose score enters this band while the campaign runs.
    auto_enrol: Option<ScoreBandInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateCampaign {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    ends_at: Option<Option<DateTime<Utc>>>,
    sends_per_minute: Option<i32>,
    exit_on_reply: Option<bool>,
    exit_on_meeting: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ScoreBandInput>)]
    auto_enrol: Option<Option<ScoreBandInput>>,
}

fn check_settings(p: &mut Problems, s: &Settings) {
    if !(1..=4500).contains(&s.sends_per_minute) {
        p.0.push(FieldError::new("sendsPerMinute", "must be between 1 and 4500"));
    }
    if let (Some(a), Some(b)) = (s.starts_at, s.ends_at) {
        if b <= a {
            p.0.push(FieldError::new("endsAt", "must be after startsAt"));
        }
    }
    if let Some(b) = s.auto_enrol {
        if !(0..=100).contains(&b.min_score) {
            p.0.push(FieldError::new("autoEnrol.minScore", "must be between 0 and 100"));
        }
        if !(0..=100).contains(&b.max_score) {
            p.0.push(FieldError::new("autoEnrol.maxScore", "must be between 0 and 100"));
        }
        if b.min_score > b.max_score {
            p.0.push(FieldError::new("autoEnrol.maxScore", "must not be below minScore"));
        }
    }
}

fn name(p: &mut Problems, raw: &str) -> String {
    p.take(nextier_domain::validation::text("name", raw, 1, 200)).unwrap_or_default()
}

fn band(b: Option<ScoreBandInput>) -> Option<ScoreBand> {
    b.map(|b| ScoreBand { min_score: b.min_score, max_score: b.max_score })
}

#[utoipa::path(post, path = "/teams/{teamId}/campaigns", tag = "campaigns", request_body = CreateCampaign,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Created, in DRAFT", body = Campaign)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_campaign(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let mut problems = Problems::default();
    let s = Settings {
        name: name(&mut problems, &body.name),
        description: opt_text(&mut problems, "description", &body.description, 2000),
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        sends_per_minute: body.sends_per_minute.unwrap_or(75),
        exit_on_reply: body.exit_on_reply.unwrap_or(true),
        exit_on_meeting: body.exit_on_meeting.unwrap_or(true),
        auto_enrol: band(body.auto_enrol),
    };
    check_settings(&mut problems, &s);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let id = campaigns::create(&tx, &team, &s, access.actor.user(), &access.actor.label()).await?;
    let c = campaigns::get(&tx, &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Campaigns in id order; `status` filters.
#[utoipa::path(get, path = "/teams/{teamId}/campaigns", tag = "campaigns",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery, ("status" = Option<String>, Query)),
    responses((status = 200, description = "A page of campaigns", body = Page<Campaign>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_campaigns(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<Campaign>>, ApiError> {
    let page = q.page()?;
    let mut status = None;
    for (k, v) in nextier_http::extract::url_pairs(uri.query().unwrap_or("")) {
        match k.as_str() {
            "status" => {
                status = Some(v.parse::<CampaignStatus>().map_err(|_| {
                    ApiError::field(
                        "status",
                        "must be DRAFT, STAGED, APPROVED, RUNNING, PAUSED, COMPLETED or CANCELLED",
                    )
                })?)
            }
            "cursor" | "limit" => {}
            other => return Err(ApiError::field(other, "is not a filter of this list")),
        }
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = campaigns::list(&tx, status, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |c| c.id.to_string())))
}

#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path, description = "cmp_<ULID>")),
    responses((status = 200, description = "The campaign", body = Campaign)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_campaign(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<Json<Campaign>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let c = campaigns::get(&tx, &id).await.map_err(not_found)?;
    tx.commit().await?;
    Ok(Json(c))
}

/// Changes settings. The sending rate, exit rules, schedule and auto-enrol band are what an
/// approver signed off: changing any of them on an APPROVED or PAUSED campaign sends it back
/// to STAGED for a new approval; on a RUNNING campaign it is refused (409, pause first)
/// unless an ADMIN or OWNER makes the change as a person (never an API key), and then it is
/// audited (`GET …/changes`). Name and description change freely.
#[utoipa::path(patch, path = "/teams/{teamId}/campaigns/{campaignId}", tag = "campaigns", request_body = UpdateCampaign,
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "The campaign", body = Campaign),
              (status = 409, description = "Finished, or running and the caller is not an ADMIN person")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_campaign(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    JsonBody(body): JsonBody<UpdateCampaign>,
) -> Result<Json<Campaign>, ApiError> {
    let mut problems = Problems::default();
    let new_name = body.name.as_deref().map(|n| name(&mut problems, n));
    let description = body.description.as_ref().map(|d| opt_text(&mut problems, "description", d, 2000));
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let current = campaigns::lock(&tx, &id).await.map_err(not_found)?;
    let s = Settings {
        name: new_name.unwrap_or(current.name.clone()),
        description: description.unwrap_or(current.description.clone()),
        starts_at: body.starts_at.unwrap_or(current.starts_at),
        ends_at: body.ends_at.unwrap_or(current.ends_at),
        sends_per_minute: body.sends_per_minute.unwrap_or(current.sends_per_minute),
        exit_on_reply: body.exit_on_reply.unwrap_or(current.exit_on_reply),
        exit_on_meeting: body.exit_on_meeting.unwrap_or(current.exit_on_meeting),
        auto_enrol: body.auto_enrol.map(band).unwrap_or(current.auto_enrol),
    };
    let mut problems = Problems::default();
    check_settings(&mut problems, &s);
    problems.finish()?;
    let (label, user, admin) = who(&access);
    let w = Who { label: &label, user: user.as_ref(), admin };
    let admin_person = access.authority.is_person() && access.role() >= nextier_domain::team::Role::Admin;
    let changed = nextier_campaigns::edits::change_settings(&tx, &team, &current, &s, w, admin_person, app.clock.now())
        .await
        .map_err(lifecycle_err)?;
    let c = campaigns::get(&tx, &id).await?;
    tx.commit().await?;
    app.outbox.publish(&changed.events).await;
    Ok(Json(c))
}

/// Deletes a DRAFT campaign; anything further along is cancelled instead (409).
#[utoipa::path(delete, path = "/teams/{teamId}/campaigns/{campaignId}", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Not a DRAFT")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_campaign(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    campaigns::delete_draft(&tx, &id).await.map_err(not_found)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransitionBody {
    /// Recorded in the state history.
    reason: Option<String>,
}

/// `{action}`: a lifecycle move (the path parameter and its OpenAPI enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CampaignAction {
    Stage,
    Unstage,
    Approve,
    Start,
    Pause,
    Resume,
    Complete,
    Cancel,
}

impl CampaignAction {
    /// The state it moves to and the permission it needs.
    fn target(self) -> (CampaignStatus, Permission) {
        match self {
            Self::Stage => (CampaignStatus::Staged, Permission::CampaignsWrite),
            Self::Unstage => (CampaignStatus::Draft, Permission::CampaignsWrite),
            Self::Approve => (CampaignStatus::Approved, Permission::CampaignsManage),
            Self::Start | Self::Resume => (CampaignStatus::Running, Permission::CampaignsManage),
            Self::Pause => (CampaignStatus::Paused, Permission::CampaignsWrite),
            Self::Complete => (CampaignStatus::Completed, Permission::CampaignsManage),
            Self::Cancel => (CampaignStatus::Cancelled, Permission::CampaignsManage),
        }
    }
}

/// An action the route does not know is no resource at all: 404.
impl PathParam for CampaignAction {
    const NAME: &'static str = "action";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        use serde::de::IntoDeserializer;
        Self::deserialize(raw.into_deserializer())
            .map_err(|_: serde::de::value::Error| ApiError::NotFound(format!("no campaign action {raw:?}")))
    }
}

/// The lifecycle moves. `action` is one of: `stage` (DRAFT → STAGED, after the staging
/// checks), `unstage` (STAGED → DRAFT), `approve` (STAGED → APPROVED: ADMIN or OWNER, and
/// not the author unless the team allows self-approval), `start` (APPROVED → RUNNING),
/// `pause` (RUNNING → PAUSED), `resume` (PAUSED → RUNNING), `complete` (RUNNING or PAUSED →
/// COMPLETED), `cancel` (any unfinished state → CANCELLED). A move the table does not allow is
/// 409 naming from and to; of concurrent requests for the same move exactly one succeeds.
/// `stage`, `unstage` and `pause` need write access; the others need `campaigns:manage`.
#[utoipa::path(post, path = "/teams/{teamId}/campaigns/{campaignId}/{action}", tag = "campaigns",
    request_body(content = Option<TransitionBody>, description = "Optional: a reason for the history"),
    params(("teamId" = String, Path), ("campaignId" = String, Path),
           ("action" = inline(CampaignAction), Path, description = "stage, unstage, approve, start, pause, resume, complete or cancel")),
    responses((status = 200, description = "The campaign in its new state", body = Campaign),
              (status = 403, description = "Not allowed to make this move"),
              (status = 409, description = "The lifecycle does not allow this move from the current state"),
              (status = 400, description = "Staging checks failed, one problem per field")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn transition(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id, action)): Ids<(TeamId, CampaignId, CampaignAction)>,
    OptionalJson(body): OptionalJson<TransitionBody>,
) -> Result<Json<Campaign>, ApiError> {
    let (to, needs) = action.target();
    let mut problems = Problems::default();
    let reason = opt_text(&mut problems, "reason", &body.unwrap_or_default().reason, 500);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, needs).await?;
    // `start` and `resume` name their origin, so a resume cannot start an unapproved
    // campaign's first run by accident (and vice versa).
    let current = campaigns::get(&tx, &id).await.map_err(not_found)?;
    let wrong = match (action, current.status) {
        (CampaignAction::Start, CampaignStatus::Paused) => Some(("start", "resume")),
        (CampaignAction::Resume, CampaignStatus::Approved) => Some(("resume", "start")),
        _ => None,
    };
    if let Some((action, instead)) = wrong {
        return Err(ApiError::Conflict(format!(
            "{action} does not apply to a {} campaign; use {instead}",
            current.status
        )));
    }
    let (label, user, admin) = who(&access);
    let w = Who { label: &label, user: user.as_ref(), admin };
    let moved =
        lifecycle::apply(&tx, &team, &id, to, w, reason.as_deref(), app.clock.now()).await.map_err(lifecycle_err)?;
    let c = campaigns::get(&tx, &id).await?;
    tx.commit().await?;
    app.outbox.publish(&[moved.event]).await;
    Ok(Json(c))
}

/// Every state change, oldest first: who, when, from, to and why.
#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}/history", tag = "campaigns", operation_id = "campaignHistory",
    params(("teamId" = String, Path), ("campaignId" = String, Path), PageQuery),
    responses((status = 200, description = "State changes", body = Page<StateChange>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn history(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<Json<Page<StateChange>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    crate::parents::require(&tx, Parent::Campaign(&id)).await?;
    let rows = campaigns::history(&tx, &id, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |h| h.id.to_string())))
}

/// Changes to approved settings (rate, exit rules, schedule, audience band), oldest first:
/// who, when, the state then, each field before and after, and whether it was restaged.
#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}/changes", tag = "campaigns",
    params(("teamId" = String, Path), ("campaignId" = String, Path), PageQuery),
    responses((status = 200, description = "Audited changes", body = Page<CampaignChange>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn changes(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<Json<Page<CampaignChange>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    crate::parents::require(&tx, Parent::Campaign(&id)).await?;
    let rows = nextier_store::campaign_changes::list(&tx, &id, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |c| c.id.to_string())))
}

/// Per step: enrolments that reached it, sent, delivered, replied, opted out, failed.
#[utoipa::path(get, path = "/teams/{teamId}/campaigns/{campaignId}/stats", tag = "campaigns", operation_id = "campaignStepStats",
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "One row per step", body = Vec<StepStats>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn stats(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
) -> Result<Json<Vec<StepStats>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    crate::parents::require(&tx, Parent::Campaign(&id)).await?;
    let rows = campaigns::stats(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(rows))
}
