//! A reply, from a stored delivery to the inbox, in one transaction: route it to the team
//! that owns the receiving number, find the sender among that team's contacts, record it once,
//! read it with the team's configuration, and act on it.

use chrono::{DateTime, Utc};
use nextier_domain::calls::{self as calls_rules, CallConfig, Candidate, Eligibility};
use nextier_domain::ids::{InboxItemId, MessageId, OutboxId, TeamId};
use nextier_domain::inbox::{Assessment, Classification, InboxConfig};
use nextier_domain::lead_state::LeadState;
use nextier_domain::phone::E164;
use nextier_domain::reply::{self, Reading};
use nextier_domain::suppression::Kind;
use nextier_store::campaigns as campaign_store;
use nextier_store::consent;
use nextier_store::contacts::{self, Contact, Fields, NewContact, NewPhone};
use nextier_store::inbox::{self, NewItem};
use nextier_store::messages::{self, Inbound as InboundMessage};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::suppressions::{self, NewSuppression, Provenance, Suppression};
use nextier_store::{scope, settings, webhooks, Scope, StoreError, Tx};

use crate::event::Event;
use crate::{suggest, Job, Processed, Processor, AI_QUEUE, ANSWERS_QUEUE, PROVIDER, SETTINGS_SCOPE};

/// An answer the reply calls for: (text, send key, is the opt-out confirmation).
type Answer = (String, String, bool);

pub(crate) async fn received(p: &Processor, webhook_id: &str, e: &Event) -> anyhow::Result<Processed> {
    let (from, to) = match (e.from.as_deref().map(E164::parse), e.to.as_deref().map(E164::parse)) {
        (Some(Ok(f)), Some(Ok(t))) => (f, t),
        _ => {
            let why = "unroutable: from or to is missing or not a NANP number".to_owned();
            p.finish(webhook_id, None, &why).await?;
            return Ok(Processed::Unroutable(why));
        }
    };
    let text = e.text.clone().unwrap_or_default();
    let now = p.clock.now();
    let mut conn = p.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    // The team is the owner of the number the reply was sent to; nothing else decides it.
    let Some(team) = webhooks::team_for_number(&tx, to.as_str()).await? else {
        let why = format!("unroutable: no team owns {to}");
        webhooks::finish(&tx, webhook_id, None, &why, now).await?;
        tx.commit().await?;
        return Ok(Processed::Unroutable(why));
    };
    scope::apply(&tx, &Scope::team(team.clone())).await?;
    // A deleted contact's reply is still theirs: an opt-out from them is honoured like any other.
    let (contact, deleted) = sender(&tx, &team, &from, "inbound").await?;
    let campaign = messages::latest_campaign(&tx, &contact.id).await?;
    let inbound = InboundMessage {
        team: &team,
        channel: nextier_store::campaigns::Channel::Sms,
        contact: &contact.id,
        campaign: campaign.as_ref(),
        from: from.as_str(),
        to: to.as_str(),
        body: &text,
        provider: PROVIDER,
        provider_message_id: e.message_id.as_deref(),
        at: e.at.filter(|at| *at <= now).unwrap_or(now),
    };
    let received_at = inbound.at;
    let (message, created) = messages::record_inbound(&tx, &inbound).await?;
    if !created {
        webhooks::finish(&tx, webhook_id, Some(&team), "duplicate message", now).await?;
        tx.commit().await?;
        return Ok(Processed::Duplicate);
    }
    let current = suppressions::active(&tx, &team, from.as_str(), now).await?;
    let opted_out = current.as_ref().is_some_and(|s| s.kind == Kind::OptedOut);
    let reading = reply::read(&text, opted_out);
    let config = InboxConfig::from_settings(&settings::strings_in(&tx, SETTINGS_SCOPE).await?);
    let a = config.assess(&reading);

    let r =
        Reply { team: &team, contact: &contact, from: &from, text: &text, message: &message, a: &a, reading: &reading };
    let suppressed = current.is_some();
    if deleted {
        // Only what consent requires: the team deleted this person, so nothing is filed.
        let answer = r.act(&tx, &config, opted_out).await?;
        let staged = r.stage_answer(&tx, answer).await?;
        let why = format!("received from a deleted contact: {}", a.classification.as_str());
        webhooks::finish(&tx, webhook_id, Some(&team), &why, now).await?;
        tx.commit().await?;
        opt_out_recorded(&a, received_at, p.clock.now());
        // Publishing takes a connection of its own: give this one back first.
        drop(conn);
        if let Some(publisher) = &p.outbox {
            publisher.publish(&staged).await;
        }
        return Ok(Processed::Received { team, message, classification: a.classification });
    }
    r.update_contact(&tx).await?;
    let answer = r.act(&tx, &config, opted_out).await?;
    r.follow_up(&tx, suppressed).await?;
    let new_item = NewItem {
        contact: &contact.id,
        message: &message,
        campaign: campaign.as_ref(),
        phone: from.as_str(),
        text: &text,
        assessment: &a,
        now,
    };
    let (item, _) = inbox::create(&tx, &team, &new_item).await?;
    let staged = r.stage(&tx, &item, answer).await?;
    webhooks::finish(&tx, webhook_id, Some(&team), &format!("received: {}", a.classification.as_str()), now).await?;
    tx.commit().await?;
    opt_out_recorded(&a, received_at, p.clock.now());
    // Publishing takes a connection of its own: give this one back first.
    drop(conn);
    if let Some(publisher) = &p.outbox {
        publisher.publish(&staged).await;
    }
    // Opt-out and wrong-number rates per class, for the dashboards and a carrier's audit.
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function()), ("Classification", a.classification.as_str())],
        &[("Replies", 1.0, nextier_runtime::metrics::Unit::Count)],
    );
    Ok(Processed::Received { team, message, classification: a.classification })
}

