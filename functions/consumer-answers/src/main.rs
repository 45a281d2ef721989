//! The answers queue's consumer: the one confirmation of an opt-out and the answers to HELP
//! and START, each through the outbound gate under its own send key (a provider failure is
//! retried by SQS with the same key, so nothing is sent twice).

use nextier_inbound::{handle_queue, ANSWERS_QUEUE};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-answers").await?;
    let db = Db::from_env()?;
    let p = &nextier_providers::inbound_processor(db).await;
    nextier_runtime::serve::sqs(|event| handle_queue(p, ANSWERS_QUEUE, event)).await
}
