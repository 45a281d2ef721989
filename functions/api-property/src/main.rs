//! The property API group behind API Gateway: RealEstateAPI searches kept as the team's
//! properties with distress scores, a property's detail and refresh, owners linked to contacts.

#[tokio::main]
async fn main() -> Result<(), nextier_http::lambda_http::Error> {
    nextier_api::run_lambda("api-property", nextier_api::property_app).await
}
