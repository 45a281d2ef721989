//! The SLA sweep (every minute): items past their due time are escalated (one level per SLA
//! period, up to 3), and each escalation publishes `InboxItemSLABreached` to the team; the
//! team's owners and admins get one mail per run listing what is overdue (the `mail` queue).

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_platform::outbox::OutboxPublisher;
use nextier_store::outbox::{self, Destination};
use nextier_store::{inbox, scope, Db, Scope};
use serde::Serialize;

/// Items escalated per run at most; the rest wait a minute.
pub const BATCH: i32 = 500;
/// The SLA sweep: every minute.
pub const SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "inbox-sla", every_secs: 60 };

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
    // One mail per team per run to its owners and admins, listing what is overdue.
    let mut by_team: std::collections::BTreeMap<&str, Vec<&inbox::Breach>> = Default::default();
    for b in &breaches {
        by_team.entry(b.team_id.as_str()).or_default().push(b);
    }
    for (team, items) in &by_team {
        let mut text = format!("{} inbox item(s) are past their response time:\n\n", items.len());
        for b in items {
            let due = b.due_at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
            text.push_str(&format!("- {} in {} (due {due}, escalation level {})\n", b.item_id, b.bucket, b.level));
        }
        let job = crate::notify::MailJob {
            team_id: (*team).to_owned(),
            key: format!("sla:{}", now.format("%Y-%m-%dT%H:%M")),
            subject: format!("{} inbox item(s) past their SLA", items.len()),
            text,
        };
        let id = outbox::stage(
            &tx,
            &outbox::OutboxMessage {
                team: Some(TeamId::from_trusted((*team).to_owned())),
                destination: Destination::Queue(crate::notify::QUEUE.into()),
                payload: serde_json::to_value(&job)?,
                correlation_id: format!("sla-mail-{team}-{}", now.timestamp()),
                dedupe_key: Some(format!("mail:{team}:{}", job.key)),
            },
        )
        .await?;
        staged.extend(id);
    }
    tx.commit().await?;
    let report = publisher.publish(&staged).await;
    if !breaches.is_empty() {
        tracing::warn!(escalated = breaches.len(), "inbox items breached their SLA");
    }
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[("SlaBreaches", breaches.len() as f64, nextier_runtime::metrics::Unit::Count)],
    );
    Ok(Summary { escalated: breaches.len(), published: report.published })
}
