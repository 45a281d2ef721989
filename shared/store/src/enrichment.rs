//! Enrichment jobs, their items, the provider cache and the cost ledger (migration 0020).
//! Every function runs in a tenant-scoped transaction.

use chrono::{DateTime, NaiveDate, Utc};
use nextier_domain::enrichment::{Provider, Status};
use nextier_domain::ids::{ContactId, EnrichmentJobId, RowId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

nextier_domain::text_enum! {
    /// Where a job stands.
    pub enum JobStatus {
        /// Its contacts are being walked.
        Running = "running",
        /// A provider's daily cap was reached: it resumes at `waitingUntil` (`waitReason`).
        Waiting = "waiting",
        /// Every contact has its verdict.
        Completed = "completed",
        /// Stopped by a person; what was done stays.
        Cancelled = "cancelled",
    }
}

nextier_domain::text_enum! {
    /// Where one contact of a job is.
    pub enum Stage {
        /// Waiting for its skip trace.
        Trace = "trace",
        /// Its trace is queued at the provider.
        Poll = "poll",
        /// Its numbers are being graded and the rules applied.
        Grade = "grade",
        /// It has its outcome.
        Done = "done",
    }
}

/// What a job covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Contacts,
    Filter,
    Import,
    Business,
}

impl SourceKind {
    fn as_str(self) -> &'static str {
        match self {
            SourceKind::Contacts => "contacts",
            SourceKind::Filter => "filter",
            SourceKind::Import => "import",
            SourceKind::Business => "business",
        }
    }
}

/// A provider's share of a job: calls made, credits spent, calls the cache saved, failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCount {
    pub provider: String,
    pub calls: i64,
    pub credits: i64,
    pub cache_hits: i64,
    pub failures: i64,
}

/// A job and its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: EnrichmentJobId,
    pub status: JobStatus,
    /// `contacts`, `filter` or `import`.
    pub source_kind: String,
    #[schema(value_type = Object)]
    pub source: serde_json::Value,
    pub total: i32,
    /// Contacts with their verdict.
    pub done: i64,
    pub ready: i64,
    pub rejected: i64,
    /// Graded, neither ready nor rejected by the rules (a person decides).
    pub graded: i64,
    /// Contacts a provider could not serve (the reason is on the item).
    pub failed: i64,
    pub waiting_until: Option<DateTime<Utc>>,
    pub wait_reason: Option<String>,
    pub providers: Vec<ProviderCount>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const JOB: &str = "SELECT j.id, j.status, j.source_kind, j.source, j.total, j.waiting_until, j.wait_reason,
        j.requested_by, j.created_at, j.completed_at,
        (SELECT count(*) FROM enrichment_items i WHERE i.job_id = j.id AND i.stage = 'done') AS done,
        (SELECT count(*) FROM enrichment_items i WHERE i.job_id = j.id AND i.outcome = 'ready') AS ready,
        (SELECT count(*) FROM enrichment_items i WHERE i.job_id = j.id AND i.outcome = 'rejected') AS rejected,
        (SELECT count(*) FROM enrichment_items i WHERE i.job_id = j.id AND i.stage = 'done' AND i.outcome IS NULL) AS graded,
        (SELECT count(*) FROM enrichment_items i WHERE i.job_id = j.id AND i.outcome = 'failed') AS failed,
        coalesce((SELECT json_agg(json_build_object('provider', c.provider, 'calls', c.calls, 'credits', c.credits,
                      'cacheHits', c.cache_hits, 'failures', c.failures) ORDER BY c.provider)
                    FROM (SELECT provider, sum(calls) AS calls, sum(credits) AS credits, sum(cache_hits) AS cache_hits,
                                 sum(failures) AS failures
                            FROM enrichment_costs WHERE job_id = j.id GROUP BY provider) c), '[]') AS providers
   FROM enrichment_jobs j";

