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
