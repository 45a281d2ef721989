//! Mail to the team's own people (its owners and admins): notifications such as inbox items
//! past their SLA. Jobs go through the `mail` queue; the consumer resolves the recipients in
//! the team's scope, sends through a [`Mailer`] (SendGrid deployed, the log locally) and
//! records the mail by its key, so a redelivered job does not mail again. These are not
//! outreach: they go to team members, never to contacts, so the outbound gate's rules
//! (consent, quiet hours, carrier limits) do not apply to them.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use nextier_domain::ids::TeamId;
use nextier_platform::ports::mailer::Mailer;
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::{scope, Db, Scope};
use serde::{Deserialize, Serialize};

pub const QUEUE: &str = "mail";
/// The mail consumer (30 s invocations).
pub const CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: QUEUE,
    batch_size: 10,
    visibility_secs: 180,
    max_receives: 5,
    concurrency: 1,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailJob {
    pub team_id: String,
    /// Unique per mail within the team: the same key is mailed once.
    pub key: String,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailed {
    Sent(Vec<String>),
    AlreadySent,
    NobodyToMail,
}

/// Sends one mail job (once per key).
pub async fn deliver(db: &Db, mailer: &dyn Mailer, job: &MailJob) -> anyhow::Result<Mailed> {
    let team = TeamId::from_trusted(job.team_id.clone());
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    if nextier_store::mail::already_sent(&tx, &team, &job.key).await? {
        return Ok(Mailed::AlreadySent);
    }
    let to = nextier_store::mail::admin_addresses(&tx, &team).await?;
    if to.is_empty() {
        return Ok(Mailed::NobodyToMail);
    }
    drop(tx);
    mailer.send(&to, &job.subject, &job.text, &job.key).await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    nextier_store::mail::log(&tx, &team, &job.key, &to, &job.subject, mailer.name()).await?;
    tx.commit().await?;
    Ok(Mailed::Sent(to))
}

/// The `mail` queue's Lambda handler.
pub async fn handle(db: &Db, mailer: &dyn Mailer, event: SqsEvent) -> SqsBatchResponse {
    process_batch(QUEUE, event, |m: Message| async move {
        let job: MailJob = match serde_json::from_str(&m.body) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "dropping malformed mail job");
                return Outcome::Done;
            }
        };
        match deliver(db, mailer, &job).await {
            Ok(done) => {
                tracing::info!(outcome = ?done, key = %job.key, "mail job");
                Outcome::Done
            }
            Err(e) => Outcome::Retry(e),
        }
    })
    .await
}
