//! Tracerfy skip trace (DOMAIN.md B2, C.9): `Authorization: Bearer <token>`, base
//! `https://tracerfy.com/v1/api`. A batch goes to `POST /trace/` as JSON rows with the names
//! of their columns (`json_data`, `address_column`, ..., `trace_type` normal or enhanced) and
//! is answered with its queue id; `GET /queue/{id}` returns the queue's records once done
//! (an empty list while pending), each with the posted address and name and what was found:
//! `primary_phone` (+ `primary_phone_type`), `mobile_1..5`, `landline_1..3`, `email_1..5`
//! (null fields come as empty strings). Tracerfy allows 10 submissions in 5 minutes, so the
//! pipeline sends batches (up to 250 rows), never one call per person.

use std::time::Duration;

use async_trait::async_trait;
use nextier_domain::enrichment::{input_key, Provider};
use nextier_platform::ports::enrichment::{FoundPhone, ProviderError, Submitted, TraceQuery, TraceResult, Tracer};
use serde_json::{json, Value};

use super::{call, http, json, text};
use crate::retry::Retry;

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    /// The platform's token; a team's own (setting `enrichment.tracerfy_api_key`) wins.
    pub api_key: Option<String>,
    /// `enhanced` traces (15 credits) instead of `normal` (1).
    pub enhanced: bool,
    pub retry: Retry,
    pub timeout: Duration,
}

impl Config {
    /// The provider with no platform key: only a team's own key makes a call.
    pub fn keyless() -> Config {
        Config {
            base_url: "https://tracerfy.com/v1/api".into(),
            api_key: None,
            enhanced: false,
            retry: Retry { attempts: 2, ..Retry::default() },
            timeout: Duration::from_secs(20),
        }
    }

    /// `TRACERFY_API_KEY` (or `TRACERFY_BASE_URL` alone, for teams that bring their own key),
    /// `TRACERFY_TRACE_TYPE` (`normal` or `enhanced`); `None` when neither is set.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        let api_key = var("TRACERFY_API_KEY");
        let base = var("TRACERFY_BASE_URL");
        if api_key.is_none() && base.is_none() {
            return None;
        }
        Some(Config {
            base_url: base.unwrap_or_else(|| "https://tracerfy.com/v1/api".into()),
            api_key,
            enhanced: var("TRACERFY_TRACE_TYPE").is_some_and(|t| t.eq_ignore_ascii_case("enhanced")),
            retry: Retry { attempts: 2, ..Retry::default() },
            timeout: Duration::from_secs(20),
        })
    }
}

pub struct Tracerfy {
    http: reqwest::Client,
    config: Config,
}

impl Tracerfy {
    pub fn new(config: Config) -> Self {
        Self { http: http(config.timeout), config }
    }

