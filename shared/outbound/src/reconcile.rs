//! Settles messages left `queued` past their deadline: the sender died between recording a
//! message and settling it, or gave up (a client that never retried, a job that went to the
//! DLQ). Never a blind resend:
//! - the provider has it (looked up by what identifies our request): recorded as sent;
//! - the provider does not have it, and it replays a repeated request under the same
//!   idempotency key within a window that has not passed: delivered again through the gate,
//!   which checks suppression, consent and quiet hours afresh and uses the same message id as
//!   the key, so even a lookup that missed it cannot make a second message;
//! - otherwise (a provider without idempotency keys, or the window passed): marked failed,
//!   with the reason, for a person to review before anything is sent again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nextier_domain::ids::{MessageId, TeamId};
use nextier_domain::message::MessageStatus;
use nextier_platform::ports::delivery_lookup::{DeliveryLookup, Lookup};
use nextier_store::delivery::{self, Queued};
use nextier_store::{contacts, messages, scope, Db, Scope, StoreError};
use serde::Serialize;

use crate::{FromCampaign, OutboundGate, OutboundRequest, Prepared, Purpose, Verdict};

/// Settling messages left queued: every five minutes.
pub const SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "message-reconcile", every_secs: 300 };

/// The send keys of opt-out confirmations start so (see [`crate::opt_out_confirmation_key`]).
const OPT_OUT_CONFIRMATION_PREFIX: &str = "opt-out-confirmation:";

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// A message still queued this long after it was recorded is settled here.
    pub deadline: Duration,
    /// Messages per run.
    pub batch: i32,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self { deadline: Duration::from_secs(15 * 60), batch: 200 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub examined: u32,
    pub found: u32,
    pub redelivered: u32,
    pub failed: u32,
    /// Left queued for the next run (held by quiet hours, or being settled elsewhere).
    pub waiting: u32,
}

enum Settled {
    Found,
    Redelivered,
    Failed,
    Waiting,
}

/// One run over the messages queued longer than the deadline.
pub async fn run(
    db: &Db,
    gate: &dyn OutboundGate,
    lookup: &dyn DeliveryLookup,
    config: &ReconcileConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<Summary> {
    let before = now - chrono::Duration::from_std(config.deadline)?;
    let stale = {
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        let rows = delivery::stale_queued(&tx, before, config.batch).await?;
        tx.commit().await?;
        rows
    };
    let mut summary = Summary::default();
    for (id, team) in stale {
        summary.examined += 1;
        match settle_one(db, gate, lookup, &team, &id, now).await {
            Ok(Settled::Found) => summary.found += 1,
            Ok(Settled::Redelivered) => summary.redelivered += 1,
            Ok(Settled::Failed) => summary.failed += 1,
            Ok(Settled::Waiting) => summary.waiting += 1,
            Err(e) => {
                summary.waiting += 1;
                tracing::warn!(message = %id, error = %format!("{e:#}"), "could not reconcile; next run retries");
            }
        }
    }
    Ok(summary)
}

async fn settle_one(
    db: &Db,
    gate: &dyn OutboundGate,
    lookup: &dyn DeliveryLookup,
    team: &TeamId,
    id: &MessageId,
    now: DateTime<Utc>,
) -> anyhow::Result<Settled> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let Some(q) = delivery::lock_queued(&tx, id).await? else { return Ok(Settled::Waiting) };
    tx.commit().await?;
    // Asked without a transaction open; the answer is applied only if still queued.
    let answer = lookup.lookup(&q).await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    if delivery::lock_queued(&tx, id).await?.is_none() {
        return Ok(Settled::Waiting);
    }
    let replays = lookup
        .replay_window(&q.provider)
        .and_then(|w| chrono::Duration::from_std(w).ok())
        .is_some_and(|w| now - q.created_at < w);
    let (status, provider_id, detail, settled) = match answer {
        Lookup::Found { provider_message_id } => (
            MessageStatus::Sent,
            Some(provider_message_id),
            format!("reconciled: {} has it", q.provider),
            Settled::Found,
        ),
        Lookup::NotFound if replays => {
            tx.commit().await?;
            return redeliver(db, gate, &q, now).await;
        }
        Lookup::NotFound => (
            MessageStatus::Failed,
            None,
            format!("needs review: {} has no record of it, and it was not resent (no safe replay)", q.provider),
            Settled::Failed,
        ),
        Lookup::Unknown => (
            MessageStatus::Failed,
            None,
            format!("needs review: {} cannot confirm it; not resent, to avoid sending twice", q.provider),
            Settled::Failed,
        ),
    };
    messages::set_status(&tx, team, id, status, provider_id.as_deref(), Some(&detail), now).await?;
    tx.commit().await?;
    Ok(settled)
}

/// Sends a queued message again through the gate, under its own send key (so the same
/// message id, the provider's idempotency key).
async fn redeliver(db: &Db, gate: &dyn OutboundGate, q: &Queued, now: DateTime<Utc>) -> anyhow::Result<Settled> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(q.team.clone())).await?;
    if delivery::lock_queued(&tx, &q.id).await?.is_none() {
        return Ok(Settled::Waiting);
    }
    let contact = match q.contact.as_ref() {
        Some(c) => match contacts::get(&tx, c).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let Some(contact) = contact else {
        messages::set_status(&tx, &q.team, &q.id, MessageStatus::Failed, None, Some("the contact was deleted"), now)
            .await?;
        tx.commit().await?;
        return Ok(Settled::Failed);
    };
    let campaign = match (&q.campaign, &q.enrolment, &q.step) {
        (Some(campaign), Some(enrolment), Some(step)) => {
            Some(FromCampaign { campaign, enrolment, step, per_minute: q.per_minute.unwrap_or(1).max(1) as u32 })
        }
        _ => None,
    };
    let purpose = if q.send_key.starts_with(OPT_OUT_CONFIRMATION_PREFIX) {
        Purpose::OptOutConfirmation
    } else {
        Purpose::Outreach
    };
    let req = OutboundRequest {
        team: &q.team,
        contact: &contact,
        channel: q.channel,
        subject: q.subject.clone(),
        body: q.body.clone(),
        send_key: q.send_key.clone(),
        campaign,
        sent_by: q.sent_by.as_deref().unwrap_or("reconciler"),
        purpose,
        // The very address it was recorded for (an answer goes to the number that wrote).
        to: Some(&q.to),
        now,
    };
    match gate.prepare(&tx, &req).await? {
        Prepared::Ready(d) => {
            tx.commit().await?;
            drop(conn);
            let verdict = crate::deliver_and_settle(gate, db, &q.team, &d, now).await?;
            Ok(match verdict {
                Verdict::Sent { .. } => Settled::Redelivered,
                Verdict::Blocked { .. } => Settled::Failed,
                Verdict::Deferred { .. } | Verdict::Failed { .. } => Settled::Waiting,
            })
        }
        Prepared::Decided(Verdict::Blocked { reason }) => {
            messages::set_status(
                &tx,
                &q.team,
                &q.id,
                MessageStatus::Failed,
                None,
                Some(&format!("not sent: {reason}")),
                now,
            )
            .await?;
            tx.commit().await?;
            Ok(Settled::Failed)
        }
        Prepared::Decided(_) => {
            tx.commit().await?;
            Ok(Settled::Waiting)
        }
    }
}
