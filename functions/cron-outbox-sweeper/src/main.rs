//! Every minute (EventBridge Scheduler): publishes outbox rows that were not published right
//! after their transaction committed, prunes old ones and reports the backlog; then re-drives
//! webhook deliveries left unprocessed for more than a few minutes.

use std::time::Duration;

use nextier_platform::outbox::sweep_job;
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-outbox-sweeper").await?;
    let db = Db::worker_from_env()?;
    let publisher = Platform::from_env(&db).await.outbox(&db);
    let (db, publisher) = (&db, &publisher);
    nextier_runtime::serve::cron(|| async {
        let summary = sweep_job(publisher, Duration::from_secs(40)).await?;
        let redriven = nextier_inbound::redrive::run(db, publisher, nextier_inbound::redrive::AFTER).await?;
        let mut out = serde_json::to_value(summary)?;
        out["webhooksRedriven"] = redriven.into();
        Ok::<_, anyhow::Error>(out)
    })
    .await
}
