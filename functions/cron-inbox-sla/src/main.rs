//! Every minute (EventBridge Scheduler): escalates inbox items past their bucket's SLA and
//! publishes InboxItemSLABreached for each.

use lambda_runtime::{service_fn, LambdaEvent};
use nextier_platform::wiring::Platform;
use nextier_store::Db;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("cron-inbox-sla");
    let db = Db::worker_from_env()?;
    let outbox = Platform::from_env(&db).await.outbox(&db);
    let (db, outbox) = (&db, &outbox);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let summary = nextier_inbound::sla::run(db, outbox, chrono::Utc::now()).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
    }))
    .await
}
