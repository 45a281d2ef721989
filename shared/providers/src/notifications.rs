//! SignalHouse notifications, the durable record of every event (DOMAIN.md B):
//! `GET {base}/notification?groupId=&status=UNREAD&page=1&limit=` and
//! `PUT {base}/notification/status {ids, status: "READ"}`, with `Authorization: Bearer` and
//! `Content-Type: application/json` (as the official SDK sends them).
//! A record is `{id, timestamp, event, identifier, metaData}`; the list comes back as an
//! array, or under `data` / `notifications` / `items`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_platform::ports::notifications::{Notification, NotificationSource};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::retry::{self, Retry};

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    pub api_key: String,
    pub group_id: String,
    pub retry: Retry,
    pub timeout: std::time::Duration,
}

impl Config {
    /// `SIGNALHOUSE_BASE_URL`, `SIGNALHOUSE_API_KEY`, `SIGNALHOUSE_GROUP_ID`; `None` without
    /// a key or group (nothing to reconcile from: the local runtime).
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("SIGNALHOUSE_BASE_URL").unwrap_or_else(|| "https://api.signalhouse.io/api/v1".into()),
            api_key: var("SIGNALHOUSE_API_KEY")?,
            group_id: var("SIGNALHOUSE_GROUP_ID")?,
            retry: Retry::default(),
            timeout: std::time::Duration::from_secs(10),
        })
    }
}

pub struct SignalHouseNotifications {
    http: reqwest::Client,
    config: Config,
}

impl SignalHouseNotifications {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }
}

fn record(v: &Value) -> Option<Notification> {
    let id = match v.get("id").or_else(|| v.get("_id"))? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let event = v.get("event")?.as_str()?.to_owned();
    let at = match v.get("timestamp") {
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc)),
        Some(Value::Number(n)) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    };
    let payload = v.get("metaData").or_else(|| v.get("metadata")).cloned().unwrap_or_else(|| json!({}));
    Some(Notification { id, event, at, payload, raw: v.clone() })
}

#[async_trait]
impl NotificationSource for SignalHouseNotifications {
    async fn unread(&self, limit: u32) -> anyhow::Result<Vec<Notification>> {
        let url = self.url("/notification");
        let limit = limit.clamp(1, 100).to_string();
        let answer = retry::send(&self.config.retry, "signalhouse", || {
            // Content-Type as the SDK's session sends on every request.
            self.http.get(&url).bearer_auth(&self.config.api_key).header(CONTENT_TYPE, "application/json").query(&[
                ("groupId", self.config.group_id.as_str()),
                ("status", "UNREAD"),
                ("page", "1"),
                ("limit", limit.as_str()),
            ])
        })
        .await
        .map_err(|e| anyhow::anyhow!("GET /notification: {e}"))?;
        if !answer.status.is_success() {
            anyhow::bail!(
                "GET /notification: HTTP {}: {}",
                answer.status,
                answer.body.chars().take(300).collect::<String>()
            );
        }
        let v: Value = serde_json::from_str(&answer.body)?;
        let list = match &v {
            Value::Array(a) => a.clone(),
            other => ["data", "notifications", "items"]
                .iter()
                .find_map(|k| {
                    other.get(k).and_then(|d| d.as_array().or_else(|| d.get("data").and_then(Value::as_array)))
                })
                .cloned()
                .unwrap_or_default(),
        };
        let mut out: Vec<Notification> = list.iter().filter_map(record).collect();
        out.sort_by_key(|n| n.at);
        Ok(out)
    }

    async fn mark_read(&self, ids: &[String]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let url = self.url("/notification/status");
        let body = json!({"ids": ids, "status": "READ"});
        let answer = retry::send(&self.config.retry, "signalhouse", || {
            self.http.put(&url).bearer_auth(&self.config.api_key).json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("PUT /notification/status: {e}"))?;
        if !answer.status.is_success() {
            anyhow::bail!("PUT /notification/status: HTTP {}", answer.status);
        }
        Ok(())
    }
}
