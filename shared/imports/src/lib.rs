//! The lead-import worker: streams an uploaded CSV (never whole in memory) through
//! validation and phone normalisation into staging in checkpointed chunks, then merges into
//! the team's contacts in one transaction and writes a per-row error report.
//!
//! It runs as the `consumer-lead-import` Lambda on the `lead-import` queue, fed by S3 event
//! notifications (and locally by the local runtime's blob server), and by its own
//! continuation messages when a file takes longer than one invocation may.

mod report;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use csv_async::{AsyncReaderBuilder, ByteRecord};
use nextier_domain::ids::{ImportId, TeamId};
use nextier_domain::import::{decode, looks_binary, normalise, Columns, RowProblem};
use nextier_platform::BlobStore;
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::imports::{self, Claim, Staged, Work};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, Db, Scope};
use serde_json::json;

pub const QUEUE: &str = "lead-import";
/// The import consumer: one upload at a time, 15-minute invocations (visibility 6 × 900 s).
pub const CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: QUEUE,
    batch_size: 1,
    visibility_secs: 5400,
    max_receives: 5,
    concurrency: 1,
};

/// Tunables; the defaults fit a Lambda with 15 minutes and 1 GB.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rows staged per transaction (and per checkpoint).
    pub chunk_rows: usize,
    /// Stop reading and hand over to a continuation message after this long.
    pub budget: Duration,
    /// At most this many problems are listed in the error report.
    pub report_rows: i64,
    /// A file over this size is refused as it is read (nothing of it is merged).
    pub max_bytes: u64,
}

/// The largest file an import takes: 200 MB (about a million rows of a wide lead list).
pub const MAX_BYTES: u64 = 200 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self { chunk_rows: 5_000, budget: Duration::from_secs(600), report_rows: 200_000, max_bytes: MAX_BYTES }
    }
}

pub struct Importer<'a> {
    pub db: &'a Db,
    pub blobs: &'a dyn BlobStore,
    pub limits: Limits,
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Completed,
    Failed(String),
    /// Out of time: a continuation message was queued (through the outbox).
    Continued,
    /// Duplicate delivery of a finished job.
    AlreadyFinished,
    /// Another worker holds the job's lease.
    Busy,
}

const LEASE_SECS: i32 = 900;

