//! Workflows through the API (on api-campaigns): CRUD, each workflow's runs with their steps, a
//! failed run retried from its failed step, and a dry run that shows which contacts a
//! definition would touch now. Workflows act on their own, so making or changing one is an
//! admin's (`campaigns:manage`, as approving a campaign is); reading them is a member's.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, TeamId, WorkflowId, WorkflowRunId};
use nextier_domain::workflow::{self as rules, Action, Conditions, ContactFacts, Trigger};
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody};
use nextier_store::workflows::{self as store, Definition, Run, Workflow};
use nextier_store::{campaigns, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workflows, create_workflow))
        .routes(routes!(get_workflow, replace_workflow, delete_workflow))
        .routes(routes!(workflow_runs))
        .routes(routes!(retry_run))
        .routes(routes!(dry_run))
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such workflow".into()),
        other => other.into(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkflowBody {
    /// 1 to 100 characters, unique in the team.
    name: String,
    /// `{"type": "reply_classified", "classification": "POSITIVE"}`, `{"type": "tag_added",
    /// "tag": "hot"}`, `{"type": "no_reply", "days": 3}`...
    #[schema(value_type = Object)]
    trigger: serde_json::Value,
    #[schema(value_type = Object)]
    #[serde(default)]
    conditions: Option<serde_json::Value>,
    /// In order: `enrol_in_campaign`, `add_tag`, `remove_tag`, `set_lead_state`,
    /// `move_inbox_item`, `push_to_call_queue`, `notify`, `wait`.
    #[schema(value_type = Vec<Object>)]
    actions: serde_json::Value,
    #[serde(default)]
    active: Option<bool>,
}

struct Checked {
    trigger: Trigger,
    conditions: Conditions,
    actions: Vec<Action>,
}

/// Parses and checks a definition, naming every bad field.
fn check(b: &WorkflowBody) -> Result<Checked, ApiError> {
    let mut problems = Vec::new();
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        problems.push(nextier_domain::FieldError::new("name", "1 to 100 characters"));
    }
    let trigger: Option<Trigger> = serde_json::from_value(b.trigger.clone())
        .map_err(|e| problems.push(nextier_domain::FieldError::new("trigger", format!("not a trigger: {e}"))))
        .ok();
    let conditions: Option<Conditions> =
        serde_json::from_value(b.conditions.clone().unwrap_or_else(|| serde_json::json!({})))
            .map_err(|e| problems.push(nextier_domain::FieldError::new("conditions", format!("{e}"))))
            .ok();
    let mut actions = Vec::new();
    match b.actions.as_array() {
        None => problems.push(nextier_domain::FieldError::new("actions", "a list of actions")),
        Some(list) => {
            for (i, a) in list.iter().enumerate() {
                match serde_json::from_value::<Action>(a.clone()) {
                    Ok(a) => actions.push(a),
                    Err(e) => problems.push(nextier_domain::FieldError::new(format!("actions[{i}]"), format!("{e}"))),
                }
            }
        }
    }
    let (Some(trigger), Some(conditions)) = (trigger, conditions) else { return Err(ApiError::Validation(problems)) };
    if problems.is_empty() {
        problems.extend(rules::check(&trigger, &conditions, &actions));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(Checked { trigger, conditions, actions })
}

async fn save(
    app: &AppState,
    cred: &Credential,
    team: &TeamId,
    id: Option<&WorkflowId>,
    b: &WorkflowBody,
) -> Result<Workflow, ApiError> {
    let c = check(b)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, cred, team, Permission::CampaignsManage).await?;
    // A workflow does what its actions do, on its own: whoever makes it must be allowed each.
    access.require(Permission::ContactsWrite)?;
    for a in &c.actions {
        match a {
            Action::MoveInboxItem { .. } => access.require(Permission::InboxWrite)?,
            Action::PushToCallQueue { .. } => access.require(Permission::CallsWrite)?,
            _ => {}
        }
    }
    // A campaign an action enrols into must be the team's.
    for (i, a) in c.actions.iter().enumerate() {
        if let Action::EnrolInCampaign { campaign_id } = a {
            let cid = nextier_domain::ids::CampaignId::parse(&format!("actions[{i}].campaignId"), campaign_id)
                .map_err(|e| ApiError::Validation(vec![e]))?;
            if let Err(StoreError::NotFound) = campaigns::get(&tx, &cid).await {
                return Err(ApiError::field(&format!("actions[{i}].campaignId"), "no such campaign in this team"));
            }
        }
    }
    let trigger = serde_json::to_value(&c.trigger).unwrap_or_default();
    let conditions = serde_json::to_value(&c.conditions).unwrap_or_default();
    let actions = serde_json::to_value(&c.actions).unwrap_or_default();
    let d = Definition {
        name: b.name.trim(),
        trigger: &trigger,
        trigger_event: c.trigger.event(),
        conditions: &conditions,
        actions: &actions,
        active: b.active.unwrap_or(true),
    };
    let w = match id {
        None => store::create(&tx, team, &d, &access.actor.label()).await?,
        Some(id) => store::update(&tx, id.as_str(), &d).await.map_err(not_found)?,
    };
    tx.commit().await?;
    Ok(w)
}

