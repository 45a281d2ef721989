//! Functions read only their environment (so `cargo lambda watch`, SAM and the local
//! runtime can all drive them).

pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("environment variable {name} is not set"))
}

/// The local platform's signing secret (dev JWTs and blob URLs): `LOCAL_JWT_SECRET`, or an
/// embedded default. Deployed functions never use it.
pub fn local_secret() -> String {
    std::env::var("LOCAL_JWT_SECRET").unwrap_or_else(|_| "nextier-local-dev-secret-not-for-production".to_owned())
}

/// True when running inside AWS Lambda (or `cargo lambda watch`, which sets the same).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}
