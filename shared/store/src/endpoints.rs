//! The endpoints a team registers for our webhooks, each event's delivery to each, and every
//! attempt (migration 0031). Signing and the URL policy are `nextier_domain::webhook_out`;
//! sending is `nextier_integrations::webhooks`.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{TeamId, WebhookDeliveryId, WebhookEndpointId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// An endpoint as the API shows it (never its secret, but when it is made or rotated).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// Until when the previous secret still signs (during a rotation).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT: &str = "SELECT id, url, description, event_types, active, disabled_reason, disabled_at,
        consecutive_failures, previous_expires_at, created_by, created_at, updated_at FROM webhook_endpoints";

fn endpoint(r: &Row) -> Endpoint {
    Endpoint {
        id: r.get("id"),
        url: r.get("url"),
        description: r.get("description"),
        event_types: r.get("event_types"),
        active: r.get("active"),
        disabled_reason: r.get("disabled_reason"),
        disabled_at: r.get("disabled_at"),
        consecutive_failures: r.get("consecutive_failures"),
        previous_secret_expires_at: r.get("previous_expires_at"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub event_types: &'a [String],
    pub secret: &'a str,
}

pub async fn create(tx: &Tx<'_>, team: &TeamId, e: &NewEndpoint<'_>, actor: &str) -> Result<Endpoint> {
    let id = WebhookEndpointId::new().to_string();
    tx.execute_typed(
        "INSERT INTO webhook_endpoints (id, team_id, url, description, event_types, secret, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![id => TEXT, team.as_str() => TEXT, e.url => TEXT, e.description => TEXT,
                e.event_types => TEXT_ARRAY, e.secret => TEXT, actor => TEXT],
    )
    .await?;
    get(tx, &id).await
}

pub async fn get(tx: &Tx<'_>, id: &str) -> Result<Endpoint> {
    let rows = tx.query_typed(&format!("{ENDPOINT} WHERE id = $1"), params![id => TEXT]).await?;
    rows.first().map(endpoint).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Endpoint>> {
    let rows = tx
        .query_typed(
            &format!("{ENDPOINT} WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(endpoint).collect())
}

/// What a change sets (`None`: unchanged). Turning an endpoint back on clears its failures.
#[derive(Default)]
pub struct Change<'a> {
    pub url: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub event_types: Option<&'a [String]>,
    pub active: Option<bool>,
}

pub async fn update(tx: &Tx<'_>, id: &str, c: &Change<'_>) -> Result<Endpoint> {
    let n = tx
        .execute_typed(
            "UPDATE webhook_endpoints SET
                url = coalesce($2, url),
                description = CASE WHEN $3 THEN $4 ELSE description END,
                event_types = coalesce($5, event_types),
                active = coalesce($6, active),
                disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END,
                disabled_at = CASE WHEN $6 THEN NULL ELSE disabled_at END,
                consecutive_failures = CASE WHEN $6 THEN 0 ELSE consecutive_failures END,
                failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END,
                updated_at = now()
              WHERE id = $1",
            params![id => TEXT, c.url => TEXT, c.description.is_some() => BOOL, c.description.flatten() => TEXT,
                    c.event_types => TEXT_ARRAY, c.active => BOOL],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn delete(tx: &Tx<'_>, id: &str) -> Result<()> {
    let n = tx.execute_typed("DELETE FROM webhook_endpoints WHERE id = $1", params![id => TEXT]).await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A new secret; the current one keeps signing until `previous_until`.
pub async fn rotate(tx: &Tx<'_>, id: &str, secret: &str, previous_until: DateTime<Utc>) -> Result<Endpoint> {
    let n = tx
        .execute_typed(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, secret = $2,
                    updated_at = now() WHERE id = $1",
            params![id => TEXT, secret => TEXT, previous_until => TIMESTAMPTZ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

/// The endpoints of the scoped team that want an event of `public_type`.
pub async fn subscribed(tx: &Tx<'_>, public_type: &str) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT id FROM webhook_endpoints WHERE active AND $1 = ANY(event_types) ORDER BY id",
            params![public_type => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records the event's delivery to an endpoint, due at once; `None` when it was already there
/// (the same event again: nothing is sent twice).
pub async fn enqueue(
    tx: &Tx<'_>,
    team: &TeamId,
    endpoint: &str,
    event_id: &str,
    event_type: &str,
    payload: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let id = WebhookDeliveryId::new().to_string();
    let rows = tx
        .query_typed(
            "INSERT INTO webhook_deliveries (id, team_id, endpoint_id, event_id, event_type, payload, status, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
             ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id",
            params![id => TEXT, team.as_str() => TEXT, endpoint => TEXT, event_id => TEXT, event_type => TEXT,
                    payload => JSONB, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// A delivery leased for one attempt, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub endpoint_id: String,
    pub url: String,
    pub secrets: Vec<String>,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

/// Leases a due delivery for `lease_secs` (a pending one whose time has come, or one whose
/// sender's lease ran out); `None` when it is not due, is done, or is leased by another
/// sender. A delivery to an endpoint that was disabled or deleted is cancelled.
pub async fn claim(tx: &Tx<'_>, id: &str, now: DateTime<Utc>, lease_secs: i32) -> Result<Option<Claimed>> {
    let rows = tx
        .query_typed(
            "SELECT d.id, d.endpoint_id, d.event_type, d.payload, d.created_at, d.attempts, e.url, e.secret,
                    CASE WHEN e.previous_expires_at > $2 THEN e.previous_secret END AS previous, e.active
               FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
              WHERE d.id = $1
                AND ((d.status = 'pending' AND d.next_attempt_at <= $2) OR (d.status = 'sending' AND d.lease_until <= $2))
              FOR UPDATE OF d SKIP LOCKED",
            params![id => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(None) };
    if !r.get::<_, bool>("active") {
        tx.execute_typed(
            "UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'the endpoint is disabled',
                    updated_at = now() WHERE id = $1",
            params![id => TEXT],
        )
        .await?;
        return Ok(None);
    }
    tx.execute_typed(
        "UPDATE webhook_deliveries SET status = 'sending', lease_until = $2 + make_interval(secs => $3),
                attempts = attempts + 1, updated_at = now() WHERE id = $1",
        params![id => TEXT, now => TIMESTAMPTZ, lease_secs => INT4],
    )
    .await?;
    let mut secrets: Vec<String> = vec![r.get("secret")];
    if let Some(p) = r.get::<_, Option<String>>("previous") {
        secrets.push(p);
    }
    Ok(Some(Claimed {
        id: r.get("id"),
        endpoint_id: r.get("endpoint_id"),
        url: r.get("url"),
        secrets,
        event_type: r.get("event_type"),
        payload: r.get("payload"),
        created_at: r.get("created_at"),
        attempts: r.get::<_, i32>("attempts") + 1,
    }))
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
    /// `None`: delivered; `Some(None)`: failed for good; `Some(Some(at))`: retry at `at`.
    pub retry: Option<Option<DateTime<Utc>>>,
}

/// What recording an attempt did to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The endpoint was disabled by this failure (tell the team).
    pub endpoint_disabled: bool,
    pub endpoint_url: String,
}

/// Records an attempt of a claimed delivery and its outcome; a failure counts against the
/// endpoint, which is disabled after `disable_after` failures in a row.
pub async fn record(
    tx: &Tx<'_>,
    team: &TeamId,
    c: &Claimed,
    a: &Attempt<'_>,
    disable_after: i32,
    disable_after_secs: f64,
) -> Result<Recorded> {
    tx.execute_typed(
        "INSERT INTO webhook_attempts (team_id, delivery_id, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5)",
        params![team.as_str() => TEXT, c.id => TEXT, a.status_code => INT4, a.error => TEXT, a.duration_ms => INT4],
    )
    .await?;
    let (status, next) = match a.retry {
        None => ("delivered", None),
        Some(None) => ("failed", None),
        Some(Some(at)) => ("pending", Some(at)),
    };
    tx.execute_typed(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, lease_until = NULL, last_status = $4,
                last_error = $5, delivered_at = CASE WHEN $2 = 'delivered' THEN now() END, updated_at = now()
          WHERE id = $1",
        params![c.id => TEXT, status => TEXT, next => TIMESTAMPTZ, a.status_code => INT4, a.error => TEXT],
    )
    .await?;
    let rows = if a.retry.is_none() {
        tx.query_typed(
            "UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = $1
             RETURNING false, url",
            params![c.endpoint_id => TEXT],
        )
        .await?
    } else {
        tx.query_typed(
            "UPDATE webhook_endpoints e SET consecutive_failures = e.consecutive_failures + 1,
                    failing_since = coalesce(e.failing_since, now()),
                    active = e.active AND NOT d.off,
                    disabled_at = CASE WHEN e.active AND d.off THEN now() ELSE e.disabled_at END,
                    disabled_reason = CASE WHEN e.active AND d.off
                        THEN format('%s failed attempts in a row since %s (last: %s)', e.consecutive_failures + 1,
                                    to_char(e.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), $3::text)
                        ELSE e.disabled_reason END,
                    updated_at = now()
               FROM (SELECT consecutive_failures + 1 >= $2
                            AND coalesce(failing_since, now()) <= now() - make_interval(secs => $4) AS off
                       FROM webhook_endpoints WHERE id = $1) d
              WHERE e.id = $1 RETURNING (NOT e.active AND e.disabled_at = now()), e.url",
            params![c.endpoint_id => TEXT, disable_after => INT4, a.error.unwrap_or("failed") => TEXT,
                    disable_after_secs => FLOAT8],
        )
        .await?
    };
    let r = rows.first().ok_or(StoreError::NotFound)?;
    if r.get::<_, bool>(0) {
        // The endpoint's other waiting deliveries will not be sent.
        tx.execute_typed(
            "UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'the endpoint was disabled',
                    updated_at = now() WHERE endpoint_id = $1 AND status = 'pending'",
            params![c.endpoint_id => TEXT],
        )
        .await?;
    }
    Ok(Recorded { endpoint_disabled: r.get(0), endpoint_url: r.get(1) })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The `webhook-id` header: the same on every attempt.
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// pending, sending, delivered, failed or cancelled.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The attempts, oldest first (on one delivery's read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<AttemptRow>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow {
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    pub at: DateTime<Utc>,
}

const DELIVERY: &str = "SELECT id, endpoint_id, event_id, event_type, payload, status, attempts, next_attempt_at,
        last_status, last_error, created_at, delivered_at FROM webhook_deliveries";

fn delivery(r: &Row) -> Delivery {
    Delivery {
        id: r.get("id"),
        endpoint_id: r.get("endpoint_id"),
        event_id: r.get("event_id"),
        event_type: r.get("event_type"),
        payload: r.get("payload"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        next_attempt_at: r.get("next_attempt_at"),
        last_status: r.get("last_status"),
        last_error: r.get("last_error"),
        created_at: r.get("created_at"),
        delivered_at: r.get("delivered_at"),
        history: None,
    }
}

/// An endpoint's deliveries, newest first (the cursor is a delivery id: ids sort by time).
pub async fn deliveries(
    tx: &Tx<'_>,
    endpoint: &str,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<Delivery>> {
    let rows = tx
        .query_typed(
            &format!(
                "{DELIVERY} WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
                   AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
            ),
            params![endpoint => TEXT, status => TEXT, page.after.clone().unwrap_or_default() => TEXT,
                    page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(delivery).collect())
}

pub async fn delivery_with_attempts(tx: &Tx<'_>, endpoint: &str, id: &str) -> Result<Delivery> {
    let rows = tx
        .query_typed(&format!("{DELIVERY} WHERE id = $1 AND endpoint_id = $2"), params![id => TEXT, endpoint => TEXT])
        .await?;
    let mut d = rows.first().map(delivery).ok_or(StoreError::NotFound)?;
    let attempts = tx
        .query_typed(
            "SELECT status_code, error, duration_ms, at FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id",
            params![id => TEXT],
        )
        .await?;
    d.history = Some(
        attempts
            .iter()
            .map(|r| AttemptRow {
                status_code: r.get("status_code"),
                error: r.get("error"),
                duration_ms: r.get("duration_ms"),
                at: r.get("at"),
            })
            .collect(),
    );
    Ok(d)
}

/// Makes a failed or cancelled delivery due again, now (a person's retry). A delivery that
/// is waiting, being sent or delivered is left as it is: `Conflict`.
pub async fn retry(tx: &Tx<'_>, endpoint: &str, id: &str, now: DateTime<Utc>) -> Result<Delivery> {
    let n = tx
        .execute_typed(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, last_error = NULL, updated_at = now()
              WHERE id = $1 AND endpoint_id = $2 AND status IN ('failed', 'cancelled')",
            params![id => TEXT, endpoint => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    if n == 0 {
        let d = delivery_with_attempts(tx, endpoint, id).await?;
        return Err(StoreError::Conflict(format!(
            "the delivery is {}; only a failed or cancelled one is retried",
            d.status
        )));
    }
    delivery_with_attempts(tx, endpoint, id).await
}

/// Deliveries due now across teams (the cron's; definer function).
pub async fn due(tx: &Tx<'_>, now: DateTime<Utc>, limit: i32) -> Result<Vec<(String, TeamId)>> {
    let rows = tx
        .query_typed(
            "SELECT id, team_id FROM webhook_deliveries_due($1, $2)",
            params![now => TIMESTAMPTZ, limit => INT4],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), TeamId::from_trusted(r.get(1)))).collect())
}
