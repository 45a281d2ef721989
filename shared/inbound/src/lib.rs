//! Inbound: the SignalHouse webhook, the consumer that turns a delivery into a message, a
//! contact's reply in the team's inbox and the compliance actions it calls for, and the SLA
//! sweep that escalates what waits too long.
//!
//! The path of a reply: the webhook verifies and stores the delivery once
//! (`webhook_events`), staging a [`Job::Webhook`] for the `inbound` queue in the same
//! transaction. The consumer routes it to the team that owns the receiving number, finds the
//! sender among that team's contacts only (or creates one marked for review), records the
//! message once per provider message id, classifies it with the team's configuration, files
//! the inbox item, and acts: an opt-out suppresses the number, ends every running enrolment of
//! the contact and stages the one confirmation; HELP and START stage the team's answer. The
//! answers go out as [`Job::Reply`] through the outbound gate, each under its own send key, so
//! a retry never sends twice.

pub mod event;
pub mod notify;
pub mod reconcile;
pub mod skiptrace;
pub mod sla;
pub mod suggest;
pub mod voice;
pub mod webhook;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use nextier_campaigns::Clock;
use nextier_domain::calls::{self as calls_rules, CallConfig, Candidate, Eligibility};
use nextier_domain::ids::{ContactId, MessageId, TeamId};
use nextier_domain::inbox::{Classification, InboxConfig};
use nextier_domain::lead_state::LeadState;
use nextier_domain::phone::E164;
use nextier_domain::reply;
use nextier_outbound::{OutboundGate, OutboundRequest, Prepared, Purpose, Verdict};
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::campaigns::{self as campaign_store, Channel};
use nextier_store::contacts::{self, Fields, NewContact, NewPhone};
use nextier_store::inbox::{self, NewItem};
use nextier_store::messages::{self, Inbound as InboundMessage};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::suppressions::{self, NewSuppression};
use nextier_store::{scope, settings, webhooks, Db, Scope, StoreError, Tx};
use serde::{Deserialize, Serialize};

use crate::event::Kind;

/// The queue the webhook (through the outbox) and the consumer share.
pub const QUEUE: &str = "inbound";
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
    Reply { team_id: String, contact_id: String, body: String, send_key: String, confirmation: bool },
    /// Write a reply suggestion for an inbox item that needs one (sent at once only when the
    /// team switched on auto-send).
    #[serde(rename_all = "camelCase")]
    Suggest { team_id: String, item_id: String },
}

pub struct Processor {
    pub db: Db,
    pub gate: Arc<dyn OutboundGate>,
    pub clock: Arc<dyn Clock>,
    /// Publishes what processing staged (answers, events) right after commit; without one,
    /// the outbox sweeper does, within a minute.
    pub outbox: Option<nextier_platform::outbox::OutboxPublisher>,
    /// Writes reply suggestions (the template suggester locally, an LLM when configured).
    pub suggester: Arc<dyn suggest::Suggester>,
}

/// What processing a job did (logged, and returned to tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    Received { team: TeamId, message: MessageId, classification: Classification },
    Duplicate,
    Receipt { status: &'static str, moved: bool },
    Unroutable(String),
    Ignored(String),
    Replied(String),
    Suggested { suggestion: String, auto_sent: bool },
}

/// The `inbound` queue's Lambda handler: a failed job is reported, and SQS redelivers it.
pub async fn handle(p: &Processor, event: SqsEvent) -> SqsBatchResponse {
    process_batch(QUEUE, event, |m: Message| async move {
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
    })
    .await
}

impl Processor {
    pub async fn process(&self, job: &Job, receive_count: u32) -> anyhow::Result<Processed> {
        match job {
            Job::Webhook { webhook_event_id, payload } => {
                let e = event::parse(payload);
                match e.kind.clone() {
                    Kind::Received => self.received(webhook_event_id, &e).await,
                    Kind::Status(status) => self.receipt(webhook_event_id, &e, status, receive_count).await,
                    Kind::Other(name) => {
                        self.finish(webhook_event_id, None, &format!("ignored: {name}")).await?;
                        Ok(Processed::Ignored(name))
                    }
                }
            }
            Job::Reply { team_id, contact_id, body, send_key, confirmation } => {
                let team = TeamId::from_trusted(team_id.clone());
                let contact = ContactId::from_trusted(contact_id.clone());
                let purpose = if *confirmation { Purpose::OptOutConfirmation } else { Purpose::KeywordReply };
                self.reply(&team, &contact, body, send_key, purpose).await
            }
            Job::Suggest { team_id, item_id } => {
                let team = TeamId::from_trusted(team_id.clone());
                let item = nextier_domain::ids::InboxItemId::from_trusted(item_id.clone());
                self.suggest(&team, &item).await
            }
        }
    }

