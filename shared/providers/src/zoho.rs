//! Zoho CRM (issue 19), behind [`nextier_platform::ports::crm::Crm`]:
//!
//! - OAuth 2 authorization code: `{accounts}/oauth/v2/auth` (`response_type=code`,
//!   `access_type=offline`, `prompt=consent`), then `POST {accounts}/oauth/v2/token`
//!   form-encoded (`grant_type=authorization_code` or `refresh_token`). The answer is
//!   `{access_token, refresh_token (code grant only), api_domain, token_type, expires_in}`; a
//!   dead grant is HTTP 200 (or 400) with `{"error": "invalid_code"}`.
//! - Records (v3), `Authorization: Zoho-oauthtoken <token>`: `POST {api}/crm/v3/{Module}/upsert`
//!   (≤ 100 records, `duplicate_check_fields`, one outcome per record in order);
//!   `GET {api}/crm/v3/{Module}?fields=…&page=…&per_page=200&sort_by=Modified_Time&sort_order=asc`
//!   with `If-Modified-Since`; `GET {api}/crm/v3/{Module}/deleted?type=all&page=…`. 204 and 304
//!   are "nothing".
//!
//! Failures: a 401 on a CRM call is [`CrmError::TokenExpired`] (refresh and try again); 429 (or
//! an exhausted API credit) is `RateLimited` with `Retry-After` or [`DEFAULT_RATE_LIMIT_WAIT`];
//! timeouts and 5xx are retried a few times (never a 429: the caller waits), then
//! `Unavailable`; any other refusal is `Malformed`. [`crate::retry::send`] is not used: it
//! turns a 401 into a configuration fault, retries 429s in place and drops the wait.
//!
//! Tokens and the client secret are never logged nor put in an error; redirects are not
//! followed (the token request carries the secret); answers are read up to [`MAX_BODY`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_platform::ports::crm::{
    Crm, CrmError, Deleted, ProviderError, RecordPage, SandboxCrm, TokenError, Tokens, UpsertOutcome,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::retry::{self, Retry};

pub const DEFAULT_SCOPES: &str = "ZohoCRM.modules.leads.ALL,ZohoCRM.modules.contacts.ALL,ZohoCRM.settings.fields.READ";
/// At most this many records in one upsert call (Zoho's limit); more are sent in batches.
pub const MAX_BATCH: usize = 100;
/// Records per page of a list (Zoho's maximum).
pub const PER_PAGE: u32 = 200;
/// The largest answer read.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long to wait after a rate limit that names no `Retry-After`.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Zoho's answer codes of a rate limit or exhausted API credits (HTTP 429, sometimes 400).
const RATE_LIMIT_CODES: &[&str] = &["TOO_MANY_REQUESTS", "LIMIT_EXCEEDED", "API_LIMIT_EXCEEDED", "LIMIT_REACHED"];

#[derive(Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    /// Comma-separated, as Zoho wants them.
    pub scopes: String,
    pub timeout: Duration,
    pub retry: Retry,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Config {
    /// `ZOHO_CLIENT_ID` and `ZOHO_CLIENT_SECRET` (and `ZOHO_SCOPES`); `None` without both.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            client_id: var("ZOHO_CLIENT_ID")?,
            client_secret: var("ZOHO_CLIENT_SECRET")?,
            scopes: var("ZOHO_SCOPES").unwrap_or_else(|| DEFAULT_SCOPES.into()),
            timeout: Duration::from_secs(20),
            retry: Retry::default(),
        })
    }
}

pub struct Zoho {
    http: reqwest::Client,
    config: Config,
}

/// Zoho when `ZOHO_CLIENT_ID` and `ZOHO_CLIENT_SECRET` are set, else the in-memory sandbox.
pub fn crm_from_env() -> Arc<dyn Crm> {
    match Config::from_env() {
        Some(c) => Arc::new(Zoho::new(c)),
        None => SandboxCrm::shared(),
    }
}

/// A final answer (not a 5xx, not a timeout): status, headers, body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

async fn read_capped(mut resp: reqwest::Response) -> Result<String, ReadError> {
    if resp.content_length().is_some_and(|l| l > MAX_BODY as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "unreachable".into()
    } else {
        // Without the URL: no request of ours carries a secret in it, but keep errors short.
        let s = e.to_string();
        let s = match e.url() {
            Some(u) => s.replace(u.as_str(), "<url>"),
            None => s,
        };
        format!("transport error: {}", snippet(&s))
    }
}

