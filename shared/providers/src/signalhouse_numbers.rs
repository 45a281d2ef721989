//! SignalHouse provisioning (DOMAIN.md B2, the official SDK's `subgroups` and `numbers`):
//! `POST /subgroup {groupId, subgroupName}`, `GET /subgroup?id=`,
//! `GET /number?subgroupId=&phoneNumber=`, `GET /number/health?phoneNumber=`,
//! `GET /number/available?smsEnabled=&state=&npa=&limit=`, and the purchase
//! `POST /number {phoneNumbers, subgroupId, country}`. Numbers travel as digits with the
//! country code and no `+`; answers may carry either form. Every call sends
//! `Authorization: Bearer` and `Content-Type: application/json`, as the SDK's session does.

use async_trait::async_trait;
use nextier_platform::ports::numbers::{AvailableNumber, NumberProvider, ProvisionError, Search, Subgroup};
use serde_json::{json, Value};

use crate::notifications::Config;
use crate::retry::{self, Answer};
use crate::signalhouse::digits;

pub struct SignalHouseNumbers {
    http: reqwest::Client,
    config: Config,
}

impl SignalHouseNumbers {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, ProvisionError> {
        let url = self.url(path);
        let what = format!("{method} {path}");
        let answer = retry::send(&self.config.retry, "signalhouse", || {
            let mut r = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.config.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            if !query.is_empty() {
                r = r.query(query);
            }
            if let Some(k) = key {
                r = r.header("Idempotency-Key", k);
            }
            match body {
                Some(b) => r.json(b),
                None => r,
            }
        })
        .await
        .map_err(|e| match e {
            // Our credentials, not the provider's health.
            nextier_outbound::TransportError::Config(m) => ProvisionError::Unauthorized(format!("{what}: {m}")),
            e => ProvisionError::Unavailable(format!("{what}: {e}")),
        })?;
        match answer.status.as_u16() {
            200..=299 | 404 => Ok(answer),
            401 | 403 => Err(ProvisionError::Unauthorized(format!("{what}: HTTP {}", answer.status))),
            _ => Err(ProvisionError::Refused(format!("{what}: HTTP {}: {}", answer.status, message(&answer.body)))),
        }
    }
}

/// The provider's `message`, or the start of the body.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// The records of a list answer: an array, or one under `data` / `items` / `numbers` /
/// `subgroups` / `results` (possibly nested once more under `data`).
fn records(v: &Value) -> Vec<Value> {
    if let Value::Array(a) = v {
        return a.clone();
    }
    ["data", "items", "numbers", "subgroups", "results"]
        .iter()
        .find_map(|k| v.get(k).and_then(|d| d.as_array().or_else(|| d.get("data").and_then(Value::as_array))))
        .cloned()
        .unwrap_or_default()
}

/// One record: the object itself or the one under `data`.
fn record(v: &Value) -> &Value {
    match v.get("data") {
        Some(d) if d.is_object() => d,
        _ => v,
    }
}

fn text(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(x)) => Some(x.to_string()),
        _ => None,
    })
}

fn subgroup_of(v: &Value) -> Option<Subgroup> {
    let id = text(v, &["subgroupId", "id", "_id"])?;
    Some(Subgroup { id, name: text(v, &["subgroupName", "name"]) })
}

/// `+1…` from either form.
fn e164_of(n: &str) -> String {
    format!("+{}", digits(n))
}

