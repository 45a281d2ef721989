//! The campaign-sequence consumer: one message per (enrolment, step). Each is processed in
//! one transaction that locks the enrolment, so a duplicate delivery finds the step already
//! done and changes nothing. The step goes through the outbound gate, an execution row
//! records the attempt, and the enrolment advances, retries, completes or ends.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Duration;
use nextier_domain::campaign::CampaignStatus;
use nextier_domain::ids::{CampaignId, EnrolmentId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_domain::template::Template;
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::campaigns::{self, Execution, Next};
use nextier_store::{contacts, scope, Db, Scope, StoreError};
use serde::{Deserialize, Serialize};

use crate::gate::{FromCampaign, OutboundGate, OutboundRequest, Prepared, Verdict};
use crate::{Clock, SEQUENCE_QUEUE};

/// The queue message: everything needed to find the work, team id included (the original's
/// jobs carried none and were all rejected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceJob {
    pub team_id: TeamId,
    pub campaign_id: CampaignId,
    pub enrolment_id: EnrolmentId,
    pub step: i32,
}

/// What processing one message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// Already done, or the enrolment moved on or ended: nothing changed.
    Stale,
    /// The campaign is not running; the enrolment waits to be claimed again.
    Released,
    Sent {
        next: Next,
    },
    Deferred,
    Retrying,
    Ended {
        status: &'static str,
        reason: String,
    },
}

/// How many failed attempts a step gets before the enrolment is marked failed.
pub const MAX_FAILED_ATTEMPTS: i64 = 3;

pub struct Sequencer {
    pub db: Db,
    pub gate: Arc<dyn OutboundGate>,
    pub clock: Arc<dyn Clock>,
}

impl Sequencer {
    pub async fn process(&self, job: &SequenceJob) -> anyhow::Result<Processed> {
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(job.team_id.clone())).await?;
        let Some(work) = campaigns::lock_work(&tx, &job.enrolment_id).await? else {
            tx.commit().await?;
            return Ok(Processed::Stale);
        };
        if work.campaign != job.campaign_id || work.status != "active" || work.current_step != job.step {
            tx.commit().await?;
            return Ok(Processed::Stale);
        }
        if work.campaign_status != CampaignStatus::Running {
            campaigns::settle(&tx, &work.enrolment, &Next::Release, now).await?;
            tx.commit().await?;
            return Ok(Processed::Released);
        }
        let base = Execution {
            team: &job.team_id,
            campaign: &work.campaign,
            enrolment: &work.enrolment,
            step: None,
            position: job.step,
            status: "skipped",
            reason: None,
            message: None,
            at: now,
        };
        let Some(idx) = work.steps.iter().position(|s| s.position == job.step) else {
            // The step no longer exists (steps were removed): the sequence is over.
            campaigns::settle(&tx, &work.enrolment, &Next::Complete, now).await?;
            tx.commit().await?;
            return Ok(Processed::Sent { next: Next::Complete });
        };
        let step = &work.steps[idx];
        let base = Execution { step: Some(&step.id), ..base };

