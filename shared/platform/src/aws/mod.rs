//! AWS adapters. Clients are built once per cold start from one `SdkConfig`.

mod dynamo;
mod eventbridge;
mod s3;
mod sqs;

pub use dynamo::DynamoRateLimiter;
pub use eventbridge::EventBridgeBus;
pub use s3::S3BlobStore;
pub use sqs::SqsQueue;

use aws_config::{BehaviorVersion, Region};

/// The SDK configuration from the environment (the Lambda role when deployed;
/// `AWS_ENDPOINT_URL` is honoured for emulators).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An SDK configuration for an emulator at `endpoint` with dummy credentials (tests).
pub fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    let creds = aws_credential_types::Credentials::from_keys("testing", "testing", None);
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build()
}

fn classify<E, R>(err: aws_sdk_sqs::error::SdkError<E, R>) -> crate::PlatformError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => {
            let raw = format!("{:?}", service.err());
            // Throttling and server faults are transient; the rest is a request problem.
            if raw.contains("Throttl") || raw.contains("ServiceUnavailable") || raw.contains("InternalError") {
                crate::PlatformError::Unavailable(raw)
            } else {
                crate::PlatformError::Invalid(raw)
            }
        }
        _ => crate::PlatformError::Unavailable(format!("{err:?}")),
    }
}
