//! Every 5 minutes (EventBridge Scheduler): refreshes CRM access tokens before they expire
//! (a dead grant marks the connection for reconnecting and tells the team), queues each
//! connection's push and pull, and re-sends work whose queue message was lost.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-crm-sync").await?;
    let worker = nextier_integrations::Worker::from_env(nextier_providers::zoho::crm_from_env()).await?;
    let worker = &worker;
    nextier_runtime::serve::cron(|| nextier_integrations::crm::sync(worker)).await
}
