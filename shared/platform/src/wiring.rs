//! Building the adapters once per cold start from the environment. `PLATFORM=local` selects
//! the Postgres-backed adapters (for `cargo lambda watch` and SAM local against the local
//! runtime's database); anything else uses AWS with the Lambda's role.

use std::sync::Arc;

use nextier_store::Db;

use crate::aws::{sdk_config, EventBridgeBus, SqsQueue};
use crate::local::{PgEventBus, PgQueue};
use crate::outbox::OutboxPublisher;
use crate::{EventBus, Queue};

#[derive(Clone)]
pub struct Platform {
    pub queue: Arc<dyn Queue>,
    pub bus: Arc<dyn EventBus>,
}

impl Platform {
    pub async fn from_env(db: &Db) -> Self {
        if std::env::var("PLATFORM").is_ok_and(|p| p == "local") {
            return Self::local(db);
        }
        let config = sdk_config().await;
        let prefix = std::env::var("QUEUE_PREFIX").unwrap_or_default();
        let bus = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "default".into());
        Self { queue: Arc::new(SqsQueue::new(&config, &prefix)), bus: Arc::new(EventBridgeBus::new(&config, &bus)) }
    }

    pub fn local(db: &Db) -> Self {
        Self { queue: Arc::new(PgQueue::new(db.clone())), bus: Arc::new(PgEventBus::new(db.clone(), "default")) }
    }

    pub fn outbox(&self, db: &Db) -> OutboxPublisher {
        OutboxPublisher::new(db.clone(), self.queue.clone(), self.bus.clone())
    }
}
