//! Every minute (EventBridge Scheduler): reads SignalHouse's unread notifications (the
//! durable record of every event) and enqueues any the webhook missed, then marks them read.

use nextier_platform::wiring::Platform;
use nextier_providers::notifications::{Config, SignalHouseNotifications};
use nextier_store::Db;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-signalhouse-reconcile").await?;
    let db = Db::worker_from_env()?;
    let outbox = Platform::from_env(&db).await.outbox(&db);
    let source = Config::from_env().map(SignalHouseNotifications::new);
    if source.is_none() {
        tracing::warn!("SIGNALHOUSE_API_KEY or SIGNALHOUSE_GROUP_ID is not set; nothing to reconcile from");
    }
    let (db, outbox, source) = (&db, &outbox, &source);
    nextier_runtime::serve::cron(|| async {
        let Some(source) = source else { return Ok::<_, anyhow::Error>(json!({"skipped": "not configured"})) };
        let summary = nextier_inbound::reconcile::run(db, outbox, source, 10).await?;
        Ok(serde_json::to_value(summary)?)
    })
    .await
}
