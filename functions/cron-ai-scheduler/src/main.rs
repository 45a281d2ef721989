//! Every minute (EventBridge Scheduler): puts what the AI workers have due on the `ai` queue:
//! nurture follow-ups whose day has come and auto-sends whose delay has passed.

use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-ai-scheduler").await?;
    let db = Db::worker_from_env()?;
    let outbox = Platform::from_env(&db).await.outbox(&db);
    let (db, outbox) = (&db, &outbox);
    nextier_runtime::serve::cron(|| nextier_inbound::ai_schedule::run(db, outbox, chrono::Utc::now())).await
}
