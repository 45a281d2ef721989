//! The transactional outbox: what a transaction stages is published once it commits, never
//! when it rolls back, and the sweeper delivers what an outage left behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nextier_domain::ids::TeamId;
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::Result;
use nextier_platform::{OutgoingMessage, PlatformError, Queue, ReceivedMessage};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, Scope};
use nextier_testkit::TestDb;
use serde_json::json;

/// A queue that can be switched off, to play an SQS outage.
struct Flaky {
    inner: PgQueue,
    down: AtomicBool,
}

#[async_trait]
impl Queue for Flaky {
    async fn send(&self, queue: &str, msg: OutgoingMessage) -> Result<String> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PlatformError::Unavailable("simulated outage".into()));
        }
        self.inner.send(queue, msg).await
    }
    async fn send_batch(&self, queue: &str, msgs: Vec<OutgoingMessage>) -> Result<Vec<Result<String>>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(PlatformError::Unavailable("simulated outage".into()));
        }
        self.inner.send_batch(queue, msgs).await
    }
    async fn receive(&self, queue: &str, max: u32) -> Result<Vec<ReceivedMessage>> {
        self.inner.receive(queue, max).await
    }
    async fn delete(&self, queue: &str, receipt: &str) -> Result<()> {
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(&self, queue: &str, receipt: &str, after: Duration) -> Result<()> {
        self.inner.change_visibility(queue, receipt, after).await
    }
}

struct Fixture {
    t: TestDb,
    queue: Arc<Flaky>,
    bus: PgEventBus,
    publisher: OutboxPublisher,
}

/// The worker's publisher (the sweeper's, and the consumers'), which stages rows of any team.
async fn fixture() -> Fixture {
    let t = TestDb::new().await;
    let pg = PgQueue::new(t.db.clone());
    pg.declare(&QueueSpec::with_dlq("work", Duration::from_secs(30), 5)).await.unwrap();
    let queue = Arc::new(Flaky { inner: pg, down: AtomicBool::new(false) });
    let bus = PgEventBus::new(t.db.clone(), "default");
    let publisher = OutboxPublisher::new(t.worker.clone(), queue.clone(), Arc::new(bus.clone()));
    Fixture { t, queue, bus, publisher }
}

fn staged(dest: Destination, n: i64) -> OutboxMessage {
    OutboxMessage {
        team: Some(TeamId::new()),
        destination: dest,
        payload: json!({"n": n}),
        correlation_id: "corr-outbox".into(),
        dedupe_key: None,
    }
}

#[tokio::test]
async fn committed_rows_are_published_with_their_correlation_id() {
    let f = fixture().await;
    let mut conn = f.t.worker.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    let q = outbox::stage(&tx, &staged(Destination::Queue("work".into()), 1)).await.unwrap().unwrap();
    let e = outbox::stage(&tx, &staged(Destination::Event("ThingHappened".into()), 2)).await.unwrap().unwrap();
    tx.commit().await.unwrap();

    let report = f.publisher.publish(&[q.clone(), e]).await;
    assert_eq!((report.published, report.failed), (2, 0));

    let msgs = f.queue.receive("work", 10).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body, r#"{"n":1}"#);
    assert_eq!(msgs[0].attributes["correlation_id"], "corr-outbox");
    assert_eq!(msgs[0].attributes["outbox_id"], q.to_string());
    let events = f.bus.recent("ThingHappened", 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["data"], json!({"n": 2}));
    assert_eq!(events[0].detail["correlationId"], "corr-outbox");

    // Publishing again delivers nothing twice.
    assert_eq!(f.publisher.publish(&[q]).await.published, 0);
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 0);
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let f = fixture().await;
    let mut conn = f.t.worker.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    let id = outbox::stage(&tx, &staged(Destination::Queue("work".into()), 1)).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(f.publisher.publish(&[id]).await.published, 0);
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 0);
    assert_eq!(f.queue.inner.depth("work").await.unwrap(), 0);
}

#[tokio::test]
async fn the_sweeper_delivers_what_an_outage_left_behind() {
    let f = fixture().await;
    f.queue.down.store(true, Ordering::SeqCst);
    let mut conn = f.t.worker.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    let id = outbox::stage(&tx, &staged(Destination::Queue("work".into()), 7)).await.unwrap().unwrap();
    tx.commit().await.unwrap();

    let report = f.publisher.publish(std::slice::from_ref(&id)).await;
    assert_eq!((report.published, report.failed), (0, 1));
    let admin = f.t.superuser().await;
    let row = admin
        .query_one("SELECT attempts, last_error, published_at IS NULL FROM outbox WHERE id = $1", &[&id.as_str()])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert!(row.get::<_, String>(1).contains("simulated outage"));
    assert!(row.get::<_, bool>(2));

    // Service back; the row's backoff has not passed yet, so the sweeper waits for it.
    f.queue.down.store(false, Ordering::SeqCst);
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 0);
    admin.execute("UPDATE outbox SET available_at = now() WHERE id = $1", &[&id.as_str()]).await.unwrap();
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 1);
    assert_eq!(f.queue.receive("work", 10).await.unwrap()[0].body, r#"{"n":7}"#);
}

