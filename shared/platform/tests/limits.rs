//! The rate limiter contract, run against DynamoDB (on the moto emulator) and Postgres: both
//! must grant and refuse alike, take all buckets or none, and never over-grant under
//! concurrency.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use chrono::{DateTime, Duration, TimeZone, Utc};
use nextier_domain::rate::{Bucket, Limit, Take};
use nextier_platform::aws::{emulator_config, DynamoRateLimiter};
use nextier_platform::local::PgRateLimiter;
use nextier_platform::RateLimiter;
use nextier_testkit::{moto, TestDb};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap()
}

fn key(prefix: &str, name: &str) -> String {
    format!("{prefix}:{name}")
}

/// `atomic`: whether the backend applies conditional writes atomically under concurrent
/// requests. DynamoDB does; moto's emulator does not (its transactions race across request
/// threads), so on moto the twenty requests run one after another.
async fn suite(l: Arc<dyn RateLimiter>, p: &str, atomic: bool) {
    // A burst of three, then one a second.
    let b = [Bucket::new(key(p, "burst"), Limit::per_minute(60, 3))];
    for _ in 0..3 {
        assert_eq!(l.take(&b, 1, t0()).await.unwrap(), Take::Granted);
    }
    assert_eq!(
        l.take(&b, 1, t0()).await.unwrap(),
        Take::Refused { retry_at: t0() + Duration::seconds(1), bucket: key(p, "burst") }
    );
    assert_eq!(l.take(&b, 1, t0() + Duration::seconds(1)).await.unwrap(), Take::Granted);

    // All buckets or none: a refusal by the tight one leaves the roomy one untouched.
    let roomy = Bucket::new(key(p, "roomy"), Limit::per_minute(60, 2));
    let tight = Bucket::new(key(p, "tight"), Limit::per_minute(60, 1));
    assert_eq!(l.take(std::slice::from_ref(&tight), 1, t0()).await.unwrap(), Take::Granted);
    for _ in 0..3 {
        assert!(matches!(l.take(&[roomy.clone(), tight.clone()], 1, t0()).await.unwrap(), Take::Refused { .. }));
    }
    assert_eq!(
        l.take(std::slice::from_ref(&roomy), 2, t0()).await.unwrap(),
        Take::Granted,
        "the roomy bucket kept its two"
    );

    // A cost of several units (segments), and a quota window.
    let end = t0() + Duration::hours(9);
    let q = [Bucket::new(key(p, "tmo:2026-11-28"), Limit::Quota { limit: 5, window_end: end })];
    assert_eq!(l.take(&q, 3, t0()).await.unwrap(), Take::Granted);
    assert_eq!(l.take(&q, 3, t0()).await.unwrap(), Take::Refused { retry_at: end, bucket: key(p, "tmo:2026-11-28") });
    assert_eq!(l.take(&q, 2, t0()).await.unwrap(), Take::Granted);

    // Twenty at once against a burst of five at the same instant: exactly five.
    let c = vec![Bucket::new(key(p, "race"), Limit::per_minute(1, 5))];
    let mut granted = 0;
    if atomic {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (l, c) = (l.clone(), c.clone());
                tokio::spawn(async move { l.take(&c, 1, t0()).await })
            })
            .collect();
        for t in tasks {
            // A request that kept losing the race may give up (Unavailable); it never over-grants.
            if let Ok(Take::Granted) = t.await.unwrap() {
                granted += 1;
            }
        }
    } else {
        for _ in 0..20 {
            if l.take(&c, 1, t0()).await.unwrap() == Take::Granted {
                granted += 1;
            }
        }
    }
    assert_eq!(granted, 5);

    // The same bucket named twice is refused as a request error.
    assert!(l.take(&[b[0].clone(), b[0].clone()], 1, t0()).await.is_err());
}

#[tokio::test]
async fn postgres_buckets_meet_the_limiter_contract() {
    let t = TestDb::new().await;
    suite(Arc::new(PgRateLimiter::new(t.db.clone())), "pg", true).await;
}

#[tokio::test]
async fn dynamodb_buckets_meet_the_limiter_contract() {
    let endpoint = moto::endpoint().await.unwrap();
    let config = emulator_config(&endpoint);
    let table = format!("buckets-{}", ulid::Ulid::new().to_string().to_lowercase());
    let l = DynamoRateLimiter::new(&config, &table);
    l.client()
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    suite(Arc::new(l), "ddb", false).await;
}

/// Ten simulated minutes against a 75-a-minute bucket with no burst: never more than 75 in a
/// minute, and every slot used.
#[tokio::test]
async fn seventy_five_a_minute_for_ten_minutes_on_postgres() {
    let t = TestDb::new().await;
    let l = PgRateLimiter::new(t.db.clone());
    let b = [Bucket::new("att:campaign", Limit::per_minute(75, 1))];
    let mut now = t0();
    let mut per_minute = [0u32; 10];
    while now < t0() + Duration::minutes(10) {
        match l.take(&b, 1, now).await.unwrap() {
            Take::Granted => per_minute[((now - t0()).num_seconds() / 60) as usize] += 1,
            Take::Refused { retry_at, .. } => now = retry_at,
        }
    }
    assert_eq!(per_minute, [75; 10]);
}
