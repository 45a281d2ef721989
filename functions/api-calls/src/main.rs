//! The calls API group behind API Gateway: the call queue (push, list by priority, claim,
//! complete), call history and power-dialer sessions.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-calls", nextier_api::calls_app).await
}
