//! Twilio's voice webhooks, on a function URL: inbound calls answered in TwiML with the
//! team's greeting and a voicemail recording, the voicemail filed in the inbox, call progress
//! on the call's timeline. Every request's X-Twilio-Signature is checked.

use nextier_webhooks::twilio::{router, VoiceState};

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_platform::start("webhook-twilio").await?;
    let db = nextier_store::Db::worker_from_env()?;
    nextier_http::run_lambda(router(VoiceState::from_env(db))).await
}
