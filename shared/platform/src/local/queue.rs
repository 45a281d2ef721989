use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::ports::clock::{Clock, SystemClock};
use chrono::{DateTime, Utc};

use async_trait::async_trait;
use nextier_store::{Db, StoreError};

use crate::ports::{OutgoingMessage, Queue, ReceivedMessage, Result};
use crate::PlatformError;

/// How a local queue behaves; mirrors the SQS queue and redrive policy in template.yaml.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    pub visibility_timeout: Duration,
    /// After this many receives the message goes to `dead_letter_queue` instead.
    pub max_receive_count: Option<u32>,
    pub dead_letter_queue: Option<String>,
}

impl QueueSpec {
    /// A queue with a DLQ named `<name>-dlq`.
    pub fn with_dlq(name: &str, visibility: Duration, max_receive_count: u32) -> Vec<QueueSpec> {
        let dlq = format!("{name}-dlq");
        vec![
            QueueSpec {
                name: dlq.clone(),
                visibility_timeout: visibility,
                max_receive_count: None,
                dead_letter_queue: None,
            },
            QueueSpec {
                name: name.to_owned(),
                visibility_timeout: visibility,
                max_receive_count: Some(max_receive_count),
                dead_letter_queue: Some(dlq),
            },
        ]
    }
}

/// A durable queue in Postgres with SQS semantics: at-least-once, visibility timeout,
/// receive count, dead-letter queue. `FOR UPDATE SKIP LOCKED` lets many pollers share it.
#[derive(Clone)]
pub struct PgQueue {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl PgQueue {
    pub fn new(db: Db) -> Self {
        Self { db, clock: Arc::new(SystemClock) }
    }

    /// Delays and visibility follow `clock` (a simulation moves it; deployed SQS keeps its own).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Creates or updates queues (dead-letter queues first).
    pub async fn declare(&self, specs: &[QueueSpec]) -> Result<()> {
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        for s in specs {
            let vis = s.visibility_timeout.as_secs() as i32;
            let max = s.max_receive_count.map(|m| m as i32);
            conn.execute(
                "INSERT INTO local_queues (name, visibility_timeout, max_receive_count, dead_letter_queue)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET visibility_timeout = excluded.visibility_timeout,
                   max_receive_count = excluded.max_receive_count, dead_letter_queue = excluded.dead_letter_queue",
                &[&s.name, &vis, &max, &s.dead_letter_queue],
            )
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    /// Messages in a queue, visible or not (for tests and the local runtime's status).
    pub async fn depth(&self, queue: &str) -> Result<i64> {
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let row = conn
            .query_one("SELECT count(*) FROM local_queue_messages WHERE queue = $1", &[&queue])
            .await
            .map_err(db)?;
        Ok(row.get(0))
    }
}

fn sqs_delay(d: Duration) -> f64 {
    f64::from(crate::ports::delay_seconds(d))
}

fn db(e: tokio_postgres::Error) -> PlatformError {
    PlatformError::Store(StoreError::Db(e))
}

fn unknown_queue(e: tokio_postgres::Error, queue: &str) -> PlatformError {
    if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
        PlatformError::Invalid(format!("queue {queue} does not exist"))
    } else {
        db(e)
    }
}

#[async_trait]
impl Queue for PgQueue {
    async fn send(&self, queue: &str, msg: OutgoingMessage) -> Result<String> {
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let id = ulid::Ulid::new().to_string();
        let mut attrs: HashMap<String, String> = msg.attributes;
        attrs.insert(nextier_runtime::correlation::ATTRIBUTE.into(), msg.correlation_id);
        if let Some(team) = msg.team_id {
            attrs.insert("team_id".into(), team);
        }
        let attrs = serde_json::to_value(attrs).unwrap_or_default();
        let delay = sqs_delay(msg.delay);
        let now = self.now();
        conn.execute(
            "INSERT INTO local_queue_messages (id, queue, body, attributes, visible_at)
             VALUES ($1, $2, $3, $4, $6::timestamptz + make_interval(secs => $5))",
            &[&id, &queue, &msg.body, &attrs, &delay, &now],
        )
        .await
        .map_err(|e| unknown_queue(e, queue))?;
        Ok(id)
    }

