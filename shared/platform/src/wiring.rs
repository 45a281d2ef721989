//! Building the adapters once per cold start from the environment. `PLATFORM=local` selects
//! the Postgres-backed adapters (for `cargo lambda watch` and SAM local against the local
//! runtime's database); anything else uses AWS with the Lambda's role.

use std::sync::Arc;

use nextier_store::Db;

use crate::aws::{sdk_config, DynamoRateLimiter, EventBridgeBus, S3BlobStore, SqsQueue};
use crate::local::{FolderBlobStore, PgEventBus, PgQueue, PgRateLimiter};
use crate::outbox::OutboxPublisher;
use crate::{BlobStore, EventBus, Queue, RateLimiter};

/// The outbox publisher's own connections: it holds one only to claim its rows and to settle
/// them, never while it delivers, so two serve a consumer's side-by-side messages.
pub const PUBLISHER_CONNECTIONS: usize = 2;
/// The local adapters' own connections: the queue, the bus (which gives its connection back
/// before its rules send) and the token buckets, each holding one for a statement or two.
pub const LOCAL_ADAPTER_CONNECTIONS: usize = 4;

#[derive(Clone)]
pub struct Platform {
    pub queue: Arc<dyn Queue>,
    pub bus: Arc<dyn EventBus>,
    pub blobs: Arc<dyn BlobStore>,
    /// Token buckets: DynamoDB (`RATE_TABLE`) deployed, Postgres locally.
    pub limiter: Arc<dyn RateLimiter>,
}

impl Platform {
    pub async fn from_env(db: &Db) -> Self {
        if nextier_runtime::config::is_local() {
            return Self::local(db);
        }
        let config = sdk_config().await;
        let prefix = nextier_runtime::config::get("QUEUE_PREFIX").unwrap_or_default();
        let bus = nextier_runtime::config::or("EVENT_BUS_NAME", "default");
        let bucket = nextier_runtime::config::or("UPLOADS_BUCKET", "nextier-uploads-not-configured");
        let table = nextier_runtime::config::or("RATE_TABLE", "nextier-rate-buckets");
        Self {
            limiter: Arc::new(DynamoRateLimiter::new(&config, &table)),
            queue: Arc::new(SqsQueue::new(&config, &prefix)),
            bus: Arc::new(EventBridgeBus::new(&config, &bus)),
            blobs: Arc::new(S3BlobStore::new(&config, &bucket, false)),
        }
    }

    /// The Postgres-backed adapters, on a pool of their own ([`LOCAL_ADAPTER_CONNECTIONS`]) to
    /// `db`'s database as `db`'s role: the queue, the bus and the token buckets each take a
    /// connection while the caller may hold its transaction's, so sharing the caller's pool
    /// could leave them waiting on it.
    pub fn local(db: &Db) -> Self {
        let adapters = db.sibling(LOCAL_ADAPTER_CONNECTIONS);
        // Blobs live where the local runtime serves them (`infra/dev.sh run` defaults).
        let dir = nextier_runtime::config::or("LOCAL_BLOB_DIR", ".local/blobs");
        let url = nextier_runtime::config::or("LOCAL_PUBLIC_URL", "http://127.0.0.1:3000");
        // The local runtime signs blob URLs with the same secret as its tokens.
        let secret = nextier_runtime::config::local_secret();
        Self {
            limiter: Arc::new(PgRateLimiter::new(adapters.clone())),
            queue: Arc::new(PgQueue::new(adapters.clone())),
            bus: Arc::new(PgEventBus::new(adapters.clone(), "default").with_template_rules(PgQueue::new(adapters))),
            blobs: Arc::new(FolderBlobStore::new(dir, &url, secret.as_bytes())),
        }
    }

    /// The outbox publisher for rows staged through `db`, on a pool of its own
    /// ([`PUBLISHER_CONNECTIONS`]): it runs after commit while the request or message still
    /// holds its connection, so it never waits on the caller's pool. Build it once per cold start.
    /// Under `PLATFORM=local` its bus routes as the template's rules do.
    pub fn outbox(&self, db: &Db) -> OutboxPublisher {
        OutboxPublisher::new(db.sibling(PUBLISHER_CONNECTIONS), self.queue.clone(), self.bus.clone())
    }
}
