//! One suite per port, run against both adapters: the local (Postgres / folder) one and the
//! AWS one on the moto emulator. If the local runtime behaves differently from AWS, a test
//! here should say so.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use nextier_platform::aws::{emulator_config, EventBridgeBus, S3BlobStore, SqsQueue};
use nextier_platform::local::{blob_router, FolderBlobStore, PgEventBus, PgQueue, QueueSpec};
use nextier_platform::{BlobStore, DomainEvent, EventBus, OutgoingMessage, Queue};
use nextier_testkit::{moto, TestDb};
use serde_json::json;

const VISIBILITY: Duration = Duration::from_secs(1);
const MAX_RECEIVES: u32 = 3;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn message(body: &str) -> OutgoingMessage {
    OutgoingMessage {
        body: body.to_owned(),
        correlation_id: "corr-1".into(),
        team_id: Some("team_01JD8Z6Q3M4N5P6R7S8T9V0W1X".into()),
        ..Default::default()
    }
}

/// Send, hide, redeliver, count receives, dead-letter: the SQS contract.
async fn queue_suite(q: &dyn Queue, name: &str) {
    q.send(name, message("a")).await.unwrap();
    q.send(name, message("b")).await.unwrap();

    let mut first = q.receive(name, 10).await.unwrap();
    first.sort_by(|x, y| x.body.cmp(&y.body));
    assert_eq!(first.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(first.iter().all(|m| m.receive_count == 1));
    assert_eq!(first[0].attributes.get("correlation_id").map(String::as_str), Some("corr-1"));
    assert_eq!(first[0].attributes.get("team_id").map(String::as_str), Some("team_01JD8Z6Q3M4N5P6R7S8T9V0W1X"));

    assert!(q.receive(name, 10).await.unwrap().is_empty(), "received messages are hidden");

    // Deleted: gone for good. Made visible again: redelivered with a higher receive count.
    q.delete(name, &first[0].receipt_handle).await.unwrap();
    q.change_visibility(name, &first[1].receipt_handle, Duration::ZERO).await.unwrap();
    let again = q.receive(name, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("b", 2));

    // Not deleted within the visibility timeout: redelivered.
    tokio::time::sleep(VISIBILITY + Duration::from_millis(600)).await;
    let third = q.receive(name, 10).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].receive_count, 3);

    // Received MAX_RECEIVES times: the next receive moves it to the dead-letter queue.
    q.change_visibility(name, &third[0].receipt_handle, Duration::ZERO).await.unwrap();
    assert!(q.receive(name, 10).await.unwrap().is_empty());
    let dead = q.receive(&format!("{name}-dlq"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "b");
    assert_eq!(dead[0].attributes.get("correlation_id").map(String::as_str), Some("corr-1"));

    // A delayed message stays hidden until its delay passes.
    let mut delayed = message("later");
    delayed.delay = Duration::from_secs(1);
    q.send(name, delayed).await.unwrap();
    assert!(q.receive(name, 10).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = q.receive(name, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    q.delete(name, &later[0].receipt_handle).await.unwrap();

    // A batch of ten: one result per message, each delivered once with its attributes.
    let batch: Vec<_> = (0..10).map(|i| message(&format!("batch-{i}"))).collect();
    let results = q.send_batch(name, batch).await.unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|id| !id.is_empty())));
    let mut got = Vec::new();
    for _ in 0..5 {
        for m in q.receive(name, 10).await.unwrap() {
            assert_eq!(m.attributes.get("team_id").map(String::as_str), Some("team_01JD8Z6Q3M4N5P6R7S8T9V0W1X"));
            got.push(m.body);
        }
        if got.len() == 10 {
            break;
        }
    }
    got.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("batch-{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // Eleven is more than a batch holds: refused whole.
    let eleven: Vec<_> = (0..11).map(|i| message(&format!("x{i}"))).collect();
    assert!(q.send_batch(name, eleven).await.is_err());
}

#[tokio::test]
async fn postgres_queue_meets_the_queue_contract() {
    let t = TestDb::new().await;
    let q = PgQueue::new(t.db.clone());
    let name = unique("jobs");
    q.declare(&QueueSpec::with_dlq(&name, VISIBILITY, MAX_RECEIVES)).await.unwrap();
    queue_suite(&q, &name).await;
}

