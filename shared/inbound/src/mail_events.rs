//! What the mail provider tells us about our campaign email, and the person's own
//! unsubscribe: an unsubscribe (link, one-click or SendGrid's), a spam report and a hard
//! bounce become suppressions; SendGrid's processed, delivered and dropped events settle the
//! message they name (by our message id, a custom argument on every mail).

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, MessageId, TeamId};
use nextier_domain::message::MessageStatus;
use nextier_domain::suppression::Kind;
use nextier_store::consent::{self, Revocation};
use nextier_store::suppressions::{self, NewSuppression};
use nextier_store::{contacts, delivery, messages, scope, webhooks, Db, Scope, StoreError, Tx};
use serde_json::Value;

use crate::{Processed, Processor};

pub const PROVIDER: &str = "sendgrid";

/// An email address's opt-out, made the person's through `consent::revoke`: every number
/// and address of the contact who holds it (the message's contact, else whoever holds the
/// address) is suppressed, enrolments end, call-queue entries are cancelled and the contact is
/// suppressed. An address nobody holds is still suppressed.
pub async fn opt_out_email(
    tx: &Tx<'_>,
    team: &TeamId,
    email: &str,
    holder: Option<&ContactId>,
    source: &str,
    reason: &str,
    message: Option<&MessageId>,
) -> Result<(), StoreError> {
    let holder = match holder {
        Some(c) => Some(c.clone()),
        None => contacts::holder_of_email(tx, email).await?,
    };
    let r = Revocation {
        kind: Kind::OptedOut,
        reason: Some(reason),
        source,
        actor: source,
        message: message.map(|m| m.as_str()),
    };
    match holder {
        Some(contact) => {
            consent::revoke(tx, team, &contact, Some(email), &r).await?;
        }
        None => {
            let s = NewSuppression {
                address: email,
                kind: Kind::OptedOut.as_str(),
                reason: Some(reason),
                source,
                actor: source,
                expires_at: None,
                source_message: r.message,
            };
            suppressions::add(tx, team, &s).await?;
        }
    }
    Ok(())
}

/// The unsubscribe link's one-click (RFC 8058): the person who got the message opts out at
/// once (the message's contact, else whoever holds the address).
pub async fn unsubscribe(db: &Db, u: &nextier_domain::unsubscribe::Unsubscribe) -> Result<(), StoreError> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(u.team.clone())).await?;
    let holder = match messages::get(&tx, &u.message).await {
        Ok(m) => m.contact_id,
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    opt_out_email(&tx, &u.team, &u.address, holder.as_ref(), "email_unsubscribe", "unsubscribe link", Some(&u.message))
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(team_id = %u.team, message = %u.message, "unsubscribed by link");
    Ok(())
}

/// One SendGrid event, as the webhook stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct MailEvent {
    pub event: String,
    pub email: String,
    /// Our message id (the `message_id` custom argument).
    pub message: Option<String>,
    pub sg_message_id: Option<String>,
    /// A bounce's type: `bounce` (hard) or `blocked` (soft).
    pub bounce_type: Option<String>,
    pub reason: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

pub fn parse(v: &Value) -> MailEvent {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned);
    MailEvent {
        event: s("event").unwrap_or_default().to_ascii_lowercase(),
        email: s("email").unwrap_or_default().to_ascii_lowercase(),
        message: s("message_id"),
        sg_message_id: s("sg_message_id"),
        bounce_type: s("type").map(|t| t.to_ascii_lowercase()),
        reason: s("reason"),
        at: v.get("timestamp").and_then(Value::as_i64).and_then(|t| DateTime::from_timestamp(t, 0)),
    }
}

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The person unsubscribed (or reported spam): a person-wide opt-out.
    OptOut(&'static str),
    /// A hard bounce: the address is suppressed, the message failed.
    Bounce,
    /// The message's status moves.
    Status(MessageStatus),
    Nothing,
}

pub fn effect(e: &MailEvent) -> Effect {
    match e.event.as_str() {
        "unsubscribe" | "group_unsubscribe" => Effect::OptOut("email_unsubscribe"),
        "spamreport" => Effect::OptOut("email_spam_report"),
        "bounce" if e.bounce_type.as_deref() != Some("blocked") => Effect::Bounce,
        "bounce" | "dropped" => Effect::Status(MessageStatus::Failed),
        "processed" => Effect::Status(MessageStatus::Sent),
        "delivered" => Effect::Status(MessageStatus::Delivered),
        _ => Effect::Nothing,
    }
}

