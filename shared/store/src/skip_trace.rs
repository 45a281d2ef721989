//! Skip-trace jobs: requested for some contacts, completed by the provider's callback.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, SkipTraceId, TeamId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

nextier_domain::text_enum! {
    /// Where a skip-trace job stands (`skip_trace_jobs.status`).
    pub enum JobStatus {
        /// Recorded; the provider has not answered the request yet.
        Requesting = "requesting",
        /// The provider took it; its callback is awaited.
        Requested = "requested",
        /// The results joined the contacts.
        Completed = "completed",
        /// The provider refused it or reported a failure.
        Failed = "failed",
    }
}

impl JobStatus {
    /// Ended: a callback changes nothing more.
    pub fn ended(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

/// How a job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Completed,
    Failed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: SkipTraceId,
    pub provider: String,
    pub provider_job_id: Option<String>,
    pub status: JobStatus,
    pub contact_ids: Vec<String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
}

const COLS: &str =
    "id, provider, provider_job_id, status, contact_ids, requested_by, requested_at, completed_at, error, summary";

fn job(r: &Row) -> Job {
    Job {
        id: SkipTraceId::from_trusted(r.get("id")),
        provider: r.get("provider"),
        provider_job_id: r.get("provider_job_id"),
        // The table's CHECK allows no other; a newer writer's value reads as ended (no callback
        // applies twice on its account).
        status: JobStatus::parse(r.get("status")).unwrap_or(JobStatus::Failed),
        contact_ids: r.get("contact_ids"),
        requested_by: r.get("requested_by"),
        requested_at: r.get("requested_at"),
        completed_at: r.get("completed_at"),
        error: r.get("error"),
        summary: r.get("summary"),
    }
}

pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    contacts: &[ContactId],
    token_hash: &str,
    actor: &str,
) -> Result<SkipTraceId> {
    let id = SkipTraceId::new();
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    tx.query_typed(
        "INSERT INTO skip_trace_jobs (id, team_id, provider, contact_ids, token_hash, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, provider => TEXT, ids => TEXT_ARRAY,
                token_hash => TEXT, actor => TEXT],
    )
    .await?;
    Ok(id)
}

pub async fn get(tx: &Tx<'_>, id: &SkipTraceId) -> Result<Job> {
    let rows = tx
        .query_typed(&format!("SELECT {COLS} FROM skip_trace_jobs WHERE id = $1"), params![id.as_str() => TEXT])
        .await?;
    rows.first().map(job).ok_or(StoreError::NotFound)
}

pub async fn lock(tx: &Tx<'_>, id: &SkipTraceId) -> Result<Job> {
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM skip_trace_jobs WHERE id = $1 FOR UPDATE"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(job).ok_or(StoreError::NotFound)
}

/// The provider took the request (`Ok(job id)`) or refused it.
pub async fn requested(tx: &Tx<'_>, id: &SkipTraceId, outcome: std::result::Result<&str, &str>) -> Result<()> {
    let (provider_job, error) = match outcome {
        Ok(j) => (Some(j), None),
        Err(e) => (None, Some(e)),
    };
    tx.query_typed(
        "UPDATE skip_trace_jobs SET provider_job_id = $2, error = $3,
                status = CASE WHEN $2 IS NULL THEN 'failed' ELSE 'requested' END
          WHERE id = $1 AND status = 'requesting'",
        params![id.as_str() => TEXT, provider_job => TEXT, error => TEXT],
    )
    .await?;
    Ok(())
}

pub async fn finish(
    tx: &Tx<'_>,
    id: &SkipTraceId,
    ending: Ending,
    summary: &serde_json::Value,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let status = match ending {
        Ending::Completed => JobStatus::Completed,
        Ending::Failed => JobStatus::Failed,
    };
    tx.query_typed(
        "UPDATE skip_trace_jobs SET status = $2, summary = $3, error = coalesce($4, error), completed_at = $5 WHERE id = $1",
        params![id.as_str() => TEXT, status.as_str() => TEXT, summary => JSONB, error => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Across teams: the job a callback token belongs to.
pub async fn job_for_token(tx: &Tx<'_>, token_hash: &str) -> Result<Option<(SkipTraceId, TeamId)>> {
    let rows =
        tx.query_typed("SELECT job_id, team_id FROM skip_trace_job_for_token($1)", params![token_hash => TEXT]).await?;
    Ok(rows.first().map(|r| (SkipTraceId::from_trusted(r.get(0)), TeamId::from_trusted(r.get(1)))))
}
