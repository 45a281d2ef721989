//! Token buckets in DynamoDB: one item per bucket (`pk`, value `v`, version `ver`, and `ttl`
//! for quota windows). A batch of requests reads all its buckets with one TransactGetItems,
//! reserves with the shared math, and writes every bucket it moved in one
//! TransactWriteItems whose conditions check each bucket's version: if another batch got
//! there first the transaction is cancelled and the batch decides again on fresh state. All
//! buckets or none, and never over a limit.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Get, Put, TransactGetItem, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use nextier_domain::rate::{schedule_all, Ask, Limit, Slot};

use crate::ports::{check_asks, RateLimiter, Result};
use crate::PlatformError;

pub struct DynamoRateLimiter {
    client: Client,
    table: String,
}

/// How often a request decides again when others keep winning the race.
const ATTEMPTS: usize = 8;

impl DynamoRateLimiter {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        Self { client: Client::new(config), table: table.to_owned() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn invalid(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Invalid(e.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn reserve(&self, asks: &[Ask], now: DateTime<Utc>, horizon: Duration) -> Result<Vec<Slot>> {
        let all = check_asks(asks)?;
        if all.is_empty() {
            return Ok(vec![]);
        }
        for _ in 0..ATTEMPTS {
            let gets = all
                .iter()
                .map(|b| {
                    let get = Get::builder()
                        .table_name(&self.table)
                        .key("pk", AttributeValue::S(b.key.clone()))
                        .build()
                        .map_err(invalid)?;
                    Ok(TransactGetItem::builder().get(get).build())
                })
                .collect::<Result<Vec<_>>>()?;
            let read = self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets))
                .send()
                .await
                .map_err(super::classify)?;
            let items: Vec<Option<HashMap<String, AttributeValue>>> =
                read.responses.unwrap_or_default().into_iter().map(|r| r.item).collect();
            let item = |i: usize| items.get(i).and_then(|it| it.as_ref());
            let mut states: HashMap<String, Option<i64>> =
                all.iter().enumerate().map(|(i, b)| (b.key.clone(), item(i).and_then(|it| number(it, "v")))).collect();
            let before = states.clone();
            let slots = schedule_all(asks, &mut states, now, horizon);
            let mut writes = Vec::new();
            for (i, b) in all.iter().enumerate() {
                let Some(Some(v)) = states.get(&b.key).filter(|v| before.get(&b.key) != Some(*v)) else { continue };
                let ver = item(i).and_then(|it| number(it, "ver"));
                let mut put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", AttributeValue::S(b.key.clone()))
                    .item("v", AttributeValue::N(v.to_string()))
                    .item("ver", AttributeValue::N((ver.unwrap_or(0) + 1).to_string()));
                if let Limit::Quota { window_end, .. } = &b.limit {
                    put = put.item("ttl", AttributeValue::N((window_end.timestamp() + 86_400).to_string()));
                }
                put = match ver {
                    Some(ver) => put
                        .condition_expression("ver = :ver")
                        .expression_attribute_values(":ver", AttributeValue::N(ver.to_string())),
                    None => put.condition_expression("attribute_not_exists(pk)"),
                };
                writes.push(TransactWriteItem::builder().put(put.build().map_err(invalid)?).build());
            }
            if writes.is_empty() {
                return Ok(slots);
            }
            match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
                Ok(_) => return Ok(slots),
                Err(e) => {
                    let raced = e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception());
                    if !raced {
                        return Err(super::classify(e));
                    }
                    tracing::debug!("rate bucket race; deciding again");
                }
            }
        }
        Err(PlatformError::Unavailable("rate buckets are contended; retry".into()))
    }
}
