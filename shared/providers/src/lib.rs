//! Clients for the outside providers, each a [`nextier_outbound::Transport`]: they can only
//! be handed messages the outbound gate cleared. Each is tested against a local fake server
//! that speaks the provider's documented contract (DOMAIN.md B).

pub mod retry;
pub mod sendgrid;
pub mod signalhouse;
pub mod twilio;

use std::sync::Arc;

use nextier_outbound::{Gate, RateLimiter, SandboxTransport, Transport};

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
    Gate::new(sms, email, voice).with_limiter(limiter)
}
