//! Intake: a verified provider delivery stored once, with its queue job staged in the same
//! statement (one round trip, atomic). The HTTP doors that verify and answer are
//! `nextier-webhooks`'; what is kept here is what a retry of the same delivery must find.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{OutboxId, WebhookEventId};
use nextier_store::webhooks::{self, Delivery};
use nextier_store::Db;
use serde_json::Value;

use crate::mail_events::PROVIDER as MAIL_PROVIDER;
use crate::{Job, PROVIDER, QUEUE};

/// Stores a SignalHouse delivery and stages its job; `None` for a delivery seen before.
pub async fn signalhouse(
    db: &Db,
    delivery_id: &str,
    event: &str,
    payload: &Value,
    raw: &[u8],
    signed_at: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<(WebhookEventId, OutboxId)>> {
    let conn = db.conn().await?;
    let d = Delivery { provider: PROVIDER, delivery_id, event, payload, raw, signed_at, source: "webhook" };
    let id = WebhookEventId::new();
    let job = serde_json::to_value(Job::Webhook { webhook_event_id: id.to_string(), payload: payload.clone() })?;
    let staged = webhooks::receive_with_job(&**conn, &d, &id, QUEUE, &job, &correlation()).await?;
    Ok(staged.map(|outbox_id| (id, outbox_id)))
}

/// One SendGrid event: its `sg_event_id`, its (lower-case) name and the event itself.
pub struct MailDelivery {
    pub id: String,
    pub event: String,
    pub payload: Value,
}

/// Stores each SendGrid event once (by `sg_event_id`) with its job, one statement each; the
/// outbox ids of the new ones.
pub async fn sendgrid(
    db: &Db,
    events: &[MailDelivery],
    raw: &[u8],
    signed_at: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<OutboxId>> {
    let conn = db.conn().await?;
    let correlation = correlation();
    let mut staged = Vec::new();
    for e in events {
        let d = Delivery {
            provider: MAIL_PROVIDER,
            delivery_id: &e.id,
            event: &e.event,
            payload: &e.payload,
            raw,
            signed_at,
            source: "webhook",
        };
        let id = WebhookEventId::new();
        let job =
            serde_json::to_value(Job::MailEvent { webhook_event_id: id.to_string(), payload: e.payload.clone() })?;
        if let Some(o) = webhooks::receive_with_job(&**conn, &d, &id, QUEUE, &job, &correlation).await? {
            staged.push(o);
        }
    }
    Ok(staged)
}

fn correlation() -> String {
    nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned()
}