#[async_trait]
impl NumberProvider for SignalHouseNumbers {
    fn name(&self) -> &'static str {
        "signalhouse"
    }

    async fn create_subgroup(&self, name: &str, key: &str) -> Result<Subgroup, ProvisionError> {
        let body = json!({"groupId": self.config.group_id, "subgroupName": name});
        let a = self.call(reqwest::Method::POST, "/subgroup", &[], Some(&body), Some(key)).await?;
        if !a.status.is_success() {
            return Err(ProvisionError::Refused(format!("POST /subgroup: HTTP {}", a.status)));
        }
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        subgroup_of(record(&v))
            .ok_or_else(|| ProvisionError::Unavailable("POST /subgroup: answer without a subgroup id".into()))
    }

    async fn subgroup(&self, id: &str) -> Result<Option<Subgroup>, ProvisionError> {
        let a = self.call(reqwest::Method::GET, "/subgroup", &[("id", id.to_owned())], None, None).await?;
        if a.status.as_u16() == 404 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        let list = records(&v);
        let found = if list.is_empty() { subgroup_of(record(&v)) } else { list.iter().filter_map(subgroup_of).next() };
        Ok(found.filter(|s| s.id == id))
    }

    async fn owns(&self, subgroup: &str, e164: &str) -> Result<bool, ProvisionError> {
        let q = [("subgroupId", subgroup.to_owned()), ("phoneNumber", digits(e164))];
        let a = self.call(reqwest::Method::GET, "/number", &q, None, None).await?;
        if a.status.as_u16() == 404 {
            return Ok(false);
        }
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        // The provider's phoneNumber filter is a partial match: only an exact one counts, and
        // only in this subgroup when the record says which.
        Ok(records(&v).iter().any(|r| {
            text(r, &["phoneNumber", "number"]).is_some_and(|n| digits(&n) == digits(e164))
                && text(r, &["subgroupId"]).is_none_or(|s| s == subgroup)
        }))
    }

    async fn health(&self, e164: &str) -> Result<Option<f64>, ProvisionError> {
        let a = self.call(reqwest::Method::GET, "/number/health", &[("phoneNumber", digits(e164))], None, None).await?;
        if a.status.as_u16() == 404 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        let r = record(&v);
        let score = |w: &str| r.get(w).and_then(|x| x.get("score")).and_then(Value::as_f64);
        Ok(score("sevenDay").or_else(|| score("thirtyDay")).or_else(|| r.get("score").and_then(Value::as_f64)))
    }

    async fn available(&self, search: &Search) -> Result<Vec<AvailableNumber>, ProvisionError> {
        let mut q = vec![("smsEnabled", "true".to_owned())];
        if let Some(s) = &search.state {
            q.push(("state", s.clone()));
        }
        if let Some(n) = &search.npa {
            q.push(("npa", n.clone()));
        }
        q.push(("limit", search.limit.clamp(1, 100).to_string()));
        let a = self.call(reqwest::Method::GET, "/number/available", &q, None, None).await?;
        if a.status.as_u16() == 404 {
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(&a.body).unwrap_or_default();
        Ok(records(&v)
            .iter()
            .filter_map(|r| {
                let n = match r {
                    Value::String(s) => s.clone(),
                    other => text(other, &["phoneNumber", "number"])?,
                };
                Some(AvailableNumber {
                    number: e164_of(&n),
                    state: text(r, &["state", "region"]),
                    city: text(r, &["city", "rateCenter"]),
                })
            })
            .collect())
    }

    async fn purchase(&self, subgroup: &str, numbers: &[String], key: &str) -> Result<(), ProvisionError> {
        let list: Vec<String> = numbers.iter().map(|n| digits(n)).collect();
        let body = json!({"phoneNumbers": list, "subgroupId": subgroup, "country": "US"});
        let a = self.call(reqwest::Method::POST, "/number", &[], Some(&body), Some(key)).await?;
        if !a.status.is_success() {
            return Err(ProvisionError::Refused(format!("POST /number: HTTP {}", a.status)));
        }
        Ok(())
    }
}

/// [`crate::numbers_from_env`] built on first use (not at the API function's cold start).
#[derive(Default)]
pub struct LazyNumbers(std::sync::OnceLock<std::sync::Arc<dyn NumberProvider>>);

impl LazyNumbers {
    fn get(&self) -> &dyn NumberProvider {
        self.0.get_or_init(crate::numbers_from_env).as_ref()
    }
}

#[async_trait]
impl NumberProvider for LazyNumbers {
    fn name(&self) -> &'static str {
        self.get().name()
    }
    async fn create_subgroup(&self, name: &str, key: &str) -> Result<Subgroup, ProvisionError> {
        self.get().create_subgroup(name, key).await
    }
    async fn subgroup(&self, id: &str) -> Result<Option<Subgroup>, ProvisionError> {
        self.get().subgroup(id).await
    }
    async fn owns(&self, subgroup: &str, e164: &str) -> Result<bool, ProvisionError> {
        self.get().owns(subgroup, e164).await
    }
    async fn health(&self, e164: &str) -> Result<Option<f64>, ProvisionError> {
        self.get().health(e164).await
    }
    async fn available(&self, search: &Search) -> Result<Vec<AvailableNumber>, ProvisionError> {
        self.get().available(search).await
    }
    async fn purchase(&self, subgroup: &str, numbers: &[String], key: &str) -> Result<(), ProvisionError> {
        self.get().purchase(subgroup, numbers, key).await
    }
}