    async fn finish(&self, id: &str, team: Option<&TeamId>, outcome: &str) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        webhooks::finish(&tx, id, team, outcome, self.clock.now()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn received(&self, webhook_id: &str, e: &event::Event) -> anyhow::Result<Processed> {
        let (from, to) = match (e.from.as_deref().map(E164::parse), e.to.as_deref().map(E164::parse)) {
            (Some(Ok(f)), Some(Ok(t))) => (f, t),
            _ => {
                let why = "unroutable: from or to is missing or not a NANP number".to_owned();
                self.finish(webhook_id, None, &why).await?;
                return Ok(Processed::Unroutable(why));
            }
        };
        let text = e.text.clone().unwrap_or_default();
        let now = self.clock.now();
        let at = e.at.filter(|at| *at <= now).unwrap_or(now);
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        // The team is the owner of the number the reply was sent to; nothing else decides it.
        let Some(team) = webhooks::team_for_number(&tx, to.as_str()).await? else {
            let why = format!("unroutable: no team owns {to}");
            webhooks::finish(&tx, webhook_id, None, &why, now).await?;
            tx.commit().await?;
            return Ok(Processed::Unroutable(why));
        };
        scope::apply(&tx, &Scope::team(team.clone())).await?;
        // One conversation at a time: replies from the same number are worked in order, and
        // an unknown sender becomes one contact however many replies arrive at once.
        tx.query_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            &[(&format!("inbound:{team}:{from}"), tokio_postgres_text())],
        )
        .await?;
        let contact_id = match contacts::holder_of_phone(&tx, &from).await? {
            Some(c) => c,
            None => new_contact(&tx, &team, &from).await?,
        };
        let contact = match contacts::get(&tx, &contact_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                let why = format!("the sender's contact {contact_id} was deleted");
                webhooks::finish(&tx, webhook_id, Some(&team), &why, now).await?;
                tx.commit().await?;
                return Ok(Processed::Ignored(why));
            }
            Err(e) => return Err(e.into()),
        };
        let campaign = messages::latest_campaign(&tx, &contact_id).await?;
        let (message, created) = messages::record_inbound(
            &tx,
            &InboundMessage {
                team: &team,
                contact: &contact_id,
                campaign: campaign.as_ref(),
                from: from.as_str(),
                to: to.as_str(),
                body: &text,
                provider: PROVIDER,
                provider_message_id: e.message_id.as_deref(),
                at,
            },
        )
        .await?;
        if !created {
            webhooks::finish(&tx, webhook_id, Some(&team), "duplicate message", now).await?;
            tx.commit().await?;
            return Ok(Processed::Duplicate);
        }
        let current = suppressions::active(&tx, &team, from.as_str(), now).await?;
        let opted_out = current.as_ref().is_some_and(|s| s.kind == "OPTED_OUT");
        let suppressed = current.is_some();
        let reading = reply::read(&text, opted_out);
        let config = InboxConfig::from_settings(&settings::strings_in(&tx, SETTINGS_SCOPE).await?);
        let a = config.assess(&reading);

        // The contact: score, labels as tags, anything the reply gave us.
        tx.query_typed(
            "UPDATE contacts SET score = least(greatest(score + $2, 0), 100),
                    tags = ARRAY(SELECT DISTINCT unnest(tags || $3::text[])), updated_at = now()
              WHERE id = $1",
            &[
                (&contact_id.as_str(), tokio_postgres_text()),
                (&a.score_delta, nextier_store::tokio_postgres::types::Type::INT4),
                (&a.labels, nextier_store::tokio_postgres::types::Type::TEXT_ARRAY),
            ],
        )
        .await?;
        if let Some(email) = &reading.email {
            ignore_conflict(contacts::add_email(&tx, &team, &contact_id, email, contact.emails.is_empty()).await)?;
        }
        if let Some(phone) = reading.phone.as_deref().and_then(|p| E164::parse(p).ok()) {
            let p = NewPhone { e164: phone, kind: "mobile".into(), is_primary: false };
            ignore_conflict(contacts::add_phone(&tx, &team, &contact_id, &p).await)?;
        }
        contacts::record(
            &tx,
            &team,
            &contact_id,
            "replied",
            serde_json::json!({"message": message, "classification": a.classification, "labels": a.labels}),
            "inbound",
        )
        .await?;

