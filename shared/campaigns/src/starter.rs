//! The second schedule: starts approved campaigns whose start time has come and completes
//! running or paused ones whose end time has passed, through the same [`lifecycle::apply`]
//! a person's request uses. Only an APPROVED campaign can start (the original's cron
//! started campaigns nobody approved).

use chrono::{DateTime, Utc};
use nextier_domain::campaign::CampaignStatus;
use nextier_platform::outbox::OutboxPublisher;
use nextier_store::campaigns;
use nextier_store::{scope, Db, Scope};
use serde::Serialize;

use crate::lifecycle::{self, LifecycleError, Who};

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StarterSummary {
    pub started: u64,
    pub completed: u64,
    /// Moved by someone else between the scan and the move.
    pub skipped: u64,
}

pub async fn run(db: &Db, outbox: &OutboxPublisher, now: DateTime<Utc>) -> anyhow::Result<StarterSummary> {
    let due = {
        let conn = db.conn().await?;
        campaigns::due_schedules(&conn, now).await?
    };
    let mut summary = StarterSummary::default();
    for (team, id, action) in due {
        let to = if action == "start" { CampaignStatus::Running } else { CampaignStatus::Completed };
        let reason = if action == "start" { "scheduled start" } else { "scheduled end" };
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        match lifecycle::apply(&tx, &team, &id, to, Who::SCHEDULER, Some(reason), now).await {
            Ok(moved) => {
                tx.commit().await?;
                outbox.publish(&[moved.event]).await;
                if to == CampaignStatus::Running {
                    summary.started += 1;
                } else {
                    summary.completed += 1;
                }
                tracing::info!(campaign_id = %id, team_id = %team, to = %to, "scheduled move");
            }
            Err(LifecycleError::Refused(_) | LifecycleError::NotFound | LifecycleError::Conflict(_)) => {
                summary.skipped += 1;
            }
            Err(e) => return Err(anyhow::anyhow!("campaign {id}: {e:?}")),
        }
    }
    Ok(summary)
}
