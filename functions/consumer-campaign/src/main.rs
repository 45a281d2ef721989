//! The campaign queue's consumer (sync-lead-campaign): a contact whose score changed is
//! enrolled in the running campaigns whose auto-enrol band contains it.

use nextier_platform::ports::clock::SystemClock;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-campaign").await?;
    let db = Db::from_env()?;
    let db = &db;
    nextier_runtime::serve::sqs(|event| nextier_campaigns::sync::handle(db, &SystemClock, event)).await
}