#[utoipa::path(get, path = "/teams/{teamId}/workflows", tag = "campaigns",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The team's workflows", body = Vec<Workflow>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_workflows(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<Workflow>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let all = store::list(&tx).await?;
    tx.commit().await?;
    Ok(Json(all))
}

/// Creates a workflow. Every part is checked and each bad field named; a workflow whose own
/// actions would start it again on the same contact is refused as a loop.
#[utoipa::path(post, path = "/teams/{teamId}/workflows", tag = "campaigns", request_body = WorkflowBody,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "The workflow", body = Workflow),
              (status = 400, description = "A bad field, named"), (status = 409, description = "The name is taken")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_workflow(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<WorkflowBody>,
) -> Result<(StatusCode, Json<Workflow>), ApiError> {
    Ok((StatusCode::CREATED, Json(save(&app, &cred, &team, None, &body).await?)))
}

#[utoipa::path(get, path = "/teams/{teamId}/workflows/{workflowId}", tag = "campaigns",
    params(("teamId" = String, Path), ("workflowId" = String, Path)),
    responses((status = 200, description = "The workflow", body = Workflow)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_workflow(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkflowId)>,
) -> Result<Json<Workflow>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let w = store::get(&tx, id.as_str()).await.map_err(not_found)?;
    tx.commit().await?;
    Ok(Json(w))
}

/// Replaces a workflow's definition (runs already waiting go on with the new actions).
#[utoipa::path(put, path = "/teams/{teamId}/workflows/{workflowId}", tag = "campaigns", request_body = WorkflowBody,
    params(("teamId" = String, Path), ("workflowId" = String, Path)),
    responses((status = 200, description = "The workflow", body = Workflow)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn replace_workflow(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkflowId)>,
    JsonBody(body): JsonBody<WorkflowBody>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(save(&app, &cred, &team, Some(&id), &body).await?))
}

