//! Publishes outbox rows: right after the transaction that staged them commits
//! ([`OutboxPublisher::publish`]), and by the sweeper for anything left behind
//! ([`OutboxPublisher::sweep`]). At-least-once: a row is marked published only after the
//! queue or bus accepted it; consumers dedupe on the `outbox_id` attribute.

use std::collections::HashMap;
use std::sync::Arc;

use nextier_domain::ids::OutboxId;
use nextier_store::outbox::{self, Destination, Pending};
use nextier_store::Db;
use serde_json::json;

use crate::ports::{DomainEvent, EventBus, OutgoingMessage, Queue};
use crate::PlatformError;

/// The `source` of every domain event we publish.
pub const EVENT_SOURCE: &str = "nextier";
/// The outbox sweeper (and the redrive of unprocessed webhook deliveries): every minute.
pub const SWEEP_SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "outbox-sweeper", every_secs: 60 };
/// How long a claimed row is reserved for its publisher before another may take it.
const LEASE_SECS: i32 = 60;

#[derive(Clone)]
pub struct OutboxPublisher {
    db: Db,
    queue: Arc<dyn Queue>,
    bus: Arc<dyn EventBus>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PublishReport {
    pub published: usize,
    pub failed: usize,
}

impl OutboxPublisher {
    pub fn new(db: Db, queue: Arc<dyn Queue>, bus: Arc<dyn EventBus>) -> Self {
        Self { db, queue, bus }
    }

    /// Publishes the given rows, just staged, now. Failures are recorded on the rows for the
    /// sweeper and never surface to the caller, whose transaction has already committed.
    /// Works for either database role: it touches only the rows named, and only on their
    /// first attempt.
    pub async fn publish(&self, ids: &[OutboxId]) -> PublishReport {
        if ids.is_empty() {
            return PublishReport::default();
        }
        match self.publish_staged(ids).await {
            Ok(report) => report,
            Err(e) => {
                tracing::warn!(error = %e, "outbox publish deferred to the sweeper");
                PublishReport { published: 0, failed: ids.len() }
            }
        }
    }

    /// Publishes up to `limit` due rows of any team (the worker role's). Holds a connection to
    /// claim the rows and to settle them, never while it delivers (claimed rows are leased).
    pub async fn sweep(&self, limit: i64) -> Result<PublishReport, PlatformError> {
        let rows = outbox::claim(&*self.db.conn().await?, None, limit, LEASE_SECS).await?;
        let mut report = PublishReport::default();
        let (done, failures) = self.deliver_all(&rows, &mut report).await;
        let conn = self.db.conn().await?;
        for (id, error, retry_in) in failures {
            outbox::mark_failed(&conn, &id, &error, retry_in).await?;
        }
        report.published = done.len();
        outbox::mark_published(&conn, &done).await?;
        Ok(report)
    }

    async fn publish_staged(&self, ids: &[OutboxId]) -> Result<PublishReport, PlatformError> {
        let mut report = PublishReport::default();
        let mut done = Vec::with_capacity(ids.len());
        let mut failures = Vec::new();
        for chunk in ids.chunks(100) {
            let rows = outbox::claim_staged(&*self.db.conn().await?, chunk, LEASE_SECS).await?;
            let (d, f) = self.deliver_all(&rows, &mut report).await;
            done.extend(d);
            failures.extend(f);
        }
        report.published = done.len();
        let conn = self.db.conn().await?;
        for (id, error, retry_in) in failures {
            outbox::settle_staged(&conn, std::slice::from_ref(&id), Some(&error), retry_in).await?;
        }
        for chunk in done.chunks(100) {
            outbox::settle_staged(&conn, chunk, None, 0).await?;
        }
        Ok(report)
    }

    /// Delivers `rows` in order: the ids delivered, and each failure with its error and when to
    /// retry it.
    async fn deliver_all(
        &self,
        rows: &[Pending],
        report: &mut PublishReport,
    ) -> (Vec<OutboxId>, Vec<(OutboxId, String, i32)>) {
        let mut done = Vec::with_capacity(rows.len());
        let mut failures = Vec::new();
        for row in rows {
            match self.deliver(row).await {
                Ok(()) => done.push(row.id.clone()),
                Err(e) => {
                    let retry_in = failed(report, row, &e);
                    failures.push((row.id.clone(), e.to_string(), retry_in));
                }
            }
        }
        (done, failures)
    }

    async fn deliver(&self, row: &Pending) -> Result<(), PlatformError> {
        match &row.destination {
            Destination::Queue(queue) => {
                let msg = OutgoingMessage {
                    body: row.payload.to_string(),
                    correlation_id: row.correlation_id.clone(),
                    team_id: row.team.as_ref().map(|t| t.to_string()),
                    attributes: HashMap::from([("outbox_id".to_owned(), row.id.to_string())]),
                    ..Default::default()
                };
                self.queue.send(queue, msg).await.map(|_| ())
            }
            Destination::Event(detail_type) => {
                let event = DomainEvent {
                    source: EVENT_SOURCE.to_owned(),
                    detail_type: detail_type.clone(),
                    detail: json!({
                        "outboxId": row.id,
                        "teamId": row.team,
                        "correlationId": row.correlation_id,
                        "data": row.payload,
                    }),
                };
                self.bus.publish(&[event]).await
            }
        }
    }
}

/// Counts a failed delivery and says when to retry it.
fn failed(report: &mut PublishReport, row: &Pending, e: &PlatformError) -> i32 {
    report.failed += 1;
    let retry_in = backoff_secs(row.attempts);
    tracing::warn!(outbox_id = %row.id, attempts = row.attempts, retry_in, error = %e, "outbox delivery failed");
    retry_in
}

/// What one sweeper run did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepSummary {
    pub published: usize,
    pub failed: usize,
    pub pruned: u64,
    pub backlog: i64,
    pub oldest_seconds: f64,
}

/// The sweeper's whole job (the `cron-outbox-sweeper` Lambda and the local schedule):
/// publish due rows in batches until none are left or the time budget is spent, prune rows
/// published over a week ago (and live-feed events older than the feed keeps), and report the backlog as metrics.
pub async fn sweep_job(
    publisher: &OutboxPublisher,
    budget: std::time::Duration,
) -> Result<SweepSummary, PlatformError> {
    let started = std::time::Instant::now();
    let mut summary = SweepSummary::default();
    loop {
        let report = publisher.sweep(100).await?;
        summary.published += report.published;
        summary.failed += report.failed;
        if report.published + report.failed < 100 || started.elapsed() > budget {
            break;
        }
    }
    let conn = publisher.db.conn().await?;
    summary.pruned = outbox::prune(&conn, 7).await?;
    summary.pruned += nextier_store::feed::prune(&conn).await?;
    (summary.backlog, summary.oldest_seconds) = outbox::backlog(&conn).await?;
    use nextier_runtime::metrics::{emit, Unit};
    emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[
            ("OutboxPublished", summary.published as f64, Unit::Count),
            ("OutboxFailed", summary.failed as f64, Unit::Count),
            ("OutboxBacklog", summary.backlog as f64, Unit::Count),
            ("OutboxOldestAge", summary.oldest_seconds, Unit::Seconds),
        ],
    );
    tracing::info!(?summary, "outbox sweep");
    Ok(summary)
}

/// 2, 4, 8 … seconds, at most five minutes.
fn backoff_secs(attempts: i32) -> i32 {
    2i32.saturating_pow(attempts.clamp(1, 9) as u32).min(300)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff_secs(1), 2);
        assert_eq!(super::backoff_secs(3), 8);
        assert_eq!(super::backoff_secs(50), 300);
    }
}