fn transient(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl Importer<'_> {
    /// Runs (or resumes) one job. Errors are transient (the message is redelivered); a bad
    /// file ends as `Ran::Failed` with a reason for the person who uploaded it.
    pub async fn run(&self, team: &TeamId, id: &ImportId) -> anyhow::Result<(Ran, Vec<nextier_domain::ids::OutboxId>)> {
        let started = Instant::now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let work = match imports::claim(&tx, id, LEASE_SECS).await {
            Ok(Claim::Work(w)) => w,
            Ok(Claim::Finished) => return Ok((Ran::AlreadyFinished, vec![])),
            Ok(Claim::Busy) => return Ok((Ran::Busy, vec![])),
            // An object in imports/ that no job knows: nothing to do.
            Err(nextier_store::StoreError::NotFound) => return Ok((Ran::AlreadyFinished, vec![])),
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        drop(conn);
        match self.stream(team, id, &work, started).await? {
            Streamed::Failed(reason) => {
                self.finish_failed(team, id, &reason).await?;
                Ok((Ran::Failed(reason), vec![]))
            }
            Streamed::Continued(ids) => Ok((Ran::Continued, ids)),
            Streamed::Done => {
                let ids = self.merge(team, id, &work).await?;
                Ok((Ran::Completed, ids))
            }
        }
    }

    async fn stream(&self, team: &TeamId, id: &ImportId, work: &Work, started: Instant) -> anyhow::Result<Streamed> {
        let Some(body) = self.blobs.open(&work.object_key, work.checkpoint_bytes).await.map_err(transient)? else {
            return Ok(Streamed::Failed("the uploaded file was not found; upload it again".into()));
        };
        // The file's size, for progress (bytes read of it); progress is shown without it.
        let size = match self.blobs.size(&work.object_key).await {
            Ok(Some(size)) => {
                let mut conn = self.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                imports::set_size(&tx, id, size).await?;
                tx.commit().await?;
                Some(size)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(import_id = %id, error = %e, "the upload's size is unknown; progress shows rows only");
                None
            }
        };
        let base = work.checkpoint_bytes;
        let mut rdr = AsyncReaderBuilder::new().has_headers(false).flexible(true).create_reader(body);
        let mut record = ByteRecord::new();
        let (columns, header_len) = match (&work.columns, work.header_len) {
            (Some(c), n) => (c.clone(), n),
            _ => {
                match rdr.read_byte_record(&mut record).await {
                    Ok(true) => {}
                    Ok(false) => return Ok(Streamed::Failed("the file is empty".into())),
                    Err(e) => return Ok(Streamed::Failed(format!("the file is not readable CSV: {e}"))),
                }
                let raw: Vec<&[u8]> = record.iter().collect();
                if looks_binary(&raw) {
                    return Ok(Streamed::Failed("the file is not CSV text (it looks binary)".into()));
                }
                let headers: Vec<String> = raw.iter().map(|c| decode(c).trim().to_owned()).collect();
                let mapping: Option<std::collections::HashMap<String, String>> =
                    work.mapping.as_ref().and_then(|m| serde_json::from_value(m.clone()).ok());
                let columns = match Columns::resolve(&headers, mapping.as_ref()) {
                    Ok(c) => c,
                    Err(p) => return Ok(Streamed::Failed(format!("the header row cannot be used: {}", p.0))),
                };
                let mut conn = self.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                imports::save_columns(&tx, id, &columns, headers.len(), base + rdr.position().byte()).await?;
                tx.commit().await?;
                (columns, headers.len())
            }
        };

        let mut rows_read = work.rows_read;
        let mut staged = Vec::with_capacity(self.limits.chunk_rows);
        let mut problems = Vec::new();
        let mut rejected = 0;
        loop {
            let more = match rdr.read_byte_record(&mut record).await {
                Ok(more) => more,
                Err(e) if e.is_io_error() => return Err(transient(e)),
                Err(e) => {
                    return Ok(Streamed::Failed(format!(
                        "the file is not readable CSV near row {}: {e}",
                        rows_read + 2
                    )))
                }
            };
            if base + rdr.position().byte() > self.limits.max_bytes {
                return Ok(Streamed::Failed(format!(
                    "the file is larger than {} MB; split it into smaller files",
                    self.limits.max_bytes / (1024 * 1024)
                )));
            }
            if more {
                // Spreadsheet numbering: the header is row 1.
                rows_read += 1;
                let row_no = rows_read + 1;
                let cells: Vec<String> = record.iter().map(decode).collect();
                if cells.len() == 1 && cells[0].trim().is_empty() {
                    rows_read -= 1; // a blank line is not a row
                } else {
                    let (rec, probs) = normalise(&cells, &columns, header_len);
                    match rec {
                        Some(r) => staged.push(Staged { row_no, record: r }),
                        None => rejected += 1,
                    }
                    problems.extend(probs.into_iter().map(|p| (row_no, p)));
                }
            }
            let full = staged.len() + rejected as usize >= self.limits.chunk_rows;
            if full || !more {
                let out_of_time = more && started.elapsed() > self.limits.budget;
                let mut conn = self.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                let checkpoint = base + rdr.position().byte();
                imports::stage_chunk(&tx, team, id, &staged, &problems, rejected, rows_read, checkpoint).await?;
                let percent = imports::progress("running", checkpoint as i64, size.map(|s| s as i64));
                let progress = json!({"importId": id, "rowsRead": rows_read, "bytesRead": checkpoint,
                                      "sizeBytes": size, "percent": percent});
                nextier_store::feed::append(&tx, team, "ImportProgress", &progress, None).await?;
                imports::renew(&tx, id, LEASE_SECS).await?;
                let mut continuation = vec![];
                if out_of_time {
                    // Hand over in the same transaction as the checkpoint, and release the lease
                    // so the next invocation can claim at once.
                    let msg = OutboxMessage {
                        team: Some(team.clone()),
                        destination: Destination::Queue(QUEUE.into()),
                        payload: json!({"importId": id, "teamId": team, "resumeAt": checkpoint}),
                        correlation_id: nextier_runtime::correlation::current().unwrap_or_default().to_string(),
                        dedupe_key: Some(format!("{id}:{checkpoint}")),
                    };
                    continuation.extend(outbox::stage(&tx, &msg).await?);
                    imports::release(&tx, id).await?;
                }
                tx.commit().await?;
                staged.clear();
                problems.clear();
                rejected = 0;
                if out_of_time {
                    tracing::info!(import_id = %id, rows_read, checkpoint, "import continues in a follow-up message");
                    return Ok(Streamed::Continued(continuation));
                }
            }
            if !more {
                return Ok(Streamed::Done);
            }
        }
    }

    async fn merge(
        &self,
        team: &TeamId,
        id: &ImportId,
        work: &Work,
    ) -> anyhow::Result<Vec<nextier_domain::ids::OutboxId>> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let counts = imports::merge(&tx, team, id, work.kind).await?;
        let problems = imports::problems(&tx, id, self.limits.report_rows).await?;
        let total_problems = i64::from(imports::get(&tx, id).await?.problems);
        let report_key = self.write_report(team, id, &problems, total_problems).await?;
        imports::complete(&tx, id, counts, report_key.as_deref()).await?;
        let event = outbox::stage(
            &tx,
            &OutboxMessage {
                team: Some(team.clone()),
                destination: Destination::Event("ImportCompleted".into()),
                payload: json!({"importId": id, "counts": counts}),
                correlation_id: nextier_runtime::correlation::current().unwrap_or_default().to_string(),
                dedupe_key: Some(format!("{id}:completed")),
            },
        )
        .await?;
        let mut staged: Vec<nextier_domain::ids::OutboxId> = event.into_iter().collect();
        // The team may have asked for every import's new contacts to be enriched.
        if nextier_store::settings::flag(&tx, nextier_enrichment::SCOPE, nextier_enrichment::AUTO_AFTER_IMPORT).await? {
            let contacts =
                nextier_store::enrichment::contacts_of_import(&tx, id, nextier_enrichment::MAX_IMPORT_CONTACTS).await?;
            if !contacts.is_empty() {
                let source = json!({"importId": id, "automatic": true});
                let kind = nextier_store::enrichment::SourceKind::Import;
                if let nextier_enrichment::Started::Job { job, first, contacts } =
                    nextier_enrichment::start(&tx, team, kind, &source, &contacts, "system:import").await?
                {
                    tracing::info!(import_id = %id, job = %job, contacts, "enrichment started");
                    staged.push(first);
                }
            }
        }
        tx.commit().await?;
        tracing::info!(import_id = %id, ?counts, problems = total_problems, "import completed");
        Ok(staged)
    }

    async fn write_report(
        &self,
        team: &TeamId,
        id: &ImportId,
        problems: &[(i32, RowProblem)],
        total: i64,
    ) -> anyhow::Result<Option<String>> {
        if problems.is_empty() {
            return Ok(None);
        }
        let key = format!("reports/{team}/{id}-errors.csv");
        let body = report::render(problems, total);
        self.blobs.put(&key, body.into(), "text/csv").await.map_err(transient)?;
        Ok(Some(key))
    }

    async fn finish_failed(&self, team: &TeamId, id: &ImportId, reason: &str) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        imports::fail(&tx, id, reason, None).await?;
        tx.commit().await?;
        tracing::warn!(import_id = %id, reason, "import failed");
        Ok(())
    }
}

