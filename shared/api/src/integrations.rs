//! Integrations through the API (on api-integrations): the Zoho CRM connection (connect,
//! callback, settings, field mapping, tasks with retry, conflicts), CSV exports, and the
//! webhook endpoints a team registers with their delivery log. Each sends the team's data to
//! another system, so each is an admin's (`integrations:manage`, `data:export` for exports).

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use chrono::Utc;
use nextier_domain::access::Permission;
use nextier_domain::crm as crm_rules;
use nextier_domain::ids::{ContactId, ExportId, IntegrationTaskId, TeamId, WebhookDeliveryId, WebhookEndpointId};
use nextier_domain::webhook_out as hooks;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_platform::ports::crm::{is_zoho_host, TokenError};
use nextier_store::endpoints::{self, Delivery, Endpoint};
use nextier_store::exports::{self, ActivityFilter, Export};
use nextier_store::integrations::{self as store, Conflict, Integration, Task};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::Problems;
use crate::AppState;

const PROVIDER: &str = "zoho";
/// How long a connect's state is good for.
const STATE_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long a download link works.
const DOWNLOAD_TTL: Duration = Duration::from_secs(15 * 60);
/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);
/// Endpoints a team may register.
const MAX_ENDPOINTS: usize = 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations))
        .routes(routes!(zoho_connect))
        .routes(routes!(zoho_callback))
        .routes(routes!(get_zoho, configure_zoho, disconnect_zoho))
        .routes(routes!(get_mapping, set_mapping))
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task))
        .routes(routes!(retry_task))
        .routes(routes!(list_conflicts))
        .routes(routes!(list_exports, create_export))
        .routes(routes!(get_export))
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}

fn missing(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, message)])
}

// --- Zoho CRM ------------------------------------------------------------------------------