impl Processor {
    /// Applies one stored SendGrid event to the team whose message it names.
    pub(crate) async fn mail_event(&self, webhook_id: &str, payload: &Value) -> anyhow::Result<Processed> {
        let e = parse(payload);
        let effect = effect(&e);
        if effect == Effect::Nothing {
            self.finish(webhook_id, None, &format!("ignored: {}", e.event)).await?;
            return Ok(Processed::Ignored(e.event));
        }
        let Some(message) = e.message.as_deref() else {
            self.finish(webhook_id, None, "ignored: no message_id").await?;
            return Ok(Processed::Ignored("no message_id".into()));
        };
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        let owner = delivery::team_for_message(&tx, message).await?;
        let Some((team, to)) = owner.filter(|(_, to)| to.eq_ignore_ascii_case(&e.email)) else {
            drop(tx);
            // Our message ids are recorded before the mail goes out: no owner is no match.
            self.finish(webhook_id, None, "unmatched: no such message to this address").await?;
            return Ok(Processed::Unroutable(format!("no message {message} to {}", e.email)));
        };
        scope::apply(&tx, &Scope::team(team.clone())).await?;
        let id = MessageId::from_trusted(message.to_owned());
        let at = e.at.filter(|at| *at <= now).unwrap_or(now);
        let outcome = match effect {
            Effect::OptOut(source) => {
                let holder = nextier_store::messages::get(&tx, &id).await?.contact_id;
                let why = format!("SendGrid {}", e.event);
                opt_out_email(&tx, &team, &to, holder.as_ref(), source, &why, Some(&id)).await?;
                format!("opted out: {}", e.event)
            }
            Effect::Bounce => {
                let reason = e.reason.clone().unwrap_or_else(|| "hard bounce".into());
                // `add` keeps a stronger entry (an opt-out stays an opt-out).
                let s = NewSuppression {
                    address: &to,
                    kind: Kind::Bounced.as_str(),
                    reason: Some(&reason),
                    source: "email_bounce",
                    actor: PROVIDER,
                    expires_at: None,
                    source_message: Some(message),
                };
                suppressions::add(&tx, &team, &s).await?;
                delivery::apply_mail_status(&tx, &team, &id, MessageStatus::Failed, None, Some(&reason), at).await?;
                "bounced".to_owned()
            }
            Effect::Status(status) => {
                let provider_id = e.sg_message_id.as_deref().map(|s| s.split('.').next().unwrap_or(s));
                let moved = delivery::apply_mail_status(&tx, &team, &id, status, provider_id, None, at).await?;
                format!("status: {status}{}", if moved { "" } else { " (no change)" })
            }
            Effect::Nothing => unreachable!("handled above"),
        };
        webhooks::finish(&tx, webhook_id, Some(&team), &outcome, now).await?;
        tx.commit().await?;
        Ok(Processed::Mail(outcome))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unsubscribes_spam_reports_and_hard_bounces_suppress_and_soft_bounces_do_not() {
        let e = |v: Value| effect(&parse(&v));
        assert_eq!(e(json!({"event": "unsubscribe"})), Effect::OptOut("email_unsubscribe"));
        assert_eq!(e(json!({"event": "group_unsubscribe"})), Effect::OptOut("email_unsubscribe"));
        assert_eq!(e(json!({"event": "spamreport"})), Effect::OptOut("email_spam_report"));
        assert_eq!(e(json!({"event": "bounce", "type": "bounce"})), Effect::Bounce);
        assert_eq!(e(json!({"event": "bounce"})), Effect::Bounce);
        assert_eq!(e(json!({"event": "bounce", "type": "blocked"})), Effect::Status(MessageStatus::Failed));
        assert_eq!(e(json!({"event": "processed"})), Effect::Status(MessageStatus::Sent));
        assert_eq!(e(json!({"event": "open"})), Effect::Nothing);
        let p = parse(
            &json!({"event": "Delivered", "email": " Ada@Example.com ", "message_id": "msg_1", "timestamp": 1700000000}),
        );
        assert_eq!(p.email, "ada@example.com");
        assert_eq!(p.message.as_deref(), Some("msg_1"));
        assert_eq!(p.at.map(|a| a.timestamp()), Some(1_700_000_000));
    }
}
