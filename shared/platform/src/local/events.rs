use async_trait::async_trait;
use nextier_store::{Db, StoreError};

use crate::ports::{DomainEvent, EventBus, Result};
use crate::PlatformError;

/// The event bus as a Postgres table, readable with `recent` (and psql) while developing.
#[derive(Clone)]
pub struct PgEventBus {
    db: Db,
    bus: String,
}

impl PgEventBus {
    pub fn new(db: Db, bus: &str) -> Self {
        Self { db, bus: bus.to_owned() }
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
        Ok(())
    }
}