        let end = |status: &'static str, reason: String| Next::End { status, reason };
        let contact = match contacts::get(&tx, &work.contact).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                let next = end("exited", "contact_deleted".into());
                campaigns::record_execution(&tx, &Execution { reason: Some("contact deleted"), ..base.clone() })
                    .await?;
                campaigns::settle(&tx, &work.enrolment, &next, now).await?;
                tx.commit().await?;
                return Ok(Processed::Ended { status: "exited", reason: "contact_deleted".into() });
            }
            Err(e) => return Err(e.into()),
        };
        // Exit rules that the contact's state already answers.
        let exit = match contact.lead_state {
            LeadState::Suppressed => Some("opt_out"),
            LeadState::AppointmentBooked if work.exit_on_meeting => Some("meeting_booked"),
            _ => None,
        };
        if let Some(reason) = exit {
            campaigns::record_execution(&tx, &Execution { reason: Some(reason), ..base.clone() }).await?;
            campaigns::settle(&tx, &work.enrolment, &end("exited", reason.into()), now).await?;
            tx.commit().await?;
            return Ok(Processed::Ended { status: "exited", reason: reason.into() });
        }

        // Render; a missing required field refuses the send (never a blank).
        let lookup = |f: &str| campaigns::merge_value(&contact, f);
        let rendered = Template::parse(&step.body).map_err(|e| e.to_string()).and_then(|t| {
            let body = t.render(lookup).map_err(|e| e.to_string())?;
            let subject = match &step.subject {
                Some(s) => {
                    Some(Template::parse(s).map_err(|e| e.to_string())?.render(lookup).map_err(|e| e.to_string())?)
                }
                None => None,
            };
            Ok((subject, body))
        });
        let (subject, body) = match rendered {
            Ok(r) => r,
            Err(why) => {
                campaigns::record_execution(&tx, &Execution { status: "failed", reason: Some(&why), ..base.clone() })
                    .await?;
                campaigns::settle(&tx, &work.enrolment, &end("failed", why.clone()), now).await?;
                tx.commit().await?;
                return Ok(Processed::Ended { status: "failed", reason: why });
            }
        };

        let req = OutboundRequest {
            team: &job.team_id,
            contact: &contact,
            channel: step.channel,
            subject,
            body,
            send_key: format!("{}:{}", work.enrolment, step.position),
            campaign: Some(FromCampaign {
                campaign: &work.campaign,
                enrolment: &work.enrolment,
                step: &step.id,
                per_minute: work.sends_per_minute.max(1) as u32,
            }),
            sent_by: "campaign",
            purpose: nextier_outbound::Purpose::Outreach,
            to: None,
            now,
        };
        let (tx, verdict) = match self.gate.prepare(&tx, &req).await? {
            Prepared::Decided(v) => (tx, v),
            Prepared::Ready(dispatch) => {
                // The message is recorded as queued under its send key: commit that before the
                // provider is called, so a crash from here on retries the same message.
                tx.commit().await?;
                let outcome = self.gate.deliver(&dispatch).await;
                let tx = scope::begin(&mut conn, &Scope::team(job.team_id.clone())).await?;
                let still = campaigns::lock_position(&tx, &job.enrolment_id).await?;
                let verdict = self.gate.settle(&tx, &dispatch, outcome, now).await?;
                if still != Some(("active".to_owned(), job.step)) {
                    // A duplicate delivery finished this step meanwhile (the provider replayed).
                    tx.commit().await?;
                    return Ok(Processed::Stale);
                }
                (tx, verdict)
            }
        };
        let processed = match verdict {
            Verdict::Sent { message } => {
                campaigns::record_execution(
                    &tx,
                    &Execution { status: "sent", message: Some(message.as_str()), ..base.clone() },
                )
                .await?;
                let next = match work.steps.get(idx + 1) {
                    Some(n) => Next::Advance { step: n.position, at: n.delay.after(now) },
                    None => Next::Complete,
                };
                campaigns::settle(&tx, &work.enrolment, &next, now).await?;
                Processed::Sent { next }
            }
            Verdict::Deferred { until, reason } => {
                campaigns::record_execution(
                    &tx,
                    &Execution { status: "deferred", reason: Some(&reason), ..base.clone() },
                )
                .await?;
                campaigns::settle(&tx, &work.enrolment, &Next::Retry { at: until.max(now) }, now).await?;
                Processed::Deferred
            }
            Verdict::Blocked { reason } => {
                campaigns::record_execution(
                    &tx,
                    &Execution { status: "blocked", reason: Some(&reason), ..base.clone() },
                )
                .await?;
                campaigns::settle(&tx, &work.enrolment, &end("exited", reason.clone()), now).await?;
                Processed::Ended { status: "exited", reason }
            }
            Verdict::Failed { reason } => {
                campaigns::record_execution(
                    &tx,
                    &Execution { status: "failed", reason: Some(&reason), ..base.clone() },
                )
                .await?;
                let failures = campaigns::failed_attempts(&tx, &work.enrolment, step.position).await?;
                if failures >= MAX_FAILED_ATTEMPTS {
                    let why = format!("step {} failed {failures} times: {reason}", step.position);
                    campaigns::settle(&tx, &work.enrolment, &end("failed", why.clone()), now).await?;
                    Processed::Ended { status: "failed", reason: why }
                } else {
                    let at = now + Duration::minutes(5 * failures);
                    campaigns::settle(&tx, &work.enrolment, &Next::Retry { at }, now).await?;
                    Processed::Retrying
                }
            }
        };
        tx.commit().await?;
        Ok(processed)
    }
}

/// A message body as a job, or why it is not one.
pub fn parse_job(m: &Message) -> Result<SequenceJob, String> {
    let job: SequenceJob = serde_json::from_str(&m.body).map_err(|e| format!("not a campaign-sequence job: {e}"))?;
    if let Some(attr) = &m.team_id {
        if attr != job.team_id.as_str() {
            return Err("the team_id attribute does not match the body".into());
        }
    }
    Ok(job)
}

/// The `consumer-campaign-sequence` handler, with partial batch failures. A malformed
/// message is logged and acknowledged (retrying cannot fix it); a database or gate error is
/// retried by SQS and, after the redrive limit, lands in the DLQ.
pub async fn handle(seq: &Sequencer, event: SqsEvent) -> SqsBatchResponse {
    process_batch(SEQUENCE_QUEUE, event, |m: Message| async move {
        let job = match parse_job(&m) {
            Ok(j) => j,
            Err(why) => {
                tracing::warn!(reason = %why, "dropping malformed message");
                return Outcome::Done;
            }
        };
        match seq.process(&job).await {
            Ok(p) => {
                tracing::info!(enrolment_id = %job.enrolment_id, step = job.step, outcome = ?p, "step processed");
                Outcome::Done
            }
            Err(e) => Outcome::Retry(e),
        }
    })
    .await
}
