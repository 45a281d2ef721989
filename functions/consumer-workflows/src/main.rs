//! The workflow consumer: each bus event the template's EventBridge rule routes to the
//! `workflow-events` queue starts the team's matching workflows on its contacts (once per
//! workflow, event and contact), runs their actions and records every step.

use std::sync::Arc;

use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-workflows").await?;
    let db = Db::worker_from_env()?;
    let platform = Platform::from_env(&db).await;
    let engine = nextier_workflows::Engine {
        db: db.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        publisher: Some(OutboxPublisher::new(db.clone(), platform.queue.clone(), platform.bus.clone())),
    };
    let engine = &engine;
    nextier_runtime::serve::sqs(|event| nextier_workflows::handle(engine, event)).await
}
