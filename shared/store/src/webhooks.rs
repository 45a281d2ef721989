//! Webhook deliveries as received. The provider's delivery id is unique, so however many
//! times (and however concurrently) a delivery arrives, it is stored once; the caller stages
//! its outbox row in the same transaction, so it is also processed once.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{TeamId, WebhookEventId};

use crate::error::Result;
use crate::Tx;

pub struct Delivery<'a> {
    pub provider: &'a str,
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub payload: &'a serde_json::Value,
    /// The body exactly as it arrived.
    pub raw: &'a [u8],
    pub signed_at: Option<DateTime<Utc>>,
    /// `webhook` or `reconcile`.
    pub source: &'a str,
}

/// Stores a delivery; `None` when this delivery id was stored before.
pub async fn receive(tx: &Tx<'_>, d: &Delivery<'_>) -> Result<Option<WebhookEventId>> {
    let id = WebhookEventId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO webhook_events (id, provider, delivery_id, event, payload, signed_at, source, raw_body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (provider, delivery_id) DO NOTHING RETURNING id",
            params![id.as_str() => TEXT, d.provider => TEXT, d.delivery_id => TEXT, d.event => TEXT,
                    d.payload => JSONB, d.signed_at => TIMESTAMPTZ, d.source => TEXT, d.raw => BYTEA],
        )
        .await?;
    Ok(rows.first().map(|_| id))
}

/// Records what became of a delivery (the team it was routed to, and the outcome).
pub async fn finish(tx: &Tx<'_>, id: &str, team: Option<&TeamId>, outcome: &str, now: DateTime<Utc>) -> Result<()> {
    tx.query_typed(
        "UPDATE webhook_events SET team_id = coalesce($2, team_id), outcome = $3, processed_at = $4 WHERE id = $1",
        params![id => TEXT, team.map(|t| t.as_str()) => TEXT, outcome => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// The team that owns a receiving number (`team_for_number`, across teams).
pub async fn team_for_number(tx: &Tx<'_>, e164: &str) -> Result<Option<TeamId>> {
    let rows = tx.query_typed("SELECT team_for_number($1)", params![e164 => TEXT]).await?;
    Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)).map(TeamId::from_trusted))
}

/// The team whose outbound message the provider calls `provider_message_id`.
pub async fn team_for_provider_message(tx: &Tx<'_>, provider: &str, id: &str) -> Result<Option<TeamId>> {
    let rows =
        tx.query_typed("SELECT team_for_provider_message($1, $2)", params![provider => TEXT, id => TEXT]).await?;
    Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)).map(TeamId::from_trusted))
}

/// Stores a delivery and, only if it is new, its queue job, in one statement: one round trip,
/// atomic by itself on a plain connection (the webhook: no transaction, and no tenant scope,
/// as an unrouted delivery belongs to no team yet) or inside the caller's transaction
/// (reconciling). `job` is built for the id given, which the row takes. `None` when this
/// delivery id was stored before.
pub async fn receive_with_job(
    client: &impl tokio_postgres::GenericClient,
    d: &Delivery<'_>,
    id: &WebhookEventId,
    queue: &str,
    job: &serde_json::Value,
    correlation_id: &str,
) -> Result<Option<nextier_domain::ids::OutboxId>> {
    let outbox_id = nextier_domain::ids::OutboxId::new();
    let rows = client
        .query_typed(
            "WITH w AS (INSERT INTO webhook_events (id, provider, delivery_id, event, payload, signed_at, source, raw_body)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $12) ON CONFLICT (provider, delivery_id) DO NOTHING RETURNING id)
             INSERT INTO outbox (id, team_id, kind, destination, payload, correlation_id, dedupe_key)
             SELECT $8, NULL, 'queue', $9, $10, $11, 'webhook:' || w.id FROM w
             RETURNING id",
            params![id.as_str() => TEXT, d.provider => TEXT, d.delivery_id => TEXT, d.event => TEXT,
                    d.payload => JSONB, d.signed_at => TIMESTAMPTZ, d.source => TEXT, outbox_id.as_str() => TEXT,
                    queue => TEXT, job => JSONB, correlation_id => TEXT, d.raw => BYTEA],
        )
        .await?;
    Ok(rows.first().map(|_| outbox_id))
}

/// A delivery left unprocessed, to enqueue again.
#[derive(Debug, Clone)]
pub struct Stale {
    pub id: String,
    pub payload: serde_json::Value,
    pub redrives: i32,
}

/// Claims deliveries still unprocessed `after` their arrival (and as long since their last
/// re-drive), at most `max_redrives` times each, oldest first; each claimed row counts one
/// more re-drive, in the same statement, so two sweepers never take the same row twice.
pub async fn claim_stale(
    client: &impl tokio_postgres::GenericClient,
    after: std::time::Duration,
    max_redrives: i32,
    limit: i64,
) -> Result<Vec<Stale>> {
    let secs = after.as_secs_f64();
    let rows = client
        .query_typed(
            "UPDATE webhook_events w SET redrives = w.redrives + 1, redriven_at = clock_timestamp()
               FROM (SELECT id FROM webhook_events
                      WHERE processed_at IS NULL AND redrives < $2
                        AND received_at < clock_timestamp() - make_interval(secs => $1)
                        AND (redriven_at IS NULL OR redriven_at < clock_timestamp() - make_interval(secs => $1))
                      ORDER BY received_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
              WHERE w.id = due.id
             RETURNING w.id, w.payload, w.redrives",
            params![secs => FLOAT8, max_redrives => INT4, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| Stale { id: r.get(0), payload: r.get(1), redrives: r.get(2) }).collect())
}
