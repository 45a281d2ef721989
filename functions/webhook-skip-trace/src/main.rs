//! The skip-trace provider's completion webhook, on a function URL: each job's callback URL
//! carries its own random token; the results join the job's contacts, once.

use nextier_webhooks::skip_trace::{router, CallbackState};

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_platform::start("webhook-skip-trace").await?;
    let db = nextier_store::Db::worker_from_env()?;
    nextier_http::run_lambda(router(CallbackState::new(db))).await
}
