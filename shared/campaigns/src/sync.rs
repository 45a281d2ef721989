//! The campaign queue's consumer (the original's sync-lead-campaign): when a contact's score
//! changes, it is enrolled in every running campaign of its team whose auto-enrol band
//! contains the new score, under the same rules as any enrolment.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, TeamId};
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::campaigns::{self, EnrolRules};
use nextier_store::contacts::{self, Selection};
use nextier_store::{scope, settings, Db, Scope, StoreError};
use serde::{Deserialize, Serialize};

use nextier_platform::ports::clock::Clock;

use crate::{staging, team_rules, SYNC_QUEUE};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJob {
    pub team_id: TeamId,
    pub contact_id: ContactId,
}

/// Enrols the contact where its score fits; returns how many campaigns took it.
pub async fn sync_contact(db: &Db, job: &SyncJob, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(job.team_id.clone())).await?;
    let contact = match contacts::get(&tx, &job.contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let exclusive = !settings::flag(&tx, team_rules::SCOPE, team_rules::ALLOW_OVERLAP).await?;
    let mut enrolled = 0;
    for campaign in campaigns::auto_enrol_campaigns(&tx, contact.score).await? {
        let steps = campaigns::steps(&tx, &campaign).await?;
        let required = staging::required_fields(&steps);
        let required: Vec<&str> = required.iter().map(String::as_str).collect();
        let ids = [job.contact_id.clone()];
        let rules = EnrolRules {
            team: &job.team_id,
            campaign: &campaign,
            required_fields: &required,
            exclusive,
            first_run_at: Some(steps.first().map(|s| s.delay.after(now)).unwrap_or(now)),
            actor: "system:score-sync",
        };
        let out = campaigns::enrol(&tx, Selection::Ids(&ids), &rules).await?;
        enrolled += out.enrolled;
        for s in out.skipped {
            tracing::info!(campaign_id = %campaign, contact_id = %s.contact_id, reason = %s.reason, "not auto-enrolled");
        }
    }
    tx.commit().await?;
    Ok(enrolled)
}

/// The `consumer-campaign` handler.
pub async fn handle(db: &Db, clock: &dyn Clock, event: SqsEvent) -> SqsBatchResponse {
    process_batch(SYNC_QUEUE, event, |m: Message| async move {
        let job: SyncJob = match serde_json::from_str(&m.body) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "dropping malformed message");
                return Outcome::Done;
            }
        };
        match sync_contact(db, &job, clock.now()).await {
            Ok(n) => {
                tracing::info!(contact_id = %job.contact_id, enrolled = n, "score sync");
                Outcome::Done
            }
            Err(e) => Outcome::Retry(e),
        }
    })
    .await
}
