//! The integration task consumer (`integration-task` queue): a CRM push or pull, or a CSV
//! export, each a recorded row the message names, leased while it runs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-integrations").await?;
    let worker = nextier_integrations::Worker::from_env(nextier_providers::zoho::crm_from_env()).await?;
    let worker = &worker;
    nextier_runtime::serve::sqs(|event| nextier_integrations::handle_tasks(worker, event)).await
}
