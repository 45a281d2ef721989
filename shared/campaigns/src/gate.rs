//! The outbound gate as campaigns see it: the port (`nextier_outbound`) and, until the real
//! providers are wired, the gate over the sandbox transport.

use std::sync::Arc;

pub use nextier_outbound::{
    address, Batched, Dispatch, FromCampaign, Gate, OutboundGate, OutboundRequest, Prepared, RateLimiter,
    SandboxTransport, Verdict,
};

/// The gate (suppression, consent, quiet hours) over the sandbox transport, its email carrying
/// unsubscribe links from the environment or the local runtime's defaults.
pub fn sandbox() -> Gate {
    Gate::sandbox(Arc::new(SandboxTransport::new()))
        .with_unsubscribe_links(nextier_outbound::UnsubscribeLinks::from_env_or_local())
}

/// The same, with texts taking tokens from the team's and the campaign's buckets.
pub fn sandbox_limited(limiter: Arc<dyn RateLimiter>) -> Gate {
    sandbox().with_limiter(limiter)
}
