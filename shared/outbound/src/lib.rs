//! The one outbound gate. Every message that leaves the system passes [`Gate::submit`]:
//! suppression, consent, quiet hours in the recipient's local time, then the transport.
//!
//! The rule is in the types: a [`Transport`] delivers only a [`Cleared`] message, and only
//! the gate can make one (its fields are private to this crate and it has no public
//! constructor). Code elsewhere that holds a transport still cannot send without the gate.

mod calls;
pub mod email;
mod gate;
pub mod reconcile;
mod sandbox;
mod transport;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, MessageId, StepId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_domain::rate::{self, Ask, Bucket, Carrier, Limit, Slot};
use nextier_domain::suppression::Kind;
use nextier_domain::{quiet_hours, segments};
use nextier_platform::ports::clock::{Clock, SystemClock};
pub use nextier_platform::RateLimiter;
use nextier_store::campaigns::Channel;
use nextier_store::consent;
use nextier_store::contacts::Contact;
use nextier_store::messages::{self, Outbound};
use nextier_store::outbox::{self, Destination};
use nextier_store::suppressions::{self, Suppression};
use nextier_store::Tx;
use nextier_store::{delivery, numbers, settings};

pub use calls::*;
pub use email::UnsubscribeLinks;
pub use gate::*;
pub use sandbox::{SandboxTransport, Sent as SandboxSent};
pub use transport::*;

/// Where a message comes from when a campaign step sends it.
#[derive(Debug, Clone, Copy)]
pub struct FromCampaign<'a> {
    pub campaign: &'a CampaignId,
    pub enrolment: &'a EnrolmentId,
    pub step: &'a StepId,
    /// The campaign's messages per minute (its 10DLC class).
    pub per_minute: u32,
}

/// Why a message is sent, which decides the rules it passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// Outreach: campaign steps and people's messages. Every rule applies.
    #[default]
    Outreach,
    /// The answer to a person's own keyword (HELP, START): suppression and limits apply;
    /// quiet hours do not, since they have just written to us.
    KeywordReply,
    /// The one confirmation of an opt-out. It passes only the opt-out it confirms: the
    /// number's OPTED_OUT entry, under the send key [`opt_out_confirmation_key`] (so once per
    /// opt-out), within a day of it. Quiet hours do not apply.
    OptOutConfirmation,
}

/// The send key of the confirmation of an opt-out: one per revocation (the message that
/// asked, or the entry when none did), so a person whose STOP suppressed all their numbers
/// gets one confirmation, not one per number, and a repeated STOP gets none.
pub fn opt_out_confirmation_key(s: &Suppression) -> String {
    format!("opt-out-confirmation:{}", s.source_message_id.as_deref().unwrap_or(s.id.as_str()))
}

/// One message someone or something wants to send, rendered.
#[derive(Debug, Clone)]
pub struct OutboundRequest<'a> {
    pub team: &'a TeamId,
    pub contact: &'a Contact,
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: String,
    /// Unique in the team: the same send key is never sent twice (a campaign uses
    /// `{enrolment}:{step}`, the API the caller's Idempotency-Key).
    pub send_key: String,
    /// Set when a campaign step sends it.
    pub campaign: Option<FromCampaign<'a>>,
    /// Who or what sent it (`usr_…`, `key_…`, `campaign`).
    pub sent_by: &'a str,
    pub purpose: Purpose,
    /// The exact number or address to use (an answer goes to the number that wrote to us);
    /// it must be one of the contact's. `None`: the channel's usual address of the contact.
    pub to: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Sent {
        message: MessageId,
    },
    /// Not now (quiet hours, a full bucket): try again at `until`. Never dropped.
    Deferred {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Never, for this contact (opted out, suppressed, unreachable): the enrolment ends.
    Blocked {
        reason: String,
    },
    /// The provider failed; worth a retry.
    Failed {
        reason: String,
    },
}

/// What [`OutboundGate::prepare`] decided: a verdict already, or a message recorded as
/// `queued` and cleared for delivery once the caller has committed.
#[derive(Debug)]
pub enum Prepared {
    Decided(Verdict),
    Ready(Dispatch),
}

/// What [`OutboundGate::prepare_ahead`] decided for one request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per request of a batch, moved once
pub enum Batched {
    Now(Prepared),
    /// Its slot is reserved for `slot` and nothing is recorded yet: bring it back before then.
    Later {
        slot: DateTime<Utc>,
    },
}

