pub mod clock;
pub mod delivery_lookup;
pub mod enrichment;
pub mod mailer;
pub mod notifications;
pub mod numbers;
pub mod property;
pub mod skip_tracer;
pub mod suggester;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Worth retrying: throttling, a network fault, a 5xx.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (bad key, unknown queue); retrying will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] nextier_store::StoreError),
}

pub type Result<T, E = PlatformError> = std::result::Result<T, E>;

/// A message to put on a queue. The correlation and team ids travel as message attributes.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    pub body: String,
    pub correlation_id: String,
    pub team_id: Option<String>,
    /// Extra string attributes (e.g. `outbox_id`, the consumer's idempotency key).
    pub attributes: HashMap<String, String>,
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// `correlation_id`, `team_id` and any extra attributes.
    pub attributes: HashMap<String, String>,
    pub receive_count: u32,
}

/// A queue service with SQS semantics: at-least-once delivery, a visibility timeout after
/// each receive, a receive count, and a dead-letter queue after too many receives.
/// The most messages one `send_batch` call takes (the SQS limit).
pub const MAX_BATCH: usize = 10;

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends a message; returns its id.
    async fn send(&self, queue: &str, msg: OutgoingMessage) -> Result<String>;
    /// Sends up to [`MAX_BATCH`] messages in one call (SQS `SendMessageBatch`). The outer
    /// error means nothing was sent; otherwise each message has its own result, in order.
    async fn send_batch(&self, queue: &str, msgs: Vec<OutgoingMessage>) -> Result<Vec<Result<String>>>;
    /// Receives up to `max` (1-10) visible messages, hiding them for the queue's visibility
    /// timeout. Used by the local runtime's pollers and by tests; Lambda's event source
    /// mapping does this deployed.
    async fn receive(&self, queue: &str, max: u32) -> Result<Vec<ReceivedMessage>>;
    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<()>;
    /// Makes a received message visible again after `after` (zero: now).
    async fn change_visibility(&self, queue: &str, receipt_handle: &str, after: Duration) -> Result<()>;
}

/// The delay SQS applies to a message: `DelaySeconds` is a whole number of seconds up to
/// 900, so a fraction waits the whole next second (never less than asked).
pub fn delay_seconds(d: Duration) -> u32 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    whole.min(900) as u32
}

/// A domain event for the event bus. `detail` is a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub source: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: &[DomainEvent]) -> Result<()>;
}

/// A streamed object body.
/// Token buckets (DynamoDB deployed, Postgres locally); the math is `nextier_domain::rate`.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Reserves a slot for each ask, in order, in one transaction over all their buckets: a
    /// slot is within `horizon` of `now` and the unit must not go before it; a refusal says
    /// when to ask again (each refused ask its own place in line).
    async fn reserve(
        &self,
        asks: &[nextier_domain::rate::Ask],
        now: chrono::DateTime<chrono::Utc>,
        horizon: chrono::Duration,
    ) -> Result<Vec<nextier_domain::rate::Slot>>;

    /// Takes `cost` units from every bucket now, or from none; a refusal says when to ask again.
    async fn take(
        &self,
        buckets: &[nextier_domain::rate::Bucket],
        cost: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<nextier_domain::rate::Take> {
        use nextier_domain::rate::{Ask, Slot, Take};
        let ask = Ask { buckets: buckets.to_vec(), cost };
        let slot = self.reserve(std::slice::from_ref(&ask), now, chrono::Duration::zero()).await?;
        Ok(match slot.into_iter().next() {
            Some(Slot::At(_)) => Take::Granted,
            Some(Slot::Refused { retry_at, bucket }) => Take::Refused { retry_at, bucket },
            None => return Err(PlatformError::Unavailable("the limiter answered nothing".into())),
        })
    }
}

/// Every bucket of a batch of asks, each key once, in key order (the order to lock them in),
/// with the limit that decides its expiry.
pub fn check_asks(asks: &[nextier_domain::rate::Ask]) -> Result<Vec<&nextier_domain::rate::Bucket>> {
    let mut all: Vec<&nextier_domain::rate::Bucket> = Vec::new();
    for a in asks {
        check_buckets(&a.buckets)?;
        all.extend(a.buckets.iter());
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all.dedup_by(|a, b| a.key == b.key);
    if all.len() > 100 {
        return Err(PlatformError::Invalid("a batch names at most 100 buckets".into()));
    }
    Ok(all)
}

/// Refuses a request naming one bucket twice (it would be decided against itself).
pub fn check_buckets(buckets: &[nextier_domain::rate::Bucket]) -> Result<()> {
    let mut keys: Vec<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) || buckets.is_empty() || buckets.len() > 25 {
        return Err(PlatformError::Invalid("name 1 to 25 distinct buckets".into()));
    }
    Ok(())
}

pub type ByteReader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Object storage with time-limited URLs that let a browser upload or download directly.
#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<()>;
    /// `None` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Streams an object from byte `offset` without holding it in memory; `None` when there
    /// is no such object. An offset at or past the end gives an empty stream.
    async fn open(&self, key: &str, offset: u64) -> Result<Option<ByteReader>>;
    /// The object's size in bytes; `None` when there is no such object.
    async fn size(&self, key: &str) -> Result<Option<u64>>;
    async fn presign_put(&self, key: &str, ttl: Duration, content_type: &str) -> Result<String>;
    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String>;
}

/// Object keys: 1-512 characters of letters, digits and `/._-`, no empty or dot segments.
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(PlatformError::Invalid(format!("invalid object key {key:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_their_folder() {
        assert!(check_key("imports/team_1/file.csv").is_ok());
        for bad in ["", "../etc/passwd", "a/../b", "/abs", "a//b", "a/./b", "sp ace", "a\\b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
