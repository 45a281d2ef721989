//! The admin API group behind API Gateway: teams, members, invitations, API keys, settings,
//! plus `/health` and `/openapi.json`.

use std::sync::Arc;

use nextier_api::{AppConfig, AppState};
use nextier_platform::wiring::Platform;
use nextier_store::Db;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    nextier_runtime::telemetry::init("api-admin");
    let db = Db::from_env()?;
    let platform = Platform::from_env(&db).await;
    let state = AppState { outbox: platform.outbox(&db), db, config: Arc::new(AppConfig::from_env()) };
    let local_auth = nextier_http::jwt::local_verifier_from_env();
    nextier_http::run_lambda(nextier_api::admin_app(state, local_auth)).await
}
