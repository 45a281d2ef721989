//! Inbound: what a provider's delivery does once its webhook (`nextier-webhooks`) verified
//! it: the consumer that turns a delivery into a message, a contact's reply in the team's
//! inbox and the compliance actions it calls for, voice calls, skip-trace results, and the SLA
//! sweep that escalates what waits too long. No HTTP here: errors are the use cases' own.
//!
//! The path of a reply: the webhook verifies the delivery and [`intake`] stores it once
//! (`webhook_events`), staging a [`Job::Webhook`] for the `inbound` queue in the same
//! statement. The consumer routes it to the team that owns the receiving number, finds the
//! sender among that team's contacts only (or creates one marked for review), records the
//! message once per provider message id, classifies it with the team's configuration, files
//! the inbox item, and acts: an opt-out suppresses the number, ends every running enrolment of
//! the contact and stages the one confirmation; HELP and START stage the team's answer. The
//! answers go out as [`Job::Reply`] through the outbound gate, each under its own send key, so
//! a retry never sends twice.

pub mod ai_schedule;
pub mod event;
pub mod intake;
pub mod mail_events;
pub mod notify;
mod received;
pub mod reconcile;
pub mod redrive;
pub mod skiptrace;
pub mod sla;
pub use nextier_ai::suggest;
pub mod voice;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use nextier_domain::ids::{ContactId, MessageId, TeamId};
use nextier_domain::inbox::Classification;
use nextier_outbound::{OutboundGate, OutboundRequest, Prepared, Purpose, Verdict};
use nextier_platform::ports::clock::Clock;
use nextier_runtime::serve::QueueConsumer;
use nextier_runtime::sqs::{process_batch_by_key, Message, Outcome};
use nextier_store::campaigns::Channel;
use nextier_store::number_orders::{self, Settled};
use nextier_store::{contacts, messages, scope, webhooks, Db, Scope, StoreError};
use serde::{Deserialize, Serialize};

use crate::event::Kind;

/// The queue of webhook deliveries (replies and receipts) only, so that an opt-out never
/// waits behind an answer's provider call or an LLM.
pub const QUEUE: &str = "inbound";
/// Answers to keywords and opt-out confirmations (one provider call each).
pub const ANSWERS_QUEUE: &str = "answers";
/// Reply suggestions (an LLM call each, and an auto-send when the team allows it).
pub const AI_QUEUE: &str = "ai";
/// The inbound consumer (30 s invocations).
pub const INBOUND_CONSUMER: QueueConsumer =
    QueueConsumer { queue: QUEUE, batch_size: 10, visibility_secs: 180, max_receives: 5, concurrency: 1 };
/// The answers consumer (30 s invocations).
pub const ANSWERS_CONSUMER: QueueConsumer =
    QueueConsumer { queue: ANSWERS_QUEUE, batch_size: 10, visibility_secs: 180, max_receives: 5, concurrency: 1 };
/// The AI consumer (90 s invocations: a model may be slow).
pub const AI_CONSUMER: QueueConsumer =
    QueueConsumer { queue: AI_QUEUE, batch_size: 10, visibility_secs: 540, max_receives: 5, concurrency: 1 };
pub const PROVIDER: &str = "signalhouse";
/// Team settings read by classification (see `nextier_domain::inbox`).
pub const SETTINGS_SCOPE: &str = "inbox";
/// A receipt for a message we have not yet recorded as sent is retried this many receives
/// (the receipt can overtake our own record of the send), then kept as unmatched.
const RECEIPT_RETRIES: u32 = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Job {
    /// A stored webhook delivery to process.
    #[serde(rename_all = "camelCase")]
    Webhook { webhook_event_id: String, payload: serde_json::Value },
    /// An answer to a keyword (HELP, START) or the confirmation of an opt-out.
    #[serde(rename_all = "camelCase")]
    Reply {
        team_id: String,
        contact_id: String,
        body: String,
        send_key: String,
        confirmation: bool,
        /// The number that wrote to us, which the answer goes to (absent in jobs staged
        /// before it existed: the contact's usual number).
        #[serde(default)]
        to: Option<String>,
    },
    /// Write a reply suggestion for an inbox item that needs one (sent at once only when the
    /// team switched on auto-send).
    #[serde(rename_all = "camelCase")]
    Suggest { team_id: String, item_id: String },
    /// Send an auto-send suggestion whose delay has passed (re-checking the worker's policy,
    /// hours and caps first).
    #[serde(rename_all = "camelCase")]
    AutoSend { team_id: String, suggestion_id: String },
    /// Write the next follow-up of a due nurture cadence.
    #[serde(rename_all = "camelCase")]
    Nurture { team_id: String, nurture_id: String },
    /// One stored SendGrid event (an unsubscribe, spam report or bounce is an opt-out's
    /// kin, so it shares the opt-outs' queue).
    #[serde(rename_all = "camelCase")]
    MailEvent { webhook_event_id: String, payload: serde_json::Value },
}

