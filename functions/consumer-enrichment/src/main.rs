//! The enrichment queue's consumer: traces a job's contacts in batches, polls queued traces,
//! grades numbers and applies the team's rules (`nextier_enrichment`).

use std::sync::Arc;

use nextier_platform::ports::clock::SystemClock;
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-enrichment").await?;
    let db = Db::from_env()?;
    let platform = Platform::from_env(&db).await;
    let providers = nextier_providers::enrichment::Providers::from_env();
    let pipeline = nextier_enrichment::Pipeline {
        outbox: platform.outbox(&db),
        db,
        queue: platform.queue.clone(),
        limiter: platform.limiter.clone(),
        clock: Arc::new(SystemClock),
        tracer: providers.tracer,
        other_tracers: providers.other_tracers,
        phone_intel: providers.phone_intel,
        companies: providers.companies,
        timing: nextier_enrichment::Timing::default(),
    };
    let pipeline = &pipeline;
    nextier_runtime::serve::sqs(|event| nextier_enrichment::handle(pipeline, event)).await
}
