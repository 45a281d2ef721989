//! SQL of the transactional outbox. Staging happens in the caller's (tenant) transaction;
//! claiming and marking happen on a plain connection after commit, with a lease so two
//! publishers never hold the same row at once.
//!
//! Either role stages and publishes what it has just staged ([`claim_staged`],
//! [`settle_staged`]: the application role can neither read nor change a row otherwise);
//! sweeping every team's rows ([`claim`] without ids, [`prune`], [`backlog`]) is the worker
//! role's alone (migration 0017).

use nextier_domain::ids::{OutboxId, TeamId};
use tokio_postgres::{Client, Row};

use crate::error::Result;
use crate::Tx;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A queue by its logical name (e.g. `lead-import`).
    Queue(String),
    /// A domain event by its detail-type (e.g. `TeamCreated`).
    Event(String),
}

#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub team: Option<TeamId>,
    pub destination: Destination,
    pub payload: serde_json::Value,
    pub correlation_id: String,
    /// When set, staging the same key twice keeps only the first row.
    pub dedupe_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Pending {
    pub id: OutboxId,
    pub team: Option<TeamId>,
    pub destination: Destination,
    pub payload: serde_json::Value,
    pub correlation_id: String,
    pub attempts: i32,
}

/// Writes the message in the caller's transaction (a team's event also on its live feed,
/// [`crate::feed`]). Returns `None` when a row with the same dedupe key already exists. (No RETURNING: the application role may insert a row of its
/// team but not read one back.)
pub async fn stage(tx: &Tx<'_>, msg: &OutboxMessage) -> Result<Option<OutboxId>> {
    let id = OutboxId::new();
    let (kind, dest) = match &msg.destination {
        Destination::Queue(q) => ("queue", q.as_str()),
        Destination::Event(e) => ("event", e.as_str()),
    };
    let team = msg.team.as_ref().map(|t| t.as_str());
    let inserted = tx
        .execute_typed(
            "INSERT INTO outbox (id, team_id, kind, destination, payload, correlation_id, dedupe_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
            params![id.as_str() => TEXT, team => TEXT, kind => TEXT, dest => TEXT, msg.payload => JSONB,
                    msg.correlation_id.as_str() => TEXT, msg.dedupe_key.as_deref() => TEXT],
        )
        .await?;
    // A team's event is also on its live feed, committed with it.
    if let (1, Destination::Event(kind), Some(team)) = (inserted, &msg.destination, &msg.team) {
        crate::feed::append(tx, team, kind, &msg.payload, Some(&msg.correlation_id)).await?;
    }
    Ok((inserted == 1).then_some(id))
}

/// Stages a team's message to `destination` (no dedupe key, so it is always staged).
pub async fn stage_for_team(
    tx: &Tx<'_>,
    team: &TeamId,
    destination: Destination,
    payload: serde_json::Value,
    correlation_id: String,
) -> Result<OutboxId> {
    let msg = OutboxMessage { team: Some(team.clone()), destination, payload, correlation_id, dedupe_key: None };
    stage(tx, &msg).await?.ok_or_else(|| crate::StoreError::Conflict("outbox row was not staged".into()))
}

fn pending(row: &Row) -> Pending {
    let kind: &str = row.get("kind");
    let dest: String = row.get("destination");
    Pending {
        id: OutboxId::from_trusted(row.get("id")),
        team: row.get::<_, Option<String>>("team_id").map(TeamId::from_trusted),
        destination: if kind == "queue" { Destination::Queue(dest) } else { Destination::Event(dest) },
        payload: row.get("payload"),
        correlation_id: row.get("correlation_id"),
        attempts: row.get("attempts"),
    }
}

/// Leases the rows just staged as `ids` that nobody has tried yet (`outbox_claim_staged`).
pub async fn claim_staged(client: &Client, ids: &[OutboxId], lease_secs: i32) -> Result<Vec<Pending>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let rows = client
        .query_typed(
            "SELECT id, team_id, kind, destination, payload, correlation_id, attempts FROM outbox_claim_staged($1, $2)",
            params![ids => TEXT_ARRAY, lease_secs => INT4],
        )
        .await?;
    let mut out: Vec<Pending> = rows.iter().map(pending).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Settles rows leased by [`claim_staged`]: published when `error` is `None`, else due again
/// after `retry_in_secs` (`outbox_settle_staged`).
pub async fn settle_staged(client: &Client, ids: &[OutboxId], error: Option<&str>, retry_in_secs: i32) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    client
        .query_typed(
            "SELECT outbox_settle_staged($1, $2, $3)",
            params![ids => TEXT_ARRAY, error => TEXT, retry_in_secs => INT4],
        )
        .await?;
    Ok(())
}

/// Leases due, unpublished rows (all of them, or only `ids`) for `lease_secs`. The worker's.
pub async fn claim(client: &Client, ids: Option<&[OutboxId]>, limit: i64, lease_secs: i32) -> Result<Vec<Pending>> {
    let ids: Option<Vec<&str>> = ids.map(|ids| ids.iter().map(|i| i.as_str()).collect());
    let rows = client
        .query_typed(
            "UPDATE outbox o SET available_at = now() + make_interval(secs => $3), attempts = o.attempts + 1
              WHERE o.id IN (SELECT id FROM outbox
                              WHERE published_at IS NULL AND available_at <= now()
                                AND ($1::text[] IS NULL OR id = ANY($1))
                              ORDER BY available_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
              RETURNING o.id, o.team_id, o.kind, o.destination, o.payload, o.correlation_id, o.attempts",
            params![ids => TEXT_ARRAY, limit => INT8, f64::from(lease_secs) => FLOAT8],
        )
        .await?;
    let mut out: Vec<Pending> = rows.iter().map(pending).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

pub async fn mark_published(client: &Client, ids: &[OutboxId]) -> Result<()> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    client
        .query_typed(
            "UPDATE outbox SET published_at = now(), last_error = NULL WHERE id = ANY($1)",
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(())
}

/// Records a failed attempt; the row becomes due again after `retry_in_secs`.
pub async fn mark_failed(client: &Client, id: &OutboxId, error: &str, retry_in_secs: i32) -> Result<()> {
    client
        .query_typed(
            "UPDATE outbox SET last_error = left($2, 2000), available_at = now() + make_interval(secs => $3)
              WHERE id = $1",
            params![id.as_str() => TEXT, error => TEXT, f64::from(retry_in_secs) => FLOAT8],
        )
        .await?;
    Ok(())
}

/// Deletes rows published more than `keep_days` ago.
pub async fn prune(client: &Client, keep_days: i32) -> Result<u64> {
    let rows = client
        .query_typed(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(days => $1) RETURNING 1",
            params![keep_days => INT4],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// Unpublished rows and the age in seconds of the oldest, for the sweeper's metrics.
pub async fn backlog(client: &Client) -> Result<(i64, f64)> {
    let rows = client
        .query_typed(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0)
               FROM outbox WHERE published_at IS NULL",
            &[],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0.0)))
}
