//! The call queue, call history and power-dialer sessions.

use chrono::{DateTime, Utc};
use nextier_domain::calls::Outcome;
use nextier_domain::ids::{CallId, ContactId, DialerSessionId, RowId, TeamId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: CallId,
    pub contact_id: ContactId,
    pub phone: String,
    pub status: String,
    pub priority: i32,
    pub reason: String,
    pub source: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub available_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub last_outcome: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLS: &str = "id, contact_id, phone, status, priority, reason, source, attempts, max_attempts, available_at,
    claimed_by, claimed_until, last_outcome, last_attempt_at, completed_at, created_at";

fn entry(r: &Row) -> Entry {
    Entry {
        id: CallId::from_trusted(r.get("id")),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        phone: r.get("phone"),
        status: r.get("status"),
        priority: r.get("priority"),
        reason: r.get("reason"),
        source: r.get("source"),
        attempts: r.get("attempts"),
        max_attempts: r.get("max_attempts"),
        available_at: r.get("available_at"),
        claimed_by: r.get("claimed_by"),
        claimed_until: r.get("claimed_until"),
        last_outcome: r.get("last_outcome"),
        last_attempt_at: r.get("last_attempt_at"),
        completed_at: r.get("completed_at"),
        created_at: r.get("created_at"),
    }
}

pub struct Push<'a> {
    pub contact: &'a ContactId,
    pub phone: &'a str,
    pub priority: i32,
    pub reason: &'a str,
    pub source: &'a str,
    pub max_attempts: i32,
}

/// Queues a contact for a call; a contact already waiting keeps one entry, raised to the
/// higher priority. Returns the entry and whether it is new.
pub async fn push(tx: &Tx<'_>, team: &TeamId, p: &Push<'_>) -> Result<(Entry, bool)> {
    let id = CallId::new();
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO call_queue (id, team_id, contact_id, phone, priority, reason, source, max_attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (team_id, contact_id) WHERE status IN ('pending', 'claimed')
                 DO UPDATE SET priority = greatest(call_queue.priority, excluded.priority),
                               reason = CASE WHEN excluded.priority > call_queue.priority THEN excluded.reason
                                             ELSE call_queue.reason END
                 RETURNING {COLS}, (xmax = 0) AS inserted"
            ),
            params![id.as_str() => TEXT, team.as_str() => TEXT, p.contact.as_str() => TEXT, p.phone => TEXT,
                    p.priority => INT4, p.reason => TEXT, p.source => TEXT, p.max_attempts => INT4],
        )
        .await?;
    let r = rows.first().ok_or(StoreError::NotFound)?;
    Ok((entry(r), r.get("inserted")))
}

