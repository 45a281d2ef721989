//! The admin API group behind API Gateway: teams, members, invitations, API keys, settings,
//! plus `/health` and `/openapi.json`.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-admin", nextier_api::admin_app).await
}
