//! A CRM a team connects (issue 19): Zoho CRM's OAuth authorization-code flow and its v3
//! records API, as the integration consumer and cron use them. Deployed,
//! `nextier_providers::zoho::Zoho`; locally [`SandboxCrm`] answers from memory, so the local
//! runtime can connect, push and pull without an account.
//!
//! Every call names the data centre it goes to: the accounts server the person signed in at
//! (`https://accounts.zoho.eu`) and the API domain the token answer named
//! (`https://www.zohoapis.eu`). The caller checks both against [`is_zoho_host`] first: a
//! forged accounts server would otherwise receive our client secret.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub use super::enrichment::ProviderError;

/// An answer of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    /// Only the authorization-code grant answers one.
    pub refresh_token: Option<String>,
    /// The account's API domain (`https://www.zohoapis.com`), differs by data centre.
    pub api_domain: Option<String>,
    pub expires_in_secs: i64,
}

/// Why a token call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The grant is dead (`invalid_code`, `invalid_grant`, a revoked refresh token): a person
    /// must connect again.
    #[error("the grant was refused: {0}")]
    Revoked(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// What a CRM call can also say: the access token expired or was revoked (401
/// `INVALID_TOKEN` / `AUTHENTICATION_FAILURE`); refresh and try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmError {
    #[error("the access token was refused: {0}")]
    TokenExpired(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// One record's outcome in an upsert, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// `record_insert` / `record_update`: the CRM's record id.
    Saved { id: String, created: bool },
    /// The CRM refused this record (a mandatory field missing, a bad value): its code and
    /// message. Sending it again unchanged will not help.
    Refused { code: String, message: String },
}

/// A page of records changed since a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordPage {
    /// Each record as the CRM answered it (`id`, `Modified_Time`, the fields asked for).
    pub records: Vec<Value>,
    pub more: bool,
}

/// A record deleted in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub id: String,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Crm: Send + Sync {
    /// Where to send a person to grant access (`{accounts}/oauth/v2/auth` with
    /// `response_type=code`, `access_type=offline`, `prompt=consent`, the scopes, the client
    /// id, `redirect_uri` and `state`).
    fn authorize_url(&self, accounts: &str, state: &str, redirect_uri: &str) -> String;
    /// `POST {accounts}/oauth/v2/token` with `grant_type=authorization_code`.
    async fn exchange_code(&self, accounts: &str, code: &str, redirect_uri: &str) -> Result<Tokens, TokenError>;
    /// `POST {accounts}/oauth/v2/token` with `grant_type=refresh_token`.
    async fn refresh(&self, accounts: &str, refresh_token: &str) -> Result<Tokens, TokenError>;
    /// `POST {api}/crm/v3/{module}/upsert` with `duplicate_check_fields`, at most 100 records.
    async fn upsert(
        &self,
        api: &str,
        token: &str,
        module: &str,
        records: &[Value],
        duplicate_check_fields: &[String],
    ) -> Result<Vec<UpsertOutcome>, CrmError>;
    /// `GET {api}/crm/v3/{module}?fields=…&page=…&per_page=200&sort_by=Modified_Time&sort_order=asc`
    /// with `If-Modified-Since` when `since` is given (304 or 204: no records).
    async fn changed(
        &self,
        api: &str,
        token: &str,
        module: &str,
        fields: &[String],
        since: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<RecordPage, CrmError>;
    /// `GET {api}/crm/v3/{module}/deleted?type=all&page=…` with `If-Modified-Since`.
    async fn deleted(
        &self,
        api: &str,
        token: &str,
        module: &str,
        since: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<(Vec<Deleted>, bool), CrmError>;
}

/// Zoho's own hosts, of every data centre: the accounts server and API domain must be one.
/// `extra` admits a configured host (a test's fake, the local sandbox).
pub fn is_zoho_host(url: &str, extra: &[String]) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    if extra.iter().any(|e| url.trim_end_matches('/') == e.trim_end_matches('/')) {
        return true;
    }
    let Some(host) = u.host_str() else { return false };
    u.scheme() == "https"
        && u.port().is_none()
        && u.path().trim_end_matches('/').is_empty()
        && u.query().is_none()
        && ["accounts.zoho.", "www.zohoapis.", "zohoapis."].iter().any(|p| {
            host.strip_prefix(p)
                .is_some_and(|tld| ["com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn", "uk"].contains(&tld))
        })
}

/// The local runtime's CRM: grants any code, keeps upserted records in memory and answers
/// them back as changes. Deterministic; no network.
#[derive(Default)]
pub struct SandboxCrm {
    records: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
}

pub const SANDBOX_ACCOUNTS: &str = "http://sandbox.zoho.local";
pub const SANDBOX_API: &str = "http://sandbox.zohoapis.local";

impl SandboxCrm {
    /// The process's one sandbox: the local API and the local worker see the same records.
    pub fn shared() -> std::sync::Arc<SandboxCrm> {
        static ONE: std::sync::OnceLock<std::sync::Arc<SandboxCrm>> = std::sync::OnceLock::new();
        ONE.get_or_init(Default::default).clone()
    }