pub struct Processor {
    pub db: Db,
    pub gate: Arc<dyn OutboundGate>,
    pub clock: Arc<dyn Clock>,
    /// Publishes what processing staged (answers, events) right after commit; without one,
    /// the outbox sweeper does, within a minute.
    pub outbox: Option<nextier_platform::outbox::OutboxPublisher>,
    /// Writes reply suggestions (the template suggester locally, an LLM when configured).
    pub suggester: Arc<dyn nextier_platform::ports::suggester::Suggester>,
}

/// What processing a job did (logged, and returned to tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Received {
        team: TeamId,
        message: MessageId,
        classification: Classification,
    },
    Duplicate,
    Receipt {
        status: nextier_domain::message::MessageStatus,
        moved: bool,
    },
    Unroutable(String),
    Ignored(String),
    Replied(String),
    Suggested {
        suggestion: String,
        auto_sent: bool,
    },
    /// What a mail event did.
    Mail(String),
    /// What an auto-send job did.
    Due(String),
    /// What a nurture job did.
    Nurture(String),
    // A purchase event settled the team's order for `number` (`active`: now its sending number).
    Purchase {
        team: TeamId,
        number: String,
        active: bool,
    },
}

/// The `inbound` queue's Lambda handler: a failed job is reported, and SQS redelivers it.
pub async fn handle(p: &Processor, event: SqsEvent) -> SqsBatchResponse {
    handle_queue(p, QUEUE, event).await
}

/// Jobs of different conversations in one batch run side by side, at most this many at once
/// (each holds at most two database connections at a time; the functions' pools are larger).
pub const BATCH_CONCURRENCY: usize = 4;

/// The handler of one of the inbound path's queues (`inbound`, `answers`, `ai`): every job
/// kind is understood on every queue, so a job staged before the queues were split still runs.
/// Jobs of one conversation ([`conversation`]) run in the batch's order; others side by side.
pub async fn handle_queue(p: &Processor, queue: &'static str, event: SqsEvent) -> SqsBatchResponse {
    process_batch_by_key(
        queue,
        event,
        BATCH_CONCURRENCY,
        |m| conversation(&m.body),
        |m: Message| async move {
            let job: Job = match serde_json::from_str(&m.body) {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping malformed inbound job");
                    return Outcome::Done;
                }
            };
            match p.process(&job, m.receive_count).await {
                Ok(done) => {
                    tracing::info!(outcome = ?done, "inbound job");
                    Outcome::Done
                }
                Err(e) => Outcome::Retry(e),
            }
        },
    )
    .await
}

/// What a job must stay in order with: a reply with the other texts between the same two
/// numbers (a STOP then a START), a receipt with the other receipts of its message, an answer
/// or suggestion with the other jobs for its contact or item. Jobs that cannot be read are
/// each their own.
pub fn conversation(body: &str) -> String {
    match serde_json::from_str::<Job>(body) {
        Ok(Job::Webhook { webhook_event_id, payload }) => {
            let e = event::parse(&payload);
            match (&e.kind, e.from, e.to, e.message_id) {
                (Kind::Received, Some(from), Some(to), _) => format!("text:{from}:{to}"),
                (Kind::Status(_), _, _, Some(id)) => format!("message:{id}"),
                (Kind::NumberPurchase(_), _, _, _) => format!("number:{}", e.number.unwrap_or_default()),
                _ => format!("delivery:{webhook_event_id}"),
            }
        }
        Ok(Job::Reply { team_id, contact_id, .. }) => format!("contact:{team_id}:{contact_id}"),
        Ok(Job::Suggest { team_id, item_id }) => format!("item:{team_id}:{item_id}"),
        Ok(Job::AutoSend { team_id, suggestion_id }) => format!("suggestion:{team_id}:{suggestion_id}"),
        Ok(Job::Nurture { team_id, nurture_id }) => format!("nurture:{team_id}:{nurture_id}"),
        Ok(Job::MailEvent { webhook_event_id, .. }) => format!("mail:{webhook_event_id}"),
        Err(_) => format!("unreadable:{body}"),
    }
}

