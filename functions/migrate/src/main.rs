//! Applies the database migrations, as the master user straight to the writer (not through
//! RDS Proxy). The template's `Migrations` custom resource invokes it on every deploy whose
//! code changed and a failure fails (and rolls back) the deploy; invoking it by hand runs the
//! same migrations. Idempotent, under the migration runner's advisory lock.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("migrate").await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let answer = nextier_providers::cloudformation::handle(event.payload, || async {
            let url = nextier_runtime::config::var("MIGRATION_DATABASE_URL")?;
            let app = nextier_runtime::config::get("APP_DB_PASSWORD");
            let worker = nextier_runtime::config::get("WORKER_DB_PASSWORD");
            let passwords = nextier_store::migrate::Passwords { app: app.as_deref(), worker: worker.as_deref() };
            let applied = nextier_store::migrate::run_url(&url, passwords).await?;
            Ok(json!({"applied": applied.len().to_string()}))
        })
        .await?;
        Ok::<_, lambda_runtime::Error>(answer)
    }))
    .await
}
