//! The integrations API group behind API Gateway: the Zoho CRM connection (connect, callback,
//! mapping, tasks, conflicts), CSV exports, and the webhook endpoints a team registers.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-integrations", nextier_api::integrations_app).await
}
