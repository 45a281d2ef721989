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

#[derive(Debug, Clone)]
pub struct Config {
    /// e.g. `https://api.signalhouse.io/api/v1`.
    pub base_url: String,
    pub api_key: String,
    /// The sending number until sending numbers are assigned per campaign.
    pub from: String,
    /// Where SignalHouse posts delivery status.
    pub status_callback_url: Option<String>,
    /// Attempts per message (first try included).
    pub attempts: u32,
    /// The first backoff; doubled each retry, at most `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
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
            attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
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

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
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
        let mut backoff = self.config.backoff;
        let mut last = String::new();
        for attempt in 1..=self.config.attempts.max(1) {
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&self.config.api_key)
                .header("Idempotency-Key", m.message().as_str())
                .json(&body)
                .send()
                .await;
            let wait = match sent {
                Err(e) => {
                    last = if e.is_timeout() { "timed out".into() } else { format!("unreachable: {e}") };
                    backoff
                }
                Ok(resp) => {
                    let status = resp.status();
                    let after = retry_after(resp.headers());
                    if status.is_success() {
                        let answer: SendAnswer = resp.json().await.unwrap_or_default();
                        return Self::decide(answer, m.to());
                    }
                    let text = resp.text().await.unwrap_or_default();
                    let message =
                        serde_json::from_str::<SendAnswer>(&text).ok().and_then(|a| a.message).unwrap_or(text);
                    if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                        last = format!("HTTP {status}: {message}");
                        after.unwrap_or(backoff).min(self.config.max_backoff)
                    } else {
                        return Err(TransportError::Rejected {
                            reason: format!("HTTP {status}: {message}"),
                            opted_out: false,
                        });
                    }
                }
            };
            tracing::warn!(attempt, error = %last, message_id = %m.message(), "signalhouse send will be retried");
            if attempt < self.config.attempts {
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
        }
        Err(TransportError::Retryable(last))
    }
}