    fn tokens(seed: &str, refresh: bool) -> Tokens {
        Tokens {
            access_token: format!("sandbox-access-{seed}"),
            refresh_token: refresh.then(|| format!("sandbox-refresh-{seed}")),
            api_domain: Some(SANDBOX_API.into()),
            expires_in_secs: 3600,
        }
    }
}

#[async_trait]
impl Crm for SandboxCrm {
    fn authorize_url(&self, accounts: &str, state: &str, redirect_uri: &str) -> String {
        let mut u = url::Url::parse(&format!("{}/oauth/v2/auth", accounts.trim_end_matches('/')))
            .unwrap_or_else(|_| url::Url::parse("http://sandbox.zoho.local/oauth/v2/auth").expect("a valid url"));
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "sandbox")
            .append_pair("access_type", "offline")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        u.to_string()
    }

    async fn exchange_code(&self, _accounts: &str, code: &str, _redirect_uri: &str) -> Result<Tokens, TokenError> {
        if code.is_empty() || code == "denied" {
            return Err(TokenError::Revoked("invalid_code".into()));
        }
        Ok(Self::tokens(code, true))
    }

    async fn refresh(&self, _accounts: &str, refresh_token: &str) -> Result<Tokens, TokenError> {
        Ok(Self::tokens(refresh_token.trim_start_matches("sandbox-refresh-"), false))
    }

    async fn upsert(
        &self,
        _api: &str,
        _token: &str,
        module: &str,
        records: &[Value],
        duplicate_check_fields: &[String],
    ) -> Result<Vec<UpsertOutcome>, CrmError> {
        let mut all = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let stored = all.entry(module.to_owned()).or_default();
        let now = Utc::now().to_rfc3339();
        Ok(records
            .iter()
            .map(|r| {
                let existing = stored
                    .iter()
                    .find(|(_, v)| {
                        duplicate_check_fields
                            .iter()
                            .any(|f| r.get(f).is_some_and(|x| !x.is_null() && v.get(f) == Some(x)))
                    })
                    .map(|(id, _)| id.clone());
                let created = existing.is_none();
                let id = existing.unwrap_or_else(|| format!("{}", 5_000_000_000u64 + stored.len() as u64));
                let mut v = stored.get(&id).cloned().unwrap_or_else(|| json!({}));
                if let (Some(o), Some(n)) = (v.as_object_mut(), r.as_object()) {
                    o.extend(n.clone());
                    o.insert("id".into(), json!(id));
                    o.insert("Modified_Time".into(), json!(now));
                }
                stored.insert(id.clone(), v);
                UpsertOutcome::Saved { id, created }
            })
            .collect())
    }

    async fn changed(
        &self,
        _api: &str,
        _token: &str,
        module: &str,
        _fields: &[String],
        since: Option<DateTime<Utc>>,
        page: u32,
    ) -> Result<RecordPage, CrmError> {
        let all = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let records: Vec<Value> = all
            .get(module)
            .map(|m| {
                m.values()
                    .filter(|v| {
                        let at = v["Modified_Time"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
                        since.is_none_or(|s| at.is_some_and(|a| a.with_timezone(&Utc) > s))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let start = (page.max(1) as usize - 1) * 200;
        Ok(RecordPage {
            more: records.len() > start + 200,
            records: records.into_iter().skip(start).take(200).collect(),
        })
    }

    async fn deleted(
        &self,
        _api: &str,
        _token: &str,
        _module: &str,
        _since: Option<DateTime<Utc>>,
        _page: u32,
    ) -> Result<(Vec<Deleted>, bool), CrmError> {
        Ok((vec![], false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_zohos_own_hosts_are_trusted() {
        assert!(is_zoho_host("https://accounts.zoho.com", &[]));
        assert!(is_zoho_host("https://accounts.zoho.eu/", &[]));
        assert!(is_zoho_host("https://www.zohoapis.com.au", &[]));
        for bad in [
            "http://accounts.zoho.com",
            "https://accounts.zoho.com.evil.io",
            "https://evil.io/accounts.zoho.com",
            "https://accounts.zoho.com:8443",
            "https://accounts.zoho.com/path",
            "https://169.254.169.254",
            "https://user@evil.io",
            "not a url",
        ] {
            assert!(!is_zoho_host(bad, &[]), "{bad}");
        }
        assert!(is_zoho_host("http://127.0.0.1:4000/zoho", &["http://127.0.0.1:4000/zoho".into()]));
    }

    #[tokio::test]
    async fn the_sandbox_upserts_by_the_duplicate_check_field_and_answers_changes() {
        let crm = SandboxCrm::default();
        let dup = vec!["Nextier_Id".to_owned()];
        let first =
            crm.upsert("", "", "Leads", &[json!({"Nextier_Id": "c1", "Last_Name": "Ruiz"})], &dup).await.unwrap();
        let again =
            crm.upsert("", "", "Leads", &[json!({"Nextier_Id": "c1", "Last_Name": "Ruiz2"})], &dup).await.unwrap();
        let (UpsertOutcome::Saved { id: a, created: true }, UpsertOutcome::Saved { id: b, created: false }) =
            (&first[0], &again[0])
        else {
            panic!("{first:?} {again:?}")
        };
        assert_eq!(a, b);
        let page = crm.changed("", "", "Leads", &[], None, 1).await.unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0]["Last_Name"], "Ruiz2");
    }
}
