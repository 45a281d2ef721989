use async_trait::async_trait;
use nextier_store::{Db, StoreError};

use crate::ports::{DomainEvent, EventBus, Result};
use crate::PlatformError;

/// The event bus as a Postgres table, readable with `recent` (and psql) while developing. Its
/// rules ([`PgEventBus::with_rule`]) do what the template's EventBridge rules do: send the
/// events of the named detail-types to a queue, in EventBridge's envelope.
#[derive(Clone)]
pub struct PgEventBus {
    db: Db,
    bus: String,
    rules: Vec<Rule>,
}

#[derive(Clone)]
struct Rule {
    queue: super::PgQueue,
    queue_name: String,
    detail_types: Vec<String>,
}

impl PgEventBus {
    pub fn new(db: Db, bus: &str) -> Self {
        Self { db, bus: bus.to_owned(), rules: Vec::new() }
    }

    /// Routes events of these detail-types to `queue_name` (as an EventBridge rule with an SQS
    /// target does).
    pub fn with_rule(mut self, queue: super::PgQueue, queue_name: &str, detail_types: &[&str]) -> Self {
        self.rules.push(Rule {
            queue,
            queue_name: queue_name.to_owned(),
            detail_types: detail_types.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// The template's EventBridge rules (WorkflowEventsRule, WebhookEventsRule) on `queue`:
    /// the local runtime's bus and a function's under `PLATFORM=local` route alike.
    pub fn with_template_rules(self, queue: super::PgQueue) -> Self {
        use nextier_domain::{webhook_out, workflow};
        self.with_rule(queue.clone(), workflow::QUEUE, workflow::EVENTS).with_rule(
            queue,
            webhook_out::QUEUE,
            webhook_out::BUS_EVENTS,
        )
    }

    /// The latest events of a detail-type, newest last.
    pub async fn recent(&self, detail_type: &str, limit: i64) -> Result<Vec<DomainEvent>> {
        let conn = self.db.conn().await?;
        let rows = conn
            .query(
                "SELECT source, detail_type, detail FROM (
                    SELECT * FROM local_events WHERE bus = $1 AND detail_type = $2 ORDER BY id DESC LIMIT $3
                 ) e ORDER BY id",
                &[&self.bus, &detail_type, &limit],
            )
            .await
            .map_err(|e| PlatformError::Store(StoreError::Db(e)))?;
        Ok(rows.iter().map(|r| DomainEvent { source: r.get(0), detail_type: r.get(1), detail: r.get(2) }).collect())
    }
}

#[async_trait]
impl EventBus for PgEventBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = conn.transaction().await.map_err(|e| PlatformError::Store(StoreError::Db(e)))?;
        for e in events {
            if !e.detail.is_object() {
                return Err(PlatformError::Invalid("event detail must be a JSON object".into()));
            }
            tx.execute(
                "INSERT INTO local_events (id, bus, source, detail_type, detail) VALUES ($1, $2, $3, $4, $5)",
                &[&ulid::Ulid::new().to_string(), &self.bus, &e.source, &e.detail_type, &e.detail],
            )
            .await
            .map_err(|e| PlatformError::Store(StoreError::Db(e)))?;
        }
        tx.commit().await.map_err(|e| PlatformError::Store(StoreError::Db(e)))?;
        // The rules' queue takes a connection of its own: this one goes back first.
        drop(conn);
        for rule in &self.rules {
            for e in events.iter().filter(|e| rule.detail_types.contains(&e.detail_type)) {
                let envelope = serde_json::json!({
                    "version": "0", "id": ulid::Ulid::new().to_string(), "detail-type": e.detail_type,
                    "source": e.source, "account": "local", "time": chrono::Utc::now(), "region": "local",
                    "resources": [], "detail": e.detail,
                });
                let msg = crate::ports::OutgoingMessage {
                    body: envelope.to_string(),
                    correlation_id: e
                        .detail
                        .get("correlationId")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    team_id: e.detail.get("teamId").and_then(|t| t.as_str()).map(str::to_owned),
                    ..Default::default()
                };
                crate::ports::Queue::send(&rule.queue, &rule.queue_name, msg).await?;
            }
        }
        Ok(())
    }
}
