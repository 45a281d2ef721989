use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::TeamId;
use nextier_domain::settings::{key_part, value};
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery, PathParam};
use nextier_store::settings::{self, Setting};
use nextier_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::{events, AppState};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ScopeFilter {
    /// Only this scope (e.g. `signalhouse`).
    scope: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Reveal {
    /// `true` to read a secret in clear (ADMIN or OWNER, or a key with `settings:manage`).
    reveal: Option<bool>,
}

fn query_value(uri: &axum::http::Uri, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = url_pairs(uri.query().unwrap_or("")).into_iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::field(name, "must be given once"));
    }
    Ok(first)
}

/// Settings, secrets masked.
#[utoipa::path(get, path = "/teams/{teamId}/settings", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ScopeFilter, PageQuery),
    responses((status = 200, description = "Settings in (scope, name) order", body = Page<Setting>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_settings(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team_id): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<Setting>>, ApiError> {
    let page = q.page()?;
    let scope = query_value(&uri, "scope")?.map(|s| key_part("scope", &s)).transpose()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::SettingsRead).await?;
    let rows = settings::list(&tx, &team_id, scope.as_deref(), &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |s| format!("{}:{}", s.scope, s.name))))
}

/// `{scope}` of a setting's key.
pub struct SettingScope(String);

/// `{name}` of a setting's key.
pub struct SettingName(String);

impl PathParam for SettingScope {
    const NAME: &'static str = "scope";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        Ok(SettingScope(key_part(Self::NAME, raw)?))
    }
}

impl PathParam for SettingName {
    const NAME: &'static str = "name";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        Ok(SettingName(key_part(Self::NAME, raw)?))
    }
}

#[utoipa::path(get, path = "/teams/{teamId}/settings/{scope}/{name}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("scope" = String, Path), ("name" = String, Path), Reveal),
    responses((status = 200, description = "The setting", body = Setting)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_setting(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, SettingScope(scope), SettingName(name))): Ids<(TeamId, SettingScope, SettingName)>,
    uri: axum::http::Uri,
) -> Result<Json<Setting>, ApiError> {
    let reveal = match query_value(&uri, "reveal")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::field("reveal", "must be true or false")),
    };
    let mut conn = app.db.conn().await?;
    let needed = if reveal { Permission::SecretsRead } else { Permission::SettingsRead };
    let (tx, _) = open_team(&mut conn, &cred, &team_id, needed).await?;
    let setting = settings::get(&tx, &team_id, &scope, &name, reveal).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(setting))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutSetting {
    value: String,
    /// Secrets are masked whenever they are read back.
    #[serde(default)]
    secret: bool,
}

/// The settings that shape what AI workers write.
const AI_SCOPES: &[&str] = &[nextier_ai::suggest::SETTINGS_SCOPE, nextier_ai::closer::SETTINGS_SCOPE];

#[utoipa::path(put, path = "/teams/{teamId}/settings/{scope}/{name}", tag = "admin", request_body = PutSetting,
    params(("teamId" = String, Path, description = "team_<ULID>"), ("scope" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Saved (secrets come back masked)", body = Setting)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn put_setting(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, SettingScope(scope), SettingName(name))): Ids<(TeamId, SettingScope, SettingName)>,
    JsonBody(body): JsonBody<PutSetting>,
) -> Result<Json<Setting>, ApiError> {
    let value = value("value", &body.value)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::SettingsManage).await?;
    if AI_SCOPES.contains(&scope.as_str()) {
        crate::ai::guard_what_workers_write(&tx, &access).await?;
    }
    let saved = settings::put(&tx, &team_id, &scope, &name, &value, body.secret, &access.actor.label()).await?;
    // The event says what changed, never the value.
    let event = events::stage(
        &tx,
        &team_id,
        "TeamSettingChanged",
        json!({"teamId": team_id, "scope": scope, "name": name, "secret": body.secret, "by": access.actor.label()}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(Json(saved))
}

#[utoipa::path(delete, path = "/teams/{teamId}/settings/{scope}/{name}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("scope" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_setting(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, SettingScope(scope), SettingName(name))): Ids<(TeamId, SettingScope, SettingName)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::SettingsManage).await?;
    if AI_SCOPES.contains(&scope.as_str()) {
        crate::ai::guard_what_workers_write(&tx, &access).await?;
    }
    settings::delete(&tx, &team_id, &scope, &name).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
