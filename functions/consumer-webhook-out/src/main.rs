//! The webhook sender (`webhook-out` queue): bus events fan out to the team's endpoints as
//! signed deliveries (Standard Webhooks), and deliveries due again are attempted.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-webhook-out").await?;
    let sender = nextier_integrations::webhooks::Sender::from_env().await?;
    let sender = &sender;
    nextier_runtime::serve::sqs(|event| nextier_integrations::webhooks::handle(sender, event)).await
}
