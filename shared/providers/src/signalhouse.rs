//! SignalHouse SMS (DOMAIN.md B): `POST {base}/message/sms` with `Authorization: Bearer`,
//! body `{senderPhoneNumber, recipientPhoneNumber: [..], messageBody, statusCallbackUrl?,
//! enableShortlink}` and an `Idempotency-Key` (the message id), so a retried request replays
//! the first answer instead of sending again.
//!
//! A 2xx is not a send: the answer's `enqueuedCount` / `failedCount` decide. A recipient the
//! provider blocks comes back in `insertedMessages` with status FAILED and an `errorCode`
//! (`OUT`: the number opted out of the campaign), or in `dncBlockedNumbers` (global
//! do-not-contact); both are permanent refusals, and the gate records them as suppressions.
//! Timeouts, 408, 429 and 5xx are retried with exponential backoff that honours
//! `Retry-After`; other 4xx are refusals.

use std::time::Duration;

use async_trait::async_trait;
use nextier_outbound::{Cleared, Delivered, Transport, TransportError};
use serde::Deserialize;
use serde_json::json;

use crate::retry::{self, Retry};

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.signalhouse.io/api/v1`.
    pub base_url: String,
    pub api_key: String,
    /// The sending number until sending numbers are assigned per campaign.
    pub from: String,
    /// Where SignalHouse posts delivery status.
    pub status_callback_url: Option<String>,
    /// Attempts and backoff for timeouts, 408, 429 and 5xx.
    pub retry: Retry,
    /// Per request.
    pub timeout: Duration,
}

impl Config {
    /// `SIGNALHOUSE_BASE_URL`, `SIGNALHOUSE_API_KEY`, `SIGNALHOUSE_FROM`,
    /// `SIGNALHOUSE_STATUS_CALLBACK_URL`; `None` when the key or sender is missing.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Some(Config {
            base_url: var("SIGNALHOUSE_BASE_URL").unwrap_or_else(|| "https://api.signalhouse.io/api/v1".into()),
            api_key: var("SIGNALHOUSE_API_KEY")?,
            from: var("SIGNALHOUSE_FROM")?,
            status_callback_url: var("SIGNALHOUSE_STATUS_CALLBACK_URL"),
            retry: Retry::default(),
            timeout: Duration::from_secs(10),
        })
    }
}

pub struct SignalHouse {
    http: reqwest::Client,
    config: Config,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SendAnswer {
    #[serde(default)]
    enqueued_count: u32,
    #[serde(default)]
    failed_count: u32,
    #[serde(default)]
    inserted_messages: Vec<Inserted>,
    #[serde(default)]
    dnc_blocked_numbers: Vec<String>,
    message: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Inserted {
    message_id: Option<String>,
    status: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl SignalHouse {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }

    fn decide(answer: SendAnswer, to: &str) -> Result<Delivered, TransportError> {
        if answer.dnc_blocked_numbers.iter().any(|n| n == to) {
            return Err(TransportError::Rejected {
                reason: "on the global do-not-contact list".into(),
                opted_out: true,
            });
        }
        let first = answer.inserted_messages.into_iter().next().unwrap_or_default();
        if answer.enqueued_count >= 1 && answer.failed_count == 0 {
            let id = first.message_id.ok_or_else(|| TransportError::Retryable("answer without a message id".into()))?;
            return Ok(Delivered { provider_message_id: id });
        }
        let code = first.error_code.unwrap_or_default();
        let detail = first.error_message.or(answer.message).unwrap_or_else(|| "refused".into());
        Err(TransportError::Rejected {
            reason: format!("errorCode {code}: {detail} (status {})", first.status.unwrap_or_default()),
            opted_out: code == "OUT",
        })
    }
}

#[async_trait]
impl Transport for SignalHouse {
    fn name(&self) -> &'static str {
        "signalhouse"
    }

    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        let mut body = json!({
            "senderPhoneNumber": m.from().unwrap_or(&self.config.from),
            "recipientPhoneNumber": [m.to()],
            "messageBody": m.body(),
            "enableShortlink": false,
        });
        if let Some(cb) = &self.config.status_callback_url {
            body["statusCallbackUrl"] = json!(cb);
        }
        let url = format!("{}/message/sms", self.config.base_url.trim_end_matches('/'));
        let answer = retry::send(&self.config.retry, "signalhouse", || {
            self.http
                .post(&url)
                .bearer_auth(&self.config.api_key)
                .header("Idempotency-Key", m.message().as_str())
                .json(&body)
        })
        .await?;
        if answer.status.is_success() {
            return Self::decide(serde_json::from_str(&answer.body).unwrap_or_default(), m.to());
        }
        let message =
            serde_json::from_str::<SendAnswer>(&answer.body).ok().and_then(|a| a.message).unwrap_or(answer.body);
        Err(TransportError::Rejected { reason: format!("HTTP {}: {message}", answer.status), opted_out: false })
    }
}
