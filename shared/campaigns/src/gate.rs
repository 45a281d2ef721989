//! The outbound gate as campaigns see it: the port (`nextier_outbound`) and, until the real
//! providers are wired, the gate over the sandbox transport.

use std::sync::Arc;

pub use nextier_outbound::{
    address, Dispatch, FromCampaign, Gate, OutboundGate, OutboundRequest, Prepared, RateLimiter, SandboxTransport,
    Verdict,
};

/// The gate (suppression, consent, quiet hours) over the sandbox transport.
pub fn sandbox() -> Gate {
    Gate::sandbox(Arc::new(SandboxTransport::new()))
}

/// The same, with texts taking tokens from the team's and the campaign's buckets.
pub fn sandbox_limited(limiter: Arc<dyn RateLimiter>) -> Gate {
    sandbox().with_limiter(limiter)
}
