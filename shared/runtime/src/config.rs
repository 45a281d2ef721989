//! The one place the environment is read. Functions read only their environment (so
//! `cargo lambda watch`, SAM and the local runtime can all drive them), and every read goes
//! through here: a setting is its variable's value, trimmed, and a blank one counts as unset.
//! Each function's typed configuration (`Config::from_env` in the provider clients, the
//! platform's wiring, the pools) is built from these once, at start.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::RwLock;

/// Settings resolved at cold start from where the environment points (a secret's value for
/// `X_SECRET_ARN`), which take the place of the variable of the same name.
static RESOLVED: RwLock<Option<HashMap<String, String>>> = RwLock::new(None);

/// The setting, trimmed; `None` when unset or blank. A value resolved at cold start (a
/// secret) takes the place of the variable.
pub fn get(name: &str) -> Option<String> {
    let resolved = RESOLVED.read().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|m| m.get(name).cloned());
    resolved.or_else(|| std::env::var(name).ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Sets a setting's value for the rest of the process (secrets, read once at cold start).
pub fn resolve(name: &str, value: String) {
    RESOLVED.write().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashMap::new).insert(name.to_owned(), value);
}

/// Every variable of the environment whose name ends with `suffix`, with its value.
pub fn vars_ending(suffix: &str) -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| k.ends_with(suffix)).collect()
}

/// The setting, or an error naming it.
pub fn var(name: &str) -> anyhow::Result<String> {
    get(name).ok_or_else(|| anyhow::anyhow!("environment variable {name} is not set"))
}

/// The setting, or `default` when unset or blank.
pub fn or(name: &str, default: &str) -> String {
    get(name).unwrap_or_else(|| default.to_owned())
}

/// The setting parsed; `None` when unset, blank or not a `T`.
pub fn parse<T: FromStr>(name: &str) -> Option<T> {
    get(name).and_then(|v| v.parse().ok())
}

/// Whether the variable is set at all (even blank).
pub fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// `PLATFORM=local`: the local runtime and `cargo lambda watch` against it.
pub fn is_local() -> bool {
    get("PLATFORM").as_deref() == Some("local")
}

/// The local platform's signing secret (dev JWTs and blob URLs): `LOCAL_JWT_SECRET`, or an
/// embedded default. Deployed functions never use it.
pub fn local_secret() -> String {
    or("LOCAL_JWT_SECRET", "nextier-local-dev-secret-not-for-production")
}

/// True when running inside AWS Lambda (or `cargo lambda watch`, which sets the same).
pub fn in_lambda() -> bool {
    is_set("AWS_LAMBDA_FUNCTION_NAME")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_values_are_trimmed_and_parsed() {
        // Names no other test or function uses.
        std::env::set_var("NEXTIER_CONFIG_TEST_BLANK", "  ");
        std::env::set_var("NEXTIER_CONFIG_TEST_N", " 42 ");
        assert_eq!(get("NEXTIER_CONFIG_TEST_BLANK"), None);
        assert!(is_set("NEXTIER_CONFIG_TEST_BLANK"));
        assert_eq!(get("NEXTIER_CONFIG_TEST_N").as_deref(), Some("42"));
        assert_eq!(parse::<u32>("NEXTIER_CONFIG_TEST_N"), Some(42));
        assert_eq!(parse::<u32>("NEXTIER_CONFIG_TEST_UNSET"), None);
        assert_eq!(or("NEXTIER_CONFIG_TEST_UNSET", "d"), "d");
        assert!(var("NEXTIER_CONFIG_TEST_UNSET").unwrap_err().to_string().contains("NEXTIER_CONFIG_TEST_UNSET"));
        // A resolved value (a secret) takes the variable's place.
        resolve("NEXTIER_CONFIG_TEST_N", " 7 ".into());
        assert_eq!(parse::<u32>("NEXTIER_CONFIG_TEST_N"), Some(7));
        resolve("NEXTIER_CONFIG_TEST_RESOLVED_ONLY", "x".into());
        assert_eq!(get("NEXTIER_CONFIG_TEST_RESOLVED_ONLY").as_deref(), Some("x"));
    }
}
