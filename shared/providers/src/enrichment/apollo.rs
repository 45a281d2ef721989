//! Apollo company data (DOMAIN.md C.9): base `https://api.apollo.io/v1`, `x-api-key`.
//! `POST /organizations/enrich {domain, name}` answers `{organization: {id, name,
//! primary_domain, industry, estimated_num_employees, annual_revenue}}` (no organization when
//! unknown); `POST /mixed_people/search {organization_ids, person_seniorities, per_page}`
//! answers `{people: [{first_name, last_name, title, seniority, email, phone_numbers}]}`.

use std::time::Duration;

use async_trait::async_trait;
use nextier_domain::enrichment::Provider;
use nextier_platform::ports::enrichment::{Companies, Organization, Person, ProviderError};
use serde_json::{json, Value};

use super::{call, http, json, text};

pub use super::Config;

pub const KEY_ENV: &str = "APOLLO_API_KEY";
pub const BASE_URL_ENV: &str = "APOLLO_BASE_URL";
pub const BASE_URL: &str = "https://api.apollo.io/v1";
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// `APOLLO_API_KEY` (or `APOLLO_BASE_URL` alone); `None` when neither is set.
pub fn config_from_env() -> Option<Config> {
    Config::from_env(KEY_ENV, BASE_URL_ENV, BASE_URL, TIMEOUT)
}

pub struct Apollo {
    http: reqwest::Client,
    config: Config,
}

impl Apollo {
    pub fn new(config: Config) -> Self {
        Self { http: http(config.timeout), config }
    }

    fn token<'a>(&'a self, key: Option<&'a str>) -> Result<&'a str, ProviderError> {
        key.or(self.config.api_key.as_deref()).ok_or_else(|| {
            ProviderError::Unauthorized("no Apollo key: set the team's enrichment.apollo_api_key".into())
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }
}

#[async_trait]
impl Companies for Apollo {
    fn provider(&self) -> Provider {
        Provider::Apollo
    }

    async fn enrich(
        &self,
        key: Option<&str>,
        domain: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Organization>, ProviderError> {
        let token = self.token(key)?;
        let url = self.url("organizations/enrich");
        let body = json!({"domain": domain, "name": name});
        let a =
            call(&self.config.retry, "apollo", || self.http.post(&url).header("x-api-key", token).json(&body)).await?;
        let v = json(&a)?;
        let Some(o) = v.get("organization").filter(|o| o.is_object()) else { return Ok(None) };
        Ok(Some(Organization {
            id: text(o, "id"),
            name: text(o, "name"),
            domain: text(o, "primary_domain").or_else(|| text(o, "website_url")),
            industry: text(o, "industry"),
            employees: o
                .get("estimated_num_employees")
                .and_then(Value::as_i64)
                .filter(|n| *n >= 0)
                .and_then(|n| i32::try_from(n).ok()),
            annual_revenue: o.get("annual_revenue").and_then(Value::as_f64).map(|r| r as i64).filter(|r| *r >= 0),
        }))
    }

    async fn people(
        &self,
        key: Option<&str>,
        organization_id: &str,
        seniorities: &[&str],
    ) -> Result<Vec<Person>, ProviderError> {
        let token = self.token(key)?;
        let url = self.url("mixed_people/search");
        let body = json!({"organization_ids": [organization_id], "person_seniorities": seniorities, "per_page": 25});
        let a =
            call(&self.config.retry, "apollo", || self.http.post(&url).header("x-api-key", token).json(&body)).await?;
        let v = json(&a)?;
        let people = v
            .get("people")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::Malformed("Apollo people search answered without people".into()))?;
        // A page is 25; a longer answer is cut, never trusted to be small.
        Ok(people
            .iter()
            .take(25)
            .map(|p| Person {
                first_name: text(p, "first_name"),
                last_name: text(p, "last_name"),
                title: text(p, "title"),
                seniority: text(p, "seniority"),
                email: text(p, "email").filter(|e| e.contains('@') && !e.starts_with("email_not_unlocked")),
                phone: p
                    .get("phone_numbers")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .and_then(|n| text(n, "sanitized_number").or_else(|| text(n, "raw_number"))),
            })
            .collect())
    }
}
