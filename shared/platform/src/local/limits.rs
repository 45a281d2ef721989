//! Token buckets in Postgres for the local runtime: one transaction locks the named buckets
//! (in key order, so two requests never deadlock), decides with the shared math and writes
//! all of them or none.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use nextier_domain::rate::{schedule_all, Ask, Limit, Slot};
use nextier_store::{Db, StoreError};

use crate::ports::{check_asks, RateLimiter, Result};
use crate::PlatformError;

#[derive(Clone)]
pub struct PgRateLimiter {
    db: Db,
}

impl PgRateLimiter {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn db(e: tokio_postgres::Error) -> PlatformError {
    PlatformError::Store(StoreError::Db(e))
}

#[async_trait]
impl RateLimiter for PgRateLimiter {
    async fn reserve(&self, asks: &[Ask], now: DateTime<Utc>, horizon: Duration) -> Result<Vec<Slot>> {
        let all = check_asks(asks)?;
        if all.is_empty() {
            return Ok(vec![]);
        }
        let mut conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let tx = conn.transaction().await.map_err(db)?;
        let keys: Vec<String> = all.iter().map(|b| b.key.clone()).collect();
        let expires: Vec<Option<DateTime<Utc>>> = all
            .iter()
            .map(|b| match &b.limit {
                Limit::Quota { window_end, .. } => Some(*window_end + Duration::days(1)),
                Limit::Rate { .. } => None,
            })
            .collect();
        // One round trip: create the missing buckets and lock all of them, in key order (so two
        // batches never deadlock), reading their states.
        let rows = tx
            .query(
                "INSERT INTO local_rate_buckets (key, expires_at)
                 SELECT * FROM unnest($1::text[], $2::timestamptz[])
                 ON CONFLICT (key) DO UPDATE SET key = excluded.key
                 RETURNING key, value",
                &[&keys, &expires],
            )
            .await
            .map_err(db)?;
        let mut states: HashMap<String, Option<i64>> =
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<i64>>(1))).collect();
        let before = states.clone();
        let slots = schedule_all(asks, &mut states, now, horizon);
        let (changed, values): (Vec<String>, Vec<i64>) =
            states.into_iter().filter(|(k, v)| before.get(k) != Some(v)).filter_map(|(k, v)| Some((k, v?))).unzip();
        if !changed.is_empty() {
            tx.execute(
                "UPDATE local_rate_buckets b SET value = u.v FROM unnest($1::text[], $2::int8[]) AS u(k, v)
                  WHERE b.key = u.k",
                &[&changed, &values],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(slots)
    }
}