#[utoipa::path(delete, path = "/teams/{teamId}/workflows/{workflowId}", tag = "campaigns",
    params(("teamId" = String, Path), ("workflowId" = String, Path)),
    responses((status = 204, description = "Deleted, with its runs")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_workflow(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkflowId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsManage).await?;
    store::delete(&tx, id.as_str()).await.map_err(not_found)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The workflow's latest runs (100), each with its steps.
#[utoipa::path(get, path = "/teams/{teamId}/workflows/{workflowId}/runs", tag = "campaigns",
    params(("teamId" = String, Path), ("workflowId" = String, Path)),
    responses((status = 200, description = "Runs, newest first", body = Vec<Run>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn workflow_runs(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkflowId)>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    store::get(&tx, id.as_str()).await.map_err(not_found)?;
    let runs = store::runs(&tx, id.as_str(), 100).await?;
    tx.commit().await?;
    Ok(Json(runs))
}

/// Retries a failed run from its failed step (the steps before it are not done again).
#[utoipa::path(post, path = "/teams/{teamId}/workflows/{workflowId}/runs/{runId}/retry", tag = "campaigns",
    params(("teamId" = String, Path), ("workflowId" = String, Path), ("runId" = String, Path)),
    responses((status = 200, description = "The run after the retry", body = Run),
              (status = 409, description = "The run has not failed")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn retry_run(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id, run)): Ids<(TeamId, WorkflowId, WorkflowRunId)>,
) -> Result<Json<Run>, ApiError> {
    {
        let mut conn = app.db.conn().await?;
        let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsManage).await?;
        let r = store::get_run(&tx, run.as_str()).await.map_err(|_| ApiError::NotFound("no such run".into()))?;
        if r.workflow_id != id.as_str() {
            return Err(ApiError::NotFound("no such run".into()));
        }
        if r.status != "failed" {
            return Err(ApiError::Conflict(format!("the run is {}; only a failed run is retried", r.status)));
        }
    }
    let engine = engine(&app);
    let mut summary = nextier_workflows::Summary::default();
    if !engine.resume_run(&team, run.as_str(), true, &mut summary).await.map_err(ApiError::Internal)? {
        return Err(ApiError::Conflict("the run is being retried already".into()));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let r = store::get_run(&tx, run.as_str()).await?;
    tx.commit().await?;
    Ok(Json(r))
}

pub fn engine(app: &AppState) -> nextier_workflows::Engine {
    nextier_workflows::Engine { db: app.db.clone(), clock: app.clock.clone(), publisher: Some(app.outbox.clone()) }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// How many of the team's contacts meet the conditions now (of those looked at).
    pub would_touch: usize,
    /// How many were looked at (the 10,000 highest-scored; 2,000 with a condition on fields).
    pub looked_at: usize,
    /// The first 50 of them.
    pub contacts: Vec<ContactId>,
    /// What it would do to each, in order.
    pub actions: Vec<String>,
}

/// What a workflow would touch: its definition checked as a save checks it, then the team's
/// contacts that meet its conditions now. Nothing is written.
#[utoipa::path(post, path = "/teams/{teamId}/workflows/dry-run", tag = "campaigns", request_body = WorkflowBody,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Who it would touch and what it would do", body = DryRun)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn dry_run(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<WorkflowBody>,
) -> Result<Json<DryRun>, ApiError> {
    let c = check(&body)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    // It names contacts by what they are.
    access.require(Permission::ContactsRead)?;
    // One read of what the conditions look at; a contact's fields only when a condition names one.
    let rows = tx
        .query(
            "SELECT id, score, tags, lead_state::text FROM contacts WHERE deleted_at IS NULL AND merged_into IS NULL
              ORDER BY score DESC, id LIMIT 10000",
            &[],
        )
        .await
        .map_err(StoreError::from)?;
    let mut touched = Vec::new();
    let mut looked_at = 0;
    for r in &rows {
        // A condition on fields reads each contact: at most 2,000 of them per dry run.
        if !c.conditions.fields.is_empty() && looked_at >= 2_000 {
            break;
        }
        looked_at += 1;
        let id = ContactId::from_trusted(r.get::<_, String>(0));
        let facts = ContactFacts { score: r.get(1), tags: r.get(2), lead_state: r.get(3) };
        let holds = if c.conditions.fields.is_empty() {
            c.conditions.hold(&facts, |_| None)
        } else {
            let contact = nextier_store::contacts::get(&tx, &id).await?;
            c.conditions.hold(&facts, |f| campaigns::merge_value(&contact, None, f))
        };
        if holds {
            touched.push(id);
        }
    }
    tx.commit().await?;
    Ok(Json(DryRun {
        would_touch: touched.len(),
        looked_at,
        contacts: touched.into_iter().take(50).collect(),
        actions: c.actions.iter().map(|a| serde_json::to_string(a).unwrap_or_default()).collect(),
    }))
}