#[tokio::test]
async fn postgres_queue_refuses_an_unknown_queue() {
    let t = TestDb::new().await;
    let q = PgQueue::new(t.db.clone());
    let err = q.send("no-such-queue", message("x")).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    attrs[&QueueAttributeName::QueueArn].clone()
}

#[tokio::test]
async fn sqs_queue_meets_the_queue_contract() {
    let endpoint = moto::endpoint().await.unwrap();
    let config = emulator_config(&endpoint);
    let q = SqsQueue::new(&config, "");
    let name = unique("jobs");
    let sqs = q.client();
    let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap();
    let dlq_arn = queue_arn(sqs, &dlq.queue_url.unwrap()).await;
    sqs.create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, VISIBILITY.as_secs().to_string())
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}).to_string(),
        )
        .send()
        .await
        .unwrap();
    queue_suite(&q, &name).await;
}

fn events() -> Vec<DomainEvent> {
    vec![
        DomainEvent {
            source: "nextier".into(),
            detail_type: "TeamCreated".into(),
            detail: json!({"teamId": "t1", "n": 1}),
        },
        DomainEvent {
            source: "nextier".into(),
            detail_type: "TeamCreated".into(),
            detail: json!({"teamId": "t1", "n": 2}),
        },
    ]
}

#[tokio::test]
async fn postgres_event_bus_delivers_what_was_published() {
    let t = TestDb::new().await;
    let bus = PgEventBus::new(t.db.clone(), "default");
    bus.publish(&events()).await.unwrap();
    assert_eq!(bus.recent("TeamCreated", 10).await.unwrap(), events());
    let err = bus
        .publish(&[DomainEvent { source: "nextier".into(), detail_type: "X".into(), detail: json!([1]) }])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("JSON object"));
}

#[tokio::test]
async fn eventbridge_bus_delivers_what_was_published() {
    let endpoint = moto::endpoint().await.unwrap();
    let config = emulator_config(&endpoint);
    let eb = aws_sdk_eventbridge::Client::new(&config);
    let bus_name = unique("bus");
    eb.create_event_bus().name(&bus_name).send().await.unwrap();
    // Observe the bus through a rule that forwards to a queue, as a real subscriber would.
    let sqs = SqsQueue::new(&config, "");
    let tap = unique("tap");
    let tap_url = sqs.client().create_queue().queue_name(&tap).send().await.unwrap().queue_url.unwrap();
    let tap_arn = queue_arn(sqs.client(), &tap_url).await;
    eb.put_rule()
        .name("all")
        .event_bus_name(&bus_name)
        .event_pattern(json!({"source": ["nextier"]}).to_string())
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule("all")
        .event_bus_name(&bus_name)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("tap").arn(tap_arn).build().unwrap())
        .send()
        .await
        .unwrap();

    EventBridgeBus::new(&config, &bus_name).publish(&events()).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..20 {
        for m in sqs.receive(&tap, 10).await.unwrap() {
            let envelope: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            seen.push(DomainEvent {
                source: envelope["source"].as_str().unwrap().to_owned(),
                detail_type: envelope["detail-type"].as_str().unwrap().to_owned(),
                detail: envelope["detail"].clone(),
            });
        }
        if seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.sort_by_key(|e| e.detail["n"].as_i64());
    assert_eq!(seen, events());
}

