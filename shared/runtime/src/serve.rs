//! How a function's `main` serves its handler on Lambda, in one place: a queue consumer gets
//! each SQS batch under the invocation's deadline (no provider call outlives it) and answers
//! the partial-batch response; a scheduled job answers its summary as JSON. The API groups and
//! webhooks are served by `nextier_http::run_lambda`.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, LambdaEvent};
use serde::Serialize;

use crate::deadline;

/// Serves a queue consumer: `handle` takes one batch.
pub async fn sqs<F, Fut>(handle: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let until = deadline::from_epoch_millis(event.context.deadline);
        Ok::<_, lambda_runtime::Error>(deadline::within(Some(until), handle(event.payload)).await)
    }))
    .await
}

/// Serves a scheduled job (EventBridge Scheduler's input is ignored): `run` does one round and
/// answers what it did; an error fails the invocation (and the schedule's next run tries again).
pub async fn cron<F, Fut, T>(run: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
    T: Serialize,
{
    let run = &run;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let until = deadline::from_epoch_millis(event.context.deadline);
        let summary =
            deadline::within(Some(until), run()).await.map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(summary)?)
    }))
    .await
}

/// A queue consumer's settings, declared once beside its handler in its use-case crate. The
/// local runtime's registry runs the consumer with them, and `shared/local/tests/template.rs`
/// holds template.yaml's queue, dead-letter queue and event source mapping to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConsumer {
    pub queue: &'static str,
    pub batch_size: u32,
    /// The queue's visibility timeout: at least six times the function's timeout.
    pub visibility_secs: u64,
    /// Receives before a message goes to the dead-letter queue.
    pub max_receives: u32,
    /// Invocations at once (the mapping's MaximumConcurrency, where waiting matters).
    pub concurrency: usize,
}

/// A scheduled job, declared once beside its handler: its name (the schedule's Input,
/// `{"schedule": name}`) and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledJob {
    pub name: &'static str,
    pub every_secs: u64,
}