enum Streamed {
    Done,
    Failed(String),
    Continued(Vec<nextier_domain::ids::OutboxId>),
}

/// The jobs a queue message names: from an S3 event notification (object keys, URL-encoded)
/// or from a continuation message. Anything else names none (and is acknowledged).
pub fn jobs_in(body: &str) -> Vec<(TeamId, ImportId)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return vec![] };
    if let (Some(team), Some(import)) = (v["teamId"].as_str(), v["importId"].as_str()) {
        return match (TeamId::parse("teamId", team), ImportId::parse("importId", import)) {
            (Ok(t), Ok(i)) => vec![(t, i)],
            _ => vec![],
        };
    }
    v["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|r| r["eventName"].as_str().is_some_and(|n| n.starts_with("ObjectCreated")))
                .filter_map(|r| r["s3"]["object"]["key"].as_str())
                .filter_map(|k| {
                    let key =
                        percent_encoding::percent_decode_str(&k.replace('+', " ")).decode_utf8_lossy().into_owned();
                    imports::parse_object_key(&key)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `consumer-lead-import` handler: each message's jobs, with partial batch failures.
pub async fn handle(
    db: &Db,
    blobs: &dyn BlobStore,
    publisher: &nextier_platform::outbox::OutboxPublisher,
    event: SqsEvent,
) -> SqsBatchResponse {
    let importer = Importer { db, blobs, limits: Limits::default() };
    process_batch(QUEUE, event, |m: Message| {
        let importer = &importer;
        async move {
            for (team, id) in jobs_in(&m.body) {
                match importer.run(&team, &id).await {
                    Ok((Ran::Busy, _)) => return Outcome::Retry(anyhow::anyhow!("import {id} is being worked on")),
                    Ok((ran, ids)) => {
                        publisher.publish(&ids).await;
                        tracing::info!(import_id = %id, ?ran, "import run");
                    }
                    Err(e) => return Outcome::Retry(e),
                }
            }
            Outcome::Done
        }
    })
    .await
}
