//! The team's live feed: an ordered, gap-free log of what happened (migration 0027). Writers
//! append in their own transaction ([`append`]; the outbox does for every team event); readers
//! page with a cursor ([`after`]) and see a row only once no transaction that could commit
//! before it is still running.

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::Tx;

/// How long the feed keeps an event (a cursor older than this is expired).
pub const KEEP_DAYS: i32 = 7;

/// A position in a team's feed: after the row (`xid`, `seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub xid: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// The event's detail-type (`InboundMessageReceived`, `InboxItemMoved`, `ImportProgress`...).
    #[serde(rename = "type")]
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub correlation_id: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(skip)]
    pub position: Position,
}

/// Appends an event to the team's feed, in the caller's transaction (it appears when that
/// commits, or never).
pub async fn append(
    tx: &Tx<'_>,
    team: &TeamId,
    kind: &str,
    data: &serde_json::Value,
    correlation_id: Option<&str>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO team_events (team_id, type, data, correlation_id) VALUES ($1, $2, $3, $4)",
        params![team.as_str() => TEXT, kind => TEXT, data => JSONB, correlation_id => TEXT],
    )
    .await?;
    Ok(())
}

/// The position of "now": every event a reader could see so far is before it.
pub async fn head(tx: &Tx<'_>) -> Result<Position> {
    let row = tx.query_one("SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::int8) - 1", &[]).await?;
    Ok(Position { xid: row.get(0), seq: i64::MAX })
}

/// Up to `limit` of the team's events after `from`, in order, that no running transaction can
/// still precede.
pub async fn after(tx: &Tx<'_>, team: &TeamId, from: Position, limit: i64) -> Result<Vec<FeedEvent>> {
    let rows = tx
        .query_typed(
            "SELECT xid::text::int8, seq, type, data, correlation_id, created_at FROM team_events
              WHERE team_id = $1 AND (xid, seq) > ($2::text::xid8, $3)
                AND xid < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY xid, seq LIMIT $4",
            params![team.as_str() => TEXT, from.xid.to_string() => TEXT, from.seq => INT8, limit => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FeedEvent {
            position: Position { xid: r.get(0), seq: r.get(1) },
            kind: r.get(2),
            data: r.get(3),
            correlation_id: r.get(4),
            at: r.get(5),
        })
        .collect())
}

/// Drops events older than [`KEEP_DAYS`] (the worker's, every team).
pub async fn prune(client: &tokio_postgres::Client) -> Result<u64> {
    Ok(client
        .execute("DELETE FROM team_events WHERE created_at < now() - make_interval(days => $1)", &[&KEEP_DAYS])
        .await?)
}
