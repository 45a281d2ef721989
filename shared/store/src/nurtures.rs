//! The nurture cadence (one active per lead) and booked meetings.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, MeetingId, NurtureId, TeamId, WorkerId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Nurture {
    pub id: NurtureId,
    pub contact_id: ContactId,
    pub worker_id: WorkerId,
    /// Follow-ups written so far.
    pub stage: i32,
    /// active, stopped, handed_over or completed.
    pub status: String,
    pub reason: Option<String>,
    /// When the next follow-up is written (while active).
    pub next_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT id, contact_id, worker_id, stage, status, reason, next_at, created_by, created_at, updated_at
   FROM ai_nurtures";

fn nurture(r: &Row) -> Nurture {
    Nurture {
        id: NurtureId::from_trusted(r.get("id")),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        worker_id: WorkerId::from_trusted(r.get("worker_id")),
        stage: r.get("stage"),
        status: r.get("status"),
        reason: r.get("reason"),
        next_at: r.get("next_at"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// Starts a cadence; a lead already in one gets that one back (`false`).
pub async fn start(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    worker: &WorkerId,
    first_at: DateTime<Utc>,
    actor: &str,
) -> Result<(Nurture, bool)> {
    let id = NurtureId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO ai_nurtures (id, team_id, contact_id, worker_id, next_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team_id, contact_id) WHERE status = 'active' DO NOTHING
             RETURNING id",
            params![id.as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, worker.as_str() => TEXT,
                    first_at => TIMESTAMPTZ, actor => TEXT],
        )
        .await?;
    let created = !rows.is_empty();
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE contact_id = $1 AND status = 'active'"),
            params![contact.as_str() => TEXT],
        )
        .await?;
    rows.first().map(|r| (nurture(r), created)).ok_or(StoreError::NotFound)
}

pub async fn get(tx: &Tx<'_>, id: &NurtureId) -> Result<Nurture> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(nurture).ok_or(StoreError::NotFound)
}

pub async fn lock(tx: &Tx<'_>, id: &NurtureId) -> Result<Nurture> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE id = $1 FOR UPDATE"), params![id.as_str() => TEXT]).await?;
    rows.first().map(nurture).ok_or(StoreError::NotFound)
}

/// A lead's cadences, newest first.
pub async fn for_contact(tx: &Tx<'_>, contact: &ContactId) -> Result<Vec<Nurture>> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE contact_id = $1 ORDER BY created_at DESC"),
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(nurture).collect())
}

