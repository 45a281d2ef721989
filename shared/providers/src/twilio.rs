//! Twilio voice: `POST {base}/2010-04-01/Accounts/{sid}/Calls.json` with basic auth and a form
//! (`To`, `From`, `Twiml` speaking the message, `StatusCallback`). A 201 answers the call's
//! `sid`; error 21610 (the number unsubscribed) is an opt-out; other 4xx are refusals; the
//! rest is retried.

use async_trait::async_trait;
use nextier_outbound::{Cleared, Delivered, Transport, TransportError};
use serde::Deserialize;

use crate::retry::{self, Retry};

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.twilio.com`.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The calling number until numbers are assigned per campaign.
    pub from: String,
    pub status_callback_url: Option<String>,
    pub retry: Retry,
    pub timeout: std::time::Duration,
}

impl Config {
    /// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM`, `TWILIO_STATUS_CALLBACK_URL`;
    /// `None` when unset.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("TWILIO_BASE_URL").unwrap_or_else(|| "https://api.twilio.com".into()),
            account_sid: var("TWILIO_ACCOUNT_SID")?,
            auth_token: var("TWILIO_AUTH_TOKEN")?,
            from: var("TWILIO_FROM")?,
            status_callback_url: var("TWILIO_STATUS_CALLBACK_URL"),
            retry: Retry::default(),
            timeout: std::time::Duration::from_secs(10),
        })
    }
}

pub struct Twilio {
    http: reqwest::Client,
    config: Config,
}

#[derive(Deserialize, Default)]
struct Answer {
    sid: Option<String>,
    code: Option<i64>,
    message: Option<String>,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

impl Twilio {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }
}

#[async_trait]
impl Transport for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    /// Twilio's REST API takes no idempotency key for creating a call (its docs: "triggering
    /// an outbound call [is] not idempotent"): the gate hands it a call once.
    fn idempotent(&self) -> bool {
        false
    }

    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        let twiml = format!("<Response><Say>{}</Say></Response>", xml_escape(m.body()));
        let from = m.from().unwrap_or(&self.config.from).to_owned();
        let mut form = vec![("To", m.to().to_owned()), ("From", from), ("Twiml", twiml)];
        if let Some(cb) = &self.config.status_callback_url {
            form.push(("StatusCallback", cb.clone()));
        }
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        );
        let answer = retry::send(&self.config.retry, "twilio", || {
            self.http.post(&url).basic_auth(&self.config.account_sid, Some(&self.config.auth_token)).form(&form)
        })
        .await?;
        let parsed: Answer = serde_json::from_str(&answer.body).unwrap_or_default();
        if answer.status.is_success() {
            let sid = parsed.sid.ok_or_else(|| TransportError::Retryable("answer without a call sid".into()))?;
            return Ok(Delivered { provider_message_id: sid });
        }
        let code = parsed.code.unwrap_or_default();
        Err(TransportError::Rejected {
            reason: format!("Twilio {code}: {}", parsed.message.unwrap_or(answer.body)),
            opted_out: code == 21610,
        })
    }
}
