//! The mail function, on a function URL: SendGrid's Event Webhook (verified with the
//! account's ECDSA key, each event stored once by its sg_event_id and enqueued through the
//! outbox for the inbound consumer) and the one-click unsubscribe link of campaign email.

use nextier_webhooks::sendgrid::{router, MailState};

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_platform::start("webhook-sendgrid").await?;
    let db = nextier_store::Db::worker_from_env()?;
    let outbox = nextier_platform::wiring::Platform::from_env(&db).await.outbox(&db);
    nextier_http::run_lambda(router(MailState::from_env(db, outbox))).await
}
