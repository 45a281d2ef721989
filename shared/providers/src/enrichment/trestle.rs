//! Trestle phone intelligence (DOMAIN.md B2, C.9): `GET {base}/3.0/phone_intel?phone=
//! &phone.name=&add_ons=contact_grade` with `x-api-key`, base `https://api.trestleiq.com`.
//! The answer carries `is_valid`, `activity_score` (0-100), `line_type` (Mobile, Landline,
//! FixedVOIP, NonFixedVOIP, ...), `carrier`, `is_prepaid`, and with the add-on the
//! `contact_grade` (A-F) and `name_match`; `error` is set when the number could not be read.

use std::time::Duration;

use async_trait::async_trait;
use nextier_domain::enrichment::Provider;
use nextier_platform::ports::enrichment::{PhoneIntel, PhoneReport, ProviderError};
use serde_json::Value;

use super::{call, http, json, text};

pub use super::Config;

pub const KEY_ENV: &str = "TRESTLE_API_KEY";
pub const BASE_URL_ENV: &str = "TRESTLE_BASE_URL";
pub const BASE_URL: &str = "https://api.trestleiq.com";
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// `TRESTLE_API_KEY` (or `TRESTLE_BASE_URL` alone); `None` when neither is set.
pub fn config_from_env() -> Option<Config> {
    Config::from_env(KEY_ENV, BASE_URL_ENV, BASE_URL, TIMEOUT)
}

pub struct Trestle {
    http: reqwest::Client,
    config: Config,
}

impl Trestle {
    pub fn new(config: Config) -> Self {
        Self { http: http(config.timeout), config }
    }
}

/// A boolean that may come as `true`, `"true"` or `"match"`/`"no_match"`.
fn flag(v: &Value, name: &str) -> Option<bool> {
    match v.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "match" | "yes" => Some(true),
            "false" | "no_match" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[async_trait]
impl PhoneIntel for Trestle {
    fn provider(&self) -> Provider {
        Provider::Trestle
    }

    async fn lookup(
        &self,
        key: Option<&str>,
        e164: &str,
        name: Option<&str>,
    ) -> Result<Option<PhoneReport>, ProviderError> {
        let token = key.or(self.config.api_key.as_deref()).ok_or_else(|| {
            ProviderError::Unauthorized("no Trestle key: set the team's enrichment.trestle_api_key".into())
        })?;
        let url = format!("{}/3.0/phone_intel", self.config.base_url.trim_end_matches('/'));
        let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
        let mut query = vec![("phone", digits), ("add_ons", "contact_grade".to_owned())];
        if let Some(n) = name.filter(|n| !n.trim().is_empty()) {
            query.push(("phone.name", n.trim().to_owned()));
        }
        let answer =
            call(&self.config.retry, "trestle", || self.http.get(&url).header("x-api-key", token).query(&query))
                .await?;
        let v = json(&answer)?;
        if !v.is_object() {
            return Err(ProviderError::Malformed("Trestle answer is not an object".into()));
        }
        if v.get("is_valid").and_then(Value::as_bool) == Some(false) {
            return Ok(None);
        }
        let add_ons = v.get("add_ons").cloned().unwrap_or(Value::Null);
        let pick = |name: &str| text(&v, name).or_else(|| text(&add_ons, name));
        let activity = v.get("activity_score").and_then(Value::as_i64);
        if activity.is_some_and(|a| !(0..=100).contains(&a)) {
            return Err(ProviderError::Malformed(format!("activity_score out of range: {activity:?}")));
        }
        Ok(Some(PhoneReport {
            line_type: nextier_domain::enrichment::line_type(&text(&v, "line_type").unwrap_or_default()).to_owned(),
            carrier: text(&v, "carrier"),
            prepaid: flag(&v, "is_prepaid"),
            activity_score: activity.map(|a| a as i32),
            contact_grade: pick("contact_grade").and_then(|g| nextier_domain::enrichment::grade(&g)),
            name_match: flag(&v, "name_match").or_else(|| flag(&add_ons, "name_match")),
        }))
    }
}
