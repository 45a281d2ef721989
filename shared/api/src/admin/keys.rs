use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::api_key::{self, Scope};
use nextier_domain::ids::{ApiKeyId, TeamId};
use nextier_domain::validation::text;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::api_keys::{self, ApiKey, NewApiKey};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::{events, AppState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateKey {
    name: String,
    /// `resource:action` grants (e.g. `settings:read`) or `*`.
    scopes: Vec<String>,
    /// Optional expiry, in the future.
    expires_at: Option<DateTime<Utc>>,
}

/// The key and its secret. The secret is shown once, here; only its hash is stored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    api_key: ApiKey,
    secret: String,
}

#[utoipa::path(post, path = "/teams/{teamId}/api-keys", tag = "admin", request_body = CreateKey,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Created; store the secret now", body = CreatedKey)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_key(
    State(app): State<AppState>,
    cred: Credential,
    Id(team_id): Id<TeamId>,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = text("name", &body.name, 1, 100)?;
    if body.scopes.is_empty() || body.scopes.len() > 50 {
        return Err(ApiError::field("scopes", "must list 1 to 50 scopes"));
    }
    let scopes = body
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| Scope::parse(&format!("scopes[{i}]"), s))
        .collect::<Result<Vec<_>, FieldError>>()?;
    if body.expires_at.is_some_and(|t| t <= app.clock.now()) {
        return Err(ApiError::field("expiresAt", "must be in the future"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::KeysManage).await?;
    // A key can mint keys, but never one more powerful than itself nor an administrative one.
    access.authority.check_key_grant(&scopes).map_err(ApiError::Forbidden)?;
    let minted = api_key::mint();
    let key = api_keys::create(
        &tx,
        &NewApiKey {
            team: &team_id,
            name: &name,
            prefix: &minted.display_prefix,
            hash: &minted.hash,
            scopes: &scopes,
            created_by: access.actor.user(),
            expires_at: body.expires_at,
        },
    )
    .await?;
    let event = events::stage(
        &tx,
        &team_id,
        "ApiKeyCreated",
        json!({"teamId": team_id, "keyId": key.id, "scopes": key.scopes, "by": access.actor.label()}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok((StatusCode::CREATED, Json(CreatedKey { api_key: key, secret: minted.secret })))
}

#[utoipa::path(get, path = "/teams/{teamId}/api-keys", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery),
    responses((status = 200, description = "Keys (never their secrets)", body = Page<ApiKey>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_keys(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team_id): Id<TeamId>,
) -> Result<Json<Page<ApiKey>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::KeysManage).await?;
    let rows = api_keys::list(&tx, &team_id, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |k| k.id.to_string())))
}

/// Revokes a key at once; revoking twice is harmless.
#[utoipa::path(delete, path = "/teams/{teamId}/api-keys/{keyId}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("keyId" = String, Path, description = "key_<ULID>")),
    responses((status = 200, description = "The revoked key", body = ApiKey)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn revoke_key(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, key_id)): Ids<(TeamId, ApiKeyId)>,
) -> Result<Json<ApiKey>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::KeysManage).await?;
    let key = api_keys::revoke(&tx, &team_id, &key_id).await?;
    let event = events::stage(
        &tx,
        &team_id,
        "ApiKeyRevoked",
        json!({"teamId": team_id, "keyId": key.id, "by": access.actor.label()}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(Json(key))
}
