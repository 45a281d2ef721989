//! The notifications port: what a provider kept for us, read back when a webhook was missed
//! (SignalHouse's notifications API, `nextier_providers::notifications`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One notification record: `{id, timestamp, event, identifier, metaData}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub event: String,
    pub at: Option<DateTime<Utc>>,
    /// The event's data, as a webhook would carry it.
    pub payload: Value,
    /// The whole record as the API gave it.
    pub raw: Value,
}

/// Where unread notifications come from (SignalHouse's API; a fake in tests).
#[async_trait]
pub trait NotificationSource: Send + Sync {
    /// Up to `limit` unread notifications, oldest first.
    async fn unread(&self, limit: u32) -> anyhow::Result<Vec<Notification>>;
    async fn mark_read(&self, ids: &[String]) -> anyhow::Result<()>;
}
