//! SendGrid mail (v3 mail send): `POST {base}/v3/mail/send` with `Authorization: Bearer`,
//! one personalization per message carrying our message id as a custom argument (the event
//! webhook reports it back). A 202 is accepted (`X-Message-Id`); 4xx other than 408/429 are
//! refusals (401/403: a configuration fault); the rest is retried. Campaign mail carries the
//! gate's `List-Unsubscribe` headers on its personalization. SendGrid has no idempotency key:
//! the gate hands a message over once (a retry after a crash does not send again), and the
//! event webhook's message id tells the reconciler whether SendGrid took it.

use async_trait::async_trait;
use nextier_outbound::{Cleared, Delivered, Transport, TransportError};
use serde_json::json;

use crate::retry::{self, Retry};

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.sendgrid.com`.
    pub base_url: String,
    pub api_key: String,
    pub from_email: String,
    pub from_name: String,
    pub retry: Retry,
    pub timeout: std::time::Duration,
}

impl Config {
    /// `SENDGRID_API_KEY`, `SENDGRID_FROM_EMAIL`, `SENDGRID_FROM_NAME`; `None` when unset.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("SENDGRID_BASE_URL").unwrap_or_else(|| "https://api.sendgrid.com".into()),
            api_key: var("SENDGRID_API_KEY")?,
            from_email: var("SENDGRID_FROM_EMAIL")?,
            from_name: var("SENDGRID_FROM_NAME").unwrap_or_default(),
            retry: Retry::default(),
            timeout: std::time::Duration::from_secs(10),
        })
    }
}

pub struct SendGrid {
    http: reqwest::Client,
    config: Config,
}

impl SendGrid {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }
}

#[async_trait]
impl Transport for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    /// SendGrid has no idempotency key: the gate hands it a message once.
    fn idempotent(&self) -> bool {
        false
    }

    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        let headers: serde_json::Map<String, serde_json::Value> =
            m.headers().iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let mut personalization =
            json!({"to": [{"email": m.to()}], "custom_args": {"message_id": m.message().as_str()}});
        if !headers.is_empty() {
            personalization["headers"] = serde_json::Value::Object(headers);
        }
        let body = json!({
            "personalizations": [personalization],
            "from": {"email": self.config.from_email, "name": self.config.from_name},
            "subject": m.subject().unwrap_or(""),
            "content": [{"type": "text/plain", "value": m.body()}],
        });
        let url = format!("{}/v3/mail/send", self.config.base_url.trim_end_matches('/'));
        let answer = retry::send(&self.config.retry, "sendgrid", || {
            self.http.post(&url).bearer_auth(&self.config.api_key).json(&body)
        })
        .await?;
        if answer.status.is_success() {
            let id = answer
                .headers
                .get("x-message-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| m.message().to_string());
            return Ok(Delivered { provider_message_id: id });
        }
        Err(TransportError::Rejected { reason: format!("HTTP {}: {}", answer.status, answer.body), opted_out: false })
    }
}

/// Notifications to the team's own people (not outreach: no gate), one mail to all of them,
/// the job's key as a custom argument.
#[async_trait]
impl nextier_platform::ports::mailer::Mailer for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    async fn send(&self, to: &[String], subject: &str, text: &str, key: &str) -> anyhow::Result<()> {
        let recipients: Vec<serde_json::Value> = to.iter().map(|e| json!({"email": e})).collect();
        let body = json!({
            "personalizations": [{"to": recipients, "custom_args": {"notification": key}}],
            "from": {"email": self.config.from_email, "name": self.config.from_name},
            "subject": subject,
            "content": [{"type": "text/plain", "value": text}],
        });
        let url = format!("{}/v3/mail/send", self.config.base_url.trim_end_matches('/'));
        let answer = retry::send(&self.config.retry, "sendgrid", || {
            self.http.post(&url).bearer_auth(&self.config.api_key).json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("SendGrid: {e}"))?;
        anyhow::ensure!(
            answer.status.is_success(),
            "SendGrid refused the mail: HTTP {}: {}",
            answer.status,
            answer.body
        );
        Ok(())
    }
}

/// SendGrid when configured, else the local log mailer.
pub fn mailer_from_env() -> std::sync::Arc<dyn nextier_platform::ports::mailer::Mailer> {
    match Config::from_env() {
        Some(c) => std::sync::Arc::new(SendGrid::new(c)),
        None => std::sync::Arc::new(nextier_platform::ports::mailer::LogMailer::default()),
    }
}