fn job(r: &Row) -> Job {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct P {
        provider: String,
        calls: i64,
        credits: i64,
        cache_hits: i64,
        failures: i64,
    }
    let providers: Vec<P> = serde_json::from_value(r.get("providers")).unwrap_or_default();
    Job {
        id: EnrichmentJobId::from_trusted(r.get("id")),
        status: JobStatus::parse(r.get("status")).unwrap_or(JobStatus::Cancelled),
        source_kind: r.get("source_kind"),
        source: r.get("source"),
        total: r.get("total"),
        done: r.get("done"),
        ready: r.get("ready"),
        rejected: r.get("rejected"),
        graded: r.get("graded"),
        failed: r.get("failed"),
        waiting_until: r.get("waiting_until"),
        wait_reason: r.get("wait_reason"),
        providers: providers
            .into_iter()
            .map(|p| ProviderCount {
                provider: p.provider,
                calls: p.calls,
                credits: p.credits,
                cache_hits: p.cache_hits,
                failures: p.failures,
            })
            .collect(),
        requested_by: r.get("requested_by"),
        created_at: r.get("created_at"),
        completed_at: r.get("completed_at"),
    }
}

/// Records a job over `contacts` (each once, all of this team: RLS and the foreign key see to
/// it), every item at the trace stage. A contact another running job is still working on is
/// left to that job (so nobody pays twice); jobs of a team are created one at a time. `None`
/// when an automatic job for the same import exists; else the job and how many contacts it
/// took.
pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    kind: SourceKind,
    source: &serde_json::Value,
    contacts: &[ContactId],
    actor: &str,
) -> Result<Option<(EnrichmentJobId, usize)>> {
    tx.execute_typed("SELECT pg_advisory_xact_lock(hashtext('enrichment:' || $1))", params![team.as_str() => TEXT])
        .await?;
    let id = EnrichmentJobId::new();
    let inserted = tx
        .execute_typed(
            "INSERT INTO enrichment_jobs (id, team_id, source_kind, source, total, requested_by)
             VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING",
            params![id.as_str() => TEXT, team.as_str() => TEXT, kind.as_str() => TEXT, source => JSONB, actor => TEXT],
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    let taken = tx
        .execute_typed(
            "INSERT INTO enrichment_items (team_id, job_id, contact_id)
             SELECT $1, $2, c FROM unnest($3::text[]) AS c
              WHERE NOT EXISTS (SELECT 1 FROM enrichment_items i JOIN enrichment_jobs j ON j.id = i.job_id
                                 WHERE i.contact_id = c AND i.stage <> 'done' AND j.status IN ('running', 'waiting'))
             ON CONFLICT DO NOTHING",
            params![team.as_str() => TEXT, id.as_str() => TEXT, ids => TEXT_ARRAY],
        )
        .await?;
    tx.execute_typed(
        "UPDATE enrichment_jobs SET total = $2 WHERE id = $1",
        params![id.as_str() => TEXT, (taken as i32) => INT4],
    )
    .await?;
    Ok(Some((id, taken as usize)))
}

/// Removes a job that took no contact (just created, in the same transaction).
pub async fn delete_empty(tx: &Tx<'_>, id: &EnrichmentJobId) -> Result<()> {
    tx.execute_typed("DELETE FROM enrichment_jobs WHERE id = $1 AND total = 0", params![id.as_str() => TEXT]).await?;
    Ok(())
}

/// Adds contacts to a running job at `stage` (people a provider found on the way); the ones
/// added.
pub async fn add_items(
    tx: &Tx<'_>,
    team: &TeamId,
    job: &EnrichmentJobId,
    contacts: &[ContactId],
    stage: Stage,
) -> Result<Vec<ContactId>> {
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    let rows = tx
        .query_typed(
            "INSERT INTO enrichment_items (team_id, job_id, contact_id, stage)
             SELECT $1, $2, c, $4 FROM unnest($3::text[]) AS c ON CONFLICT DO NOTHING RETURNING contact_id",
            params![team.as_str() => TEXT, job.as_str() => TEXT, ids => TEXT_ARRAY, stage.as_str() => TEXT],
        )
        .await?;
    tx.execute_typed(
        "UPDATE enrichment_jobs SET total = total + $2 WHERE id = $1",
        params![job.as_str() => TEXT, (rows.len() as i32) => INT4],
    )
    .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

pub async fn get(tx: &Tx<'_>, id: &EnrichmentJobId) -> Result<Job> {
    let rows = tx.query_typed(&format!("{JOB} WHERE j.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(job).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Job>> {
    let rows = tx
        .query_typed(
            &format!("{JOB} WHERE ($1::text IS NULL OR j.id < $1) ORDER BY j.id DESC LIMIT $2"),
            params![page.after.as_deref() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(job).collect())
}

/// The job's status, without a lock (steps of one job run side by side).
pub async fn status(tx: &Tx<'_>, id: &EnrichmentJobId) -> Result<JobStatus> {
    let rows = tx.query_typed("SELECT status FROM enrichment_jobs WHERE id = $1", params![id.as_str() => TEXT]).await?;
    rows.first().map(|r| JobStatus::parse(r.get(0)).unwrap_or(JobStatus::Cancelled)).ok_or(StoreError::NotFound)
}

/// The job's status, locked for the rest of the transaction.
pub async fn lock_status(tx: &Tx<'_>, id: &EnrichmentJobId) -> Result<JobStatus> {
    let rows = tx
        .query_typed("SELECT status FROM enrichment_jobs WHERE id = $1 FOR UPDATE", params![id.as_str() => TEXT])
        .await?;
    rows.first().map(|r| JobStatus::parse(r.get(0)).unwrap_or(JobStatus::Cancelled)).ok_or(StoreError::NotFound)
}

/// The job's status and, when waiting, until when; locked for the rest of the transaction.
pub async fn lock(tx: &Tx<'_>, id: &EnrichmentJobId) -> Result<(JobStatus, Option<DateTime<Utc>>)> {
    let rows = tx
        .query_typed(
            "SELECT status, waiting_until FROM enrichment_jobs WHERE id = $1 FOR UPDATE",
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first()
        .map(|r| (JobStatus::parse(r.get(0)).unwrap_or(JobStatus::Cancelled), r.get(1)))
        .ok_or(StoreError::NotFound)
}

/// Queued traces of the job not polled since `before` (a poll step that was lost): their
/// references, touched so that one caller re-polls each.
pub async fn stale_polls(tx: &Tx<'_>, job: &EnrichmentJobId, before: DateTime<Utc>) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "UPDATE enrichment_items SET updated_at = now()
              WHERE job_id = $1 AND stage = 'poll' AND provider_ref NOT LIKE 'claim:%' AND updated_at < $2
              RETURNING provider_ref",
            params![job.as_str() => TEXT, before => TIMESTAMPTZ],
        )
        .await?;
    let mut refs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    refs.sort();
    refs.dedup();
    Ok(refs)
}

/// Claims contacts for a provider call under `claim`, with what is asked for each.
pub async fn claim_for_trace(
    tx: &Tx<'_>,
    job: &EnrichmentJobId,
    batch: &[(ContactId, serde_json::Value)],
    claim: &str,
) -> Result<()> {
    let ids: Vec<&str> = batch.iter().map(|(c, _)| c.as_str()).collect();
    let asked: Vec<serde_json::Value> = batch.iter().map(|(_, q)| q.clone()).collect();
    tx.execute_typed(
        "UPDATE enrichment_items i SET stage = 'poll', provider_ref = $4, submitted = a.q, updated_at = now()
           FROM unnest($2::text[], $3::jsonb[]) AS a(c, q)
          WHERE i.job_id = $1 AND i.contact_id = a.c AND i.stage <> 'done'",
        params![job.as_str() => TEXT, ids => TEXT_ARRAY, asked => JSONB_ARRAY, claim => TEXT],
    )
    .await?;
    Ok(())
}

/// Takes the contact's lease until `until` (or gives it back with `None`); false when another
/// delivery holds it.
pub async fn lease(
    tx: &Tx<'_>,
    job: &EnrichmentJobId,
    contact: &ContactId,
    now: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE enrichment_items SET leased_until = $4
              WHERE job_id = $1 AND contact_id = $2 AND ($4::timestamptz IS NULL OR leased_until IS NULL OR leased_until <= $3)",
            params![job.as_str() => TEXT, contact.as_str() => TEXT, now => TIMESTAMPTZ, until => TIMESTAMPTZ],
        )
        .await?;
    Ok(n == 1)
}

/// Up to `limit` of the job's contacts at `stage`, oldest first, locked (skipping any another
/// consumer holds).
pub async fn at_stage(tx: &Tx<'_>, job: &EnrichmentJobId, stage: Stage, limit: i64) -> Result<Vec<ContactId>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id FROM enrichment_items WHERE job_id = $1 AND stage = $2
              ORDER BY contact_id LIMIT $3 FOR UPDATE SKIP LOCKED",
            params![job.as_str() => TEXT, stage.as_str() => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

/// The job's contacts whose trace is queued under `reference`, locked: each with its polls
/// so far and what was asked for it.
pub async fn polling(
    tx: &Tx<'_>,
    job: &EnrichmentJobId,
    reference: &str,
) -> Result<Vec<(ContactId, i32, Option<serde_json::Value>)>> {
    let rows = tx
        .query_typed(
            "SELECT contact_id, polls, submitted FROM enrichment_items
              WHERE job_id = $1 AND stage = 'poll' AND provider_ref = $2
              ORDER BY contact_id FOR UPDATE",
            params![job.as_str() => TEXT, reference => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| (ContactId::from_trusted(r.get(0)), r.get(1), r.get(2))).collect())
}

/// The item's stage, locked (`None` when the contact is not in the job).
pub async fn lock_item(tx: &Tx<'_>, job: &EnrichmentJobId, contact: &ContactId) -> Result<Option<Stage>> {
    let rows = tx
        .query_typed(
            "SELECT stage FROM enrichment_items WHERE job_id = $1 AND contact_id = $2 FOR UPDATE",
            params![job.as_str() => TEXT, contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| Stage::parse(r.get(0)).unwrap_or(Stage::Done)))
}

/// Moves contacts of the job to `stage` (with the provider's reference while polled).
pub async fn move_to(
    tx: &Tx<'_>,
    job: &EnrichmentJobId,
    contacts: &[ContactId],
    stage: Stage,
    reference: Option<&str>,
) -> Result<()> {
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    tx.execute_typed(
        "UPDATE enrichment_items SET stage = $3, provider_ref = $4, updated_at = now()
          WHERE job_id = $1 AND contact_id = ANY($2) AND stage <> 'done'",
        params![job.as_str() => TEXT, ids => TEXT_ARRAY, stage.as_str() => TEXT, reference => TEXT],
    )
    .await?;
    Ok(())
}

/// A batch claimed for a provider call (`provider_ref` `claim:...`) and not settled since
/// `before` was interrupted: its contacts go back to be traced.
pub async fn release_stale_claims(tx: &Tx<'_>, job: &EnrichmentJobId, before: DateTime<Utc>) -> Result<u64> {
    Ok(tx
        .execute_typed(
            "UPDATE enrichment_items SET stage = 'trace', provider_ref = NULL, updated_at = now()
              WHERE job_id = $1 AND stage = 'poll' AND provider_ref LIKE 'claim:%' AND updated_at < $2",
            params![job.as_str() => TEXT, before => TIMESTAMPTZ],
        )
        .await?)
}

/// Contacts whose trace is in flight: claimed for a call, or queued at the provider.
pub async fn claims_in_flight(tx: &Tx<'_>, job: &EnrichmentJobId) -> Result<i64> {
    let rows = tx
        .query_typed(
            "SELECT count(*) FROM enrichment_items WHERE job_id = $1 AND stage = 'poll'",
            params![job.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// The provider queued the claimed batch under `reference`.
pub async fn rename_claim(tx: &Tx<'_>, job: &EnrichmentJobId, claim: &str, reference: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE enrichment_items SET provider_ref = $3, updated_at = now()
          WHERE job_id = $1 AND stage = 'poll' AND provider_ref = $2",
        params![job.as_str() => TEXT, claim => TEXT, reference => TEXT],
    )
    .await?;
    Ok(())
}

/// The claimed batch goes back to be traced.
pub async fn release_claim(tx: &Tx<'_>, job: &EnrichmentJobId, claim: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE enrichment_items SET stage = 'trace', provider_ref = NULL, updated_at = now()
          WHERE job_id = $1 AND stage = 'poll' AND provider_ref = $2",
        params![job.as_str() => TEXT, claim => TEXT],
    )
    .await?;
    Ok(())
}

/// One more poll of the contacts queued under `reference`.
pub async fn polled(tx: &Tx<'_>, job: &EnrichmentJobId, reference: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE enrichment_items SET polls = polls + 1, updated_at = now()
          WHERE job_id = $1 AND provider_ref = $2 AND stage = 'poll'",
        params![job.as_str() => TEXT, reference => TEXT],
    )
    .await?;
    Ok(())
}

/// The contact's outcome in the job (`None`: graded, a person decides).
pub async fn finish_item(
    tx: &Tx<'_>,
    job: &EnrichmentJobId,
    contact: &ContactId,
    outcome: Option<&str>,
    reason: &str,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE enrichment_items SET stage = 'done', outcome = $3, reason = $4, provider_ref = NULL, updated_at = now()
          WHERE job_id = $1 AND contact_id = $2",
        params![job.as_str() => TEXT, contact.as_str() => TEXT, outcome => TEXT, reason => TEXT],
    )
    .await?;
    Ok(())
}

/// Completes the job once every contact has its outcome; true when this call completed it.
pub async fn complete_if_done(tx: &Tx<'_>, job: &EnrichmentJobId, now: DateTime<Utc>) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE enrichment_jobs SET status = 'completed', completed_at = $2, waiting_until = NULL, wait_reason = NULL
              WHERE id = $1 AND status IN ('running', 'waiting')
                AND NOT EXISTS (SELECT 1 FROM enrichment_items WHERE job_id = $1 AND stage <> 'done')",
            params![job.as_str() => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(n == 1)
}

/// The job waits for a provider's cap (`Some`) or runs again (`None`).
pub async fn set_waiting(tx: &Tx<'_>, job: &EnrichmentJobId, waiting: Option<(DateTime<Utc>, &str)>) -> Result<()> {
    let (until, reason) = match waiting {
        Some((u, r)) => (Some(u), Some(r)),
        None => (None, None),
    };
    tx.execute_typed(
        "UPDATE enrichment_jobs SET status = CASE WHEN $2::timestamptz IS NULL THEN 'running' ELSE 'waiting' END,
                waiting_until = $2, wait_reason = $3
          WHERE id = $1 AND status IN ('running', 'waiting')",
        params![job.as_str() => TEXT, until => TIMESTAMPTZ, reason => TEXT],
    )
    .await?;
    Ok(())
}

/// Stops a job: the contacts not yet done are left as they are.
pub async fn cancel(tx: &Tx<'_>, job: &EnrichmentJobId, now: DateTime<Utc>) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE enrichment_jobs SET status = 'cancelled', completed_at = $2, waiting_until = NULL
              WHERE id = $1 AND status IN ('running', 'waiting')",
            params![job.as_str() => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    // A business whose enrichment is cancelled may be asked again.
    tx.execute_typed(
        "UPDATE businesses SET apollo_status = NULL, apollo_reason = 'cancelled'
          WHERE apollo_status = 'requested'
            AND id = (SELECT source->>'businessId' FROM enrichment_jobs WHERE id = $1 AND source_kind = 'business')",
        params![job.as_str() => TEXT],
    )
    .await?;
    Ok(n == 1)
}

/// A cached answer still fresh at `now`.
pub async fn cached(tx: &Tx<'_>, provider: &str, key: &str, now: DateTime<Utc>) -> Result<Option<serde_json::Value>> {
    let rows = tx
        .query_typed(
            "SELECT answer FROM enrichment_cache
              WHERE team_id = app_team_id() AND provider = $1 AND input_hash = $2 AND expires_at > $3",
            params![provider => TEXT, key => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// Keeps a provider's answer for its lifetime (`Provider::cache_days`).
pub async fn cache(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: Provider,
    key: &str,
    answer: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let expires = now + chrono::Duration::days(provider.cache_days());
    let provider = provider.as_str();
    tx.execute_typed(
        "INSERT INTO enrichment_cache (team_id, provider, input_hash, answer, fetched_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (team_id, provider, input_hash)
         DO UPDATE SET answer = EXCLUDED.answer, fetched_at = EXCLUDED.fetched_at, expires_at = EXCLUDED.expires_at",
        params![team.as_str() => TEXT, provider => TEXT, key => TEXT, answer => JSONB, now => TIMESTAMPTZ,
                expires => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// What one step cost, added to the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub calls: i32,
    pub credits: i32,
    pub cache_hits: i32,
    pub failures: i32,
}

/// The ledger's name for calls made outside any enrichment job: property searches and details.
pub const PROPERTY_LEDGER: &str = "property";

/// Adds to the ledger row of the job, the provider and `now`'s UTC day.
pub async fn charge(
    tx: &Tx<'_>,
    team: &TeamId,
    job: &EnrichmentJobId,
    provider: Provider,
    now: DateTime<Utc>,
    c: Cost,
) -> Result<()> {
    charge_to(tx, team, job.as_str(), provider, now, c).await
}

/// Adds to a ledger row by name: a job's id or [`PROPERTY_LEDGER`].
pub async fn charge_to(
    tx: &Tx<'_>,
    team: &TeamId,
    job: &str,
    provider: Provider,
    now: DateTime<Utc>,
    c: Cost,
) -> Result<()> {
    let (provider, day) = (provider.as_str(), now.date_naive());
    if c == Cost::default() {
        return Ok(());
    }
    tx.execute_typed(
        "INSERT INTO enrichment_costs (team_id, job_id, provider, day, calls, credits, cache_hits, failures)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (team_id, job_id, provider, day) DO UPDATE SET
             calls = enrichment_costs.calls + EXCLUDED.calls, credits = enrichment_costs.credits + EXCLUDED.credits,
             cache_hits = enrichment_costs.cache_hits + EXCLUDED.cache_hits,
             failures = enrichment_costs.failures + EXCLUDED.failures",
        params![team.as_str() => TEXT, job => TEXT, provider => TEXT, day => DATE, c.calls => INT4,
                c.credits => INT4, c.cache_hits => INT4, c.failures => INT4],
    )
    .await?;
    Ok(())
}

/// The team's spend per provider and day, most recent first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyCost {
    pub day: NaiveDate,
    pub provider: String,
    pub calls: i64,
    pub credits: i64,
    pub cache_hits: i64,
}

pub async fn daily_costs(tx: &Tx<'_>, days: i32) -> Result<Vec<DailyCost>> {
    let rows = tx
        .query_typed(
            "SELECT day, provider, sum(calls)::int8, sum(credits)::int8, sum(cache_hits)::int8 FROM enrichment_costs
              WHERE day > current_date - $1 GROUP BY day, provider ORDER BY day DESC, provider",
            params![days => INT4],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| DailyCost {
            day: r.get(0),
            provider: r.get(1),
            calls: r.get(2),
            credits: r.get(3),
            cache_hits: r.get(4),
        })
        .collect())
}

/// The contacts an import created (still live), at most `limit`.
pub async fn contacts_of_import(
    tx: &Tx<'_>,
    import: &nextier_domain::ids::ImportId,
    limit: i64,
) -> Result<Vec<ContactId>> {
    let rows = tx
        .query_typed(
            "SELECT DISTINCT e.contact_id FROM contact_events e JOIN contacts c ON c.id = e.contact_id
              WHERE e.team_id = app_team_id() AND e.kind = 'imported' AND e.data->>'importId' = $1
                AND c.deleted_at IS NULL AND c.merged_into IS NULL
              ORDER BY e.contact_id LIMIT $2",
            params![import.as_str() => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

/// Adds a number a provider found, with its source; false when the team already has it (on
/// this contact or another: enrichment never takes a number from anyone).
pub async fn add_found_phone(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    e164: &str,
    kind: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let rows = tx
        .query_typed(
            "INSERT INTO contact_phones (id, team_id, contact_id, e164, type, source, sourced_at)
             VALUES ($1, $2, $3, $4, $5::phone_type, $6, $7) ON CONFLICT (team_id, e164) DO NOTHING RETURNING 1",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, e164 => TEXT,
                    kind => TEXT, source => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Adds an address a provider found (lower-cased), with its source; false when the team has it.
pub async fn add_found_email(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    email: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let rows = tx
        .query_typed(
            "INSERT INTO contact_emails (id, team_id, contact_id, email, source, sourced_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team_id, email) DO NOTHING RETURNING 1",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, email => TEXT,
                    source => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// A number of the contact as grading sees it.
#[derive(Debug, Clone)]
pub struct GradablePhone {
    pub e164: String,
    /// The type recorded with the number (a person's word, or the finder's).
    pub kind: String,
    pub line_type: Option<String>,
    pub grade: Option<char>,
    pub activity: Option<i32>,
    pub do_not_call: bool,
    pub graded_at: Option<DateTime<Utc>>,
}

pub async fn phones(tx: &Tx<'_>, contact: &ContactId) -> Result<Vec<GradablePhone>> {
    let rows = tx
        .query_typed(
            "SELECT e164, type::text, line_type::text, line_grade::text, activity_score, do_not_call, graded_at
               FROM contact_phones WHERE contact_id = $1 ORDER BY is_primary DESC, id",
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GradablePhone {
            e164: r.get(0),
            kind: r.get(1),
            line_type: r.get(2),
            grade: r.get::<_, Option<String>>(3).and_then(|g| g.chars().next()),
            activity: r.get(4),
            do_not_call: r.get(5),
            graded_at: r.get(6),
        })
        .collect())
}

/// What phone intelligence said of a number, on columns of its own (the type a person gave
/// stays); the carrier only where none is known.
#[allow(clippy::too_many_arguments)]
pub async fn grade_phone(
    tx: &Tx<'_>,
    contact: &ContactId,
    e164: &str,
    line_type: &str,
    carrier: Option<&str>,
    grade: Option<char>,
    activity: Option<i32>,
    name_match: Option<bool>,
    prepaid: Option<bool>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let grade = grade.map(|g| g.to_string());
    tx.execute_typed(
        "UPDATE contact_phones SET line_type = $3::phone_type, carrier = coalesce(carrier, $4), line_grade = $5,
                activity_score = $6, name_match = $7, prepaid = $8, graded_by = $9, graded_at = $10,
                type = CASE WHEN type = 'unknown' THEN $3::phone_type ELSE type END
          WHERE contact_id = $1 AND e164 = $2",
        params![contact.as_str() => TEXT, e164 => TEXT, line_type => TEXT, carrier => TEXT, grade => TEXT,
                activity => INT4, name_match => BOOL, prepaid => BOOL, by => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// The contact's enrichment status and its reason.
pub async fn set_status(
    tx: &Tx<'_>,
    contact: &ContactId,
    status: Status,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE contacts SET enrichment_status = $2, enrichment_reason = $3, enriched_at = $4 WHERE id = $1",
        params![contact.as_str() => TEXT, status.as_str() => TEXT, reason => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Keeps an answer until `expires` (for answers whose lifetime is not their provider's).
#[allow(clippy::too_many_arguments)]
pub async fn cache_until(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    key: &str,
    answer: &serde_json::Value,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO enrichment_cache (team_id, provider, input_hash, answer, fetched_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (team_id, provider, input_hash)
         DO UPDATE SET answer = EXCLUDED.answer, fetched_at = EXCLUDED.fetched_at, expires_at = EXCLUDED.expires_at",
        params![team.as_str() => TEXT, provider => TEXT, key => TEXT, answer => JSONB, now => TIMESTAMPTZ,
                expires => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}
