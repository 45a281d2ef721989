//! Every minute (EventBridge Scheduler): wakes the workflow runs whose wait is over and starts
//! the "no reply in N days" workflows on the messages that went unanswered.

use std::sync::Arc;

use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-workflow-timer").await?;
    let db = Db::worker_from_env()?;
    let platform = Platform::from_env(&db).await;
    let engine = nextier_workflows::Engine {
        db: db.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        publisher: Some(OutboxPublisher::new(db.clone(), platform.queue.clone(), platform.bus.clone())),
    };
    let engine = &engine;
    nextier_runtime::serve::cron(|| engine.timer(500)).await
}
