use std::sync::Arc;

use chrono::Duration;
use nextier_outbound::OutboundGate;
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::Clock;
use nextier_platform::BlobStore;
use nextier_store::Db;

/// What handlers share: built once per cold start.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub outbox: OutboxPublisher,
    pub blobs: Arc<dyn BlobStore>,
    pub config: Arc<AppConfig>,
    /// The one way out for a person's messages (the cockpit's sends).
    pub gate: Arc<dyn OutboundGate>,
    /// Writes reply suggestions for inbox items (an LLM when configured, else templates).
    pub suggester: Arc<dyn nextier_platform::ports::suggester::Suggester>,
    /// NEVA's research briefs (a search-capable model when configured, else our records).
    pub researcher: Arc<dyn nextier_platform::ports::suggester::Researcher>,
    /// Skip traces (RealEstateAPI when configured, else the sandbox).
    pub skip_tracer: Arc<dyn nextier_platform::ports::skip_tracer::SkipTracer>,
    /// Subgroups, number inventory and purchases (SignalHouse when configured, else the sandbox).
    pub numbers: Arc<dyn nextier_platform::ports::numbers::NumberProvider>,
    /// Property search and detail (RealEstateAPI when configured, else the sandbox).
    pub property_data: Arc<dyn nextier_platform::ports::property::PropertyData>,
    /// The rate limiter (provider caps; DynamoDB deployed).
    pub limiter: Arc<dyn nextier_platform::ports::RateLimiter>,
    /// Where handlers take the time from (the system clock, deployed and local).
    pub clock: Arc<dyn Clock>,
    /// The CRM a team connects (Zoho when configured, else the sandbox).
    pub crm: Arc<dyn nextier_platform::ports::crm::Crm>,
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long an invitation token stays valid.
    pub invitation_ttl: Duration,
    /// Where providers call back (the webhook functions' public origin):
    /// `WEBHOOK_BASE_URL`.
    pub webhook_base_url: String,
    /// The key skip-trace callback tokens are signed with (`SKIP_TRACE_CALLBACK_SECRET`).
    pub callback_key: Vec<u8>,
    /// The Zoho accounts server a connect goes to unless the person names their data
    /// centre's (`ZOHO_ACCOUNTS_URL`).
    pub zoho_accounts: String,
    /// Origins a CRM connection may name besides Zoho's own (`ZOHO_EXTRA_HOSTS`: a local
    /// sandbox or a test's fake; none deployed).
    pub crm_hosts: Vec<String>,
    /// Origins a webhook endpoint may use although not public https (`WEBHOOK_ALLOW_ORIGINS`:
    /// local runs and tests; none deployed).
    pub webhook_allow_origins: Vec<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::hours(72),
            webhook_base_url: "http://127.0.0.1:3000".into(),
            callback_key: nextier_runtime::config::local_secret().into_bytes(),
            zoho_accounts: "https://accounts.zoho.com".into(),
            crm_hosts: vec![],
            webhook_allow_origins: vec![],
        }
    }
}

impl AppConfig {
    pub fn from_env() -> Self {
        let hours = nextier_runtime::config::parse("INVITATION_TTL_HOURS").unwrap_or(72);
        Self {
            invitation_ttl: Duration::hours(hours),
            webhook_base_url: nextier_runtime::config::or("WEBHOOK_BASE_URL", "http://127.0.0.1:3000"),
            callback_key: nextier_inbound::skiptrace::callback_key(),
            zoho_accounts: nextier_runtime::config::or("ZOHO_ACCOUNTS_URL", "https://accounts.zoho.com"),
            crm_hosts: nextier_integrations::crm_hosts_from_env(),
            webhook_allow_origins: nextier_integrations::webhooks::allowed_origins_from_env(),
        }
    }
}

impl AppState {
    /// The AI engine on this state's parts.
    pub fn ai(&self) -> nextier_ai::Ai {
        nextier_ai::Ai {
            db: self.db.clone(),
            gate: self.gate.clone(),
            suggester: self.suggester.clone(),
            clock: self.clock.clone(),
        }
    }
}
