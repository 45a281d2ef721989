//! Delivery: the [`Cleared`] message only the gate makes, the [`Transport`] that delivers it,
//! and where a channel sends for a contact.

use super::*;

/// A message the gate has cleared for delivery. Only this crate can make one.
#[derive(Debug, Clone)]
pub struct Cleared {
    pub(crate) message: MessageId,
    pub(crate) channel: Channel,
    pub(crate) to: String,
    pub(crate) from: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) body: String,
    pub(crate) segments: u32,
    /// Extra headers (an email's `List-Unsubscribe` pair).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) filter_landlines: bool,
}

impl Cleared {
    /// Also the provider's idempotency key: a retried delivery replays, it does not resend.
    pub fn message(&self) -> &MessageId {
        &self.message
    }
    pub fn channel(&self) -> Channel {
        self.channel
    }
    pub fn to(&self) -> &str {
        &self.to
    }
    /// The team's sending number for this thread (`None`: the transport's default sender).
    pub fn from(&self) -> Option<&str> {
        self.from.as_deref()
    }
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    pub fn body(&self) -> &str {
        &self.body
    }
    pub fn segments(&self) -> u32 {
        self.segments
    }
    /// Headers the message must carry (for email: `List-Unsubscribe`, `List-Unsubscribe-Post`).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The team asked the provider to drop landline and inactive recipients
    /// (setting `sending`/[`FILTER_LANDLINES`]).
    pub fn filter_landlines(&self) -> bool {
        self.filter_landlines
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub provider_message_id: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransportError {
    /// The provider refused this recipient for good; `opted_out` when it says the number
    /// opted out (SignalHouse errorCode OUT), which the gate records as a suppression.
    #[error("rejected: {reason}")]
    Rejected { reason: String, opted_out: bool },
    /// Worth a retry (timeouts, 429, 5xx).
    #[error("retryable: {0}")]
    Retryable(String),
    /// The provider refused our credentials (401, 403): our configuration is wrong, not the
    /// message or the number. Retried later; raises `ProviderConfigurationFault`.
    #[error("provider configuration fault: {0}")]
    Config(String),
    /// The provider filtered the recipient out as a landline or inactive number (the team's
    /// [`FILTER_LANDLINES`] setting): the gate marks the phone untextable.
    #[error("unreachable: {reason}")]
    Unreachable { reason: String },
}

/// A provider. It can only be handed a [`Cleared`] message.
#[async_trait]
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether a text may go from this transport's own number when the team has no sending
    /// number. Only the sandbox lends one (local runs and tests); a real provider never does,
    /// so in production a team without an active number cannot text.
    fn lends_numbers(&self) -> bool {
        false
    }
    async fn deliver(&self, message: &Cleared) -> Result<Delivered, TransportError>;
    /// Whether a repeated delivery of the same message is replayed rather than sent again
    /// (an idempotency key). When not, the gate delivers a message at most once and leaves an
    /// unanswered delivery to the reconciler.
    fn idempotent(&self) -> bool {
        true
    }
}

/// Where a channel would send for this contact, if anywhere. `exact` names the number or
/// address to use, which must be the contact's (and, but for an opt-out's confirmation, not
/// marked do-not-contact).
pub fn address_for(
    contact: &Contact,
    channel: Channel,
    exact: Option<&str>,
    confirming: bool,
) -> Result<String, String> {
    let Some(want) = exact else { return address(contact, channel) };
    let allowed = match channel {
        // A landline is never texted, whoever names it.
        Channel::Sms => contact.phones.iter().any(|p| p.e164 == want && (confirming || !p.do_not_call) && !landline(p)),
        Channel::Voice => contact.phones.iter().any(|p| p.e164 == want && (confirming || !p.do_not_call)),
        Channel::Email => contact.emails.iter().any(|e| e.email == want && (confirming || !e.unsubscribed)),
    };
    if allowed {
        Ok(want.to_owned())
    } else {
        Err(format!("{want} is not a reachable address of this contact"))
    }
}

/// A landline by the type it was given or by what phone intelligence found.
fn landline(p: &nextier_store::contacts::Phone) -> bool {
    p.kind == "landline" || p.line_type.as_deref() == Some("landline")
}

/// Where a channel would send for this contact, if anywhere.
pub fn address(contact: &Contact, channel: Channel) -> Result<String, String> {
    match channel {
        Channel::Sms => contact
            .phones
            .iter()
            .find(|p| !p.do_not_call && !landline(p))
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