impl Processor {
    pub async fn process(&self, job: &Job, receive_count: u32) -> anyhow::Result<Processed> {
        match job {
            Job::Webhook { webhook_event_id, payload } => {
                let e = event::parse(payload);
                match e.kind.clone() {
                    Kind::Received => received::received(self, webhook_event_id, &e).await,
                    Kind::Status(status) => self.receipt(webhook_event_id, &e, status, receive_count).await,
                    Kind::NumberPurchase(success) => self.purchase(webhook_event_id, &e, success).await,
                    Kind::Other(name) => {
                        self.finish(webhook_event_id, None, &format!("ignored: {name}")).await?;
                        Ok(Processed::Ignored(name))
                    }
                }
            }
            Job::Reply { team_id, contact_id, body, send_key, confirmation, to } => {
                let team = TeamId::from_trusted(team_id.clone());
                let contact = ContactId::from_trusted(contact_id.clone());
                let purpose = if *confirmation { Purpose::OptOutConfirmation } else { Purpose::KeywordReply };
                self.reply(&team, &contact, body, send_key, purpose, to.as_deref()).await
            }
            Job::MailEvent { webhook_event_id, payload } => self.mail_event(webhook_event_id, payload).await,
            Job::Suggest { team_id, item_id } => {
                let team = TeamId::from_trusted(team_id.clone());
                let item = nextier_domain::ids::InboxItemId::from_trusted(item_id.clone());
                self.suggest(&team, &item).await
            }
            Job::AutoSend { team_id, suggestion_id } => {
                let team = TeamId::from_trusted(team_id.clone());
                let id = nextier_domain::ids::SuggestionId::from_trusted(suggestion_id.clone());
                let due = nextier_ai::engine::send_due(&self.ai(), &team, &id).await?;
                Ok(Processed::Due(format!("{due:?}")))
            }
            Job::Nurture { team_id, nurture_id } => {
                let team = TeamId::from_trusted(team_id.clone());
                let id = nextier_domain::ids::NurtureId::from_trusted(nurture_id.clone());
                let tick = nextier_ai::nurture::tick(&self.ai(), &team, &id).await?;
                Ok(Processed::Nurture(format!("{tick:?}")))
            }
        }
    }

    /// The AI engine on this processor's parts.
    pub fn ai(&self) -> nextier_ai::Ai {
        nextier_ai::Ai {
            db: self.db.clone(),
            gate: self.gate.clone(),
            suggester: self.suggester.clone(),
            clock: self.clock.clone(),
        }
    }

