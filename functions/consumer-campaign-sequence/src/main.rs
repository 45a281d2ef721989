//! The campaign-sequence queue's consumer: one step per message, through the outbound gate,
//! idempotent per (enrolment, step), with partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nextier_campaigns::sequence::{handle, Sequencer};
use nextier_campaigns::SystemClock;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("consumer-campaign-sequence");
    let db = Db::from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    // The outbound gate (suppression, quiet hours, DynamoDB token buckets) over the sandbox
    // transport until the providers are wired (issue 5).
    let gate = nextier_campaigns::gate::sandbox_limited(platform.limiter.clone());
    let seq = Sequencer { db, gate: Arc::new(gate), clock: Arc::new(SystemClock) };
    let seq = &seq;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(handle(seq, event.payload).await)
    }))
    .await
}
