//! The campaign queue's consumer (sync-lead-campaign): a contact whose score changed is
//! enrolled in the running campaigns whose auto-enrol band contains it.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nextier_campaigns::SystemClock;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("consumer-campaign");
    let db = Db::from_env()?;
    let db = &db;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(nextier_campaigns::sync::handle(db, &SystemClock, event.payload).await)
    }))
    .await
}
