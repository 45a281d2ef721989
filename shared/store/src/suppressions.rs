//! The team's suppression list: numbers and addresses that get nothing from any campaign of
//! the team. Adding and checking take a transaction-level advisory lock on (team, address),
//! exclusive to add and shared to check, so a send and an opt-out of the same number are
//! ordered: a send that checked before the opt-out committed is recorded before it, and any
//! send after it sees it.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{RowId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

pub const KINDS: [&str; 4] = ["OPTED_OUT", "BLACKLIST", "LEGAL_DNC", "WRONG_NUMBER"];

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub id: RowId,
    pub address: String,
    pub kind: String,
    pub reason: Option<String>,
    pub source: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn suppression(r: &Row) -> Suppression {
    Suppression {
        id: RowId::from_trusted(r.get("id")),
        address: r.get("address"),
        kind: r.get("kind"),
        reason: r.get("reason"),
        source: r.get("source"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
    }
}

const COLS: &str = "id, address, kind, reason, source, created_by, created_at, expires_at";

async fn lock(tx: &Tx<'_>, team: &TeamId, address: &str, exclusive: bool) -> Result<()> {
    let f = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
    let key = format!("suppression:{team}:{address}");
    tx.query_typed(&format!("SELECT {f}(hashtextextended($1, 0))"), params![key => TEXT]).await?;
    Ok(())
}

/// What to add.
#[derive(Debug, Clone)]
pub struct NewSuppression<'a> {
    pub address: &'a str,
    pub kind: &'a str,
    pub reason: Option<&'a str>,
    pub source: &'a str,
    pub actor: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Adds (or renews) a suppression.
pub async fn add(tx: &Tx<'_>, team: &TeamId, s: &NewSuppression<'_>) -> Result<Suppression> {
    lock(tx, team, s.address, true).await?;
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO suppressions (id, team_id, address, kind, reason, source, created_by, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (team_id, address) DO UPDATE SET kind = excluded.kind, reason = excluded.reason,
                        source = excluded.source, created_by = excluded.created_by, expires_at = excluded.expires_at
                 RETURNING {COLS}"
            ),
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, s.address => TEXT, s.kind => TEXT,
                    s.reason => TEXT, s.source => TEXT, s.actor => TEXT, s.expires_at => TIMESTAMPTZ],
        )
        .await?;
    rows.first().map(suppression).ok_or(StoreError::NotFound)
}

/// The active suppression of an address at `now`, if any. Takes the shared lock first, in
/// its own statement: under READ COMMITTED each statement reads from a snapshot taken when it
/// starts, so the read must start after the lock is granted to see an opt-out that committed
/// while this transaction waited for it.
pub async fn active(tx: &Tx<'_>, team: &TeamId, address: &str, now: DateTime<Utc>) -> Result<Option<Suppression>> {
    lock(tx, team, address, false).await?;
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM suppressions WHERE address = $1 AND (expires_at IS NULL OR expires_at > $2)"),
            params![address => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(suppression))
}

pub async fn remove(tx: &Tx<'_>, team: &TeamId, address: &str) -> Result<()> {
    lock(tx, team, address, true).await?;
    let rows =
        tx.query_typed("DELETE FROM suppressions WHERE address = $1 RETURNING 1", params![address => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Suppression>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM suppressions WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(suppression).collect())
}
