//! Local adapters with the same semantics as the AWS services, for the local runtime and
//! tests: queues and the event bus in Postgres, blobs in a folder with HMAC-signed URLs.

mod blobs;
mod events;
mod limits;
mod queue;

pub use blobs::{blob_router, s3_event, FolderBlobStore, UploadHook};
pub use events::PgEventBus;
pub use limits::PgRateLimiter;
pub use queue::{PgQueue, QueueSpec};
