//! The mail queue's consumer: notifications to a team's owners and admins (inbox items past
//! their SLA), through SendGrid when configured, once per key.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_runtime::telemetry::init("consumer-mail");
    let db = Db::from_env()?;
    let mailer = nextier_providers::sendgrid::mailer_from_env();
    let (db, mailer) = (&db, &mailer);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        // No provider call outlives the invocation.
        let deadline = nextier_runtime::deadline::from_epoch_millis(event.context.deadline);
        let handled = nextier_inbound::notify::handle(db, mailer.as_ref(), event.payload);
        Ok::<_, lambda_runtime::Error>(nextier_runtime::deadline::within(Some(deadline), handled).await)
    }))
    .await
}
