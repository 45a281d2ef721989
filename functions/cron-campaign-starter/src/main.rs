//! Every minute (EventBridge Scheduler): starts approved campaigns whose start time has
//! come and completes those whose end time has passed.

use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-campaign-starter").await?;
    let db = Db::worker_from_env()?;
    let outbox = Platform::from_env(&db).await.outbox(&db);
    let (db, outbox) = (&db, &outbox);
    nextier_runtime::serve::cron(|| nextier_campaigns::starter::run(db, outbox, chrono::Utc::now())).await
}
