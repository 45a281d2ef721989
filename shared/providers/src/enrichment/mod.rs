//! The enrichment providers (issue 15, DOMAIN.md B2 and C.9): Tracerfy skip trace
//! ([`tracerfy`]), Trestle phone intelligence ([`trestle`]) and Apollo company data
//! ([`apollo`]), each behind its port in `nextier_platform::ports::enrichment` and tested
//! against a fake server speaking its contract (`shared/providers/tests/enrichment.rs`).
//! Without a platform key a provider falls back to its sandbox, unless a team brings its own.

pub mod apollo;
pub mod tracerfy;
pub mod trestle;

use std::sync::Arc;
use std::time::Duration;

use nextier_outbound::TransportError;
use nextier_platform::ports::enrichment::{
    Companies, PhoneIntel, ProviderError, SandboxCompanies, SandboxPhoneIntel, SandboxTracer, Tracer,
};

use crate::retry::{self, Answer, Retry};

/// Where an enrichment provider is and with which key (Trestle's and Apollo's `Config`).
#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    /// The platform's key; a team's own (setting `enrichment/<provider>_api_key`) wins.
    pub api_key: Option<String>,
    pub retry: Retry,
    pub timeout: Duration,
}

impl Config {
    /// The provider at `base_url` with no platform key: only a team's own key makes a call.
    pub fn keyless(base_url: &str, timeout: Duration) -> Config {
        Config { base_url: base_url.into(), api_key: None, retry: Retry { attempts: 2, ..Retry::default() }, timeout }
    }

    /// The variable `key_env` (or `base_env` alone, for teams that bring their own key);
    /// `None` when neither is set.
    pub fn from_env(key_env: &str, base_env: &str, default_base: &str, timeout: Duration) -> Option<Config> {
        let (api_key, base) = (nextier_runtime::config::get(key_env), nextier_runtime::config::get(base_env));
        if api_key.is_none() && base.is_none() {
            return None;
        }
        let mut c = Config::keyless(base.as_deref().unwrap_or(default_base), timeout);
        c.api_key = api_key;
        Some(c)
    }
}

/// How long to wait after a 429 that names no `Retry-After`.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// One provider call under the shared retry policy, its failure sorted for the pipeline:
/// credentials (401/403), rate limits (429, with the provider's wait), unavailability
/// (timeouts, 5xx) and refusals of the input (other 4xx, read as unusable).
pub(crate) async fn call<F>(policy: &Retry, provider: &str, build: F) -> Result<Answer, ProviderError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    match retry::send(policy, provider, build).await {
        Ok(a) if a.status.is_success() => Ok(a),
        // Out of credits: like a bad key, an operator must act.
        Ok(a) if a.status.as_u16() == 402 => Err(ProviderError::Unauthorized(format!(
            "HTTP 402 (payment required): {}",
            a.body.chars().take(300).collect::<String>()
        ))),
        Ok(a) => Err(ProviderError::Malformed(format!(
            "HTTP {}: {}",
            a.status,
            a.body.chars().take(300).collect::<String>()
        ))),
        Err(TransportError::Config(why)) => Err(ProviderError::Unauthorized(why)),
        Err(TransportError::Retryable(why)) if why.starts_with("HTTP 429") => {
            Err(ProviderError::RateLimited(DEFAULT_RATE_LIMIT_WAIT))
        }
        Err(e) => Err(ProviderError::Unavailable(e.to_string())),
    }
}

/// A JSON body, or why it is unusable.
pub(crate) fn json(a: &Answer) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(&a.body).map_err(|e| {
        ProviderError::Malformed(format!("not JSON ({e}): {}", a.body.chars().take(120).collect::<String>()))
    })
}

/// A text field that may be written as a string or a number; blank is absent.
pub(crate) fn text(v: &serde_json::Value, name: &str) -> Option<String> {
    match v.get(name)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap_or_default()
}

/// The providers the enrichment pipeline calls, from the environment: each provider's platform
/// key (`TRACERFY_API_KEY`, `TRESTLE_API_KEY`, `APOLLO_API_KEY`, with `*_BASE_URL` overrides).
/// Without one: the sandbox locally; deployed, the real provider with only the teams' own keys.
pub struct Providers {
    pub tracer: Arc<dyn Tracer>,
    /// RealEstateAPI's single trace, when its key is set (a team chooses it with
    /// `enrichment/tracer = realestateapi`).
    pub other_tracers: Vec<Arc<dyn Tracer>>,
    pub phone_intel: Arc<dyn PhoneIntel>,
    pub companies: Arc<dyn Companies>,
}

impl Providers {
    pub fn from_env() -> Providers {
        // Deployed, a provider without a platform key is still the real one: a team's own key
        // works, and without one the job waits with the reason. Never the sandbox's invented
        // numbers on real contacts.
        let local = nextier_runtime::config::is_local();
        let tracer: Arc<dyn Tracer> = match tracerfy::Config::from_env() {
            Some(c) => Arc::new(tracerfy::Tracerfy::new(c)),
            None if local => Arc::new(SandboxTracer::default()),
            None => Arc::new(tracerfy::Tracerfy::new(tracerfy::Config::keyless())),
        };
        let phone_intel: Arc<dyn PhoneIntel> = match trestle::config_from_env() {
            Some(c) => Arc::new(trestle::Trestle::new(c)),
            None if local => Arc::new(SandboxPhoneIntel::default()),
            None => Arc::new(trestle::Trestle::new(trestle::Config::keyless(trestle::BASE_URL, trestle::TIMEOUT))),
        };
        let companies: Arc<dyn Companies> = match apollo::config_from_env() {
            Some(c) => Arc::new(apollo::Apollo::new(c)),
            None if local => Arc::new(SandboxCompanies),
            None => Arc::new(apollo::Apollo::new(apollo::Config::keyless(apollo::BASE_URL, apollo::TIMEOUT))),
        };
        let other_tracers: Vec<Arc<dyn Tracer>> = crate::realestate::Config::from_env()
            .map(|c| Arc::new(crate::realestate::RealEstateApi::new(c)) as Arc<dyn Tracer>)
            .into_iter()
            .collect();
        tracing::info!(tracer = %tracer.provider(), phone_intel = %phone_intel.provider(),
            companies = %companies.provider(), others = other_tracers.len(), "enrichment providers");
        Providers { tracer, other_tracers, phone_intel, companies }
    }

    /// The sandboxes (local runs).
    pub fn sandbox() -> Providers {
        Providers {
            tracer: Arc::new(SandboxTracer::default()),
            other_tracers: vec![],
            phone_intel: Arc::new(SandboxPhoneIntel::default()),
            companies: Arc::new(SandboxCompanies),
        }
    }
}
