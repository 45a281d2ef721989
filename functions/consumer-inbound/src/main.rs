//! The inbound queue's consumer: routes each stored webhook delivery (replies and receipts
//! only) to the team that owns the receiving number, records the reply, files it in the inbox
//! and acts on it (opt-out, HELP, START, exit rules). The answers and the AI suggestions it
//! stages run on their own queues (consumer-answers, consumer-ai), so an opt-out never waits
//! behind a provider or an LLM.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nextier_campaigns::SystemClock;
use nextier_inbound::{handle_queue, Processor, QUEUE};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("consumer-inbound");
    let db = Db::worker_from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    let gate = nextier_providers::gate_from_env(platform.limiter.clone());
    let outbox = Some(platform.outbox(&db));
    let suggester = nextier_providers::suggester_from_env();
    let p = Processor { db, gate: Arc::new(gate), clock: Arc::new(SystemClock), outbox, suggester };
    let p = &p;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // No provider call outlives the invocation.
        let deadline = nextier_runtime::deadline::from_epoch_millis(event.context.deadline);
        let handled = handle_queue(p, QUEUE, event.payload);
        Ok::<_, lambda_runtime::Error>(nextier_runtime::deadline::within(Some(deadline), handled).await)
    }))
    .await
}