/// Put, get, delete, and direct upload / download through presigned URLs.
async fn blob_suite(store: &dyn BlobStore) {
    let key = format!("imports/{}/leads.csv", unique("team"));
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.put(&key, Bytes::from_static(b"phone\n+15551234567\n"), "text/csv").await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap(), Bytes::from_static(b"phone\n+15551234567\n"));

    let http = reqwest::Client::new();
    let up_key = format!("uploads/{}.csv", unique("u"));
    let put_url = store.presign_put(&up_key, Duration::from_secs(300), "text/csv").await.unwrap();
    let resp = http.put(&put_url).header("content-type", "text/csv").body("a,b\n1,2\n").send().await.unwrap();
    assert!(resp.status().is_success(), "presigned PUT: {}", resp.status());
    assert_eq!(store.get(&up_key).await.unwrap().unwrap(), Bytes::from_static(b"a,b\n1,2\n"));

    let get_url = store.presign_get(&up_key, Duration::from_secs(300)).await.unwrap();
    let body = http.get(&get_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body, Bytes::from_static(b"a,b\n1,2\n"));

    // Streaming from an offset, as a resumed import reads its file.
    use tokio::io::AsyncReadExt;
    let mut tail = String::new();
    store.open(&key, 6).await.unwrap().unwrap().read_to_string(&mut tail).await.unwrap();
    assert_eq!(tail, "+15551234567\n");
    let mut nothing = Vec::new();
    store.open(&key, 19).await.unwrap().unwrap().read_to_end(&mut nothing).await.unwrap();
    assert!(nothing.is_empty(), "an offset at the end reads nothing");
    assert!(store.open("imports/none.csv", 0).await.unwrap().is_none());

    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(store.put("../escape", Bytes::new(), "text/plain").await.is_err());

    // A multipart upload (an export): parts of at least 5 MiB, nothing at the key until it
    // completes, then the bytes in order; an aborted upload leaves nothing.
    use nextier_platform::ports::{BlobWriter, MIN_PART};
    let big = format!("exports/{}/contacts.csv", unique("team"));
    let mut w = BlobWriter::start(store, &big, "text/csv", MIN_PART).await.unwrap();
    let line = b"0123456789abcdef".repeat(64 * 1024); // 1 MiB
    for _ in 0..6 {
        w.write(&line).await.unwrap();
    }
    w.write(b"tail").await.unwrap();
    assert_eq!(store.get(&big).await.unwrap(), None, "nothing visible before completion");
    assert_eq!(w.finish().await.unwrap(), 6 * 1024 * 1024 + 4);
    let got = store.get(&big).await.unwrap().unwrap();
    assert_eq!(got.len(), 6 * 1024 * 1024 + 4);
    assert!(got.starts_with(b"0123456789abcdef") && got.ends_with(b"cdeftail"));
    let dropped = format!("exports/{}/dropped.csv", unique("team"));
    let mut w = BlobWriter::start(store, &dropped, "text/csv", MIN_PART).await.unwrap();
    w.write(b"a,b\n").await.unwrap();
    w.abort().await.unwrap();
    assert_eq!(store.get(&dropped).await.unwrap(), None);
    store.delete(&big).await.unwrap();
}

async fn serve_local_blobs(dir: &std::path::Path) -> (Arc<FolderBlobStore>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(FolderBlobStore::new(dir, &base, b"test-secret"));
    let app = blob_router(store.clone(), None);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (store, base)
}

#[tokio::test]
async fn folder_blob_store_meets_the_blob_contract() {
    let dir = nextier_testkit::state_dir("blobs").join(unique("run"));
    let (store, _) = serve_local_blobs(&dir).await;
    blob_suite(store.as_ref()).await;
}

#[tokio::test]
async fn folder_blob_urls_are_bound_to_key_method_and_time() {
    let dir = nextier_testkit::state_dir("blobs").join(unique("run"));
    let (store, _) = serve_local_blobs(&dir).await;
    store.put("a/b.csv", Bytes::from_static(b"x"), "text/csv").await.unwrap();
    let http = reqwest::Client::new();
    let url = store.presign_get("a/b.csv", Duration::from_secs(60)).await.unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    // Another key with the same signature, a PUT with a GET signature, a tampered signature.
    assert_eq!(http.get(url.replace("a/b.csv", "a/c.csv")).send().await.unwrap().status(), 403);
    assert_eq!(http.put(&url).body("evil").send().await.unwrap().status(), 403);
    let last = if url.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &url[..url.len() - 1]);
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    let expired = store.presign_get("a/b.csv", Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(http.get(&expired).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn s3_blob_store_meets_the_blob_contract() {
    let endpoint = moto::endpoint().await.unwrap();
    let config = emulator_config(&endpoint);
    let bucket = unique("uploads");
    let store = S3BlobStore::new(&config, &bucket, true);
    store.client().create_bucket().bucket(&bucket).send().await.unwrap();
    blob_suite(&store).await;
}