    fn token<'a>(&'a self, key: Option<&'a str>) -> Result<&'a str, ProviderError> {
        key.or(self.config.api_key.as_deref()).ok_or_else(|| {
            ProviderError::Unauthorized("no Tracerfy key: set the team's enrichment.tracerfy_api_key".into())
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }
}

/// The key a record is matched to its query by: the name and address as posted.
fn match_key(first: Option<&str>, last: Option<&str>, address: Option<&str>, zip: Option<&str>) -> String {
    input_key(&[("first_name", first), ("last_name", last), ("address", address), ("zip", zip)])
}

/// What one record found.
fn found(r: &Value) -> TraceResult {
    let mut phones = Vec::new();
    let mut push = |number: Option<String>, line_type: &str| {
        if let Some(n) = number {
            if !phones.iter().any(|p: &FoundPhone| p.number == n) {
                phones.push(FoundPhone { number: n, line_type: line_type.into(), carrier: None });
            }
        }
    };
    let primary_type =
        text(r, "primary_phone_type").map(|t| nextier_domain::enrichment::line_type(&t)).unwrap_or("unknown");
    push(text(r, "primary_phone"), primary_type);
    for i in 1..=5 {
        push(text(r, &format!("mobile_{i}")), "mobile");
    }
    for i in 1..=3 {
        push(text(r, &format!("landline_{i}")), "landline");
    }
    let emails = (1..=5).filter_map(|i| text(r, &format!("email_{i}"))).collect();
    TraceResult { phones, emails }
}

#[async_trait]
impl Tracer for Tracerfy {
    fn provider(&self) -> Provider {
        Provider::Tracerfy
    }

    fn enhanced(&self) -> bool {
        self.config.enhanced
    }

    async fn submit(&self, key: Option<&str>, queries: &[TraceQuery]) -> Result<Submitted, ProviderError> {
        let token = self.token(key)?;
        let rows: Vec<Value> = queries
            .iter()
            .map(|q| {
                json!({"first_name": q.first_name, "last_name": q.last_name, "address": q.address,
                       "city": q.city, "state": q.state, "zip": q.zip})
            })
            .collect();
        let body = json!({
            "json_data": rows,
            "address_column": "address", "city_column": "city", "state_column": "state", "zip_column": "zip",
            "first_name_column": "first_name", "last_name_column": "last_name",
            "mail_address_column": "address", "mail_city_column": "city", "mail_state_column": "state",
            "mailing_zip_column": "zip",
            "trace_type": if self.config.enhanced { "enhanced" } else { "normal" },
        });
        let url = self.url("trace/");
        // A submission is not idempotent (a timed-out one may have been taken and billed), so
        // it is never repeated within the call: the pipeline decides what to do.
        let once = Retry { attempts: 1, ..self.config.retry.clone() };
        let answer = call(&once, "tracerfy", || self.http.post(&url).bearer_auth(token).json(&body)).await?;
        let v = json(&answer)?;
        let id = text(&v, "queue_id")
            .or_else(|| text(&v, "id"))
            .ok_or_else(|| ProviderError::Malformed("Tracerfy answered without a queue id".into()))?;
        Ok(Submitted::Queued(id))
    }

    async fn poll(
        &self,
        key: Option<&str>,
        reference: &str,
        queries: &[TraceQuery],
    ) -> Result<Option<Vec<TraceResult>>, ProviderError> {
        let token = self.token(key)?;
        if reference.is_empty() || !reference.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(ProviderError::Malformed(format!("not a Tracerfy queue id: {reference:?}")));
        }
        let url = self.url(&format!("queue/{reference}"));
        let answer = call(&self.config.retry, "tracerfy", || self.http.get(&url).bearer_auth(token)).await?;
        let v = json(&answer)?;
        let records = match &v {
            Value::Array(a) => a.as_slice(),
            Value::Object(_) => match v.get("records").or_else(|| v.get("results")).and_then(Value::as_array) {
                Some(a) => a.as_slice(),
                None if v.get("pending").and_then(Value::as_bool) == Some(true) => return Ok(None),
                None => return Err(ProviderError::Malformed("Tracerfy queue answer has no records".into())),
            },
            _ => return Err(ProviderError::Malformed("Tracerfy queue answer is not a list".into())),
        };
        if records.is_empty() {
            return Ok(None);
        }
        let mut by_key: std::collections::HashMap<String, TraceResult> = std::collections::HashMap::new();
        for r in records {
            let k = match_key(
                text(r, "first_name").as_deref(),
                text(r, "last_name").as_deref(),
                text(r, "address").as_deref(),
                text(r, "zip").as_deref(),
            );
            let f = found(r);
            let entry = by_key.entry(k).or_default();
            for p in f.phones {
                if !entry.phones.iter().any(|x| x.number == p.number) {
                    entry.phones.push(p);
                }
            }
            entry.emails.extend(f.emails.into_iter().filter(|e| !entry.emails.contains(e)).collect::<Vec<_>>());
        }
        Ok(Some(
            queries
                .iter()
                .map(|q| {
                    let k = match_key(
                        q.first_name.as_deref(),
                        q.last_name.as_deref(),
                        q.address.as_deref(),
                        q.zip.as_deref(),
                    );
                    by_key.get(&k).cloned().unwrap_or_default()
                })
                .collect(),
        ))
    }
}
