//! The AI scheduler (every minute, EventBridge Scheduler): turns what is due into jobs on the
//! `ai` queue: nurture cadences whose next follow-up is due, and auto-send suggestions whose
//! delay has passed. The work itself (a model call, a send through the gate) runs in the AI
//! consumer, retried by SQS; the cadence is rows with due times, never timers in memory.

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_platform::outbox::OutboxPublisher;
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, Db, Scope};
use serde::Serialize;

use crate::{Job, AI_QUEUE};

/// Jobs staged per run at most (of each kind); the rest wait a minute.
pub const BATCH: i32 = 500;
pub const SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "ai-scheduler", every_secs: 60 };

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub nurtures: usize,
    pub sends: usize,
    pub published: usize,
}

pub async fn run(db: &Db, publisher: &OutboxPublisher, now: DateTime<Utc>) -> anyhow::Result<Summary> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let due = tx
        .query_typed(
            "SELECT kind, team_id, id FROM ai_due($1, $2)",
            &[(&now, tokio_postgres::types::Type::TIMESTAMPTZ), (&BATCH, tokio_postgres::types::Type::INT4)],
        )
        .await?;
    let mut summary = Summary::default();
    let mut staged = Vec::new();
    let correlation = nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned();
    for r in &due {
        let (kind, team, id): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let (job, dedupe) = if kind == "nurture" {
            summary.nurtures += 1;
            // Once per cadence per minute: a job still in flight is not staged twice.
            (
                Job::Nurture { team_id: team.clone(), nurture_id: id.clone() },
                format!("nurture:{id}:{}", now.format("%Y%m%d%H%M")),
            )
        } else {
            summary.sends += 1;
            (
                Job::AutoSend { team_id: team.clone(), suggestion_id: id.clone() },
                format!("autosend:{id}:{}", now.format("%Y%m%d%H%M")),
            )
        };
        let msg = OutboxMessage {
            team: Some(TeamId::from_trusted(team)),
            destination: Destination::Queue(AI_QUEUE.into()),
            payload: serde_json::to_value(&job)?,
            correlation_id: correlation.clone(),
            dedupe_key: Some(dedupe),
        };
        staged.extend(outbox::stage(&tx, &msg).await?);
    }
    tx.commit().await?;
    summary.published = publisher.publish(&staged).await.published;
    Ok(summary)
}
