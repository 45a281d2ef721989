//! Catching up after an outage (DOMAIN.md B): SignalHouse writes a notification record for
//! every event before it tries the webhook, so `GET /notification` is the durable record and
//! the webhook only the push. Every minute the reconcile schedule reads the unread
//! notifications, stores each as a delivery (`notification:{id}`, so a second run stores
//! nothing new) and enqueues it exactly like a webhook, then marks them read. An event that
//! also came by webhook is recorded once downstream: replies by provider message id, receipts
//! by status order.

use nextier_domain::ids::WebhookEventId;
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::notifications::NotificationSource;
use nextier_store::webhooks::{self, Delivery};
use nextier_store::{scope, Db, Scope};
use serde::Serialize;
use serde_json::Value;

use crate::event::normalise;
use crate::{Job, PROVIDER, QUEUE};

/// Reading SignalHouse's notifications for what the webhook missed: every minute.
pub const SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "signalhouse-reconcile", every_secs: 60 };

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub read: usize,
    /// Events the webhook had not delivered (stored now).
    pub recovered: usize,
}

/// Pages through unread notifications (at most `pages` of 100 per run).
pub async fn run(
    db: &Db,
    publisher: &OutboxPublisher,
    source: &dyn NotificationSource,
    pages: u32,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for _ in 0..pages {
        let batch = source.unread(100).await?;
        if batch.is_empty() {
            break;
        }
        let mut staged = Vec::new();
        {
            let mut conn = db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::default()).await?;
            for n in &batch {
                let mut payload = crate::event::without_nul(n.payload.clone());
                if !payload.is_object() {
                    payload = serde_json::json!({"data": payload});
                }
                payload["event"] = Value::String(n.event.clone());
                // Number events name their number as the record's identifier.
                if let (Some(i), None) = (n.raw.get("identifier"), payload.get("identifier")) {
                    payload["identifier"] = i.clone();
                }
                let event = normalise(&n.event);
                let delivery_id = format!("notification:{}", n.id);
                let raw = n.raw.to_string();
                let d = Delivery {
                    provider: PROVIDER,
                    delivery_id: &delivery_id,
                    event: &event,
                    payload: &payload,
                    raw: raw.as_bytes(),
                    signed_at: n.at,
                    source: "reconcile",
                };
                let id = WebhookEventId::new();
                let job =
                    serde_json::to_value(Job::Webhook { webhook_event_id: id.to_string(), payload: payload.clone() })?;
                let correlation = format!("reconcile-{}", n.id);
                let Some(outbox_id) = webhooks::receive_with_job(&*tx, &d, &id, QUEUE, &job, &correlation).await?
                else {
                    continue;
                };
                staged.push(outbox_id);
                summary.recovered += 1;
            }
            tx.commit().await?;
        }
        publisher.publish(&staged).await;
        // Read only after what they carry is stored: a crash in between reads them again,
        // and storing them again does nothing.
        let ids: Vec<String> = batch.iter().map(|n| n.id.clone()).collect();
        source.mark_read(&ids).await?;
        summary.read += batch.len();
        if batch.len() < 100 {
            break;
        }
    }
    if summary.recovered > 0 {
        tracing::warn!(recovered = summary.recovered, "events recovered from SignalHouse notifications");
    }
    Ok(summary)
}