#[tokio::test]
async fn a_dedupe_key_stages_one_row_only() {
    let f = fixture().await;
    let mut conn = f.t.worker.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    let mut msg = staged(Destination::Queue("work".into()), 1);
    msg.dedupe_key = Some("import-42-start".into());
    assert!(outbox::stage(&tx, &msg).await.unwrap().is_some());
    assert!(outbox::stage(&tx, &msg).await.unwrap().is_none());
    tx.commit().await.unwrap();
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 1);
}

#[tokio::test]
async fn concurrent_sweepers_never_publish_a_row_twice() {
    let f = fixture().await;
    let mut conn = f.t.worker.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    for n in 0..40 {
        outbox::stage(&tx, &staged(Destination::Queue("work".into()), n)).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (a, b, c) = tokio::join!(f.publisher.sweep(15), f.publisher.sweep(15), f.publisher.sweep(15));
    let total = a.unwrap().published + b.unwrap().published + c.unwrap().published;
    let rest = f.publisher.sweep(100).await.unwrap().published;
    assert_eq!(total + rest, 40);
    assert_eq!(f.queue.inner.depth("work").await.unwrap(), 40);
}

#[tokio::test]
async fn the_api_role_publishes_what_it_staged_and_leaves_the_rest_to_the_sweeper() {
    let f = fixture().await;
    let api = OutboxPublisher::new(f.t.db.clone(), f.queue.clone(), Arc::new(f.bus.clone()));
    let team = nextier_testkit::fixtures::team(&f.t, "alpha").await;
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await.unwrap();
    let mut msg = staged(Destination::Queue("work".into()), 1);
    msg.team = Some(team.clone());
    let first = outbox::stage(&tx, &msg).await.unwrap().unwrap();
    let second = outbox::stage(&tx, &msg).await.unwrap().unwrap();
    tx.commit().await.unwrap();

    assert_eq!(api.publish(std::slice::from_ref(&first)).await.published, 1);
    assert_eq!(f.queue.receive("work", 10).await.unwrap().len(), 1);
    // A failed first attempt is not the API's to retry, and draining every team's rows is
    // not its job at all: the sweeper (the worker role) delivers it.
    f.queue.down.store(true, Ordering::SeqCst);
    assert_eq!(api.publish(std::slice::from_ref(&second)).await.failed, 1);
    f.queue.down.store(false, Ordering::SeqCst);
    assert_eq!(api.publish(std::slice::from_ref(&second)).await.published, 0);
    assert!(api.sweep(100).await.is_err(), "the API role cannot sweep");
    f.t.superuser()
        .await
        .execute("UPDATE outbox SET available_at = now() WHERE id = $1", &[&second.as_str()])
        .await
        .unwrap();
    assert_eq!(f.publisher.sweep(100).await.unwrap().published, 1);
    assert_eq!(f.queue.inner.depth("work").await.unwrap(), 2);
}

/// A function's whole pool held by its request (one connection here), as a handler holds its
/// transaction's while it publishes after commit: the publisher and the Postgres-backed local
/// adapters (`PLATFORM=local`, as cargo lambda watch runs a function) have pools of their own,
/// so the rows still go out at once instead of waiting out the pool's timeout.
#[tokio::test]
async fn publishing_never_needs_a_connection_the_request_holds() {
    let t = TestDb::new().await;
    PgQueue::new(t.worker.clone()).declare(&QueueSpec::with_dlq("work", Duration::from_secs(30), 5)).await.unwrap();
    let db = nextier_store::Db::connect(&t.worker_url(), 1).unwrap();
    let platform = nextier_platform::wiring::Platform::local(&db);
    let publisher = platform.outbox(&db);

    let mut held = db.conn().await.unwrap();
    let tx = scope::begin(&mut held, &Scope::default()).await.unwrap();
    let q = outbox::stage(&tx, &staged(Destination::Queue("work".into()), 1)).await.unwrap().unwrap();
    let e = outbox::stage(&tx, &staged(Destination::Event("ThingHappened".into()), 2)).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    // `held` (the pool's only connection) is still out while the rows are published.
    let report = publisher.publish(&[q, e]).await;
    assert_eq!((report.published, report.failed), (2, 0));
    use nextier_domain::rate::{Bucket, Limit, Take};
    let bucket = Bucket::new("held-pool", Limit::per_minute(60, 1));
    let took = platform.limiter.take(&[bucket], 1, chrono::Utc::now()).await.unwrap();
    assert!(matches!(took, Take::Granted), "the local token buckets answer too");
    drop(held);
    assert_eq!(platform.queue.receive("work", 10).await.unwrap().len(), 1);
}
