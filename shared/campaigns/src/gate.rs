//! The outbound gate as campaigns see it: the port (`nextier_outbound`) and, until the real
//! providers are wired, the gate over the sandbox transport.

use std::sync::Arc;

pub use nextier_outbound::{address, Gate, OutboundGate, OutboundRequest, SandboxTransport, Verdict};

/// The gate (suppression, consent, quiet hours) over the sandbox transport.
pub fn sandbox() -> Gate {
    Gate::sandbox(Arc::new(SandboxTransport::new()))
}
