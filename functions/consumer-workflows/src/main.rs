//! The workflow consumer: each bus event the template's EventBridge rule routes to the
//! `workflow-events` queue starts the team's matching workflows on its contacts (once per
//! workflow, event and contact), runs their actions and records every step.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("consumer-workflows").await?;
    let engine = nextier_workflows::Engine::from_env().await?;
    let engine = &engine;
    nextier_runtime::serve::sqs(|event| nextier_workflows::handle(engine, event)).await
}
