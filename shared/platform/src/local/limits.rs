//! Token buckets in Postgres for the local runtime: one transaction locks the named buckets
//! (in key order, so two requests never deadlock), decides with the shared math and writes
//! all of them or none.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nextier_domain::rate::{decide, Bucket, Limit, Take};
use nextier_store::{Db, StoreError};

use crate::ports::{check_buckets, RateLimiter, Result};
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
    async fn take(&self, buckets: &[Bucket], cost: i64, now: DateTime<Utc>) -> Result<Take> {
        check_buckets(buckets)?;
        let mut conn = self.db.conn().await.map_err(PlatformError::Store)?;
        let tx = conn.transaction().await.map_err(db)?;
        let keys: Vec<String> = buckets.iter().map(|b| b.key.clone()).collect();
        let expires: Vec<Option<DateTime<Utc>>> = buckets
            .iter()
            .map(|b| match &b.limit {
                Limit::Quota { window_end, .. } => Some(*window_end + Duration::days(1)),
                Limit::Rate { .. } => None,
            })
            .collect();
        tx.execute(
            "INSERT INTO local_rate_buckets (key, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])
             ON CONFLICT (key) DO NOTHING",
            &[&keys, &expires],
        )
        .await
        .map_err(db)?;
        let rows = tx
            .query("SELECT key, value FROM local_rate_buckets WHERE key = ANY($1) ORDER BY key FOR UPDATE", &[&keys])
            .await
            .map_err(db)?;
        let states: Vec<Option<i64>> = keys
            .iter()
            .map(|k| rows.iter().find(|r| r.get::<_, &str>(0) == k).and_then(|r| r.get::<_, Option<i64>>(1)))
            .collect();
        let (take, next) = decide(buckets, &states, cost, now);
        if take == Take::Granted {
            tx.execute(
                "UPDATE local_rate_buckets b SET value = u.v FROM unnest($1::text[], $2::int8[]) AS u(k, v)
                  WHERE b.key = u.k",
                &[&keys, &next],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(take)
    }
}
