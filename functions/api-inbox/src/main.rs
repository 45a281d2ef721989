//! The inbox API group behind API Gateway: items by bucket, priority and due time, the
//! conversation, moves (one or many), processing, escalation, stats, and a classification
//! preview for operators tuning their rules.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-inbox", nextier_api::inbox_app).await
}