fn snippet(body: &str) -> String {
    body.chars().take(300).collect()
}

/// A record id Zoho writes as a string (or, rarely, a number).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A module's API name is a path segment: letters, digits and underscores only.
fn module_segment(module: &str) -> Result<&str, CrmError> {
    if !module.is_empty() && module.len() <= 100 && module.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(module)
    } else {
        Err(ProviderError::Malformed(format!("not a Zoho module name: {:?}", snippet(module))).into())
    }
}

fn authorization(token: &str) -> Result<HeaderValue, CrmError> {
    let mut v = HeaderValue::from_str(&format!("Zoho-oauthtoken {token}"))
        .map_err(|_| CrmError::TokenExpired("the access token is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// `If-Modified-Since` as Zoho reads it: ISO 8601 with an offset.
fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn rate_limited(headers: &HeaderMap) -> ProviderError {
    ProviderError::RateLimited(retry::retry_after(headers).unwrap_or(DEFAULT_RATE_LIMIT_WAIT))
}

/// The token endpoint's `error`, sorted: a dead grant, our credentials, a rate limit, or a
/// refusal of the request.
fn token_error(error: &str, description: &str, headers: &HeaderMap) -> TokenError {
    let code = error.trim().to_ascii_lowercase().replace(' ', "_");
    // Zoho's answer to too many token requests in a row: `{"error": "Access Denied",
    // "error_description": "You have made too many requests continuously..."}`.
    if description.to_ascii_lowercase().contains("too many requests") {
        return rate_limited(headers).into();
    }
    match code.as_str() {
        "invalid_code" | "invalid_grant" | "access_denied" | "invalid_token" | "invalid_refresh_token" => {
            TokenError::Revoked(code)
        }
        "invalid_client" | "invalid_client_secret" | "unauthorized_client" => {
            ProviderError::Unauthorized(format!("Zoho refused our client: {code}")).into()
        }
        _ => ProviderError::Malformed(format!("Zoho refused the token request: {}", snippet(&code))).into(),
    }
}

/// Reads a token endpoint's answer.
fn token_answer(status: StatusCode, headers: &HeaderMap, body: &str) -> Result<Tokens, TokenError> {
    if status.as_u16() == 429 {
        return Err(rate_limited(headers).into());
    }
    if status.is_server_error() {
        return Err(ProviderError::Unavailable(format!("token endpoint: HTTP {status}")).into());
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Err(ProviderError::Malformed(format!("token endpoint: HTTP {status}, not JSON")).into());
    };
    if let Some(error) = v.get("error").and_then(Value::as_str) {
        let description = v.get("error_description").and_then(Value::as_str).unwrap_or_default();
        return Err(token_error(error, description, headers));
    }
    if matches!(status.as_u16(), 401 | 403) {
        return Err(ProviderError::Unauthorized(format!("token endpoint: HTTP {status}")).into());
    }
    if !status.is_success() {
        return Err(ProviderError::Malformed(format!("token endpoint: HTTP {status}")).into());
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let Some(access_token) = text("access_token") else {
        // The body is not quoted: it may carry a token.
        return Err(ProviderError::Malformed("the token answer has no access_token".into()).into());
    };
    let number = |k: &str| match v.get(k) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    // Older answers gave `expires_in` in milliseconds next to `expires_in_sec`.
    let expires_in_secs = number("expires_in_sec")
        .or_else(|| number("expires_in").map(|e| if e > 86_400 { e / 1000 } else { e }))
        .filter(|e| *e > 0)
        .unwrap_or(3600);
    Ok(Tokens {
        access_token,
        refresh_token: text("refresh_token"),
        api_domain: text("api_domain").map(|d| d.trim_end_matches('/').to_owned()),
        expires_in_secs,
    })
}

/// A CRM call's answer that is not what was asked for, sorted.
fn crm_failure(r: &Reply) -> CrmError {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let first = v.get("data").and_then(|d| d.get(0)).unwrap_or(&v);
    let code = v.get("code").or_else(|| first.get("code")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let why = || format!("HTTP {}: {}", r.status, snippet(&r.body));
    match r.status.as_u16() {
        401 if code == "OAUTH_SCOPE_MISMATCH" => ProviderError::Unauthorized(why()).into(),
        401 => CrmError::TokenExpired(if code.is_empty() { format!("HTTP {}", r.status) } else { code }),
        429 => rate_limited(&r.headers).into(),
        _ if RATE_LIMIT_CODES.contains(&code.as_str()) => rate_limited(&r.headers).into(),
        403 => ProviderError::Unauthorized(why()).into(),
        s if s >= 500 || s == 408 => ProviderError::Unavailable(why()).into(),
        _ => ProviderError::Malformed(why()).into(),
    }
}

fn json_body(r: &Reply) -> Result<Value, CrmError> {
    serde_json::from_str(&r.body).map_err(|e| {
        ProviderError::Malformed(format!("HTTP {}: not JSON ({e}): {}", r.status, snippet(&r.body))).into()
    })
}

/// One upsert answer's outcomes, in the order sent.
fn upsert_outcomes(v: &Value, sent: usize) -> Result<Vec<UpsertOutcome>, ProviderError> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::Malformed("the upsert answer has no data list".into()))?;
    if data.len() != sent {
        return Err(ProviderError::Malformed(format!(
            "the upsert answer has {} outcomes for {sent} records",
            data.len()
        )));
    }
    data.iter()
        .map(|item| {
            let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
            if text("status").eq_ignore_ascii_case("success") || text("code") == "SUCCESS" {
                let id = item
                    .get("details")
                    .and_then(|d| d.get("id"))
                    .and_then(id_of)
                    .ok_or_else(|| ProviderError::Malformed("a saved record without an id".into()))?;
                let created = match text("action") {
                    "insert" => true,
                    "update" => false,
                    _ => text("message").contains("added") || text("message").contains("insert"),
                };
                Ok(UpsertOutcome::Saved { id, created })
            } else {
                let code = Some(text("code")).filter(|c| !c.is_empty()).unwrap_or("UNKNOWN").to_owned();
                let mut message = text("message").to_owned();
                if let Some(field) = item.get("details").and_then(|d| d.get("api_name")).and_then(Value::as_str) {
                    message = format!("{message}: {field}");
                }
                Ok(UpsertOutcome::Refused { code, message })
            }
        })
        .collect()
}

impl Zoho {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { http, config }
    }

    /// Sends what `build` makes, retrying timeouts, connection faults and 5xx (at most
    /// `attempts` times, never past the invocation's deadline); any other answer is returned.
    async fn send<F>(&self, call: &str, attempts: u32, build: F) -> Result<Reply, ProviderError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let policy = &self.config.retry;
        let attempts = attempts.max(1);
        let mut backoff = policy.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            if nextier_runtime::deadline::remaining().is_some_and(|l| l < retry::MIN_ATTEMPT) {
                if last.is_empty() {
                    last = "no time left in this invocation".into();
                }
                break;
            }
            let timeout = nextier_runtime::deadline::cap(self.config.timeout);
            let wait = match build().timeout(timeout).send().await {
                Err(e) if e.is_builder() => {
                    return Err(ProviderError::Malformed(format!("could not build the {call} request")));
                }
                Err(e) => {
                    last = describe(&e);
                    backoff
                }
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match read_capped(resp).await {
                        Err(ReadError::TooLarge) => {
                            return Err(ProviderError::Malformed(format!(
                                "the {call} answer is larger than {MAX_BODY} bytes"
                            )));
                        }
                        Err(ReadError::Http(e)) => {
                            last = describe(&e);
                            backoff
                        }
                        Ok(body) if status.is_server_error() || status.as_u16() == 408 => {
                            last = format!("HTTP {status}: {}", snippet(&body));
                            retry::retry_after(&headers).unwrap_or(backoff).min(policy.max_backoff)
                        }
                        Ok(body) => return Ok(Reply { status, headers, body }),
                    }
                }
            };
            if attempt < attempts {
                if nextier_runtime::deadline::remaining().is_some_and(|l| l < wait + retry::MIN_ATTEMPT) {
                    break;
                }
                tracing::warn!(provider = "zoho", call, attempt, error = %last, "Zoho call will be retried");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(policy.max_backoff);
            }
        }
        tracing::warn!(provider = "zoho", call, error = %last, "Zoho is unavailable");
        Err(ProviderError::Unavailable(last))
    }

    async fn token(&self, accounts: &str, form: &[(&str, &str)], attempts: u32) -> Result<Tokens, TokenError> {
        let url = format!("{}/oauth/v2/token", accounts.trim_end_matches('/'));
        let r = self.send("token", attempts, || self.http.post(&url).form(form)).await?;
        token_answer(r.status, &r.headers, &r.body)
    }

    async fn upsert_batch(
        &self,
        url: &str,
        auth: &HeaderValue,
        records: &[Value],
        duplicate_check_fields: &[String],
    ) -> Result<Vec<UpsertOutcome>, CrmError> {
        let body = json!({"data": records, "duplicate_check_fields": duplicate_check_fields});
        let r = self
            .send("upsert", self.config.retry.attempts, || {
                self.http.post(url).header(AUTHORIZATION, auth.clone()).json(&body)
            })
            .await?;
        // Zoho answers 200/201 when all were saved, 202 or 207 when mixed, and 400 with the
        // same list when every record was refused.
        let outcomes = match r.status.as_u16() {
            200..=299 => Some(json_body(&r)?),
            400 => serde_json::from_str::<Value>(&r.body)
                .ok()
                .filter(|v| v.get("data").and_then(Value::as_array).is_some_and(|d| d.len() == records.len())),
            _ => None,
        };
        match outcomes {
            Some(v) => Ok(upsert_outcomes(&v, records.len())?),
            None => Err(crm_failure(&r)),
        }
    }
}