    async fn send_batch(&self, queue: &str, msgs: Vec<OutgoingMessage>) -> Result<Vec<Result<String>>> {
        if msgs.len() > crate::ports::MAX_BATCH {
            return Err(PlatformError::Invalid(format!("a batch holds at most {} messages", crate::ports::MAX_BATCH)));
        }
        if msgs.is_empty() {
            return Ok(vec![]);
        }
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let now = self.now();
        let mut ids = Vec::with_capacity(msgs.len());
        let mut bodies = Vec::with_capacity(msgs.len());
        let mut attrs = Vec::with_capacity(msgs.len());
        let mut delays = Vec::with_capacity(msgs.len());
        for msg in msgs {
            let mut a: HashMap<String, String> = msg.attributes;
            a.insert(nextier_runtime::correlation::ATTRIBUTE.into(), msg.correlation_id);
            if let Some(team) = msg.team_id {
                a.insert("team_id".into(), team);
            }
            ids.push(ulid::Ulid::new().to_string());
            bodies.push(msg.body);
            attrs.push(serde_json::to_value(a).unwrap_or_default());
            delays.push(sqs_delay(msg.delay));
        }
        // One statement: all of the batch or none of it.
        conn.execute(
            "INSERT INTO local_queue_messages (id, queue, body, attributes, visible_at)
             SELECT i, $2, b, a, $6::timestamptz + make_interval(secs => d)
               FROM unnest($1::text[], $3::text[], $4::jsonb[], $5::float8[]) AS u(i, b, a, d)",
            &[&ids, &queue, &bodies, &attrs, &delays, &now],
        )
        .await
        .map_err(|e| unknown_queue(e, queue))?;
        Ok(ids.into_iter().map(Ok).collect())
    }

    async fn receive(&self, queue: &str, max: u32) -> Result<Vec<ReceivedMessage>> {
        let mut conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let now = self.now();
        let tx = conn.transaction().await.map_err(db)?;
        // Like SQS: a visible message already received max_receive_count times is moved to
        // the dead-letter queue instead of being handed out again.
        tx.execute(
            "UPDATE local_queue_messages m
                SET queue = q.dead_letter_queue, receive_count = 0, visible_at = $2, receipt_handle = NULL
               FROM local_queues q
              WHERE q.name = $1 AND m.queue = q.name AND q.dead_letter_queue IS NOT NULL
                AND m.visible_at <= $2 AND m.receive_count >= q.max_receive_count",
            &[&queue, &now],
        )
        .await
        .map_err(db)?;
        let limit = i64::from(max.clamp(1, 10));
        let rows = tx
            .query(
                "WITH ready AS (
                     SELECT id FROM local_queue_messages
                      WHERE queue = $1 AND visible_at <= $3
                      ORDER BY visible_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE local_queue_messages m
                    SET receive_count = m.receive_count + 1,
                        receipt_handle = m.id || ':' || (m.receive_count + 1) || ':' || md5(random()::text),
                        visible_at = $3::timestamptz + make_interval(secs => q.visibility_timeout),
                        first_received_at = coalesce(m.first_received_at, $3)
                   FROM ready, local_queues q
                  WHERE m.id = ready.id AND q.name = m.queue
                 RETURNING m.id, m.receipt_handle, m.body, m.attributes, m.receive_count",
                &[&queue, &limit, &now],
            )
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut out: Vec<ReceivedMessage> = rows
            .iter()
            .map(|r| ReceivedMessage {
                id: r.get(0),
                receipt_handle: r.get(1),
                body: r.get(2),
                attributes: serde_json::from_value(r.get(3)).unwrap_or_default(),
                receive_count: r.get::<_, i32>(4) as u32,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<()> {
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        conn.execute(
            "DELETE FROM local_queue_messages WHERE queue = $1 AND receipt_handle = $2",
            &[&queue, &receipt_handle],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, after: Duration) -> Result<()> {
        let conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let secs = after.as_secs_f64();
        let now = self.now();
        conn.execute(
            "UPDATE local_queue_messages SET visible_at = $4::timestamptz + make_interval(secs => $3)
              WHERE queue = $1 AND receipt_handle = $2",
            &[&queue, &receipt_handle, &secs, &now],
        )
        .await
        .map_err(db)?;
        Ok(())
    }
}
