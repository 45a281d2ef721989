use chrono::{DateTime, Utc};
use nextier_domain::api_key::Scope;
use nextier_domain::ids::{ApiKeyId, TeamId, UserId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// A key as listed: never its secret, only the prefix that helps a person recognise it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at";

fn api_key(row: &Row) -> ApiKey {
    ApiKey {
        id: ApiKeyId::from_trusted(row.get("id")),
        name: row.get("name"),
        prefix: row.get("prefix"),
        scopes: row.get::<_, Vec<String>>("scopes").iter().map(|s| Scope::parse_known(s)).collect(),
        created_by: row.get::<_, Option<String>>("created_by").map(UserId::from_trusted),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        last_used_at: row.get("last_used_at"),
        revoked_at: row.get("revoked_at"),
    }
}

pub struct NewApiKey<'a> {
    pub team: &'a TeamId,
    pub name: &'a str,
    pub prefix: &'a str,
    pub hash: &'a str,
    pub scopes: &'a [Scope],
    pub created_by: Option<&'a UserId>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn create(tx: &Tx<'_>, new: &NewApiKey<'_>) -> Result<ApiKey> {
    let id = ApiKeyId::new();
    let scopes: Vec<&str> = new.scopes.iter().map(Scope::as_str).collect();
    let created_by = new.created_by.map(|u| u.as_str());
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO api_keys (id, team_id, name, prefix, key_hash, scopes, created_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            params![id.as_str() => TEXT, new.team.as_str() => TEXT, new.name => TEXT, new.prefix => TEXT,
                    new.hash => TEXT, scopes => TEXT_ARRAY, created_by => TEXT, new.expires_at => TIMESTAMPTZ],
        )
        .await?;
    rows.first().map(api_key).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, team: &TeamId, page: &PageRequest) -> Result<Vec<ApiKey>> {
    let after = page.after.as_deref().unwrap_or("");
    let rows = tx
        .query_typed(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE team_id = $1 AND id > $2 ORDER BY id LIMIT $3"),
            params![team.as_str() => TEXT, after => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(api_key).collect())
}

/// Revokes a key; revoking an already revoked key is a no-op that still answers the key.
pub async fn revoke(tx: &Tx<'_>, team: &TeamId, id: &ApiKeyId) -> Result<ApiKey> {
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                  WHERE team_id = $1 AND id = $2 RETURNING {COLUMNS}"
            ),
            params![team.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(api_key).ok_or(StoreError::NotFound)
}

/// A live key found by the hash of its secret.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub id: ApiKeyId,
    pub team: TeamId,
    pub scopes: Vec<Scope>,
}

/// Resolves a live key and, when it belongs to `team`, scopes the transaction to that team
/// (otherwise to none), in one round trip.
pub async fn resolve_scoped(tx: &Tx<'_>, hash: &str, team: &TeamId) -> Result<Option<ResolvedKey>> {
    let rows = tx
        .query_typed(
            "SELECT k.key_id, k.team_id, k.scopes,
                    set_config('app.team_id', CASE WHEN k.team_id = $2 THEN k.team_id ELSE '' END, true),
                    set_config('app.user_id', '', true)
               FROM auth_api_key($1) k",
            params![hash => TEXT, team.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| ResolvedKey {
        id: ApiKeyId::from_trusted(r.get(0)),
        team: TeamId::from_trusted(r.get(1)),
        scopes: r.get::<_, Vec<String>>(2).iter().map(|s| Scope::parse_known(s)).collect(),
    }))
}