#[async_trait]
impl Crm for Zoho {
    fn authorize_url(&self, accounts: &str, state: &str, redirect_uri: &str) -> String {
        let base = format!("{}/oauth/v2/auth", accounts.trim_end_matches('/'));
        let mut u = reqwest::Url::parse(&base)
            .unwrap_or_else(|_| reqwest::Url::parse("https://accounts.zoho.com/oauth/v2/auth").expect("a valid url"));
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("scope", &self.config.scopes)
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        u.to_string()
    }

    async fn exchange_code(&self, accounts: &str, code: &str, redirect_uri: &str) -> Result<Tokens, TokenError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ];
        // A code is good once: a retry after an answer that was lost would only be told
        // `invalid_code`. One attempt; the person connects again.
        self.token(accounts, &form, 1).await
    }

    async fn refresh(&self, accounts: &str, refresh_token: &str) -> Result<Tokens, TokenError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
            ("refresh_token", refresh_token),
        ];
        let mut tokens = self.token(accounts, &form, self.config.retry.attempts).await?;
        // The refresh grant answers no refresh token: the one we have stays good.
        tokens.refresh_token = None;
        Ok(tokens)
    }

    async fn upsert(
        &self,
        api: &str,
        token: &str,
        module: &str,
        records: &[Value],
        duplicate_check_fields: &[String],
    ) -> Result<Vec<UpsertOutcome>, CrmError> {
        let url = format!("{}/crm/v3/{}/upsert", api.trim_end_matches('/'), module_segment(module)?);
        let auth = authorization(token)?;
        let mut out = Vec::with_capacity(records.len());
        for batch in records.chunks(MAX_BATCH) {
            out.extend(self.upsert_batch(&url, &auth, batch, duplicate_check_fields).await?);
        }
        Ok(out)
    }

    async fn changed(
        &self,
        api: &str,
        token: &str,
        module: &str,
        fields: &[String],
        since: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<RecordPage, CrmError> {
        let url = format!("{}/crm/v3/{}", api.trim_end_matches('/'), module_segment(module)?);
        let auth = authorization(token)?;
        let mut wanted: Vec<&str> = Vec::new();
        for f in fields.iter().map(|f| f.trim()).chain(["Modified_Time"]) {
            if !f.is_empty() && !wanted.contains(&f) {
                wanted.push(f);
            }
        }
        let query = [
            ("fields", wanted.join(",")),
            ("page", page.max(1).to_string()),
            ("per_page", PER_PAGE.to_string()),
            ("sort_by", "Modified_Time".into()),
            ("sort_order", "asc".into()),
        ];
        let r = self
            .send("list", self.config.retry.attempts, || {
                let rb = self.http.get(&url).query(&query).header(AUTHORIZATION, auth.clone());
                match since {
                    Some(s) => rb.header("If-Modified-Since", iso(s)),
                    None => rb,
                }
            })
            .await?;
        match r.status.as_u16() {
            204 | 304 => Ok(RecordPage::default()),
            200 => {
                let v = json_body(&r)?;
                let records = v
                    .get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or_else(|| ProviderError::Malformed("the record list has no data list".into()))?;
                let more = v.get("info").and_then(|i| i.get("more_records")).and_then(Value::as_bool).unwrap_or(false);
                Ok(RecordPage { records, more })
            }
            _ => Err(crm_failure(&r)),
        }
    }

    async fn deleted(
        &self,
        api: &str,
        token: &str,
        module: &str,
        since: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<(Vec<Deleted>, bool), CrmError> {
        let url = format!("{}/crm/v3/{}/deleted", api.trim_end_matches('/'), module_segment(module)?);
        let auth = authorization(token)?;
        let query = [("type", "all".to_owned()), ("page", page.max(1).to_string()), ("per_page", PER_PAGE.to_string())];
        let r = self
            .send("deleted", self.config.retry.attempts, || {
                let rb = self.http.get(&url).query(&query).header(AUTHORIZATION, auth.clone());
                match since {
                    Some(s) => rb.header("If-Modified-Since", iso(s)),
                    None => rb,
                }
            })
            .await?;
        match r.status.as_u16() {
            204 | 304 => Ok((vec![], false)),
            200 => {
                let v = json_body(&r)?;
                let data = v
                    .get("data")
                    .and_then(Value::as_array)
                    .ok_or_else(|| ProviderError::Malformed("the deleted list has no data list".into()))?;
                let deleted = data
                    .iter()
                    .filter_map(|d| {
                        Some(Deleted {
                            id: d.get("id").and_then(id_of)?,
                            deleted_at: d
                                .get("deleted_time")
                                .and_then(Value::as_str)
                                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                                .map(|t| t.with_timezone(&Utc)),
                        })
                    })
                    .collect();
                let more = v.get("info").and_then(|i| i.get("more_records")).and_then(Value::as_bool).unwrap_or(false);
                Ok((deleted, more))
            }
            _ => Err(crm_failure(&r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = retry_after {
            h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        h
    }

    #[test]
    fn a_code_grant_answer_gives_both_tokens_and_the_api_domain() {
        let body = r#"{"access_token":"1000.a","refresh_token":"1000.r","scope":"ZohoCRM.modules.leads.ALL",
            "api_domain":"https://www.zohoapis.eu","token_type":"Bearer","expires_in":3600}"#;
        let t = token_answer(StatusCode::OK, &headers(None), body).unwrap();
        assert_eq!(
            t,
            Tokens {
                access_token: "1000.a".into(),
                refresh_token: Some("1000.r".into()),
                api_domain: Some("https://www.zohoapis.eu".into()),
                expires_in_secs: 3600,
            }
        );
        // The older shape: milliseconds in `expires_in`, seconds in `expires_in_sec`.
        let old = r#"{"access_token":"1000.b","expires_in_sec":3600,"expires_in":3600000,"token_type":"Bearer"}"#;
        let t = token_answer(StatusCode::OK, &headers(None), old).unwrap();
        assert_eq!((t.refresh_token, t.api_domain, t.expires_in_secs), (None, None, 3600));
        let ms = r#"{"access_token":"1000.c","expires_in":3600000}"#;
        assert_eq!(token_answer(StatusCode::OK, &headers(None), ms).unwrap().expires_in_secs, 3600);
    }

    #[test]
    fn token_errors_are_sorted_by_what_must_be_done() {
        let ok = StatusCode::OK;
        let h = headers(None);
        for dead in ["invalid_code", "invalid_grant", "access_denied"] {
            let body = format!(r#"{{"error":"{dead}"}}"#);
            assert_eq!(token_answer(ok, &h, &body), Err(TokenError::Revoked(dead.into())));
            assert!(matches!(token_answer(StatusCode::BAD_REQUEST, &h, &body), Err(TokenError::Revoked(_))));
        }
        for ours in ["invalid_client", "invalid_client_secret"] {
            let body = format!(r#"{{"error":"{ours}"}}"#);
            assert!(
                matches!(token_answer(ok, &h, &body), Err(TokenError::Provider(ProviderError::Unauthorized(_)))),
                "{ours}"
            );
        }
        let busy = r#"{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time."}"#;
        assert_eq!(
            token_answer(StatusCode::BAD_REQUEST, &h, busy),
            Err(TokenError::Provider(ProviderError::RateLimited(DEFAULT_RATE_LIMIT_WAIT)))
        );
        assert_eq!(
            token_answer(StatusCode::TOO_MANY_REQUESTS, &headers(Some("12")), "{}"),
            Err(TokenError::Provider(ProviderError::RateLimited(Duration::from_secs(12))))
        );
        assert!(matches!(
            token_answer(ok, &h, r#"{"error":"invalid_redirect_uri"}"#),
            Err(TokenError::Provider(ProviderError::Malformed(_)))
        ));
        assert!(matches!(
            token_answer(StatusCode::BAD_GATEWAY, &h, ""),
            Err(TokenError::Provider(ProviderError::Unavailable(_)))
        ));
        // Never quoted: an answer without an access token might still carry a refresh token.
        let Err(TokenError::Provider(ProviderError::Malformed(m))) =
            token_answer(ok, &h, r#"{"refresh_token":"1000.secret"}"#)
        else {
            panic!("malformed")
        };
        assert!(!m.contains("1000.secret"), "{m}");
        assert!(matches!(token_answer(ok, &h, "<html>"), Err(TokenError::Provider(ProviderError::Malformed(_)))));
    }

    #[test]
    fn an_upsert_answer_gives_each_records_outcome_in_order() {
        let v = json!({"data": [
            {"code": "SUCCESS", "duplicate_field": null, "action": "insert",
             "details": {"Modified_Time": "2026-01-10T12:00:00+00:00", "id": "5725767000000524157"},
             "message": "record added", "status": "success"},
            {"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name"},
             "message": "required field not found", "status": "error"},
            {"code": "SUCCESS", "duplicate_field": "Email", "action": "update",
             "details": {"id": 5725767000000524100u64}, "message": "record updated", "status": "success"},
            {"code": "SUCCESS", "details": {"id": "57"}, "message": "record added", "status": "success"}
        ]});
        assert_eq!(
            upsert_outcomes(&v, 4).unwrap(),
            vec![
                UpsertOutcome::Saved { id: "5725767000000524157".into(), created: true },
                UpsertOutcome::Refused {
                    code: "MANDATORY_NOT_FOUND".into(),
                    message: "required field not found: Last_Name".into()
                },
                UpsertOutcome::Saved { id: "5725767000000524100".into(), created: false },
                UpsertOutcome::Saved { id: "57".into(), created: true },
            ]
        );
        assert!(matches!(upsert_outcomes(&v, 3), Err(ProviderError::Malformed(_))), "one outcome per record");
        let no_id = json!({"data": [{"code": "SUCCESS", "details": {}, "status": "success"}]});
        assert!(matches!(upsert_outcomes(&no_id, 1), Err(ProviderError::Malformed(_))));
        assert!(matches!(upsert_outcomes(&json!({"code": "INVALID_DATA"}), 1), Err(ProviderError::Malformed(_))));
    }

    #[test]
    fn crm_failures_are_sorted() {
        let reply = |status: u16, retry_after: Option<&str>, body: &str| Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers(retry_after),
            body: body.into(),
        };
        assert_eq!(
            crm_failure(&reply(
                401,
                None,
                r#"{"code":"INVALID_TOKEN","details":{},"message":"invalid oauth token","status":"error"}"#
            )),
            CrmError::TokenExpired("INVALID_TOKEN".into())
        );
        assert_eq!(
            crm_failure(&reply(401, None, r#"{"code":"AUTHENTICATION_FAILURE"}"#)),
            CrmError::TokenExpired("AUTHENTICATION_FAILURE".into())
        );
        assert_eq!(crm_failure(&reply(401, None, "")), CrmError::TokenExpired("HTTP 401 Unauthorized".into()));
        assert!(matches!(
            crm_failure(&reply(401, None, r#"{"code":"OAUTH_SCOPE_MISMATCH"}"#)),
            CrmError::Provider(ProviderError::Unauthorized(_))
        ));
        assert_eq!(
            crm_failure(&reply(429, Some("7"), r#"{"code":"TOO_MANY_REQUESTS"}"#)),
            CrmError::Provider(ProviderError::RateLimited(Duration::from_secs(7)))
        );
        assert_eq!(
            crm_failure(&reply(400, None, r#"{"code":"LIMIT_EXCEEDED","message":"API credits exhausted"}"#)),
            CrmError::Provider(ProviderError::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
        );
        assert!(matches!(
            crm_failure(&reply(400, None, r#"{"code":"INVALID_MODULE"}"#)),
            CrmError::Provider(ProviderError::Malformed(_))
        ));
        assert!(matches!(crm_failure(&reply(503, None, "")), CrmError::Provider(ProviderError::Unavailable(_))));
    }

    #[test]
    fn module_names_and_times_are_sent_as_zoho_reads_them() {
        assert!(module_segment("Leads").is_ok() && module_segment("Custom_Module1").is_ok());
        for bad in ["", "Leads/../x", "Leads?x=1", "Le ads"] {
            assert!(module_segment(bad).is_err(), "{bad}");
        }
        let t = DateTime::parse_from_rfc3339("2026-03-01T09:05:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(iso(t), "2026-03-01T09:05:00+00:00");
        assert!(format!("{:?}", authorization("1000.tok").unwrap()).contains("Sensitive"));
    }
}
