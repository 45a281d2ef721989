//! SignalHouse's webhook, on a function URL: verifies the signature over the raw body,
//! stores the delivery once (by X-SignalHouse-Delivery-Id) and enqueues it through the outbox
//! for the inbound consumer, answering well inside SignalHouse's 3 s.

use nextier_webhooks::signalhouse::{router, secrets_from_env, WebhookState};

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_platform::start("webhook-signalhouse").await?;
    let db = nextier_store::Db::worker_from_env()?;
    let outbox = nextier_platform::wiring::Platform::from_env(&db).await.outbox(&db);
    nextier_http::run_lambda(router(WebhookState::new(db, outbox, secrets_from_env()))).await
}
