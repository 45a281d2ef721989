//! Every five minutes (EventBridge Scheduler): settles messages left queued past their
//! deadline. It asks the provider; it resends only under the same idempotency key while the
//! provider still replays it, through the gate; anything else is marked failed for review.

use nextier_outbound::reconcile::{run, ReconcileConfig};
use nextier_providers::lookup::lookup_from_env;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-message-reconcile").await?;
    let db = Db::worker_from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    let gate = nextier_providers::gate_from_env(platform.limiter.clone());
    let lookup = lookup_from_env();
    let config = ReconcileConfig::default();
    let (db, gate, lookup, config) = (&db, &gate, &lookup, &config);
    nextier_runtime::serve::cron(|| run(db, gate, lookup.as_ref(), config, chrono::Utc::now())).await
}
