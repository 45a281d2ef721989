//! The inbound queue's consumer: routes each stored webhook delivery (replies and receipts
//! only) to the team that owns the receiving number, records the reply, files it in the inbox
//! and acts on it (opt-out, HELP, START, exit rules). The answers and the AI suggestions it
//! stages run on their own queues (consumer-answers, consumer-ai), so an opt-out never waits
//! behind a provider or an LLM.

use nextier_inbound::{handle_queue, QUEUE};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-inbound").await?;
    let db = Db::worker_from_env()?;
    let p = &nextier_providers::inbound_processor(db).await;
    nextier_runtime::serve::sqs(|event| handle_queue(p, QUEUE, event)).await
}
