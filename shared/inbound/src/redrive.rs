//! The webhook re-drive: a delivery that was stored but never processed (its job reached a
//! DLQ, or was lost between the commit and the publish) is enqueued again a few minutes on,
//! up to [`MAX_REDRIVES`] times, so no STOP is lost to a bad minute. Processing is idempotent
//! (a reply is recorded once per provider message id), so a re-drive of a delivery that was
//! merely slow changes nothing. Runs with the outbox sweeper, every minute.

use std::time::Duration;

use nextier_platform::outbox::OutboxPublisher;
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, webhooks, Db, Scope};

use crate::{Job, QUEUE};

/// How long a delivery may stay unprocessed before it is enqueued again.
pub const AFTER: Duration = Duration::from_secs(180);
pub const MAX_REDRIVES: i32 = 5;

/// Re-drives what is due; returns how many deliveries were enqueued again.
pub async fn run(db: &Db, publisher: &OutboxPublisher, after: Duration) -> anyhow::Result<usize> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let stale = webhooks::claim_stale(&*tx, after, MAX_REDRIVES, 500).await?;
    let mut staged = Vec::with_capacity(stale.len());
    for s in &stale {
        let job = Job::Webhook { webhook_event_id: s.id.clone(), payload: s.payload.clone() };
        let msg = OutboxMessage {
            team: None,
            destination: Destination::Queue(QUEUE.into()),
            payload: serde_json::to_value(&job)?,
            correlation_id: format!("redrive-{}", s.id),
            dedupe_key: Some(format!("webhook:{}:redrive:{}", s.id, s.redrives)),
        };
        staged.extend(outbox::stage(&tx, &msg).await?);
    }
    tx.commit().await?;
    if !staged.is_empty() {
        tracing::warn!(count = staged.len(), "re-driving webhook deliveries left unprocessed");
        publisher.publish(&staged).await;
    }
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[("WebhookRedrives", staged.len() as f64, nextier_runtime::metrics::Unit::Count)],
    );
    Ok(staged.len())
}
