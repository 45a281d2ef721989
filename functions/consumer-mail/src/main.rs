//! The mail queue's consumer: notifications to a team's owners and admins (inbox items past
//! their SLA), through SendGrid when configured, once per key.

use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-mail").await?;
    let db = Db::from_env()?;
    let mailer = nextier_providers::sendgrid::mailer_from_env();
    let (db, mailer) = (&db, &mailer);
    nextier_runtime::serve::sqs(|event| nextier_inbound::notify::handle(db, mailer.as_ref(), event)).await
}