pub async fn get(tx: &Tx<'_>, id: &CallId) -> Result<Entry> {
    let rows =
        tx.query_typed(&format!("SELECT {COLS} FROM call_queue WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(entry).ok_or(StoreError::NotFound)
}

/// Entries in `status` (default pending), highest priority first, then oldest.
pub async fn list(tx: &Tx<'_>, status: &str, after: Option<&str>, limit: i64) -> Result<Vec<Entry>> {
    let (prio, id) = match after.and_then(|a| a.split_once('|')) {
        Some((p, i)) => (p.parse::<i32>().unwrap_or(i32::MAX), i.to_owned()),
        None => (i32::MAX, String::new()),
    };
    let rows = tx
        .query_typed(
            &format!(
                "SELECT {COLS} FROM call_queue WHERE status = $1 AND ($2 = '' OR (priority, id) < ($3, $2))
                  ORDER BY priority DESC, id DESC LIMIT $4"
            ),
            params![status => TEXT, id => TEXT, prio => INT4, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(entry).collect())
}

/// Claims an entry for `who` for `lease`: the given one, or the next available (highest
/// priority, oldest) that nobody holds. A lapsed claim can be taken over.
pub async fn claim(
    tx: &Tx<'_>,
    id: Option<&CallId>,
    who: &str,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> Result<Option<Entry>> {
    let until = now + lease;
    let rows = tx
        .query_typed(
            &format!(
                "WITH next AS (
                    SELECT id FROM call_queue
                     WHERE ($1::text IS NULL OR id = $1) AND available_at <= $3
                       AND (status = 'pending' OR (status = 'claimed' AND claimed_until < $3))
                     ORDER BY priority DESC, available_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 UPDATE call_queue q SET status = 'claimed', claimed_by = $2, claimed_until = $4
                   FROM next WHERE q.id = next.id RETURNING {}",
                COLS.split(", ").map(|c| format!("q.{}", c.trim())).collect::<Vec<_>>().join(", ")
            ),
            params![id.map(|i| i.as_str()) => TEXT, who => TEXT, now => TIMESTAMPTZ, until => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(entry))
}

/// Records a call on an entry held by `who`: one attempt more; a retryable outcome with
/// attempts left sends it back to pending after `retry`, anything else completes it.
#[allow(clippy::too_many_arguments)]
pub async fn complete(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &CallId,
    who: &str,
    outcome: Outcome,
    call: &CallRecord<'_>,
    now: DateTime<Utc>,
    retry: chrono::Duration,
) -> Result<Entry> {
    let current = tx
        .query_typed(&format!("SELECT {COLS} FROM call_queue WHERE id = $1 FOR UPDATE"), params![id.as_str() => TEXT])
        .await?;
    let e = current.first().map(entry).ok_or(StoreError::NotFound)?;
    if e.status != "claimed" || e.claimed_by.as_deref() != Some(who) {
        return Err(StoreError::Conflict(format!("claim the entry before completing it (it is {})", e.status)));
    }
    let again = outcome.retry() && e.attempts + 1 < e.max_attempts;
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE call_queue SET attempts = attempts + 1, last_outcome = $2, last_attempt_at = $3,
                        status = CASE WHEN $4 THEN 'pending' ELSE 'completed' END,
                        available_at = CASE WHEN $4 THEN $5 ELSE available_at END,
                        completed_at = CASE WHEN $4 THEN NULL ELSE $3 END,
                        claimed_by = NULL, claimed_until = NULL
                  WHERE id = $1 RETURNING {COLS}"
            ),
            params![id.as_str() => TEXT, outcome.as_str() => TEXT, now => TIMESTAMPTZ, again => BOOL,
                    now + retry => TIMESTAMPTZ],
        )
        .await?;
    record_call(tx, team, &e.contact_id, &e.phone, Some(id), None, outcome, call, who, now).await?;
    rows.first().map(entry).ok_or(StoreError::NotFound)
}

/// Takes a contact out of the queue (opted out, booked, merged...).
pub async fn cancel_for_contact(tx: &Tx<'_>, contact: &ContactId, why: &str) -> Result<u64> {
    let n = tx
        .query_typed(
            "UPDATE call_queue SET status = 'cancelled', last_outcome = $2, claimed_by = NULL, claimed_until = NULL
              WHERE contact_id = $1 AND status IN ('pending', 'claimed') RETURNING id",
            params![contact.as_str() => TEXT, why => TEXT],
        )
        .await?;
    Ok(n.len() as u64)
}

/// What a person noted about a call.
#[derive(Debug, Clone, Default)]
pub struct CallRecord<'a> {
    pub duration_seconds: Option<i32>,
    pub notes: Option<&'a str>,
    pub provider_call_id: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
pub async fn record_call(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    phone: &str,
    queue: Option<&CallId>,
    session: Option<&DialerSessionId>,
    outcome: Outcome,
    call: &CallRecord<'_>,
    who: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.query_typed(
        "INSERT INTO call_history (id, team_id, contact_id, phone, call_queue_id, session_id, outcome, duration_seconds,
                                   notes, called_by, provider_call_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (team_id, provider_call_id) WHERE provider_call_id IS NOT NULL DO NOTHING",
        params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, phone => TEXT,
                queue.map(|q| q.as_str()) => TEXT, session.map(|s| s.as_str()) => TEXT, outcome.as_str() => TEXT,
                call.duration_seconds => INT4, call.notes => TEXT, who => TEXT, call.provider_call_id => TEXT,
                now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub contact_id: ContactId,
    pub phone: String,
    pub call_queue_id: Option<String>,
    pub session_id: Option<String>,
    pub outcome: String,
    pub duration_seconds: Option<i32>,
    pub notes: Option<String>,
    pub called_by: String,
    pub at: DateTime<Utc>,
}

/// Calls, newest first; one contact's when given.
pub async fn history(tx: &Tx<'_>, contact: Option<&ContactId>, limit: i64) -> Result<Vec<Call>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id, phone, call_queue_id, session_id, outcome, duration_seconds, notes, called_by, at
               FROM call_history WHERE ($1::text IS NULL OR contact_id = $1) ORDER BY at DESC, id DESC LIMIT $2",
            params![contact.map(|c| c.as_str()) => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Call {
            contact_id: ContactId::from_trusted(r.get(0)),
            phone: r.get(1),
            call_queue_id: r.get(2),
            session_id: r.get(3),
            outcome: r.get(4),
            duration_seconds: r.get(5),
            notes: r.get(6),
            called_by: r.get(7),
            at: r.get(8),
        })
        .collect())
}

// --- Power-dialer sessions -------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionContact {
    pub contact_id: ContactId,
    pub position: i32,
    pub status: String,
    pub skip_reason: Option<String>,
    /// The number handed out for this contact (once the dialer reached them).
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: DialerSessionId,
    pub title: String,
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub contacts: Vec<SessionContact>,
}

pub async fn create_session(
    tx: &Tx<'_>,
    team: &TeamId,
    title: &str,
    contacts: &[ContactId],
    actor: &str,
) -> Result<DialerSessionId> {
    let id = DialerSessionId::new();
    tx.query_typed(
        "INSERT INTO dialer_sessions (id, team_id, title, created_by) VALUES ($1, $2, $3, $4)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, title => TEXT, actor => TEXT],
    )
    .await?;
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    tx.query_typed(
        "INSERT INTO dialer_contacts (team_id, session_id, contact_id, position)
         SELECT $1, $2, c, n::int FROM unnest($3::text[]) WITH ORDINALITY AS x(c, n)",
        params![team.as_str() => TEXT, id.as_str() => TEXT, ids => TEXT_ARRAY],
    )
    .await?;
    Ok(id)
}

pub async fn session(tx: &Tx<'_>, id: &DialerSessionId) -> Result<Session> {
    let rows = tx
        .query_typed(
            "SELECT title, status, created_by, created_at FROM dialer_sessions WHERE id = $1",
            params![id.as_str() => TEXT],
        )
        .await?;
    let r = rows.first().ok_or(StoreError::NotFound)?;
    let contacts = tx
        .query_typed(
            "SELECT contact_id, position, status, skip_reason, phone FROM dialer_contacts WHERE session_id = $1
              ORDER BY position",
            params![id.as_str() => TEXT],
        )
        .await?
        .iter()
        .map(|c| SessionContact {
            contact_id: ContactId::from_trusted(c.get(0)),
            position: c.get(1),
            status: c.get(2),
            skip_reason: c.get(3),
            phone: c.get(4),
        })
        .collect();
    Ok(Session {
        id: id.clone(),
        title: r.get(0),
        status: r.get(1),
        created_by: r.get(2),
        created_at: r.get(3),
        contacts,
    })
}

/// The session's contacts still to call, in order, locked (the caller decides each).
pub async fn pending_in_session(tx: &Tx<'_>, id: &DialerSessionId) -> Result<Vec<ContactId>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id FROM dialer_contacts WHERE session_id = $1 AND status = 'pending'
              ORDER BY position FOR UPDATE",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

pub async fn set_session_contact(
    tx: &Tx<'_>,
    id: &DialerSessionId,
    contact: &ContactId,
    status: &str,
    skip_reason: Option<&str>,
) -> Result<bool> {
    let rows = tx
        .query_typed(
            "UPDATE dialer_contacts SET status = $3, skip_reason = $4 WHERE session_id = $1 AND contact_id = $2
             RETURNING 1",
            params![id.as_str() => TEXT, contact.as_str() => TEXT, status => TEXT, skip_reason => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Marks the contact as being called on `phone`, the exact number the dialer handed out.
pub async fn hand_out(tx: &Tx<'_>, id: &DialerSessionId, contact: &ContactId, phone: &str) -> Result<()> {
    tx.query_typed(
        "UPDATE dialer_contacts SET status = 'calling', skip_reason = NULL, phone = $3
          WHERE session_id = $1 AND contact_id = $2",
        params![id.as_str() => TEXT, contact.as_str() => TEXT, phone => TEXT],
    )
    .await?;
    Ok(())
}

/// The contact's status in the session and the number handed out, if it is in it.
pub async fn session_contact_status(
    tx: &Tx<'_>,
    id: &DialerSessionId,
    contact: &ContactId,
) -> Result<Option<(String, Option<String>)>> {
    let rows = tx
        .query_typed(
            "SELECT status, phone FROM dialer_contacts WHERE session_id = $1 AND contact_id = $2",
            params![id.as_str() => TEXT, contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// Cancels one queue entry (its number may not be called).
pub async fn cancel_entry(tx: &Tx<'_>, id: &CallId, why: &str) -> Result<()> {
    tx.query_typed(
        "UPDATE call_queue SET status = 'cancelled', last_outcome = $2, claimed_by = NULL, claimed_until = NULL
          WHERE id = $1 AND status IN ('pending', 'claimed')",
        params![id.as_str() => TEXT, why => TEXT],
    )
    .await?;
    Ok(())
}

/// Puts a claimed entry back until `until` (its number is in its quiet hours).
pub async fn defer_entry(tx: &Tx<'_>, id: &CallId, until: DateTime<Utc>) -> Result<()> {
    tx.query_typed(
        "UPDATE call_queue SET status = 'pending', claimed_by = NULL, claimed_until = NULL, available_at = $2
          WHERE id = $1",
        params![id.as_str() => TEXT, until => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

pub async fn finish_session(tx: &Tx<'_>, id: &DialerSessionId, now: DateTime<Utc>) -> Result<()> {
    tx.query_typed(
        "UPDATE dialer_sessions SET status = 'finished', finished_at = coalesce(finished_at, $2) WHERE id = $1",
        params![id.as_str() => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}
