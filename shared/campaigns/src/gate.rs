//! The one outbound gate every campaign message passes. Issue 5 puts suppression, quiet
//! hours, carrier and team limits and the real providers behind this interface; until then
//! [`SandboxGate`] stands behind it: it refuses what no gate may send (opted-out contacts,
//! no reachable address) and records the message as sent by the `sandbox` provider, once
//! per send key.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, EnrolmentId, MessageId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_store::campaigns::{Channel, Step};
use nextier_store::contacts::Contact;
use nextier_store::messages::{self, Outbound};
use nextier_store::Tx;

/// One message a campaign step wants to send, already rendered.
#[derive(Debug, Clone)]
pub struct OutboundRequest<'a> {
    pub team: &'a TeamId,
    pub campaign: &'a CampaignId,
    pub enrolment: &'a EnrolmentId,
    pub step: &'a Step,
    pub contact: &'a Contact,
    pub subject: Option<String>,
    pub body: String,
    /// Unique per (enrolment, step): the same step is never sent twice.
    pub send_key: String,
    pub now: DateTime<Utc>,
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Sent {
        message: MessageId,
    },
    /// Not now (quiet hours, a full bucket): try again at `until`.
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Never, for this contact (opted out, unreachable): the enrolment ends.
    Blocked {
        reason: String,
    },
    /// The provider failed; worth a retry.
    Failed {
        reason: String,
    },
}

#[async_trait]
pub trait OutboundGate: Send + Sync {
    /// Decides, and sends when allowed, inside the caller's transaction.
    async fn submit(&self, tx: &Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Verdict>;
}

/// The address a channel would use for this contact, if any is usable.
pub fn address(contact: &Contact, channel: Channel) -> Result<String, String> {
    match channel {
        Channel::Sms => contact
            .phones
            .iter()
            .find(|p| !p.do_not_call && p.kind != "landline")
            .map(|p| p.e164.clone())
            .ok_or_else(|| "no textable number (every number is a landline or marked do-not-contact)".to_owned()),
        Channel::Voice => contact
            .phones
            .iter()
            .find(|p| !p.do_not_call)
            .map(|p| p.e164.clone())
            .ok_or_else(|| "no callable number".to_owned()),
        Channel::Email => contact
            .emails
            .iter()
            .find(|e| !e.unsubscribed)
            .map(|e| e.email.clone())
            .ok_or_else(|| "no email address that accepts mail".to_owned()),
    }
}

/// Records messages instead of sending them.
pub struct SandboxGate;

#[async_trait]
impl OutboundGate for SandboxGate {
    async fn submit(&self, tx: &Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Verdict> {
        if req.contact.lead_state == LeadState::Suppressed {
            return Ok(Verdict::Blocked { reason: "opt_out".into() });
        }
        let to = match address(req.contact, req.step.channel) {
            Ok(a) => a,
            Err(reason) => return Ok(Verdict::Blocked { reason }),
        };
        let (message, created) = messages::record_outbound(
            tx,
            &Outbound {
                team: req.team,
                contact: &req.contact.id,
                campaign: Some(req.campaign),
                step: Some(&req.step.id),
                enrolment: Some(req.enrolment),
                channel: req.step.channel,
                to: &to,
                from: None,
                subject: req.subject.as_deref(),
                body: &req.body,
                provider: "sandbox",
                provider_message_id: None,
                status: "sent",
                send_key: &req.send_key,
                at: req.now,
            },
        )
        .await?;
        tracing::info!(message_id = %message, channel = req.step.channel.as_str(), created, "sandbox send");
        Ok(Verdict::Sent { message })
    }
}
