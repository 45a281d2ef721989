//! Every minute (EventBridge Scheduler): wakes the workflow runs whose wait is over and starts
//! the "no reply in N days" workflows on the messages that went unanswered.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("cron-workflow-timer").await?;
    let engine = nextier_workflows::Engine::from_env().await?;
    let engine = &engine;
    nextier_runtime::serve::cron(|| engine.timer(500)).await
}
