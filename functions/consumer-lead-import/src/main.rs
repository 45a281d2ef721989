//! The lead-import queue's consumer: S3 upload notifications and continuation messages, one
//! job at a time, with partial batch failures.

use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-lead-import").await?;
    let db = Db::worker_from_env()?;
    let platform = Platform::from_env(&db).await;
    let publisher = platform.outbox(&db);
    let (db, blobs, publisher) = (&db, platform.blobs.as_ref(), &publisher);
    nextier_runtime::serve::sqs(|event| nextier_imports::handle(db, blobs, publisher, event)).await
}
