//! The AI queue's consumer: writes a reply suggestion for each inbox item that needs one (an
//! LLM when configured, templates otherwise) and sends it at once only when the team switched
//! on auto-send, through the outbound gate. Apart from the inbound queue, so that a slow LLM
//! never delays an opt-out.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nextier_campaigns::SystemClock;
use nextier_inbound::{handle_queue, Processor, AI_QUEUE};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("consumer-ai");
    let db = Db::from_env()?;
    let platform = nextier_platform::wiring::Platform::from_env(&db).await;
    let gate = nextier_providers::gate_from_env(platform.limiter.clone());
    let outbox = Some(platform.outbox(&db));
    let suggester = nextier_providers::suggester_from_env();
    let p = Processor { db, gate: Arc::new(gate), clock: Arc::new(SystemClock), outbox, suggester };
    let p = &p;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // No provider call outlives the invocation.
        let deadline = nextier_runtime::deadline::from_epoch_millis(event.context.deadline);
        let handled = handle_queue(p, AI_QUEUE, event.payload);
        Ok::<_, lambda_runtime::Error>(nextier_runtime::deadline::within(Some(deadline), handled).await)
    }))
    .await
}
