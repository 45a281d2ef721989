use std::sync::OnceLock;

use tracing_subscriber::{fmt, EnvFilter};

static FUNCTION: OnceLock<String> = OnceLock::new();

/// Installs the JSON log subscriber once per process. Every line carries the fields of the
/// span it was logged in (correlation id, team id, function name). `RUST_LOG` filters.
pub fn init(function: &str) {
    let name = crate::config::or("AWS_LAMBDA_FUNCTION_NAME", function);
    let _ = FUNCTION.set(name);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        // Lambda stamps its own time; keep ours for local runs and ordering.
        .with_ansi(false)
        .try_init();
}

/// The function name logs and metrics carry (the Lambda's, or the local runtime's label).
pub fn function() -> &'static str {
    FUNCTION.get().map(String::as_str).unwrap_or("nextier")
}
