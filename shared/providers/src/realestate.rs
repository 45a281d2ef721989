//! RealEstateAPI skip tracing (DOMAIN.md B): `POST {base}/SkipTrace/Bulk` with `x-api-key`,
//! body `{inputs: [{key, first_name, last_name, address, city, state, zip, phone, email}],
//! webhookUrl}`; the answer carries the job id (`jobId`). The results come to the webhook.

use async_trait::async_trait;
use nextier_platform::ports::skip_tracer::{SkipTracer, TraceInput};
use serde_json::{json, Value};

use crate::retry::{self, Retry};

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.realestateapi.com/v2`.
    pub base_url: String,
    pub api_key: String,
    pub retry: Retry,
    pub timeout: std::time::Duration,
}

impl Config {
    /// `REALESTATE_API_KEY` (and `REALESTATE_API_BASE_URL`); `None` without a key.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("REALESTATE_API_BASE_URL").unwrap_or_else(|| "https://api.realestateapi.com/v2".into()),
            api_key: var("REALESTATE_API_KEY")?,
            retry: Retry::default(),
            timeout: std::time::Duration::from_secs(20),
        })
    }
}

pub struct RealEstateApi {
    http: reqwest::Client,
    config: Config,
}

impl RealEstateApi {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }
}

#[async_trait]
impl SkipTracer for RealEstateApi {
    fn name(&self) -> &'static str {
        "realestateapi"
    }

    async fn bulk(&self, inputs: &[TraceInput], webhook_url: &str) -> anyhow::Result<String> {
        let url = format!("{}/SkipTrace/Bulk", self.config.base_url.trim_end_matches('/'));
        let body = json!({"inputs": inputs, "webhookUrl": webhook_url});
        let answer = retry::send(&self.config.retry, "realestateapi", || {
            self.http.post(&url).header("x-api-key", &self.config.api_key).json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("RealEstateAPI: {e}"))?;
        anyhow::ensure!(
            answer.status.is_success(),
            "RealEstateAPI refused the skip trace: HTTP {}: {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        );
        let v: Value = serde_json::from_str(&answer.body)?;
        ["jobId", "job_id", "id"]
            .iter()
            .find_map(|k| match v.get(*k).or_else(|| v.get("data").and_then(|d| d.get(*k))) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| anyhow::anyhow!("RealEstateAPI answered without a job id"))
    }
}

/// RealEstateAPI when configured, else the sandbox.
pub fn skip_tracer_from_env() -> std::sync::Arc<dyn SkipTracer> {
    match Config::from_env() {
        Some(c) => std::sync::Arc::new(RealEstateApi::new(c)),
        None => std::sync::Arc::new(nextier_platform::ports::skip_tracer::SandboxSkipTracer::default()),
    }
}

/// [`skip_tracer_from_env`] built on first use (not at the API function's cold start).
#[derive(Default)]
pub struct LazySkipTracer(std::sync::OnceLock<std::sync::Arc<dyn SkipTracer>>);

#[async_trait]
impl SkipTracer for LazySkipTracer {
    fn name(&self) -> &'static str {
        self.0.get_or_init(skip_tracer_from_env).name()
    }

    async fn bulk(&self, inputs: &[TraceInput], webhook_url: &str) -> anyhow::Result<String> {
        self.0.get_or_init(skip_tracer_from_env).bulk(inputs, webhook_url).await
    }
}

/// RealEstateAPI's single trace as an enrichment tracer: `POST {base}/SkipTrace` with
/// `x-api-key`, one person per call, answered at once (`output.phones[phone_number,
/// phone_type, carrier, is_connected]`, `output.emails`; also read under `output.identity`).
/// A batch is a few calls in a row: a failure part-way means the calls before it are paid
/// again when the batch is retried, so batches are small.
#[async_trait]
impl nextier_platform::ports::enrichment::Tracer for RealEstateApi {
    fn provider(&self) -> nextier_domain::enrichment::Provider {
        nextier_domain::enrichment::Provider::RealEstateApi
    }

    fn max_batch(&self) -> usize {
        5
    }

    async fn submit(
        &self,
        key: Option<&str>,
        queries: &[nextier_platform::ports::enrichment::TraceQuery],
    ) -> Result<nextier_platform::ports::enrichment::Submitted, nextier_platform::ports::enrichment::ProviderError>
    {
        use nextier_platform::ports::enrichment::{FoundPhone, ProviderError, Submitted, TraceResult};
        let url = format!("{}/SkipTrace", self.config.base_url.trim_end_matches('/'));
        let token = key.unwrap_or(&self.config.api_key);
        let mut out = Vec::with_capacity(queries.len());
        for q in queries {
            let body = json!({"first_name": q.first_name, "last_name": q.last_name, "address": q.address,
                              "city": q.city, "state": q.state, "zip": q.zip});
            let answer = crate::enrichment::call(&self.config.retry, "realestateapi", || {
                self.http.post(&url).header("x-api-key", token).json(&body)
            })
            .await;
            let v = match answer {
                Ok(a) => crate::enrichment::json(&a)?,
                // No match is an answer: nothing found.
                Err(ProviderError::Malformed(m)) if m.starts_with("HTTP 404") => {
                    out.push(TraceResult::default());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let output = v.get("output").unwrap_or(&v);
            let identity = output.get("identity").unwrap_or(&Value::Null);
            let list = |name: &str| -> Vec<Value> {
                output
                    .get(name)
                    .or_else(|| identity.get(name))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().take(20).cloned().collect())
                    .unwrap_or_default()
            };
            let phones = list("phones")
                .iter()
                .filter(|p| p.get("is_connected").and_then(Value::as_bool) != Some(false))
                .filter_map(|p| {
                    let number = crate::enrichment::text(p, "phone_number")
                        .or_else(|| crate::enrichment::text(p, "phoneNumber"))
                        .or_else(|| crate::enrichment::text(p, "number"))?;
                    let kind = crate::enrichment::text(p, "phone_type").unwrap_or_default();
                    Some(FoundPhone {
                        number,
                        line_type: nextier_domain::enrichment::line_type(&kind).to_owned(),
                        carrier: crate::enrichment::text(p, "carrier"),
                    })
                })
                .collect();
            let emails = list("emails")
                .iter()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    other => crate::enrichment::text(other, "email")
                        .or_else(|| crate::enrichment::text(other, "email_address")),
                })
                .collect();
            out.push(TraceResult { phones, emails });
        }
        Ok(Submitted::Done(out))
    }

    async fn poll(
        &self,
        _key: Option<&str>,
        _reference: &str,
        _queries: &[nextier_platform::ports::enrichment::TraceQuery],
    ) -> Result<
        Option<Vec<nextier_platform::ports::enrichment::TraceResult>>,
        nextier_platform::ports::enrichment::ProviderError,
    > {
        Err(nextier_platform::ports::enrichment::ProviderError::Malformed(
            "RealEstateAPI answers at once; nothing is queued".into(),
        ))
    }
}

