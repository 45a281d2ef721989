//! The campaigns API group behind API Gateway: campaigns and their lifecycle, steps,
//! enrolments, stats and history, message templates and saved filters.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-campaigns", nextier_api::campaigns_app).await
}
