//! Asking the providers whether they took a message the reconciler found still queued.
//!
//! SignalHouse has no lookup by idempotency key (its SDK, `signalhouse` 1.5.1, offers none),
//! so we ask its message list: `GET {base}/message?direction=OUTBOUND&recipientPhoneNumber=
//! &senderPhoneNumber=&startDate=&endDate=&dateBounds=exact&limit=` around the time we
//! recorded the message, and match the text. Its idempotency replay window is not documented:
//! we assume [`DEFAULT_REPLAY_WINDOW`] (`SIGNALHOUSE_REPLAY_WINDOW_SECS` overrides it), within
//! which a resend under the same key replays rather than sends.
//!
//! SendGrid and Twilio take no idempotency key and have no lookup we rely on: SendGrid's own
//! events (processed, delivered) settle a mail through the event webhook, and what is still
//! queued after the deadline is left for a person to review.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nextier_platform::ports::delivery_lookup::{DeliveryLookup, Lookup};
use nextier_store::delivery::Queued;
use serde_json::Value;

use crate::retry::{self, Retry};

pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct SignalHouseLookupConfig {
    pub base_url: String,
    pub api_key: String,
    pub replay_window: Duration,
    pub retry: Retry,
    pub timeout: Duration,
}

/// The providers' lookups.
pub struct ProviderLookup {
    http: reqwest::Client,
    signalhouse: Option<SignalHouseLookupConfig>,
}

impl ProviderLookup {
    pub fn new(signalhouse: Option<SignalHouseLookupConfig>) -> Self {
        let timeout = signalhouse.as_ref().map(|c| c.timeout).unwrap_or(Duration::from_secs(10));
        Self { http: reqwest::Client::builder().timeout(timeout).build().unwrap_or_default(), signalhouse }
    }

    async fn signalhouse(&self, c: &SignalHouseLookupConfig, m: &Queued) -> anyhow::Result<Lookup> {
        let digits = |n: &str| n.chars().filter(char::is_ascii_digit).collect::<String>();
        let start = (m.created_at - chrono::Duration::minutes(1)).to_rfc3339();
        let end = (m.created_at + chrono::Duration::hours(1)).to_rfc3339();
        let mut query = vec![
            ("direction", "OUTBOUND".to_owned()),
            ("recipientPhoneNumber", digits(&m.to)),
            ("startDate", start),
            ("endDate", end),
            ("dateBounds", "exact".to_owned()),
            ("limit", "50".to_owned()),
        ];
        if let Some(from) = &m.from {
            query.push(("senderPhoneNumber", digits(from)));
        }
        let url = format!("{}/message", c.base_url.trim_end_matches('/'));
        let answer = retry::send(&c.retry, "signalhouse", || self.http.get(&url).bearer_auth(&c.api_key).query(&query))
            .await
            .map_err(|e| anyhow::anyhow!("GET /message: {e}"))?;
        anyhow::ensure!(answer.status.is_success(), "GET /message: HTTP {}", answer.status);
        let v: Value = serde_json::from_str(&answer.body)?;
        Ok(match matching(&v, &m.body) {
            Some(id) => Lookup::Found { provider_message_id: id },
            None => Lookup::NotFound,
        })
    }
}

/// The id of the listed message whose text is `body`, if one is.
fn matching(v: &Value, body: &str) -> Option<String> {
    let list = match v {
        Value::Array(a) => a.clone(),
        other => ["data", "messages", "items"]
            .iter()
            .find_map(|k| {
                let d = other.get(k)?;
                d.as_array()
                    .or_else(|| ["data", "messages", "items"].iter().find_map(|k| d.get(k)?.as_array()))
                    .cloned()
            })
            .unwrap_or_default(),
    };
    list.iter().find_map(|r| {
        let text = ["messageBody", "message", "body", "text"].iter().find_map(|k| r.get(k)?.as_str())?;
        if text != body {
            return None;
        }
        ["messageId", "id", "_id"].iter().find_map(|k| match r.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    })
}

#[async_trait]
impl DeliveryLookup for ProviderLookup {
    async fn lookup(&self, m: &Queued) -> anyhow::Result<Lookup> {
        match (m.provider.as_str(), &self.signalhouse) {
            ("signalhouse", Some(c)) => self.signalhouse(c, m).await,
            // The sandbox never lost a message it took; it replays by message id.
            ("sandbox", _) => Ok(Lookup::NotFound),
            _ => Ok(Lookup::Unknown),
        }
    }

    fn replay_window(&self, provider: &str) -> Option<Duration> {
        match provider {
            "signalhouse" => self.signalhouse.as_ref().map(|c| c.replay_window),
            "sandbox" => Some(Duration::from_secs(24 * 3600)),
            _ => None,
        }
    }
}

/// SignalHouse's lookup when `SIGNALHOUSE_API_KEY` is set.
pub fn lookup_from_env() -> Arc<ProviderLookup> {
    let var = |n: &str| nextier_runtime::config::get(n);
    let signalhouse = var("SIGNALHOUSE_API_KEY").map(|api_key| SignalHouseLookupConfig {
        base_url: var("SIGNALHOUSE_BASE_URL").unwrap_or_else(|| "https://api.signalhouse.io/api/v1".into()),
        api_key,
        replay_window: var("SIGNALHOUSE_REPLAY_WINDOW_SECS")
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_REPLAY_WINDOW),
        retry: Retry::default(),
        timeout: Duration::from_secs(10),
    });
    Arc::new(ProviderLookup::new(signalhouse))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_listed_message_matches_by_its_text() {
        let v = json!({"success": true, "data": [{"id": "sh-1", "messageBody": "other"}, {"id": "sh-2", "messageBody": "Hi Ada"}]});
        assert_eq!(matching(&v, "Hi Ada").as_deref(), Some("sh-2"));
        assert_eq!(
            matching(&json!({"data": {"messages": [{"messageId": "x", "message": "Hi"}]}}), "Hi").as_deref(),
            Some("x")
        );
        assert_eq!(matching(&json!([]), "Hi"), None);
    }
}
