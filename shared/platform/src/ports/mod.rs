pub mod clock;
pub mod crm;
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
    /// Starts a multipart upload of `key` (S3's): its upload id. Parts are sent in order, each
    /// at least [`MIN_PART`] but the last; nothing is visible at `key` until it is completed.
    async fn upload_start(&self, key: &str, content_type: &str) -> Result<String>;
    /// Sends part `number` (1-based); its ETag.
    async fn upload_part(&self, key: &str, upload: &str, number: i32, body: Bytes) -> Result<String>;
    /// Completes the upload from its parts' (number, ETag), in order.
    async fn upload_complete(&self, key: &str, upload: &str, parts: &[(i32, String)]) -> Result<()>;
    /// Drops an upload that will not be completed (its parts are not kept).
    async fn upload_abort(&self, key: &str, upload: &str) -> Result<()>;
}

/// S3's smallest part but the last.
pub const MIN_PART: usize = 5 * 1024 * 1024;

/// Writes one object of any size through a multipart upload with at most one part in memory:
/// bytes are buffered up to `part_size` (at least [`MIN_PART`]) and sent as a part.
pub struct BlobWriter<'a> {
    store: &'a dyn BlobStore,
    key: String,
    upload: String,
    part_size: usize,
    buf: Vec<u8>,
    parts: Vec<(i32, String)>,
    written: u64,
}

impl<'a> BlobWriter<'a> {
    pub async fn start(store: &'a dyn BlobStore, key: &str, content_type: &str, part_size: usize) -> Result<Self> {
        let upload = store.upload_start(key, content_type).await?;
        let part_size = part_size.max(MIN_PART);
        Ok(Self {
            store,
            key: key.to_owned(),
            upload,
            part_size,
            buf: Vec::with_capacity(part_size),
            parts: vec![],
            written: 0,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        if self.buf.len() >= self.part_size {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<()> {
        let number = self.parts.len() as i32 + 1;
        let body = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size)));
        let etag = self.store.upload_part(&self.key, &self.upload, number, body).await?;
        self.parts.push((number, etag));
        Ok(())
    }

    /// Sends what is buffered and completes the object.
    pub async fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush_part().await?;
        }
        self.store.upload_complete(&self.key, &self.upload, &self.parts).await?;
        Ok(self.written)
    }

    /// Gives up: the parts sent are dropped.
    pub async fn abort(self) -> Result<()> {
        self.store.upload_abort(&self.key, &self.upload).await
    }
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