/// How long an opt-out took from the provider's receipt of the text to its revocation being
/// committed (`OptOutLatency`, seconds): the compliance clock the alarm watches.
fn opt_out_recorded(a: &nextier_domain::inbox::Assessment, received_at: DateTime<Utc>, now: DateTime<Utc>) {
    if !a.opt_out {
        return;
    }
    let secs = (now - received_at).num_milliseconds().max(0) as f64 / 1000.0;
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[("OptOutLatency", secs, nextier_runtime::metrics::Unit::Seconds)],
    );
}

/// The sender among the team's contacts, or a new contact marked for review. Replies from one
/// number are worked one at a time (so concurrent replies from an unknown number make one
/// contact, and a conversation is read in order), and so are replies to one person from any
/// of their numbers: two STOPs from a person's two phones at once would otherwise each hold
/// what the other's revocation needs (its number's suppression lock, the contact row).
pub(crate) async fn sender(
    tx: &Tx<'_>,
    team: &TeamId,
    from: &E164,
    source: &str,
) -> Result<(Contact, bool), StoreError> {
    contacts::serialize_replies_from(tx, team, from.as_str()).await?;
    let id = match contacts::holder_of_phone(tx, from).await? {
        Some(c) => c,
        None => {
            let new = NewContact {
                fields: Fields {
                    status: "active".into(),
                    pipeline_status: "replied".into(),
                    source: Some(source.into()),
                    custom_fields: serde_json::json!({}),
                    ..Fields::default()
                },
                phones: vec![NewPhone { e164: from.clone(), kind: "mobile".into(), is_primary: true }],
                emails: vec![],
                address: None,
                needs_review: true,
            };
            contacts::create(tx, team, &new, source).await?
        }
    };
    contacts::serialize_replies_to(tx, &id).await?;
    contacts::get_any(tx, &id).await
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

struct Reply<'a> {
    team: &'a TeamId,
    contact: &'a Contact,
    from: &'a E164,
    text: &'a str,
    message: &'a MessageId,
    a: &'a Assessment,
    reading: &'a Reading,
}

