//! Secrets, read once at cold start. Deployed, a function's environment holds no secret: for
//! each setting `X` it needs, it holds `X_SECRET_ARN`, the Secrets Manager secret whose value
//! becomes `X` for the rest of the process (`nextier_runtime::config::resolve`), and its role
//! may read only those secrets. A database URL is given without its password; its secret is
//! the RDS Proxy's credentials secret (`{"username", "password"}`), whose password is put into
//! the URL. Locally no `_SECRET_ARN` is set and the same code reads the environment as before.
//!
//! A secret that cannot be read stops the cold start: a function must not quietly run without
//! its provider key (it would fall back to the sandbox) or its signing secret.

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use nextier_runtime::config;

pub const SUFFIX: &str = "_SECRET_ARN";

/// Resolves every `X_SECRET_ARN` of the environment (nothing to do, and no AWS client, when
/// there is none); how many settings were resolved.
pub async fn load() -> anyhow::Result<usize> {
    // The local platform reads its settings from the environment: SAM local passes the
    // template's ARNs through, and there is no Secrets Manager to ask.
    if config::is_local() {
        return Ok(0);
    }
    let wanted: Vec<(String, String)> =
        config::vars_ending(SUFFIX).into_iter().filter(|(_, arn)| !arn.trim().is_empty()).collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let client = Client::new(&crate::aws::sdk_config().await);
    load_with(&client, &wanted).await
}

/// Resolves `(X_SECRET_ARN, arn)` pairs with `client`.
pub async fn load_with(client: &Client, wanted: &[(String, String)]) -> anyhow::Result<usize> {
    let mut n = 0;
    for (var, arn) in wanted {
        let Some(name) = var.strip_suffix(SUFFIX) else { continue };
        let arn = arn.trim();
        if arn.is_empty() {
            continue;
        }
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .with_context(|| format!("reading the secret for {name} ({var})"))?;
        let secret = out.secret_string().with_context(|| format!("the secret for {name} has no string value"))?;
        config::resolve(name, value_for(config::get(name).as_deref(), secret).with_context(|| name.to_owned())?);
        tracing::info!(setting = name, "setting read from Secrets Manager");
        n += 1;
    }
    Ok(n)
}

/// What a secret makes of a setting: a credentials secret (`{"password": …}`) completes a
/// database URL given without its password (or is the password itself); any other secret is the
/// value.
pub fn value_for(current: Option<&str>, secret: &str) -> anyhow::Result<String> {
    let creds = serde_json::from_str::<serde_json::Value>(secret).ok().filter(serde_json::Value::is_object);
    let Some(creds) = creds.filter(|c| c.get("password").is_some()) else { return Ok(secret.to_owned()) };
    let password = creds["password"].as_str().context("the credentials' password is not a string")?;
    match current.filter(|c| c.starts_with("postgres://") || c.starts_with("postgresql://")) {
        Some(url) => {
            let mut url = url::Url::parse(url).context("the database URL does not parse")?;
            if url.username().is_empty() {
                let user = creds["username"].as_str().context("the URL names no user and the secret none")?;
                url.set_username(user).map_err(|_| anyhow::anyhow!("cannot set the user"))?;
            }
            url.set_password(Some(password)).map_err(|_| anyhow::anyhow!("cannot set the password"))?;
            Ok(url.to_string())
        }
        None => Ok(password.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_secret_completes_a_database_url() {
        let creds = r#"{"username": "nextier_app", "password": "p@ss/w:rd"}"#;
        let url =
            value_for(Some("postgres://nextier_app@proxy.example:5432/nextier?sslmode=verify-full"), creds).unwrap();
        assert_eq!(url, "postgres://nextier_app:p%40ss%2Fw%3Ard@proxy.example:5432/nextier?sslmode=verify-full");
        let url = value_for(Some("postgres://proxy.example:5432/nextier"), creds).unwrap();
        assert!(url.starts_with("postgres://nextier_app:p%40ss"), "{url}");
        // Not a URL: the password itself; not credentials: the whole string.
        assert_eq!(value_for(None, creds).unwrap(), "p@ss/w:rd");
        assert_eq!(value_for(Some("x"), "sk-live-123").unwrap(), "sk-live-123");
        assert_eq!(value_for(None, r#"{"a": 1}"#).unwrap(), r#"{"a": 1}"#);
    }
}
