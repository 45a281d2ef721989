//! The per-minute tick (EventBridge Scheduler, rate(1 minute)): claims due enrolments of
//! running campaigns with `FOR UPDATE SKIP LOCKED` and puts one message per step on the
//! campaign-sequence queue, ten to a `SendMessageBatch`, each carrying the team id and the
//! tick's correlation id.
//!
//! Backpressure: a campaign gets at most its per-minute rate, minus what it still has in
//! flight, and all campaigns together at most the tick budget, minus everything in flight;
//! so the queue holds about one interval of work, never days of it. A claim is a lease: if
//! its message is lost, the lease lapses and a later tick claims the step again (the
//! consumer is idempotent per enrolment and step).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use nextier_domain::ids::EnrolmentId;
use nextier_platform::{OutgoingMessage, Queue, MAX_BATCH};
use nextier_store::campaigns::{self, Claimed};
use nextier_store::Db;
use serde::Serialize;

use crate::sequence::SequenceJob;
use crate::SEQUENCE_QUEUE;

#[derive(Debug, Clone)]
pub struct TickConfig {
    /// The most enrolments in flight at once across all campaigns (one interval's sends).
    pub budget: i32,
    /// Claimed per database round trip.
    pub chunk: i32,
    /// How long a claim holds before a later tick may claim the step again.
    pub lease: Duration,
    /// Queue batches in flight at once.
    pub concurrency: usize,
}

impl Default for TickConfig {
    fn default() -> Self {
        Self { budget: 20_000, chunk: 1000, lease: Duration::from_secs(600), concurrency: 8 }
    }
}

impl TickConfig {
    /// `CAMPAIGN_TICK_BUDGET`, `CAMPAIGN_TICK_CHUNK`, `CAMPAIGN_TICK_LEASE_SECONDS`.
    pub fn from_env() -> Self {
        let d = Self::default();
        let var = |n: &str| nextier_runtime::config::parse::<u64>(n);
        Self {
            budget: var("CAMPAIGN_TICK_BUDGET").map(|b| b.clamp(1, 1_000_000) as i32).unwrap_or(d.budget),
            chunk: var("CAMPAIGN_TICK_CHUNK").map(|c| c.clamp(10, 10_000) as i32).unwrap_or(d.chunk),
            lease: var("CAMPAIGN_TICK_LEASE_SECONDS").map(Duration::from_secs).unwrap_or(d.lease),
            ..d
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TickSummary {
    pub claimed: u64,
    pub enqueued: u64,
    /// Claims given back because their message could not be queued.
    pub released: u64,
    /// Database round trips for the claims (queue calls are `enqueued / 10`, rounded up).
    pub claim_round_trips: u64,
}

fn message(c: &Claimed, correlation_id: &str) -> OutgoingMessage {
    let job = SequenceJob {
        team_id: c.team.clone(),
        campaign_id: c.campaign.clone(),
        enrolment_id: c.enrolment.clone(),
        step: c.step,
        slot: None,
    };
    OutgoingMessage {
        body: serde_json::to_string(&job).unwrap_or_default(),
        correlation_id: correlation_id.to_owned(),
        team_id: Some(c.team.to_string()),
        ..Default::default()
    }
}

/// Sends one batch; returns the enrolments whose message was not queued.
async fn send(queue: &dyn Queue, batch: Vec<Claimed>, correlation_id: &str) -> Vec<EnrolmentId> {
    let msgs = batch.iter().map(|c| message(c, correlation_id)).collect();
    match queue.send_batch(SEQUENCE_QUEUE, msgs).await {
        Ok(results) => batch
            .into_iter()
            .zip(results)
            .filter_map(|(c, r)| {
                let e = r.err()?;
                tracing::warn!(enrolment_id = %c.enrolment, error = %e, "not queued");
                Some(c.enrolment)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, count = batch.len(), "batch not queued");
            batch.into_iter().map(|c| c.enrolment).collect()
        }
    }
}

/// The claims in turn by campaign (a, b, c, a, b, c, ...), so that campaigns sharing a
/// team's bucket reserve its slots alternately: a run of one campaign's steps would leave
/// the team's slots between its own unused.
fn interleave(claimed: Vec<Claimed>) -> Vec<Claimed> {
    let mut by_campaign: Vec<std::collections::VecDeque<Claimed>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for c in claimed {
        let i = *index.entry(c.campaign.to_string()).or_insert_with(|| {
            by_campaign.push(std::collections::VecDeque::new());
            by_campaign.len() - 1
        });
        by_campaign[i].push_back(c);
    }
    let mut out = Vec::new();
    while by_campaign.iter().any(|q| !q.is_empty()) {
        for q in &mut by_campaign {
            if let Some(c) = q.pop_front() {
                out.push(c);
            }
        }
    }
    out
}

/// One tick at `now`.
pub async fn tick(db: &Db, queue: &dyn Queue, now: DateTime<Utc>, cfg: &TickConfig) -> anyhow::Result<TickSummary> {
    let correlation_id = nextier_runtime::correlation::current().unwrap_or_default().to_string();
    let conn = db.conn().await?;
    let mut summary = TickSummary::default();
    loop {
        let claimed = campaigns::claim_due(&conn, now, cfg.budget, cfg.chunk, cfg.lease.as_secs_f64()).await?;
        summary.claim_round_trips += 1;
        summary.claimed += claimed.len() as u64;
        if claimed.is_empty() {
            break;
        }
        let claimed = interleave(claimed);
        let batches: Vec<Vec<Claimed>> = claimed.chunks(MAX_BATCH).map(<[Claimed]>::to_vec).collect();
        let results: Vec<Vec<EnrolmentId>> = stream::iter(batches)
            .map(|batch| send(queue, batch, &correlation_id))
            .buffer_unordered(cfg.concurrency.max(1))
            .collect()
            .await;
        let failed: Vec<EnrolmentId> = results.into_iter().flatten().collect();
        summary.enqueued += (claimed.len() - failed.len()) as u64;
        if !failed.is_empty() {
            summary.released += campaigns::release_claims(&conn, &failed).await? as u64;
            // The queue is failing: stop claiming for this tick.
            break;
        }
        if (claimed.len() as i32) < cfg.chunk {
            break;
        }
    }
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[
            ("EnrolmentsClaimed", summary.claimed as f64, nextier_runtime::metrics::Unit::Count),
            ("EnrolmentsReleased", summary.released as f64, nextier_runtime::metrics::Unit::Count),
        ],
    );
    Ok(summary)
}
