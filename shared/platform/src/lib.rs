//! Ports to the outside world, each with an AWS adapter and a local adapter that pass the
//! same conformance suite (`tests/`): [`Queue`] (SQS / Postgres), [`EventBus`]
//! (EventBridge / Postgres) and [`BlobStore`] (S3 / a folder with signed URLs). The
//! transactional outbox publishes through them.

pub mod aws;
pub mod local;
pub mod outbox;
pub mod ports;
pub mod wiring;

pub use ports::{
    BlobStore, ByteReader, DomainEvent, EventBus, OutgoingMessage, PlatformError, Queue, RateLimiter, ReceivedMessage,
    MAX_BATCH,
};