        // What the reply calls for.
        let mut answer: Option<(String, String, bool)> = None;
        match a.classification {
            Classification::DncRequest => {
                let s = match current {
                    Some(s) => s,
                    None => {
                        let s = NewSuppression {
                            address: from.as_str(),
                            kind: "OPTED_OUT",
                            reason: Some(&text),
                            source: "inbound_reply",
                            actor: "inbound",
                            expires_at: None,
                        };
                        suppressions::add(&tx, &team, &s).await?
                    }
                };
                campaign_store::exit_contact(&tx, &contact_id, "opt_out").await?;
                if contact.lead_state.can_move_to(LeadState::Suppressed) {
                    contacts::transition(
                        &tx,
                        &team,
                        &contact_id,
                        LeadState::Suppressed,
                        Some("opt-out reply"),
                        "inbound",
                    )
                    .await?;
                }
                answer = Some((
                    config.opt_out_text.clone(),
                    nextier_outbound::opt_out_confirmation_key(s.id.as_str()),
                    true,
                ));
            }
            Classification::OptIn => {
                if opted_out {
                    suppressions::remove(&tx, &team, from.as_str()).await?;
                    contacts::reinstate(&tx, &team, &contact_id, "opted back in by text", "inbound").await?;
                }
                answer = Some((config.opt_in_text.clone(), format!("opt-in:{message}"), false));
            }
            Classification::Help => answer = Some((config.help_text.clone(), format!("help:{message}"), false)),
            Classification::WrongNumber => {
                if current.is_none() {
                    let s = NewSuppression {
                        address: from.as_str(),
                        kind: "WRONG_NUMBER",
                        reason: Some(&text),
                        source: "inbound_reply",
                        actor: "inbound",
                        expires_at: None,
                    };
                    suppressions::add(&tx, &team, &s).await?;
                }
                campaign_store::exit_contact(&tx, &contact_id, "suppressed:WRONG_NUMBER").await?;
            }
            _ => {}
        }
        // The canonical lead state follows the reply (each move only where the state machine
        // allows it): any reply is `responded`; an email given, `email_captured`; interest,
        // `high_intent`. (An opt-out was `suppressed` above; a wrong number is not the contact.)
        if !matches!(a.classification, Classification::DncRequest | Classification::WrongNumber) {
            let mut path = vec![LeadState::Responded];
            if reading.email.is_some() {
                path.push(LeadState::EmailCaptured);
            }
            if a.classification == Classification::Positive {
                path.push(LeadState::HighIntent);
            }
            let mut state = contacts::get(&tx, &contact_id).await?.lead_state;
            for to in path {
                if state.can_move_to(to) {
                    contacts::transition(&tx, &team, &contact_id, to, Some("reply"), "inbound").await?;
                    state = to;
                }
            }
        }
        // Any reply ends the sequences whose exit rule says so.
        campaign_store::exit_contact(&tx, &contact_id, "reply").await?;
        // Hot leads go to the call queue (DOMAIN.md C.6); those who said stop leave it.
        if matches!(a.classification, Classification::DncRequest | Classification::WrongNumber) {
            nextier_store::calls::cancel_for_contact(&tx, &contact_id, a.classification.as_str()).await?;
        } else if matches!(a.classification, Classification::Positive | Classification::Question) {
            let cfg = CallConfig::from_settings(&settings::strings_in(&tx, "calls").await?);
            let mut labels = contact.tags.clone();
            labels.extend(a.labels.iter().cloned());
            let candidate = Candidate {
                labels: &labels,
                score: (contact.score + a.score_delta).clamp(0, 100),
                opted_out: suppressed,
                do_not_contact: false,
                phone: Some(from.as_str()),
            };
            if let Eligibility::Eligible { priority, reason } = calls_rules::evaluate(&candidate, &cfg) {
                let push = nextier_store::calls::Push {
                    contact: &contact_id,
                    phone: from.as_str(),
                    priority,
                    reason,
                    source: "inbound_reply",
                    max_attempts: cfg.max_attempts,
                };
                nextier_store::calls::push(&tx, &team, &push).await?;
            }
        }
        let (item, _) = inbox::create(
            &tx,
            &team,
            &NewItem {
                contact: &contact_id,
                message: &message,
                campaign: campaign.as_ref(),
                phone: from.as_str(),
                text: &text,
                assessment: &a,
                now,
            },
        )
        .await?;
        let correlation = nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned();
        let mut staged = Vec::new();
        if suggest::needs_reply(a.classification) {
            let job = Job::Suggest { team_id: team.to_string(), item_id: item.to_string() };
            staged.extend(stage_job(&tx, &team, &job, &correlation, format!("suggest:{item}")).await?);
        }
        if let Some((body, send_key, confirmation)) = answer {
            let dedupe = format!("reply:{team}:{send_key}");
            let job = Job::Reply {
                team_id: team.to_string(),
                contact_id: contact_id.to_string(),
                body,
                send_key,
                confirmation,
            };
            staged.extend(stage_job(&tx, &team, &job, &correlation, dedupe).await?);
        }
        let event = outbox::stage_for_team(
            &tx,
            &team,
            Destination::Event("InboundMessageReceived".into()),
            serde_json::json!({"messageId": message, "contactId": contact_id, "classification": a.classification,
                               "priority": a.priority, "optOut": a.opt_out}),
            correlation,
        )
        .await?;
        staged.push(event);
        webhooks::finish(&tx, webhook_id, Some(&team), &format!("received: {}", a.classification.as_str()), now)
            .await?;
        tx.commit().await?;
        if let Some(p) = &self.outbox {
            p.publish(&staged).await;
        }
        Ok(Processed::Received { team, message, classification: a.classification })
    }

    async fn receipt(
        &self,
        webhook_id: &str,
        e: &event::Event,
        status: &'static str,
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

    async fn suggest(&self, team: &TeamId, item: &nextier_domain::ids::InboxItemId) -> anyhow::Result<Processed> {
        // A retry after the provider failed an auto-sent suggestion: deliver that one again
        // (same key), never write a second.
        let earlier = {
            let mut conn = self.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            nextier_store::ai::for_item(&tx, item).await?
        };
        if let Some(prev) = earlier.iter().find(|s| s.status == "auto_sent") {
            return match suggest::send(&self.db, &self.gate, team, &prev.id, None, true, "ai:auto", self.clock.now())
                .await
            {
                Ok(_) => Ok(Processed::Suggested { suggestion: prev.id.to_string(), auto_sent: true }),
                Err(suggest::SendError::Store(StoreError::Conflict(m))) | Err(suggest::SendError::Refused(m)) => {
                    Ok(Processed::Ignored(m))
                }
                Err(e) => Err(anyhow::anyhow!(e)),
            };
        }
        let Some((s, created)) = suggest::suggest_for_item(&self.db, self.suggester.as_ref(), team, item).await? else {
            return Ok(Processed::Ignored("no suggestion for this item".into()));
        };
        let auto = {
            let mut conn = self.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            settings::flag(&tx, suggest::SETTINGS_SCOPE, "auto_send").await?
        };
        if !(created && auto) {
            return Ok(Processed::Suggested { suggestion: s.id.to_string(), auto_sent: false });
        }
        match suggest::send(&self.db, &self.gate, team, &s.id, None, true, "ai:auto", self.clock.now()).await {
            Ok(_) => Ok(Processed::Suggested { suggestion: s.id.to_string(), auto_sent: true }),
            // Not now or never: it waits for a person, as any suggestion does.
            Err(suggest::SendError::Refused(reason)) => {
                tracing::info!(reason, "auto-send held back; the suggestion waits for a person");
                Ok(Processed::Suggested { suggestion: s.id.to_string(), auto_sent: false })
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        }
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
    ) -> anyhow::Result<Processed> {
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let c = match contacts::get(&tx, contact).await {
            Ok(c) => c,
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
            now,
        };
        let verdict = match self.gate.prepare(&tx, &req).await? {
            Prepared::Decided(v) => {
                tx.commit().await?;
                v
            }
            Prepared::Ready(d) => {
                tx.commit().await?;
                let outcome = self.gate.deliver(&d).await;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                let v = self.gate.settle(&tx, &d, outcome, now).await?;
                tx.commit().await?;
                v
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

/// Stages a job for the inbound queue in the caller's transaction (once per dedupe key).
async fn stage_job(
    tx: &Tx<'_>,
    team: &TeamId,
    job: &Job,
    correlation: &str,
    dedupe: String,
) -> anyhow::Result<Option<nextier_domain::ids::OutboxId>> {
    let msg = OutboxMessage {
        team: Some(team.clone()),
        destination: Destination::Queue(QUEUE.into()),
        payload: serde_json::to_value(job)?,
        correlation_id: correlation.to_owned(),
        dedupe_key: Some(dedupe),
    };
    Ok(outbox::stage(tx, &msg).await?)
}

fn tokio_postgres_text() -> nextier_store::tokio_postgres::types::Type {
    nextier_store::tokio_postgres::types::Type::TEXT
}

/// An email or number the reply gave that another contact already holds is not ours to take.
fn ignore_conflict(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(StoreError::Conflict(m)) => {
            tracing::info!(detail = %m, "captured address not attached");
            Ok(())
        }
        other => other,
    }
}

/// An unknown sender: a new contact with just the number, marked for a person's review.
async fn new_contact(tx: &Tx<'_>, team: &TeamId, from: &E164) -> Result<ContactId, StoreError> {
    let new = NewContact {
        fields: Fields {
            status: "active".into(),
            pipeline_status: "replied".into(),
            source: Some("inbound".into()),
            custom_fields: serde_json::json!({}),
            ..Fields::default()
        },
        phones: vec![NewPhone { e164: from.clone(), kind: "mobile".into(), is_primary: true }],
        emails: vec![],
        address: None,
        needs_review: true,
    };
    contacts::create(tx, team, &new, "inbound").await
}
