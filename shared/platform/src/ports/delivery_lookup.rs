//! The delivery-lookup port: asks a provider whether it took one of our messages (the
//! reconciler of messages left `queued`; `nextier_providers::lookup`).

use std::time::Duration;

use async_trait::async_trait;
use nextier_store::delivery::Queued;

/// What a provider says about one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It took the message, under this id.
    Found { provider_message_id: String },
    /// It has no such message.
    NotFound,
    /// It cannot say (no lookup for this provider).
    Unknown,
}

/// Asks the providers about queued messages.
#[async_trait]
pub trait DeliveryLookup: Send + Sync {
    async fn lookup(&self, message: &Queued) -> anyhow::Result<Lookup>;
    /// How long after a first request the provider replays a repeated one under the same
    /// idempotency key; `None`: it takes no key, so a second request is a second message.
    fn replay_window(&self, provider: &str) -> Option<Duration>;
}