impl Reply<'_> {
    /// Score, labels as tags, the email or mobile the reply gave, the timeline.
    async fn update_contact(&self, tx: &Tx<'_>) -> Result<(), StoreError> {
        let (team, id) = (self.team, &self.contact.id);
        contacts::add_score_and_tags(tx, id, self.a.score_delta, &self.a.labels).await?;
        if let Some(email) = &self.reading.email {
            ignore_conflict(contacts::add_email(tx, team, id, email, self.contact.emails.is_empty()).await)?;
        }
        if let Some(phone) = self.reading.phone.as_deref().and_then(|p| E164::parse(p).ok()) {
            let p = NewPhone { e164: phone, kind: "mobile".into(), is_primary: false };
            ignore_conflict(contacts::add_phone(tx, team, id, &p).await)?;
        }
        let data = serde_json::json!({"message": self.message, "classification": self.a.classification, "labels": self.a.labels});
        contacts::record(tx, team, id, "replied", data, "inbound").await
    }

    async fn suppress(&self, tx: &Tx<'_>, kind: &str) -> Result<Suppression, StoreError> {
        let s = NewSuppression {
            address: self.from.as_str(),
            kind,
            reason: Some(self.text),
            source: "inbound_reply",
            actor: "inbound",
            expires_at: None,
            source_message: Some(self.message.as_str()),
        };
        suppressions::add(tx, self.team, &s).await
    }

    /// The compliance actions, and the answer the reply calls for. An opt-out suppresses the
    /// number (keeping an entry already there), ends every running enrolment and confirms
    /// once; START lifts an opt-out (never a blacklist); HELP gets the help text; a wrong
    /// number is suppressed.
    async fn act(&self, tx: &Tx<'_>, config: &InboxConfig, opted_out: bool) -> Result<Option<Answer>, StoreError> {
        let (team, id) = (self.team, &self.contact.id);
        Ok(match self.a.classification {
            Classification::DncRequest => {
                // The person's, on every number and address, in any state: see `consent::revoke`.
                let revocation = consent::Revocation {
                    kind: Kind::OptedOut,
                    reason: Some(self.text),
                    source: "inbound_reply",
                    actor: "inbound",
                    message: Some(self.message.as_str()),
                };
                let revoked = consent::revoke(tx, team, id, Some(self.from.as_str()), &revocation).await?;
                // A stronger entry (LEGAL_DNC) gets no confirmation; the gate allows none.
                match revoked.entry(self.from.as_str()).filter(|s| s.kind == Kind::OptedOut) {
                    Some(s) => {
                        let key = nextier_outbound::opt_out_confirmation_key(s);
                        Some((config.opt_out_text.clone(), key, true))
                    }
                    None => None,
                }
            }
            Classification::OptIn => {
                if opted_out {
                    // The person's own consent, from the number that had opted out: that
                    // number is lifted (their other numbers stay as they are).
                    let p = Provenance {
                        actor: "inbound",
                        reason: Some("opted back in by text"),
                        source: "inbound_reply",
                        message: Some(self.message.as_str()),
                    };
                    suppressions::lift(tx, team, self.from.as_str(), &p).await?;
                    contacts::reinstate(tx, team, id, "opted back in by text", "inbound").await?;
                }
                Some((config.opt_in_text.clone(), format!("opt-in:{}", self.message), false))
            }
            Classification::Help => Some((config.help_text.clone(), format!("help:{}", self.message), false)),
            Classification::WrongNumber => {
                // Never weakens what is there (the list only gets stronger).
                self.suppress(tx, "WRONG_NUMBER").await?;
                campaign_store::exit_contact(tx, id, "suppressed:WRONG_NUMBER").await?;
                None
            }
            _ => None,
        })
    }

    /// The lead state (each move only where the state machine allows: any reply is
    /// `responded`, an email given `email_captured`, interest `high_intent`), the sequences'
    /// exit-on-reply rule, and the call queue (hot leads join it; who said stop leaves it).
    async fn follow_up(&self, tx: &Tx<'_>, suppressed: bool) -> Result<(), StoreError> {
        let (team, id, class) = (self.team, &self.contact.id, self.a.classification);
        let gone = matches!(class, Classification::DncRequest | Classification::WrongNumber);
        if !gone {
            let mut path = vec![LeadState::Responded];
            if self.reading.email.is_some() {
                path.push(LeadState::EmailCaptured);
            }
            if class == Classification::Positive {
                path.push(LeadState::HighIntent);
            }
            // Only an opt-out or START changed the state in `act`; neither takes this path with
            // a state it could move on from (a reinstated contact is already `responded`).
            let mut state = self.contact.lead_state;
            for to in path {
                if state.can_move_to(to) {
                    contacts::transition(tx, team, id, to, Some("reply"), "inbound").await?;
                    state = to;
                }
            }
        }
        campaign_store::exit_contact(tx, id, "reply").await?;
        nextier_ai::engine::on_reply(tx, team, id, class, self.text).await?;
        if gone {
            nextier_store::calls::cancel_for_contact(tx, id, class.as_str()).await?;
        } else if matches!(class, Classification::Positive | Classification::Question) {
            let cfg = CallConfig::from_settings(&settings::strings_in(tx, "calls").await?);
            let mut labels = self.contact.tags.clone();
            labels.extend(self.a.labels.iter().cloned());
            let candidate = Candidate {
                labels: &labels,
                score: (self.contact.score + self.a.score_delta).clamp(0, 100),
                opted_out: suppressed,
                do_not_contact: false,
                phone: Some(self.from.as_str()),
            };
            if let Eligibility::Eligible { priority, reason } = calls_rules::evaluate(&candidate, &cfg) {
                let push = nextier_store::calls::Push {
                    contact: id,
                    phone: self.from.as_str(),
                    priority,
                    reason,
                    source: "inbound_reply",
                    max_attempts: cfg.max_attempts,
                };
                nextier_store::calls::push(tx, team, &push).await?;
            }
        }
        Ok(())
    }

    /// The answer the reply calls for (an opt-out's confirmation, HELP, START), as a job on
    /// the answers queue, to the very number that wrote.
    async fn stage_answer(&self, tx: &Tx<'_>, answer: Option<Answer>) -> anyhow::Result<Vec<OutboxId>> {
        let Some((body, send_key, confirmation)) = answer else { return Ok(vec![]) };
        let team = self.team;
        let correlation = nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned();
        let dedupe = format!("reply:{team}:{send_key}");
        let job = Job::Reply {
            team_id: team.to_string(),
            contact_id: self.contact.id.to_string(),
            body,
            send_key,
            confirmation,
            to: Some(self.from.as_str().to_owned()),
        };
        Ok(stage_job(tx, team, ANSWERS_QUEUE, &job, &correlation, dedupe).await?.into_iter().collect())
    }

    /// What happens next, staged with the reply: the answer and a suggestion as jobs, and the
    /// `InboundMessageReceived` event.
    async fn stage(&self, tx: &Tx<'_>, item: &InboxItemId, answer: Option<Answer>) -> anyhow::Result<Vec<OutboxId>> {
        let team = self.team;
        let correlation = nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned();
        let mut staged = Vec::new();
        if suggest::needs_reply(self.a.classification) {
            let job = Job::Suggest { team_id: team.to_string(), item_id: item.to_string() };
            staged.extend(stage_job(tx, team, AI_QUEUE, &job, &correlation, format!("suggest:{item}")).await?);
        }
        staged.extend(self.stage_answer(tx, answer).await?);
        let a = self.a;
        let event = serde_json::json!({"messageId": self.message, "contactId": self.contact.id,
            "classification": a.classification, "priority": a.priority, "optOut": a.opt_out});
        staged.push(
            outbox::stage_for_team(tx, team, Destination::Event("InboundMessageReceived".into()), event, correlation)
                .await?,
        );
        Ok(staged)
    }
}

/// Stages a job for `queue` in the caller's transaction (once per dedupe key).
async fn stage_job(
    tx: &Tx<'_>,
    team: &TeamId,
    queue: &str,
    job: &Job,
    correlation: &str,
    dedupe: String,
) -> anyhow::Result<Option<OutboxId>> {
    let msg = OutboxMessage {
        team: Some(team.clone()),
        destination: Destination::Queue(queue.into()),
        payload: serde_json::to_value(job)?,
        correlation_id: correlation.to_owned(),
        dedupe_key: Some(dedupe),
    };
    Ok(outbox::stage(tx, &msg).await?)
}
