//! Clients for the outside providers, each a [`nextier_outbound::Transport`]: they can only
//! be handed messages the outbound gate cleared. Each is tested against a local fake server
//! that speaks the provider's documented contract (DOMAIN.md B). [`llm`] is the reply
//! suggester over an OpenAI-compatible chat-completions API.

pub mod cloudformation;
pub mod enrichment;
pub mod llm;
pub mod lookup;
pub mod notifications;
pub mod realestate;
pub mod retry;
pub mod sendgrid;
pub mod signalhouse;
pub mod signalhouse_numbers;
pub mod twilio;
pub mod zoho;

use std::sync::Arc;

pub use llm::suggester_from_env;

use async_trait::async_trait;
use nextier_outbound::{
    Delivered, Dispatch, Gate, OutboundGate, OutboundRequest, Prepared, RateLimiter, SandboxTransport, Transport,
    TransportError, Verdict,
};

/// The inbound path's processor as the inbound, answers and AI functions deploy it: the
/// platform's token buckets and outbox for `db`, the gate and the suggester from the
/// environment. One assembly for the three.
pub async fn inbound_processor(db: nextier_store::Db) -> nextier_inbound::Processor {
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    let gate = gate_from_env(platform.limiter.clone());
    let outbox = Some(platform.outbox(&db));
    nextier_inbound::Processor {
        db,
        gate: Arc::new(gate),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        outbox,
        suggester: suggester_from_env(),
    }
}

/// The gate over the providers configured in the environment (SignalHouse, SendGrid,
/// Twilio), each channel falling back to the sandbox when its provider is not configured, with
/// the platform's token buckets.
pub fn gate_from_env(limiter: Arc<dyn RateLimiter>) -> Gate {
    let sandbox = Arc::new(SandboxTransport::new());
    let sms: Arc<dyn Transport> = match signalhouse::Config::from_env() {
        Some(c) => Arc::new(signalhouse::SignalHouse::new(c)),
        None => sandbox.clone(),
    };
    let email: Arc<dyn Transport> = match sendgrid::Config::from_env() {
        Some(c) => Arc::new(sendgrid::SendGrid::new(c)),
        None => sandbox.clone(),
    };
    let voice: Arc<dyn Transport> = match twilio::Config::from_env() {
        Some(c) => Arc::new(twilio::Twilio::new(c)),
        None => sandbox,
    };
    for (channel, t) in [("sms", &sms), ("email", &email), ("voice", &voice)] {
        tracing::info!(channel, transport = t.name(), "outbound transport");
    }
    let gate = Gate::new(sms, email, voice).with_limiter(limiter);
    match nextier_outbound::UnsubscribeLinks::from_env() {
        Some(links) => gate.with_unsubscribe_links(links),
        None => {
            tracing::warn!("UNSUBSCRIBE_BASE_URL or UNSUBSCRIBE_SECRET is not set; campaign email is held back");
            gate
        }
    }
}

/// [`gate_from_env`] built on first use, so a function that never sends (an API group that
/// only reads) does not build provider clients during its cold start.
pub struct LazyGate {
    limiter: Arc<dyn RateLimiter>,
    gate: std::sync::OnceLock<Gate>,
}

impl LazyGate {
    pub fn new(limiter: Arc<dyn RateLimiter>) -> Self {
        Self { limiter, gate: std::sync::OnceLock::new() }
    }

    fn gate(&self) -> &Gate {
        self.gate.get_or_init(|| gate_from_env(self.limiter.clone()))
    }
}

#[async_trait]
impl OutboundGate for LazyGate {
    async fn prepare(&self, tx: &nextier_store::Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Prepared> {
        self.gate().prepare(tx, req).await
    }

    async fn prepare_all(
        &self,
        tx: &nextier_store::Tx<'_>,
        reqs: &[OutboundRequest<'_>],
    ) -> anyhow::Result<Vec<Prepared>> {
        self.gate().prepare_all(tx, reqs).await
    }

    async fn prepare_ahead(
        &self,
        tx: &nextier_store::Tx<'_>,
        reqs: &[OutboundRequest<'_>],
        held: &[Option<chrono::DateTime<chrono::Utc>>],
        ahead: chrono::Duration,
    ) -> anyhow::Result<Vec<nextier_outbound::Batched>> {
        self.gate().prepare_ahead(tx, reqs, held, ahead).await
    }

    async fn deliver(&self, d: &Dispatch) -> Result<Delivered, TransportError> {
        self.gate().deliver(d).await
    }

    async fn settle(
        &self,
        tx: &nextier_store::Tx<'_>,
        d: &Dispatch,
        outcome: Result<Delivered, TransportError>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Verdict> {
        self.gate().settle(tx, d, outcome, now).await
    }
}

/// Number provisioning: SignalHouse when `SIGNALHOUSE_API_KEY` and `SIGNALHOUSE_GROUP_ID` are
/// set, else the (permissive) sandbox.
pub fn numbers_from_env() -> Arc<dyn nextier_platform::ports::numbers::NumberProvider> {
    match notifications::Config::from_env() {
        Some(c) => Arc::new(signalhouse_numbers::SignalHouseNumbers::new(c)),
        None => Arc::new(nextier_platform::ports::numbers::SandboxNumbers::permissive()),
    }
}
