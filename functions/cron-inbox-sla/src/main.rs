//! Every minute (EventBridge Scheduler): escalates inbox items past their bucket's SLA and
//! publishes InboxItemSLABreached for each.

use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-inbox-sla").await?;
    let db = Db::worker_from_env()?;
    let outbox = Platform::from_env(&db).await.outbox(&db);
    let (db, outbox) = (&db, &outbox);
    nextier_runtime::serve::cron(|| nextier_inbound::sla::run(db, outbox, chrono::Utc::now())).await
}
