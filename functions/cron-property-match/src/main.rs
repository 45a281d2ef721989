//! Every hour (EventBridge Scheduler): runs the saved property searches of the teams whose
//! night it is (resuming a run cut short), keeps what they find and links the owners.

use std::sync::Arc;

use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-property-match").await?;
    let db = Db::worker_from_env()?;
    let platform = Platform::from_env(&db).await;
    let p = nextier_property::Properties {
        db: db.clone(),
        data: nextier_providers::realestate::property_data_from_env(),
        limiter: platform.limiter.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
    };
    let p = &p;
    nextier_runtime::serve::cron(|| nextier_property::nightly::run(p, chrono::Utc::now())).await
}