    pub(crate) async fn finish(&self, id: &str, team: Option<&TeamId>, outcome: &str) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        webhooks::finish(&tx, id, team, outcome, self.clock.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn receipt(
        &self,
        webhook_id: &str,
        e: &event::Event,
        status: nextier_domain::message::MessageStatus,
        receive_count: u32,
    ) -> anyhow::Result<Processed> {
        let Some(provider_id) = e.message_id.as_deref() else {
            self.finish(webhook_id, None, "ignored: receipt without message_id").await?;
            return Ok(Processed::Ignored("receipt without message_id".into()));
        };
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        // The local runtime's sandbox plays SignalHouse, receipts included.
        let mut found = None;
        for provider in [PROVIDER, "sandbox"] {
            if let Some(team) = webhooks::team_for_provider_message(&tx, provider, provider_id).await? {
                found = Some((team, provider));
                break;
            }
        }
        let Some((team, provider)) = found else {
            drop(tx);
            if receive_count < RECEIPT_RETRIES {
                // The receipt may have overtaken our record of the send: try again later.
                anyhow::bail!("no message {provider_id} yet; retrying");
            }
            self.finish(webhook_id, None, "unmatched receipt").await?;
            return Ok(Processed::Unroutable(format!("no message {provider_id}")));
        };
        scope::apply(&tx, &Scope::team(team.clone())).await?;
        let detail = e.error_code.as_deref().map(|c| format!("error {c}"));
        let at = e.at.filter(|at| *at <= now).unwrap_or(now);
        let moved = messages::apply_receipt(&tx, &team, provider, provider_id, status, detail.as_deref(), at)
            .await?
            .is_some_and(|(_, moved)| moved);
        webhooks::finish(&tx, webhook_id, Some(&team), &format!("receipt: {status}"), now).await?;
        tx.commit().await?;
        Ok(Processed::Receipt { status, moved })
    }

    /// A purchase completed or failed at the provider. Only an order this team placed for
    /// this number (in the event's subgroup) is settled; any other event changes nothing.
    async fn purchase(&self, webhook_id: &str, e: &event::Event, success: bool) -> anyhow::Result<Processed> {
        let Some(number) = e.number.as_deref().and_then(|n| nextier_domain::phone::E164::parse(n).ok()) else {
            self.finish(webhook_id, None, "ignored: purchase event without a number").await?;
            return Ok(Processed::Ignored("purchase event without a number".into()));
        };
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        let subgroup = e.subgroup.as_deref();
        let Some(team) = number_orders::team_for_order(&tx, number.as_str(), subgroup).await? else {
            drop(tx);
            self.finish(webhook_id, None, "ignored: nobody ordered this number").await?;
            return Ok(Processed::Ignored(format!("no pending order for {number}")));
        };
        scope::apply(&tx, &Scope::team(team.clone())).await?;
        let detail = e.error_code.clone().or_else(|| e.text.clone());
        let settled = number_orders::settle(&tx, &team, number.as_str(), subgroup, success, detail.as_deref()).await?;
        let outcome = match &settled {
            Settled::Active(_) => "purchase: number active",
            Settled::Failed => "purchase: failed",
            Settled::HeldElsewhere => "purchase: registered to another team",
            Settled::NotOrdered => "ignored: nobody ordered this number",
        };
        webhooks::finish(&tx, webhook_id, Some(&team), outcome, now).await?;
        tx.commit().await?;
        if let Settled::HeldElsewhere = settled {
            tracing::warn!(number = %number, team = %team, "bought number is registered to another team");
        }
        Ok(Processed::Purchase { team, number: number.to_string(), active: matches!(settled, Settled::Active(_)) })
    }

    async fn suggest(&self, team: &TeamId, item: &nextier_domain::ids::InboxItemId) -> anyhow::Result<Processed> {
        let (s, due) = nextier_ai::engine::suggest_job(&self.ai(), team, item).await?;
        let Some(s) = s else { return Ok(Processed::Ignored("no suggestion for this item".into())) };
        let auto_sent = matches!(due, nextier_ai::engine::Due::Sent(_));
        if !auto_sent {
            tracing::info!(suggestion = %s.id, outcome = ?due, "suggestion written");
        }
        Ok(Processed::Suggested { suggestion: s.id.to_string(), auto_sent })
    }

    /// Sends an answer through the gate: prepare (recorded under its send key), commit,
    /// deliver, settle. A provider failure is retried by SQS with the same key.
    async fn reply(
        &self,
        team: &TeamId,
        contact: &ContactId,
        body: &str,
        send_key: &str,
        purpose: Purpose,
        to: Option<&str>,
    ) -> anyhow::Result<Processed> {
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        // An opt-out's confirmation goes to a deleted contact too; other answers do not.
        let c = match contacts::get_any(&tx, contact).await {
            Ok((_, true)) if purpose != Purpose::OptOutConfirmation => {
                return Ok(Processed::Ignored("the contact was deleted".into()))
            }
            Ok((c, _)) => c,
            Err(StoreError::NotFound) => return Ok(Processed::Ignored("the contact was deleted".into())),
            Err(e) => return Err(e.into()),
        };
        let req = OutboundRequest {
            team,
            contact: &c,
            channel: Channel::Sms,
            subject: None,
            body: body.to_owned(),
            send_key: send_key.to_owned(),
            campaign: None,
            sent_by: "inbound",
            purpose,
            to,
            now,
        };
        let verdict = match self.gate.prepare(&tx, &req).await? {
            Prepared::Decided(v) => {
                tx.commit().await?;
                v
            }
            Prepared::Ready(d) => {
                tx.commit().await?;
                drop(conn);
                nextier_outbound::deliver_and_settle(self.gate.as_ref(), &self.db, team, &d, now).await?
            }
        };
        match verdict {
            Verdict::Sent { message } => Ok(Processed::Replied(message.to_string())),
            Verdict::Blocked { reason } => Ok(Processed::Ignored(format!("answer not sent: {reason}"))),
            Verdict::Deferred { reason, .. } => anyhow::bail!("answer deferred: {reason}"),
            Verdict::Failed { reason } => anyhow::bail!("answer failed: {reason}"),
        }
    }
}
