//! Every minute (EventBridge Scheduler): claims due enrolments of running campaigns, within
//! the send budget, and queues one campaign-sequence message per step.

use nextier_campaigns::tick::{tick, TickConfig};
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-campaign-tick").await?;
    let db = Db::worker_from_env()?;
    let platform = Platform::from_env(&db).await;
    let config = TickConfig::from_env();
    let (db, queue, config) = (&db, platform.queue.as_ref(), &config);
    nextier_runtime::serve::cron(|| tick(db, queue, chrono::Utc::now(), config)).await
}
