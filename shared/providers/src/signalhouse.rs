//! SignalHouse SMS (DOMAIN.md B, B2; the official SDK's `messages.send_sms`):
//! `POST {base}/message/sms` with `Authorization: Bearer`, `Content-Type: application/json`,
//! body `{senderPhoneNumber, recipientPhoneNumber: [..], messageBody, enableShortlink,
//! filterLandlinesAndInactiveNumbers?, statusCallbackUrl?}` and an `Idempotency-Key` (the
//! message id), so a retried request replays the first answer instead of sending again.
//! Numbers go as digits with the country code and no `+` (`14155551234`).
//!
//! A 2xx is not a send: the answer's `requestedRecipientCount`, `enqueuedCount` and
//! `failedCount` decide, and `enqueuedCount` 0 is never a send. A recipient the provider blocks
//! comes back in `insertedMessages` with status FAILED and an `errorCode` (`OUT`: the number
//! opted out of the campaign), or in `dncBlockedNumbers` (global do-not-contact); both are
//! permanent refusals, and the gate records them as suppressions. With the team's
//! landline filter on, a recipient neither enqueued nor reported failed was filtered out as a
//! landline or inactive number ([`TransportError::Unreachable`]).
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
    /// Where SignalHouse posts delivery status.
    pub status_callback_url: Option<String>,
    /// Attempts and backoff for timeouts, 408, 429 and 5xx.
    pub retry: Retry,
    /// Per request.
    pub timeout: Duration,
}

impl Config {
    /// `SIGNALHOUSE_BASE_URL`, `SIGNALHOUSE_API_KEY`, `SIGNALHOUSE_STATUS_CALLBACK_URL`;
    /// `None` without a key. There is no platform sender: every text goes from a number of
    /// the sending team's own subgroup.
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("SIGNALHOUSE_BASE_URL").unwrap_or_else(|| "https://api.signalhouse.io/api/v1".into()),
            api_key: var("SIGNALHOUSE_API_KEY")?,
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
    requested_recipient_count: Option<u32>,
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
    recipient_phone_number: Option<String>,
    status: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl SignalHouse {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }

    fn decide(answer: SendAnswer, to: &str, filtering: bool) -> Result<Delivered, TransportError> {
        let to = digits(to);
        if answer.dnc_blocked_numbers.iter().any(|n| digits(n) == to) {
            return Err(TransportError::Rejected {
                reason: "on the global do-not-contact list".into(),
                opted_out: true,
            });
        }
        // Ours is the record naming our recipient, else the only one.
        let mut inserted = answer.inserted_messages;
        let pos = inserted.iter().position(|m| m.recipient_phone_number.as_deref().is_some_and(|n| digits(n) == to));
        let mine = match pos {
            Some(p) => Some(inserted.swap_remove(p)),
            None => inserted.into_iter().next(),
        };
        let failed =
            mine.as_ref().is_some_and(|m| m.status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("FAILED")));
        if answer.enqueued_count >= 1 && !failed {
            let id = mine.and_then(|m| m.message_id);
            let id = id.ok_or_else(|| TransportError::Retryable("answer without a message id".into()))?;
            return Ok(Delivered { provider_message_id: id });
        }
        let Some(first) = mine else {
            if filtering && answer.failed_count == 0 {
                return Err(TransportError::Unreachable {
                    reason: "filtered by SignalHouse as a landline or inactive number".into(),
                });
            }
            let detail = answer.message.unwrap_or_else(|| "refused".into());
            let requested = answer.requested_recipient_count.unwrap_or(1);
            return Err(TransportError::Rejected {
                reason: format!("not enqueued ({} of {requested}): {detail}", answer.enqueued_count),
                opted_out: false,
            });
        };
        let code = first.error_code.unwrap_or_default();
        let detail = first.error_message.or(answer.message).unwrap_or_else(|| "refused".into());
        Err(TransportError::Rejected {
            reason: format!("errorCode {code}: {detail} (status {})", first.status.unwrap_or_default()),
            opted_out: code == "OUT",
        })
    }
}

/// Digits only, with the country code: SignalHouse's form for numbers in bodies and queries
/// (`+1 415 555 1234` and `14155551234` both become `14155551234`).
pub fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}

#[async_trait]
impl Transport for SignalHouse {
    fn name(&self) -> &'static str {
        "signalhouse"
    }

    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        let Some(from) = m.from() else {
            // The gate hands SignalHouse only texts from one of the team's own numbers.
            return Err(TransportError::Rejected { reason: "no sending number".into(), opted_out: false });
        };
        let mut body = json!({
            "senderPhoneNumber": digits(from),
            "recipientPhoneNumber": [digits(m.to())],
            "messageBody": m.body(),
            "enableShortlink": false,
        });
        if m.filter_landlines() {
            body["filterLandlinesAndInactiveNumbers"] = json!(true);
        }
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
            return Self::decide(serde_json::from_str(&answer.body).unwrap_or_default(), m.to(), m.filter_landlines());
        }
        let message =
            serde_json::from_str::<SendAnswer>(&answer.body).ok().and_then(|a| a.message).unwrap_or(answer.body);
        Err(TransportError::Rejected { reason: format!("HTTP {}: {message}", answer.status), opted_out: false })
    }
}
