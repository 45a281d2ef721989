//! Every minute (EventBridge Scheduler): publishes outbox rows that were not published right
//! after their transaction committed, prunes old ones and reports the backlog.

use std::time::Duration;

use lambda_runtime::{service_fn, LambdaEvent};
use nextier_platform::outbox::sweep_job;
use nextier_platform::wiring::Platform;
use nextier_store::Db;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("cron-outbox-sweeper");
    let db = Db::worker_from_env()?;
    let publisher = Platform::from_env(&db).await.outbox(&db);
    let publisher = &publisher;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let summary = sweep_job(publisher, Duration::from_secs(40)).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
    }))
    .await
}
