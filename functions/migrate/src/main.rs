//! Applies the database migrations. Invoked once after each `sam deploy` (see README);
//! connects directly to the database as the master user, not through RDS Proxy.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    nextier_platform::start("migrate").await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        let url = nextier_runtime::config::var("MIGRATION_DATABASE_URL")?;
        let app = nextier_runtime::config::get("APP_DB_PASSWORD");
        let worker = nextier_runtime::config::get("WORKER_DB_PASSWORD");
        let passwords = nextier_store::migrate::Passwords { app: app.as_deref(), worker: worker.as_deref() };
        let applied = nextier_store::migrate::run_url(&url, passwords).await?;
        Ok::<_, lambda_runtime::Error>(json!({"applied": applied}))
    }))
    .await
}
