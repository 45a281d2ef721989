//! The sandbox transport: accepts every cleared message and remembers it, so local runs and
//! tests can see exactly what would have gone out. It can be told to refuse a number (as a
//! carrier's opt-out) or to fail the next deliveries (as a provider outage).

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{Cleared, Delivered, Transport, TransportError};

/// What the sandbox delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub message: String,
    pub to: String,
    pub body: String,
    pub segments: u32,
}

#[derive(Default)]
pub struct SandboxTransport {
    sent: Mutex<Vec<Sent>>,
    /// Message ids already delivered (the idempotency keys seen).
    keys: Mutex<HashSet<String>>,
    opted_out: Mutex<HashSet<String>>,
    failures: Mutex<u32>,
}

impl SandboxTransport {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The carrier will answer this number with an opt-out error.
    pub fn opt_out(&self, e164: &str) {
        self.opted_out.lock().unwrap_or_else(|p| p.into_inner()).insert(e164.to_owned());
    }

    /// The next `n` deliveries fail as a provider outage would.
    pub fn fail_next(&self, n: u32) {
        *self.failures.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }
}

#[async_trait]
impl Transport for SandboxTransport {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    /// Local runs and tests may text without a number of their own.
    fn lends_numbers(&self) -> bool {
        true
    }

    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if *f > 0 {
                *f -= 1;
                return Err(TransportError::Retryable("sandbox outage".into()));
            }
        }
        if self.opted_out.lock().unwrap_or_else(|p| p.into_inner()).contains(m.to()) {
            return Err(TransportError::Rejected {
                reason: "errorCode OUT: recipient opted out".into(),
                opted_out: true,
            });
        }
        // The provider replays a repeated idempotency key instead of sending again.
        if !self.keys.lock().unwrap_or_else(|p| p.into_inner()).insert(m.message().to_string()) {
            return Ok(Delivered { provider_message_id: format!("sbx_{}", m.message()) });
        }
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(Sent {
            message: m.message().to_string(),
            to: m.to().to_owned(),
            body: m.body().to_owned(),
            segments: m.segments(),
        });
        Ok(Delivered { provider_message_id: format!("sbx_{}", m.message()) })
    }
}
