use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_domain::page::PageRequest;
use nextier_domain::settings::mask;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// A setting as read through the API: a secret's value comes back masked unless the
/// caller asked to reveal it and may.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    pub scope: String,
    pub name: String,
    pub value: String,
    pub is_secret: bool,
    pub masked: bool,
    pub updated_at: DateTime<Utc>,
}

fn setting(row: &Row, reveal: bool) -> Setting {
    let is_secret: bool = row.get("is_secret");
    let value: String = row.get("value");
    let masked = is_secret && !reveal;
    Setting {
        scope: row.get("scope"),
        name: row.get("name"),
        value: if masked { mask(&value) } else { value },
        is_secret,
        masked,
        updated_at: row.get("updated_at"),
    }
}

/// Settings in (scope, name) order; the page cursor is `scope:name` (neither part can hold
/// a colon).
pub async fn list(tx: &Tx<'_>, team: &TeamId, scope: Option<&str>, page: &PageRequest) -> Result<Vec<Setting>> {
    let (after_scope, after_name) = page.after.as_deref().and_then(|a| a.split_once(':')).unwrap_or(("", ""));
    let rows = tx
        .query_typed(
            "SELECT scope, name, value, is_secret, updated_at FROM team_settings
              WHERE team_id = $1 AND ($2::text IS NULL OR scope = $2) AND (scope, name) > ($3, $4)
              ORDER BY scope, name LIMIT $5",
            params![team.as_str() => TEXT, scope => TEXT, after_scope => TEXT, after_name => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| setting(r, false)).collect())
}

pub async fn get(tx: &Tx<'_>, team: &TeamId, scope: &str, name: &str, reveal: bool) -> Result<Setting> {
    let rows = tx
        .query_typed(
            "SELECT scope, name, value, is_secret, updated_at FROM team_settings
              WHERE team_id = $1 AND scope = $2 AND name = $3",
            params![team.as_str() => TEXT, scope => TEXT, name => TEXT],
        )
        .await?;
    rows.first().map(|r| setting(r, reveal)).ok_or(StoreError::NotFound)
}

pub async fn put(
    tx: &Tx<'_>,
    team: &TeamId,
    scope: &str,
    name: &str,
    value: &str,
    is_secret: bool,
    by: &str,
) -> Result<Setting> {
    let rows = tx
        .query_typed(
            "INSERT INTO team_settings (team_id, scope, name, value, is_secret, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (team_id, scope, name) DO UPDATE
                SET value = excluded.value, is_secret = excluded.is_secret,
                    updated_by = excluded.updated_by, updated_at = now()
             RETURNING scope, name, value, is_secret, updated_at",
            params![team.as_str() => TEXT, scope => TEXT, name => TEXT, value => TEXT, is_secret => BOOL, by => TEXT],
        )
        .await?;
    rows.first().map(|r| setting(r, false)).ok_or(StoreError::NotFound)
}

pub async fn delete(tx: &Tx<'_>, team: &TeamId, scope: &str, name: &str) -> Result<()> {
    let rows = tx
        .query_typed(
            "DELETE FROM team_settings WHERE team_id = $1 AND scope = $2 AND name = $3 RETURNING 1",
            params![team.as_str() => TEXT, scope => TEXT, name => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A yes/no team setting (`true`, `yes`, `1` or `on`); absent means no.
pub async fn flag(tx: &Tx<'_>, scope: &str, name: &str) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT value FROM team_settings WHERE team_id = app_team_id() AND scope = $1 AND name = $2",
            params![scope => TEXT, name => TEXT],
        )
        .await?;
    Ok(rows
        .first()
        .map(|r| matches!(r.get::<_, &str>(0).trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on"))
        .unwrap_or(false))
}

/// Every whole-number setting of a scope, in one round trip.
pub async fn numbers_in(tx: &Tx<'_>, scope: &str) -> Result<std::collections::HashMap<String, i64>> {
    let rows = tx
        .query_typed(
            "SELECT name, value FROM team_settings WHERE team_id = app_team_id() AND scope = $1",
            params![scope => TEXT],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| Some((r.get::<_, String>(0), r.get::<_, &str>(1).trim().parse().ok()?))).collect())
}

/// Every (non-secret) setting of a scope as text, in one round trip.
pub async fn strings_in(tx: &Tx<'_>, scope: &str) -> Result<std::collections::HashMap<String, String>> {
    let rows = tx
        .query_typed(
            "SELECT name, value FROM team_settings WHERE team_id = app_team_id() AND scope = $1 AND NOT is_secret",
            params![scope => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