/// Records a written follow-up: the stage reached and when the next is due (`None` ends the
/// cadence as completed).
pub async fn advance(tx: &Tx<'_>, id: &NurtureId, stage: i32, next_at: Option<DateTime<Utc>>) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_nurtures SET stage = $2, next_at = $3, updated_at = now(),
                status = CASE WHEN $3::timestamptz IS NULL THEN 'completed' ELSE status END,
                reason = CASE WHEN $3::timestamptz IS NULL THEN 'final attempt written' ELSE reason END
          WHERE id = $1 AND status = 'active'",
        params![id.as_str() => TEXT, stage => INT4, next_at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Moves the next follow-up later without writing one (one still waits for a person).
pub async fn postpone(tx: &Tx<'_>, id: &NurtureId, next_at: DateTime<Utc>, reason: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_nurtures SET next_at = $2, reason = $3, updated_at = now() WHERE id = $1 AND status = 'active'",
        params![id.as_str() => TEXT, next_at => TIMESTAMPTZ, reason => TEXT],
    )
    .await?;
    Ok(())
}

/// Ends a lead's active cadence (`stopped` or `handed_over`), holding its waiting follow-up.
/// Returns the cadence ended, if there was one.
pub async fn end_for_contact(tx: &Tx<'_>, contact: &ContactId, status: &str, reason: &str) -> Result<Option<Nurture>> {
    let rows = tx
        .query_typed(
            "UPDATE ai_nurtures SET status = $2, reason = $3, next_at = NULL, updated_at = now()
              WHERE contact_id = $1 AND status = 'active' RETURNING id",
            params![contact.as_str() => TEXT, status => TEXT, reason => TEXT],
        )
        .await?;
    let Some(id) = rows.first().map(|r| NurtureId::from_trusted(r.get(0))) else { return Ok(None) };
    tx.execute_typed(
        "UPDATE ai_suggestions SET note = $2, send_after = NULL WHERE nurture_id = $1 AND status = 'pending'",
        params![id.as_str() => TEXT, format!("the cadence ended: {reason}") => TEXT],
    )
    .await?;
    get(tx, &id).await.map(Some)
}

/// Stops one cadence by id (a person's decision).
pub async fn stop(tx: &Tx<'_>, id: &NurtureId, reason: &str) -> Result<Nurture> {
    let n = lock(tx, id).await?;
    if n.status != "active" {
        return Err(StoreError::Conflict(format!("the cadence is already {}", n.status)));
    }
    end_for_contact(tx, &n.contact_id, "stopped", reason).await?;
    get(tx, id).await
}

// Meetings -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    pub id: MeetingId,
    pub contact_id: ContactId,
    pub worker_id: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub status: String,
    pub notes: Option<String>,
    pub booked_by: String,
    /// The call-queue entry made for it.
    pub call_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

const MEETING: &str =
    "SELECT id, contact_id, worker_id, starts_at, ends_at, status, notes, booked_by, call_id, created_at FROM meetings";

fn meeting(r: &Row) -> Meeting {
    Meeting {
        id: MeetingId::from_trusted(r.get("id")),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        worker_id: r.get("worker_id"),
        starts_at: r.get("starts_at"),
        ends_at: r.get("ends_at"),
        status: r.get("status"),
        notes: r.get("notes"),
        booked_by: r.get("booked_by"),
        call_id: r.get("call_id"),
        created_at: r.get("created_at"),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn book(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    worker: Option<&WorkerId>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    notes: Option<&str>,
    actor: &str,
) -> Result<Meeting> {
    let id = MeetingId::new();
    tx.execute_typed(
        "INSERT INTO meetings (id, team_id, contact_id, worker_id, starts_at, ends_at, notes, booked_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT,
                worker.map(|w| w.as_str()) => TEXT, starts_at => TIMESTAMPTZ, ends_at => TIMESTAMPTZ, notes => TEXT,
                actor => TEXT],
    )
    .await?;
    meeting_get(tx, &id).await
}

pub async fn set_call(tx: &Tx<'_>, id: &MeetingId, call: &str) -> Result<()> {
    tx.execute_typed("UPDATE meetings SET call_id = $2 WHERE id = $1", params![id.as_str() => TEXT, call => TEXT])
        .await?;
    Ok(())
}

pub async fn meeting_get(tx: &Tx<'_>, id: &MeetingId) -> Result<Meeting> {
    let rows = tx.query_typed(&format!("{MEETING} WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(meeting).ok_or(StoreError::NotFound)
}

/// Meetings from `from` on, soonest first (a contact's, or the team's).
pub async fn meetings(
    tx: &Tx<'_>,
    contact: Option<&ContactId>,
    from: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Meeting>> {
    let rows = tx
        .query_typed(
            &format!(
                "{MEETING} WHERE ($1::text IS NULL OR contact_id = $1) AND ends_at >= $2 ORDER BY starts_at, id LIMIT $3"
            ),
            params![contact.map(|c| c.as_str()) => TEXT, from => TIMESTAMPTZ, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(meeting).collect())
}

/// Another booked meeting of the lead overlapping this time.
pub async fn overlapping(
    tx: &Tx<'_>,
    contact: &ContactId,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<Option<Meeting>> {
    let rows = tx
        .query_typed(
            &format!(
                "{MEETING} WHERE contact_id = $1 AND status = 'booked' AND starts_at < $3 AND ends_at > $2 LIMIT 1"
            ),
            params![contact.as_str() => TEXT, starts_at => TIMESTAMPTZ, ends_at => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(meeting))
}

// Research -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Research {
    pub contact_id: ContactId,
    pub brief: String,
    pub citations: Vec<String>,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The cached brief, while fresh.
pub async fn research(tx: &Tx<'_>, contact: &ContactId, now: DateTime<Utc>) -> Result<Option<Research>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id, brief, citations, source, created_at, expires_at FROM ai_research
              WHERE contact_id = $1 AND expires_at > $2",
            params![contact.as_str() => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| Research {
        contact_id: ContactId::from_trusted(r.get(0)),
        brief: r.get(1),
        citations: serde_json::from_value(r.get(2)).unwrap_or_default(),
        source: r.get(3),
        created_at: r.get(4),
        expires_at: r.get(5),
    }))
}

#[allow(clippy::too_many_arguments)]
pub async fn save_research(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    brief: &str,
    citations: &[String],
    source: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Research> {
    let c = serde_json::to_value(citations).unwrap_or_default();
    tx.execute_typed(
        "INSERT INTO ai_research (team_id, contact_id, brief, citations, source, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (team_id, contact_id) DO UPDATE SET brief = EXCLUDED.brief, citations = EXCLUDED.citations,
            source = EXCLUDED.source, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
        params![team.as_str() => TEXT, contact.as_str() => TEXT, brief => TEXT, c => JSONB, source => TEXT,
                now => TIMESTAMPTZ, expires_at => TIMESTAMPTZ],
    )
    .await?;
    research(tx, contact, now).await?.ok_or(StoreError::NotFound)
}

/// The fresh briefs of these contacts.
pub async fn research_for(tx: &Tx<'_>, contacts: &[String], now: DateTime<Utc>) -> Result<Vec<Research>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id, brief, citations, source, created_at, expires_at FROM ai_research
              WHERE contact_id = ANY($1) AND expires_at > $2",
            params![contacts => TEXT_ARRAY, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Research {
            contact_id: ContactId::from_trusted(r.get(0)),
            brief: r.get(1),
            citations: serde_json::from_value(r.get(2)).unwrap_or_default(),
            source: r.get(3),
            created_at: r.get(4),
            expires_at: r.get(5),
        })
        .collect())
}
