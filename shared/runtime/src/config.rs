//! Functions read only their environment (so `cargo lambda watch`, SAM and the local
//! runtime can all drive them).

pub fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("environment variable {name} is not set"))
}

pub fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// True when running inside AWS Lambda (or `cargo lambda watch`, which sets the same).
pub fn in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}
