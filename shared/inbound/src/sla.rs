//! The SLA sweep (every minute): items past their due time are escalated (one level per SLA
//! period, up to 3), and each escalation publishes `InboxItemSLABreached` to the team.

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_platform::outbox::OutboxPublisher;
use nextier_store::outbox::{self, Destination};
use nextier_store::{inbox, scope, Db, Scope};
use serde::Serialize;

/// Items escalated per run at most; the rest wait a minute.
pub const BATCH: i32 = 500;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub escalated: usize,
    pub published: usize,
}

pub async fn run(db: &Db, publisher: &OutboxPublisher, now: DateTime<Utc>) -> anyhow::Result<Summary> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let breaches = inbox::escalate_due(&tx, now, BATCH).await?;
    let mut staged = Vec::with_capacity(breaches.len());
    for b in &breaches {
        let id = outbox::stage_for_team(
            &tx,
            &TeamId::from_trusted(b.team_id.clone()),
            Destination::Event("InboxItemSLABreached".into()),
            serde_json::to_value(b)?,
            format!("sla-{}-{}", b.item_id, b.level),
        )
        .await?;
        staged.push(id);
    }
    tx.commit().await?;
    let report = publisher.publish(&staged).await;
    if !breaches.is_empty() {
        tracing::warn!(escalated = breaches.len(), "inbox items breached their SLA");
    }
    Ok(Summary { escalated: breaches.len(), published: report.published })
}
