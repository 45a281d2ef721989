//! The AI queue's consumer: writes a reply suggestion for each inbox item that needs one (an
//! LLM when configured, templates otherwise) and sends it at once only when the team switched
//! on auto-send, through the outbound gate. Apart from the inbound queue, so that a slow LLM
//! never delays an opt-out.

use nextier_inbound::{handle_queue, AI_QUEUE};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-ai").await?;
    let db = Db::from_env()?;
    let p = &nextier_providers::inbound_processor(db).await;
    nextier_runtime::serve::sqs(|event| handle_queue(p, AI_QUEUE, event)).await
}
