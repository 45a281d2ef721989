//! Every minute (EventBridge Scheduler): webhook deliveries whose retry is due (and those
//! whose sender vanished mid-attempt) go back to the `webhook-out` queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-webhook-redrive").await?;
    let sender = nextier_integrations::webhooks::Sender::from_env().await?;
    let sender = &sender;
    nextier_runtime::serve::cron(|| async move { sender.redrive(500).await.map(|n| serde_json::json!({"resent": n})) })
        .await
}