/// Property search and detail (RealEstateAPI's published OpenAPI, `reference/property-apis.json`):
/// `POST {base}/PropertySearch` with `x-api-key`, body the search fields plus `size` (at most
/// 250) and `resultIndex`; the answer is `{data: [..], resultCount, resultIndex, recordCount}`,
/// each record flat (`id`, `address{street,city,state,zip,county}`, `mailAddress`,
/// `owner1FirstName`..., `ownerOccupied`, `vacant`, `preForeclosure`, `equityPercent`,
/// `estimatedValue`...). `POST {base}/PropertyDetail` with `{id}` answers `{data: {..}}`, the
/// owners under `ownerInfo`, the address under `propertyInfo`, loans under `currentMortgages`.
/// Records are read generously: a missing or odd field is `None`, never an error.
#[async_trait]
impl nextier_platform::ports::property::PropertyData for RealEstateApi {
    async fn search(
        &self,
        key: Option<&str>,
        criteria: &Value,
        index: i64,
        size: i64,
    ) -> Result<nextier_platform::ports::property::Page, nextier_platform::ports::property::ProviderError> {
        use nextier_platform::ports::property::{Page, ProviderError};
        let url = format!("{}/PropertySearch", self.config.base_url.trim_end_matches('/'));
        let mut body = match criteria {
            Value::Object(m) => Value::Object(m.clone()),
            _ => json!({}),
        };
        body["size"] = json!(size.clamp(1, 250));
        body["resultIndex"] = json!(index.max(0));
        body["count"] = json!(false);
        let token = key.unwrap_or(&self.config.api_key);
        let a = crate::enrichment::call(&self.config.retry, "realestateapi", || {
            self.http.post(&url).header("x-api-key", token).json(&body)
        })
        .await?;
        let v = crate::enrichment::json(&a)?;
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::Malformed("PropertySearch answered without a data list".into()))?;
        let records: Vec<_> = data.iter().filter_map(property_record).collect();
        let total = v.get("resultCount").and_then(number).unwrap_or(records.len() as i64);
        Ok(Page { total, records })
    }

    async fn detail(
        &self,
        key: Option<&str>,
        id: &str,
    ) -> Result<Option<nextier_platform::ports::property::Record>, nextier_platform::ports::property::ProviderError>
    {
        use nextier_platform::ports::property::ProviderError;
        let url = format!("{}/PropertyDetail", self.config.base_url.trim_end_matches('/'));
        let token = key.unwrap_or(&self.config.api_key);
        let body = json!({"id": id});
        let a = crate::enrichment::call(&self.config.retry, "realestateapi", || {
            self.http.post(&url).header("x-api-key", token).json(&body)
        })
        .await;
        let v = match a {
            Ok(a) => crate::enrichment::json(&a)?,
            Err(ProviderError::Malformed(m)) if m.starts_with("HTTP 404") => return Ok(None),
            Err(e) => return Err(e),
        };
        match v.get("data") {
            Some(d) if d.is_object() => Ok(property_record(d)),
            _ => Ok(None),
        }
    }
}

fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f.round() as i64),
        _ => None,
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn flag(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

fn postal(v: Option<&Value>) -> Option<nextier_platform::ports::property::PostalAddress> {
    let v = v.filter(|v| v.is_object())?;
    let t = |k: &str| crate::enrichment::text(v, k);
    Some(nextier_platform::ports::property::PostalAddress {
        street: t("street").or_else(|| t("address").map(|a| a.split(',').next().unwrap_or_default().trim().to_owned())),
        city: t("city"),
        state: t("state").map(|s| s.to_ascii_uppercase()).filter(|s| s.len() == 2),
        zip: t("zip").map(|z| z.chars().take(5).collect()),
    })
}

/// A provider's value without NUL characters (which PostgreSQL cannot store), at any depth.
fn without_nul(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(a) => Value::Array(a.iter().map(without_nul).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.replace('\0', ""), without_nul(v))).collect()),
        other => other.clone(),
    }
}

/// One property from a search record (flat) or a detail answer (nested); `None` without an id.
pub fn property_record(v: &Value) -> Option<nextier_platform::ports::property::Record> {
    let clean = without_nul(v);
    let v = &clean;
    let id = match v.get("id").or_else(|| v.get("propertyId")) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return None,
    };
    let info = v.get("propertyInfo").unwrap_or(v);
    let owner = v.get("ownerInfo").unwrap_or(v);
    let pick = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k).or_else(|| info.get(*k)).or_else(|| owner.get(*k)));
    let name = |k: &str| crate::enrichment::text(owner, k).filter(|n| !n.trim().is_empty());
    let mut owners = Vec::new();
    for n in ["1", "2"] {
        let (first, last) = (name(&format!("owner{n}FirstName")), name(&format!("owner{n}LastName")));
        if first.is_some() || last.is_some() {
            owners.push((first, last));
        }
    }
    let address = postal(info.get("address").or_else(|| v.get("address"))).unwrap_or_default();
    let mortgages = v.get("currentMortgages").and_then(Value::as_array).cloned().unwrap_or_default();
    let maturity = mortgages
        .iter()
        .filter_map(|m| m.get("maturityDate").and_then(Value::as_str))
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok())
        .min();
    let balance = pick(&["openMortgageBalance", "estimatedMortgageBalance"]).and_then(number);
    let owner_type = crate::enrichment::text(owner, "owner1Type").map(|t| t.to_ascii_lowercase()).or_else(|| {
        if pick(&["corporateOwned"]).and_then(flag) == Some(true) {
            Some("corporate".into())
        } else if pick(&["trustOwned"]).and_then(flag) == Some(true) {
            Some("trust".into())
        } else {
            None
        }
    });
    Some(nextier_platform::ports::property::Record {
        external_id: id,
        county: info.get("address").and_then(|a| crate::enrichment::text(a, "county")),
        property_type: pick(&["propertyType", "propertyUse"]).and_then(Value::as_str).map(str::to_owned),
        owners,
        owner_type,
        mail_address: postal(owner.get("mailAddress").or_else(|| v.get("mailAddress"))),
        owner_occupied: pick(&["ownerOccupied"])
            .and_then(flag)
            .or_else(|| pick(&["absenteeOwner"]).and_then(flag).map(|a| !a)),
        vacant: pick(&["vacant"]).and_then(flag),
        pre_foreclosure: pick(&["preForeclosure"]).and_then(flag),
        reverse_mortgage: pick(&["reverseMortgage"]).and_then(flag),
        equity_percent: pick(&["equityPercent"]).and_then(float),
        estimated_value: pick(&["estimatedValue"]).and_then(number),
        estimated_equity: pick(&["estimatedEquity"]).and_then(number),
        mortgage_balance: balance,
        loan_maturity_date: maturity,
        year_built: pick(&["yearBuilt"]).and_then(number).and_then(|y| i32::try_from(y).ok()),
        buildable_zoning: None,
        address,
        raw: v.clone(),
    })
}

/// RealEstateAPI's property search and detail when `REALESTATE_API_KEY` is set; locally
/// (`PLATFORM=local`) without a key, the deterministic sandbox. Deployed without a platform key
/// it is still the real client: a team with its own key is served, one without is refused (never
/// the sandbox's invented properties).
pub fn property_data_from_env() -> std::sync::Arc<dyn nextier_platform::ports::property::PropertyData> {
    match Config::from_env() {
        Some(c) => std::sync::Arc::new(RealEstateApi::new(c)),
        None if nextier_runtime::config::is_local() => {
            std::sync::Arc::new(nextier_platform::ports::property::SandboxPropertyData)
        }
        None => std::sync::Arc::new(RealEstateApi::new(Config {
            base_url: nextier_runtime::config::get("REALESTATE_API_BASE_URL")
                .unwrap_or_else(|| "https://api.realestateapi.com/v2".into()),
            api_key: String::new(),
            retry: Retry::default(),
            timeout: std::time::Duration::from_secs(20),
        })),
    }
}
