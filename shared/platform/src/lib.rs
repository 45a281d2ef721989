//! Every port to the outside world, in one place ([`ports`]), beside its adapters.
//!
//! - The platform's own, each with an AWS adapter and a local adapter that pass the same
//!   conformance suite (`tests/`): [`Queue`] (SQS / Postgres), [`EventBus`] (EventBridge /
//!   Postgres), [`RateLimiter`] (DynamoDB / Postgres) and [`BlobStore`] (S3 / a folder with
//!   signed URLs). The transactional outbox publishes through them.
//! - Time: [`ports::clock`] (the system clock; a manual one for tests and simulations).
//! - The providers' (HTTP adapters in `nextier-providers`, local stand-ins here): suggester,
//!   mailer, numbers, skip tracer, notifications, delivery lookup.
//!
//! One port lives elsewhere on purpose: `nextier_outbound::Transport`, which can only be
//! handed a `Cleared` message, and only the outbound gate can make one. Moving it here would
//! let any crate build a message that skipped the gate.

pub mod aws;
pub mod local;
pub mod outbox;
pub mod ports;
pub mod secrets;
pub mod wiring;

pub use ports::{
    BlobStore, ByteReader, DomainEvent, EventBus, OutgoingMessage, PlatformError, Queue, RateLimiter, ReceivedMessage,
    MAX_BATCH,
};

/// A function's cold start: structured logs, then its secrets ([`secrets::load`]), before
/// anything reads its configuration.
pub async fn start(function: &str) -> anyhow::Result<()> {
    nextier_runtime::telemetry::init(function);
    secrets::load().await?;
    Ok(())
}