/// A cleared message and what settling its outcome needs.
#[derive(Debug, Clone)]
pub struct Dispatch {
    cleared: Cleared,
    team: TeamId,
    contact: ContactId,
    /// Its rate-limit slot: [`OutboundGate::deliver`] does not hand it over before.
    not_before: DateTime<Utc>,
    /// How long after it was prepared its slot comes (zero when it takes no tokens).
    wait: chrono::Duration,
}

impl Dispatch {
    pub fn message(&self) -> &MessageId {
        &self.cleared.message
    }

    /// When its rate-limit slot comes (the time it was prepared when it takes no tokens).
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// How long after it was prepared its slot comes.
    pub fn slot_wait(&self) -> chrono::Duration {
        self.wait
    }

    /// The caller waited for the slot itself (and checked consent again): deliver at once.
    pub fn waited(&mut self) {
        self.wait = chrono::Duration::zero();
    }

    pub fn to(&self) -> &str {
        &self.cleared.to
    }
}

/// After the transaction that prepared `d` has committed: delivers it holding no database
/// connection (a provider may take seconds, and a consumer works several messages at once),
/// then settles it in a transaction of its own, scoped to `team`. The one way the consumers
/// finish a send; the caller drops its connection first.
pub async fn deliver_and_settle(
    gate: &dyn OutboundGate,
    db: &nextier_store::Db,
    team: &TeamId,
    d: &Dispatch,
    now: DateTime<Utc>,
) -> anyhow::Result<Verdict> {
    let outcome = gate.deliver(d).await;
    let mut conn = db.conn().await?;
    let tx = nextier_store::scope::begin(&mut conn, &nextier_store::Scope::team(team.clone())).await?;
    let verdict = gate.settle(&tx, d, outcome, now).await?;
    tx.commit().await?;
    Ok(verdict)
}

/// What would stop a text cleared earlier from going now: a suppression of its address or a
/// revocation on any of the person's (checked again after a wait for a rate-limit slot, so an
/// opt-out that came in meanwhile stops it).
pub async fn revoked_since(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &Contact,
    to: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Suppression>> {
    if let Some(s) = suppressions::active(tx, team, to, now).await? {
        return Ok(Some(s));
    }
    person_revocation(tx, contact).await
}

/// The one way out, in three steps so that a send happens once whatever fails:
/// 1. [`prepare`](OutboundGate::prepare) decides and records the message as `queued` under its
///    send key, in the caller's transaction, which the caller commits;
/// 2. [`deliver`](OutboundGate::deliver) calls the provider with the message id as its
///    idempotency key, holding no database transaction;
/// 3. [`settle`](OutboundGate::settle) records the outcome in a new transaction.
///
/// A crash after 1 leaves a `queued` message under the send key: the retry prepares the
/// same message (same id, same idempotency key) and the provider replays instead of sending
/// again. A crash after 2 is the same case.
#[async_trait]
pub trait OutboundGate: Send + Sync {
    async fn prepare(&self, tx: &Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Prepared>;
    /// [`prepare`](OutboundGate::prepare) for a batch in one transaction: the answers in the
    /// requests' order. The gate reserves the batch's rate-limit tokens in one limiter call
    /// and pipelines its statements; the default asks one by one.
    async fn prepare_all(&self, tx: &Tx<'_>, reqs: &[OutboundRequest<'_>]) -> anyhow::Result<Vec<Prepared>> {
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            out.push(self.prepare(tx, r).await?);
        }
        Ok(out)
    }
    /// [`prepare_all`](OutboundGate::prepare_all) for a sender that can come back later: a
    /// text may reserve a rate-limit slot up to `ahead` away, and one whose slot is further
    /// than [`RESERVE_AHEAD`] is answered [`Batched::Later`] with nothing recorded: the caller
    /// brings it back before its slot, passing the slot in `held` (it is not reserved again).
    async fn prepare_ahead(
        &self,
        tx: &Tx<'_>,
        reqs: &[OutboundRequest<'_>],
        held: &[Option<DateTime<Utc>>],
        ahead: chrono::Duration,
    ) -> anyhow::Result<Vec<Batched>> {
        let _ = (held, ahead);
        Ok(self.prepare_all(tx, reqs).await?.into_iter().map(Batched::Now).collect())
    }
    async fn deliver(&self, d: &Dispatch) -> Result<Delivered, TransportError>;
    async fn settle(
        &self,
        tx: &Tx<'_>,
        d: &Dispatch,
        outcome: Result<Delivered, TransportError>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Verdict>;
}