#[utoipa::path(get, path = "/teams/{teamId}/integrations", tag = "integrations",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The team's CRM connections", body = Vec<Integration>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_integrations(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<Integration>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let all = match store::by_provider(&tx, PROVIDER).await {
        Ok(i) => vec![i],
        Err(StoreError::NotFound) => vec![],
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(Json(all))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectBody {
    /// Where Zoho sends the person back (registered on our Zoho client): an https URL.
    redirect_uri: String,
    /// The Zoho accounts server of the person's data centre (`https://accounts.zoho.eu`);
    /// `https://accounts.zoho.com` when absent.
    #[serde(default)]
    accounts_server: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectStarted {
    /// Send the person here.
    authorize_url: String,
    /// Hand it back with the code; good once, for ten minutes, for the person who asked.
    state: String,
    expires_at: chrono::DateTime<Utc>,
}

fn redirect_ok(raw: &str, allowed: &[String]) -> bool {
    let Ok(u) = url::Url::parse(raw) else { return false };
    let local = matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
    raw.len() <= 2000
        && u.username().is_empty()
        && u.fragment().is_none()
        && (u.scheme() == "https"
            || (u.scheme() == "http" && local)
            || allowed.iter().any(|a| a.trim_end_matches('/') == u.origin().ascii_serialization()))
}

/// Starts connecting Zoho CRM: the URL to send the person to, with a single-use state.
#[utoipa::path(post, path = "/teams/{teamId}/integrations/zoho/connect", tag = "integrations", request_body = ConnectBody,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Where to send the person", body = ConnectStarted)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn zoho_connect(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<ConnectBody>,
) -> Result<(StatusCode, Json<ConnectStarted>), ApiError> {
    let mut problems = Problems::default();
    if !redirect_ok(&body.redirect_uri, &app.config.crm_hosts) {
        problems.0.push(FieldError::new("redirectUri", "must be an https URL without credentials or fragment"));
    }
    let accounts = body.accounts_server.clone().unwrap_or_else(|| app.config.zoho_accounts.clone());
    if !is_zoho_host(&accounts, &app.config.crm_hosts) {
        problems
            .0
            .push(FieldError::new("accountsServer", "must be a Zoho accounts server (https://accounts.zoho.<dc>)"));
    }
    problems.finish()?;
    let state = {
        use rand::RngCore;
        let mut b = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let expires_at = app.clock.now() + STATE_TTL;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    store::begin_connect(&tx, &team, PROVIDER, &hash(&state), &access.actor.label(), &body.redirect_uri, expires_at)
        .await?;
    tx.commit().await?;
    let authorize_url = app.crm.authorize_url(&accounts, &state, &body.redirect_uri);
    Ok((StatusCode::CREATED, Json(ConnectStarted { authorize_url, state, expires_at })))
}

fn hash(state: &str) -> String {
    hex::encode(sha2::Sha256::digest(state.as_bytes()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CallbackBody {
    /// The `code` Zoho returned.
    code: String,
    /// The `state` Zoho returned (the one connect answered).
    state: String,
    /// The `accounts-server` Zoho returned.
    #[serde(default)]
    accounts_server: Option<String>,
}

/// Completes the connect with what Zoho returned: the state is checked (this team, the person
/// who started, unused, unexpired), the code exchanged, the tokens stored as secrets.
#[utoipa::path(post, path = "/teams/{teamId}/integrations/zoho/callback", tag = "integrations", request_body = CallbackBody,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Connected", body = Integration),
              (status = 400, description = "A bad, used or expired state, or a refused code")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn zoho_callback(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<CallbackBody>,
) -> Result<Json<Integration>, ApiError> {
    let mut problems = Problems::default();
    if body.code.trim().is_empty() || body.code.len() > 1000 {
        problems.0.push(FieldError::new("code", "must be the code Zoho returned"));
    }
    if body.state.is_empty() || body.state.len() > 200 {
        problems.0.push(FieldError::new("state", "must be the state connect answered"));
    }
    let accounts = body.accounts_server.clone().unwrap_or_else(|| app.config.zoho_accounts.clone());
    if !is_zoho_host(&accounts, &app.config.crm_hosts) {
        problems
            .0
            .push(FieldError::new("accountsServer", "must be a Zoho accounts server (https://accounts.zoho.<dc>)"));
    }
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let actor = access.actor.label();
    let redirect = store::take_state(&tx, PROVIDER, &hash(&body.state), &actor, app.clock.now()).await?;
    tx.commit().await?;
    let Some(redirect) = redirect else {
        return Err(invalid("state", "is unknown, used, expired, or was started by someone else"));
    };
    let tokens = match app.crm.exchange_code(&accounts, body.code.trim(), &redirect).await {
        Ok(t) => t,
        Err(TokenError::Revoked(m)) => {
            return Err(invalid("code", format!("Zoho refused the code ({m}); connect again")))
        }
        Err(TokenError::Provider(e)) => return Err(ApiError::Unavailable(format!("Zoho did not answer: {e}"))),
    };
    let Some(refresh) = tokens.refresh_token.as_deref() else {
        return Err(invalid("code", "Zoho granted no refresh token (access_type=offline); connect again"));
    };
    let api = tokens.api_domain.clone().unwrap_or_default();
    if !is_zoho_host(&api, &app.config.crm_hosts) {
        return Err(ApiError::Unavailable("Zoho answered an API domain that is not Zoho's".into()));
    }
    let expires = app.clock.now() + chrono::Duration::seconds(tokens.expires_in_secs.clamp(60, 24 * 3600));
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i =
        store::connect(&tx, &team, PROVIDER, &accounts, &api, refresh, &tokens.access_token, expires, &actor).await?;
    tx.commit().await?;
    Ok(Json(i))
}

#[utoipa::path(get, path = "/teams/{teamId}/integrations/zoho", tag = "integrations",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The connection", body = Integration)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_zoho(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Integration>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    tx.commit().await?;
    Ok(Json(i))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigureBody {
    /// Leads, Contacts or both.
    #[serde(default)]
    modules: Option<Vec<String>>,
    #[serde(default)]
    push_enabled: Option<bool>,
    #[serde(default)]
    pull_enabled: Option<bool>,
}

#[utoipa::path(patch, path = "/teams/{teamId}/integrations/zoho", tag = "integrations", request_body = ConfigureBody,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The connection", body = Integration)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn configure_zoho(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<ConfigureBody>,
) -> Result<Json<Integration>, ApiError> {
    if let Some(m) = &body.modules {
        let mut seen = std::collections::HashSet::new();
        if m.is_empty() || m.iter().any(|x| !crm_rules::MODULES.contains(&x.as_str()) || !seen.insert(x)) {
            return Err(invalid("modules", format!("must name some of {} once each", crm_rules::MODULES.join(", "))));
        }
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    let modules_changed = body.modules.as_ref().is_some_and(|m| *m != i.modules);
    let i = store::configure(&tx, &i.id, body.modules.as_deref(), body.push_enabled, body.pull_enabled).await?;
    if modules_changed {
        // A module newly synced gets every contact.
        store::restart_push(&tx, &i.id).await?;
    }
    tx.commit().await?;
    Ok(Json(i))
}

/// Disconnects: the tokens are forgotten and open tasks end; links, tasks and conflicts stay.
#[utoipa::path(delete, path = "/teams/{teamId}/integrations/zoho", tag = "integrations",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Disconnected", body = Integration)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn disconnect_zoho(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Integration>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    let i = store::disconnect(&tx, &i.id, &format!("disconnected by {}", access.actor.label())).await?;
    tx.commit().await?;
    Ok(Json(i))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldMap {
    /// One of our contact fields (`firstName`, `email`, `leadState`, `score`, `id`...).
    source: String,
    /// The CRM field's API name (`First_Name`, `Nextier_Score`...).
    target: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mapping {
    fields: Vec<FieldMap>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ModulePath {
    #[serde(rename = "teamId")]
    team_id: String,
    /// Leads or Contacts.
    module: String,
}

fn module_of(p: &ModulePath) -> Result<(TeamId, String), ApiError> {
    let team = TeamId::parse("teamId", &p.team_id).map_err(|e| ApiError::Validation(vec![e]))?;
    if !crm_rules::MODULES.contains(&p.module.as_str()) {
        return Err(invalid("module", format!("must be one of {}", crm_rules::MODULES.join(", "))));
    }
    Ok((team, p.module.clone()))
}

/// A module's field mapping (the default until the team sets its own).
#[utoipa::path(get, path = "/teams/{teamId}/integrations/zoho/fields/{module}", tag = "integrations",
    params(ModulePath),
    responses((status = 200, description = "The mapping", body = Mapping)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_mapping(
    State(app): State<AppState>,
    cred: Credential,
    axum::extract::Path(path): axum::extract::Path<ModulePath>,
) -> Result<Json<Mapping>, ApiError> {
    let (team, module) = module_of(&path)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    let pairs = store::mapping(&tx, &i.id, &module).await?;
    tx.commit().await?;
    Ok(Json(Mapping { fields: pairs.into_iter().map(|(source, target)| FieldMap { source, target }).collect() }))
}

/// Replaces a module's field mapping. Our `id` must map to `Nextier_Id` (the upsert's
/// duplicate check).
#[utoipa::path(put, path = "/teams/{teamId}/integrations/zoho/fields/{module}", tag = "integrations", request_body = Mapping,
    params(ModulePath),
    responses((status = 200, description = "The mapping", body = Mapping)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn set_mapping(
    State(app): State<AppState>,
    cred: Credential,
    axum::extract::Path(path): axum::extract::Path<ModulePath>,
    JsonBody(body): JsonBody<Mapping>,
) -> Result<Json<Mapping>, ApiError> {
    let (team, module) = module_of(&path)?;
    if body.fields.len() > 100 {
        return Err(invalid("fields", "at most 100 fields"));
    }
    let pairs: Vec<(String, String)> = body.fields.iter().map(|f| (f.source.clone(), f.target.clone())).collect();
    crm_rules::check_mapping("fields", &module, &pairs).map_err(ApiError::Validation)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    store::set_mapping(&tx, &team, &i.id, &module, &pairs).await?;
    // Every contact's record changes shape: the next push sends them all again.
    store::restart_push(&tx, &i.id).await?;
    tx.commit().await?;
    Ok(Json(body))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Only those with this status.
    status: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/integrations/zoho/tasks", tag = "integrations",
    params(("teamId" = String, Path), PageQuery, StatusQuery),
    responses((status = 200, description = "Tasks, newest first", body = Page<Task>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_tasks(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Query(s): Query<StatusQuery>,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Task>>, ApiError> {
    let page = q.page()?;
    if s.status.as_deref().is_some_and(|v| !["queued", "running", "done", "failed"].contains(&v)) {
        return Err(invalid("status", "must be queued, running, done or failed"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    let rows = store::tasks(&tx, &i.id, s.status.as_deref(), &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |t| t.id.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaskBody {
    /// push or pull.
    kind: String,
    /// A push of just these contacts (1 to 1000); without them, every change since the last push.
    #[serde(default)]
    contact_ids: Option<Vec<String>>,
}

/// Pushes or pulls now, as a recorded task.
#[utoipa::path(post, path = "/teams/{teamId}/integrations/zoho/tasks", tag = "integrations", request_body = TaskBody,
    params(("teamId" = String, Path)),
    responses((status = 202, description = "Queued", body = Task),
              (status = 409, description = "The connection needs reconnecting")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_task(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<TaskBody>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let mut problems = Problems::default();
    if !["push", "pull"].contains(&body.kind.as_str()) {
        problems.0.push(FieldError::new("kind", "must be push or pull"));
    }
    let ids = match &body.contact_ids {
        Some(raw) if body.kind == "push" => Some(problems.ids("contactIds", raw, 1000, ContactId::parse)),
        Some(_) => {
            problems.0.push(FieldError::new("contactIds", "names contacts for a push only"));
            None
        }
        None => None,
    };
    problems.finish()?;
    let payload = match &ids {
        Some(ids) => serde_json::json!({"contactIds": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()}),
        None => serde_json::json!({}),
    };
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    if i.status != "connected" {
        return Err(ApiError::Conflict(format!("the connection is {}; reconnect it first", i.status)));
    }
    if ids.is_none() && store::task_open(&tx, &i.id, &body.kind).await? {
        return Err(ApiError::Conflict(format!("a {} is queued or running already; it takes every change", body.kind)));
    }
    let t = store::create_task(&tx, &team, &i.id, &body.kind, &payload, &access.actor.label()).await?;
    let staged =
        nextier_integrations::stage_task(&tx, &team, &nextier_integrations::TaskMessage::task(&team, &t.id)).await?;
    tx.commit().await?;
    app.outbox.publish(staged.as_slice()).await;
    Ok((StatusCode::ACCEPTED, Json(t)))
}

#[utoipa::path(get, path = "/teams/{teamId}/integrations/zoho/tasks/{taskId}", tag = "integrations",
    params(("teamId" = String, Path), ("taskId" = String, Path)),
    responses((status = 200, description = "The task", body = Task)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_task(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, IntegrationTaskId)>,
) -> Result<Json<Task>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let t = store::get_task(&tx, id.as_str()).await.map_err(missing("task"))?;
    tx.commit().await?;
    Ok(Json(t))
}

/// Retries a failed task.
#[utoipa::path(post, path = "/teams/{teamId}/integrations/zoho/tasks/{taskId}/retry", tag = "integrations",
    params(("teamId" = String, Path), ("taskId" = String, Path)),
    responses((status = 202, description = "Queued again", body = Task),
              (status = 409, description = "Not failed, or the connection needs reconnecting")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn retry_task(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, IntegrationTaskId)>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    if i.status != "connected" {
        return Err(ApiError::Conflict(format!("the connection is {}; reconnect it first", i.status)));
    }
    let t = store::retry_task(&tx, id.as_str()).await.map_err(missing("task"))?;
    let staged =
        nextier_integrations::stage_task(&tx, &team, &nextier_integrations::TaskMessage::task(&team, &t.id)).await?;
    tx.commit().await?;
    app.outbox.publish(staged.as_slice()).await;
    Ok((StatusCode::ACCEPTED, Json(t)))
}

/// Where the CRM and we disagreed, newest first: a field a person edited here after the CRM's
/// change (ours kept), a record deleted on either side.
#[utoipa::path(get, path = "/teams/{teamId}/integrations/zoho/conflicts", tag = "integrations",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "Conflicts", body = Page<Conflict>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_conflicts(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Conflict>>, ApiError> {
    let page = q.page()?;
    let after = match page.after.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| invalid("cursor", "is not a cursor of this list"))?),
    };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let i = store::by_provider(&tx, PROVIDER).await.map_err(missing("Zoho connection"))?;
    let rows = store::conflicts(&tx, &i.id, after, page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |c| c.id.to_string())))
}

// --- Exports -------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportBody {
    /// contacts, inbox or messages.
    kind: String,
    /// contacts: the contact list's filters (`{"tag": "florida", "minScore": "50"}`); inbox and
    /// messages: `since`, `until` (RFC 3339), `campaignId`, and `channel`/`direction`
    /// (messages) or `bucket`/`classification` (inbox).
    #[serde(default)]
    #[schema(value_type = Object)]
    filter: Option<serde_json::Value>,
}

/// Starts a CSV export (UTF-8 with BOM, formula-safe); poll it for progress and its link.
#[utoipa::path(post, path = "/teams/{teamId}/exports", tag = "integrations", request_body = ExportBody,
    params(("teamId" = String, Path)),
    responses((status = 202, description = "Queued", body = Export)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_export(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<ExportBody>,
) -> Result<(StatusCode, Json<Export>), ApiError> {
    let raw = body.filter.clone().unwrap_or_else(|| serde_json::json!({}));
    let filter = match body.kind.as_str() {
        "contacts" => {
            let obj = raw.as_object().ok_or_else(|| invalid("filter", "must be an object of filters"))?;
            let mut pairs = vec![];
            for (k, v) in obj {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => return Err(invalid(&format!("filter.{k}"), "must be a string, number or boolean")),
                };
                if k == "cursor" || k == "limit" {
                    return Err(invalid(&format!("filter.{k}"), "is not a filter"));
                }
                pairs.push((k.clone(), v));
            }
            let f = crate::contacts::input::filter(&pairs).map_err(|e| match e {
                ApiError::Validation(errs) => ApiError::Validation(
                    errs.into_iter().map(|e| FieldError::new(format!("filter.{}", e.field), e.message)).collect(),
                ),
                other => other,
            })?;
            serde_json::to_value(f).map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
        "inbox" | "messages" => {
            let f: ActivityFilter = serde_json::from_value(raw).map_err(|e| invalid("filter", format!("{e}")))?;
            let mut problems = Problems::default();
            let check = |p: &mut Problems, field: &str, v: &Option<String>, allowed: &[&str]| {
                if v.as_deref().is_some_and(|x| !allowed.contains(&x)) {
                    p.0.push(FieldError::new(
                        format!("filter.{field}"),
                        format!("must be one of {}", allowed.join(", ")),
                    ));
                }
            };
            if body.kind == "messages" {
                check(&mut problems, "channel", &f.channel, &["SMS", "EMAIL", "VOICE"]);
                check(&mut problems, "direction", &f.direction, &["outbound", "inbound"]);
                if f.bucket.is_some() || f.classification.is_some() {
                    problems.0.push(FieldError::new("filter", "bucket and classification filter inbox exports"));
                }
            } else if f.channel.is_some() || f.direction.is_some() {
                problems.0.push(FieldError::new("filter", "channel and direction filter message exports"));
            }
            if let Some(c) = &f.campaign_id {
                problems.take(nextier_domain::ids::CampaignId::parse("filter.campaignId", c));
            }
            for (field, v) in [("bucket", &f.bucket), ("classification", &f.classification)] {
                if v.as_deref().is_some_and(|x| {
                    x.is_empty() || x.len() > 50 || !x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                }) {
                    problems
                        .0
                        .push(FieldError::new(format!("filter.{field}"), "must be a bucket or classification name"));
                }
            }
            if let (Some(a), Some(b)) = (f.since, f.until) {
                if a >= b {
                    problems.0.push(FieldError::new("filter.until", "must be after since"));
                }
            }
            problems.finish()?;
            serde_json::to_value(f).map_err(|e| ApiError::BadRequest(e.to_string()))?
        }
        _ => return Err(invalid("kind", "must be contacts, inbox or messages")),
    };
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::DataExport).await?;
    let e = exports::create(&tx, &team, &body.kind, &filter, &access.actor.label()).await?;
    let staged =
        nextier_integrations::stage_task(&tx, &team, &nextier_integrations::TaskMessage::export(&team, &e.id)).await?;
    tx.commit().await?;
    app.outbox.publish(staged.as_slice()).await;
    Ok((StatusCode::ACCEPTED, Json(e)))
}

#[utoipa::path(get, path = "/teams/{teamId}/exports", tag = "integrations",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "Exports, newest first", body = Page<Export>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_exports(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Export>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::DataExport).await?;
    let rows = exports::list(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| e.id.clone())))
}

/// An export's progress; when done, a link to its file that works for 15 minutes.
#[utoipa::path(get, path = "/teams/{teamId}/exports/{exportId}", tag = "integrations",
    params(("teamId" = String, Path), ("exportId" = String, Path)),
    responses((status = 200, description = "The export", body = Export)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_export(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ExportId)>,
) -> Result<Json<Export>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::DataExport).await?;
    let mut e = exports::get(&tx, id.as_str()).await.map_err(missing("export"))?;
    tx.commit().await?;
    if let (true, Some(key)) = (e.status == "done", e.blob_key.as_deref()) {
        e.download_url =
            Some(app.blobs.presign_get(key, DOWNLOAD_TTL).await.map_err(|e| ApiError::Unavailable(e.to_string()))?);
    }
    Ok(Json(e))
}

// --- Webhook endpoints ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointBody {
    /// A public https URL.
    url: String,
    #[serde(default)]
    description: Option<String>,
    /// reply.received, contact.opted_out, meeting.booked, campaign.state_changed,
    /// import.completed.
    event_types: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// The signing secret (`whsec_…`): shown now only. Verify `webhook-signature` with it.
    secret: String,
}

fn event_types(p: &mut Problems, raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    if raw.is_empty() || raw.len() > hooks::EVENT_TYPES.len() {
        p.0.push(FieldError::new("eventTypes", "must name 1 or more event types"));
    }
    for (i, t) in raw.iter().enumerate() {
        if !hooks::is_event_type(t) {
            let all: Vec<&str> = hooks::EVENT_TYPES.iter().map(|(p, _)| *p).collect();
            p.0.push(FieldError::new(format!("eventTypes[{i}]"), format!("must be one of {}", all.join(", "))));
        } else if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

fn description(p: &mut Problems, d: &Option<String>) -> Option<String> {
    crate::contacts::input::opt_text(p, "description", d, 200)
}

/// Registers an endpoint; its signing secret is in this answer only.
#[utoipa::path(post, path = "/teams/{teamId}/webhook-endpoints", tag = "integrations", request_body = EndpointBody,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Registered", body = EndpointWithSecret),
              (status = 422, description = "A URL that is not public https, or unknown event types")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_endpoint(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<EndpointBody>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    let mut p = Problems::default();
    let url = p.take(hooks::check_url("url", &body.url, &app.config.webhook_allow_origins));
    let types = event_types(&mut p, &body.event_types);
    let description = description(&mut p, &body.description);
    p.finish()?;
    let secret = hooks::new_secret();
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let existing = endpoints::list(&tx, &nextier_domain::page::PageRequest::parse(None, Some("200"))?).await?;
    if existing.len() >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!("a team may register {MAX_ENDPOINTS} endpoints")));
    }
    let url = url.map(|u| u.to_string()).unwrap_or_default();
    let e = endpoints::create(
        &tx,
        &team,
        &endpoints::NewEndpoint {
            url: &url,
            description: description.as_deref(),
            event_types: &types,
            secret: &secret,
        },
        &access.actor.label(),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(EndpointWithSecret { endpoint: e, secret })))
}

#[utoipa::path(get, path = "/teams/{teamId}/webhook-endpoints", tag = "integrations",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "Endpoints", body = Page<Endpoint>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_endpoints(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Endpoint>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let rows = endpoints::list(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| e.id.clone())))
}

#[utoipa::path(get, path = "/teams/{teamId}/webhook-endpoints/{endpointId}", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path)),
    responses((status = 200, description = "The endpoint", body = Endpoint)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_endpoint(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WebhookEndpointId)>,
) -> Result<Json<Endpoint>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let e = endpoints::get(&tx, id.as_str()).await.map_err(missing("endpoint"))?;
    tx.commit().await?;
    Ok(Json(e))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointChange {
    #[serde(default)]
    url: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "crate::contacts::input::present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// `true` turns a disabled endpoint back on (its failure count starts again).
    #[serde(default)]
    active: Option<bool>,
}

#[utoipa::path(patch, path = "/teams/{teamId}/webhook-endpoints/{endpointId}", tag = "integrations", request_body = EndpointChange,
    params(("teamId" = String, Path), ("endpointId" = String, Path)),
    responses((status = 200, description = "The endpoint", body = Endpoint)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_endpoint(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WebhookEndpointId)>,
    JsonBody(body): JsonBody<EndpointChange>,
) -> Result<Json<Endpoint>, ApiError> {
    let mut p = Problems::default();
    let url = body.url.as_deref().and_then(|u| p.take(hooks::check_url("url", u, &app.config.webhook_allow_origins)));
    let types = body.event_types.as_deref().map(|t| event_types(&mut p, t));
    let description = body.description.as_ref().map(|d| description(&mut p, d));
    p.finish()?;
    let url = url.map(|u| u.to_string());
    let change = endpoints::Change {
        url: url.as_deref(),
        description: description.as_ref().map(|d| d.as_deref()),
        event_types: types.as_deref(),
        active: body.active,
    };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let e = endpoints::update(&tx, id.as_str(), &change).await.map_err(missing("endpoint"))?;
    tx.commit().await?;
    Ok(Json(e))
}

#[utoipa::path(delete, path = "/teams/{teamId}/webhook-endpoints/{endpointId}", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path)),
    responses((status = 204, description = "Deleted with its deliveries")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_endpoint(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WebhookEndpointId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    endpoints::delete(&tx, id.as_str()).await.map_err(missing("endpoint"))?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret; the old one keeps signing (as a second signature) for 24 hours, so the
/// receiver can switch when it likes.
#[utoipa::path(post, path = "/teams/{teamId}/webhook-endpoints/{endpointId}/rotate-secret", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path)),
    responses((status = 200, description = "The new secret (shown now only)", body = EndpointWithSecret)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WebhookEndpointId)>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    let secret = hooks::new_secret();
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let e = endpoints::rotate(&tx, id.as_str(), &secret, app.clock.now() + ROTATION_OVERLAP)
        .await
        .map_err(missing("endpoint"))?;
    tx.commit().await?;
    Ok(Json(EndpointWithSecret { endpoint: e, secret }))
}

#[utoipa::path(get, path = "/teams/{teamId}/webhook-endpoints/{endpointId}/deliveries", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path), PageQuery, StatusQuery),
    responses((status = 200, description = "Deliveries, newest first", body = Page<Delivery>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Query(s): Query<StatusQuery>,
    Ids((team, id)): Ids<(TeamId, WebhookEndpointId)>,
) -> Result<Json<Page<Delivery>>, ApiError> {
    let page = q.page()?;
    if s.status.as_deref().is_some_and(|v| !["pending", "sending", "delivered", "failed", "cancelled"].contains(&v)) {
        return Err(invalid("status", "must be pending, sending, delivered, failed or cancelled"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    endpoints::get(&tx, id.as_str()).await.map_err(missing("endpoint"))?;
    let rows = endpoints::deliveries(&tx, id.as_str(), s.status.as_deref(), &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |d| d.id.clone())))
}

#[utoipa::path(get, path = "/teams/{teamId}/webhook-endpoints/{endpointId}/deliveries/{deliveryId}", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 200, description = "The delivery with every attempt", body = Delivery)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_delivery(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, endpoint, id)): Ids<(TeamId, WebhookEndpointId, WebhookDeliveryId)>,
) -> Result<Json<Delivery>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let d =
        endpoints::delivery_with_attempts(&tx, endpoint.as_str(), id.as_str()).await.map_err(missing("delivery"))?;
    tx.commit().await?;
    Ok(Json(d))
}

/// Sends a failed or cancelled delivery again, now (its endpoint must be on).
#[utoipa::path(post, path = "/teams/{teamId}/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/retry", tag = "integrations",
    params(("teamId" = String, Path), ("endpointId" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 202, description = "Queued again", body = Delivery),
              (status = 409, description = "Not failed or cancelled, or the endpoint is off")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn retry_delivery(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, endpoint, id)): Ids<(TeamId, WebhookEndpointId, WebhookDeliveryId)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::IntegrationsManage).await?;
    let e = endpoints::get(&tx, endpoint.as_str()).await.map_err(missing("endpoint"))?;
    if !e.active {
        return Err(ApiError::Conflict("the endpoint is disabled; turn it on first".into()));
    }
    let d =
        endpoints::retry(&tx, endpoint.as_str(), id.as_str(), app.clock.now()).await.map_err(missing("delivery"))?;
    let staged = nextier_store::outbox::stage(
        &tx,
        &nextier_store::outbox::OutboxMessage {
            team: Some(team.clone()),
            destination: nextier_store::outbox::Destination::Queue(nextier_integrations::WEBHOOK_QUEUE.into()),
            payload: serde_json::to_value(nextier_integrations::webhooks::Due {
                team_id: team.to_string(),
                delivery_id: d.id.clone(),
            })
            .unwrap_or_default(),
            correlation_id: format!("webhook-{}", d.id),
            dedupe_key: None,
        },
    )
    .await?;
    tx.commit().await?;
    app.outbox.publish(staged.as_slice()).await;
    Ok((StatusCode::ACCEPTED, Json(d)))
}
