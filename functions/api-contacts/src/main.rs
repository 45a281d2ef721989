//! The contacts API group behind API Gateway: contacts, merges, lead states, timelines.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-contacts", nextier_api::contacts_app).await
}
