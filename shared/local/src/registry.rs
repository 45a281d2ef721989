//! What the local runtime serves: every queue consumer and every schedule, by name, with the
//! same handler the deployed Lambda calls.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use nextier_platform::local::QueueSpec;
use nextier_platform::outbox::{sweep_job, OutboxPublisher};
use nextier_platform::BlobStore;
use nextier_store::Db;

/// A queue consumer: the queue (with its DLQ, as in template.yaml) and the batch handler.
#[derive(Clone)]
pub struct Consumer {
    pub queue: String,
    pub specs: Vec<QueueSpec>,
    pub batch_size: u32,
    pub handler: Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>,
}

/// A schedule: how often, and the cron handler.
#[derive(Clone)]
pub struct Schedule {
    pub name: String,
    pub every: Duration,
    pub handler: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<serde_json::Value>> + Send + Sync>,
}

#[derive(Clone, Default)]
pub struct Registry {
    pub consumers: Vec<Consumer>,
    pub schedules: Vec<Schedule>,
}

impl Registry {
    /// Everything the deployed stack runs, wired to the local adapters.
    pub fn standard(db: Db, blobs: Arc<dyn BlobStore>, publisher: OutboxPublisher) -> Self {
        let mut r = Registry::default();
        // template.yaml: ConsumerLeadImportFunction on LeadImportQueue (visibility 5400 s,
        // 5 receives, then the DLQ).
        let import_publisher = publisher.clone();
        r.consumers.push(Consumer {
            queue: nextier_imports::QUEUE.into(),
            specs: QueueSpec::with_dlq(nextier_imports::QUEUE, Duration::from_secs(5400), 5),
            batch_size: 1,
            handler: Arc::new(move |event: SqsEvent| {
                let (db, blobs, publisher) = (db.clone(), blobs.clone(), import_publisher.clone());
                Box::pin(async move { nextier_imports::handle(&db, blobs.as_ref(), &publisher, event).await })
            }),
        });
        // template.yaml: OutboxSweeperFunction, rate(1 minute).
        r.schedules.push(Schedule {
            name: "outbox-sweeper".into(),
            every: Duration::from_secs(60),
            handler: Arc::new(move || {
                let p = publisher.clone();
                Box::pin(async move { Ok(serde_json::to_value(sweep_job(&p, Duration::from_secs(40)).await?)?) })
            }),
        });
        r
    }
}
