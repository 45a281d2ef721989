//! The campaign-sequence queue's consumer: a batch of steps at a time through the outbound
//! gate, idempotent per (enrolment, step), with partial batch failures.

use std::sync::Arc;

use nextier_campaigns::sequence::{handle, Sequencer};
use nextier_platform::ports::clock::SystemClock;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-campaign-sequence").await?;
    let db = Db::from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    // The outbound gate (suppression, quiet hours, DynamoDB token buckets) over SignalHouse,
    // SendGrid and Twilio where configured, else the sandbox.
    let gate = nextier_providers::gate_from_env(platform.limiter.clone());
    // Short deferrals (a rate-limit slot, quiet hours about to end) go back on this queue.
    let seq = Sequencer { db, gate: Arc::new(gate), clock: Arc::new(SystemClock), queue: Some(platform.queue.clone()) };
    let seq = &seq;
    nextier_runtime::serve::sqs(|event| handle(seq, event)).await
}
