//! Reconciling from SignalHouse's notification records against a local fake that speaks the
//! contract (`GET /notification?groupId&status=UNREAD&page&limit`, `PUT /notification/status`):
//! events the webhook missed are recovered, one the webhook delivered is not recorded twice,
//! and a second run finds nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use nextier_inbound::{reconcile, Job, Processed, Processor};
use nextier_outbound::{Gate, SandboxTransport};
use nextier_platform::local::{PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::ManualClock;
use nextier_providers::notifications::{Config, SignalHouseNotifications};
use nextier_providers::retry::Retry;
use nextier_testkit::TestDb;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    /// (id, record, read)
    records: Mutex<Vec<(String, Value, bool)>>,
    queries: Mutex<Vec<std::collections::HashMap<String, String>>>,
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer sh-key")
}

async fn list(
    State(f): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    f.queries.lock().unwrap().push(q.clone());
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let unread = q.get("status").map(String::as_str) == Some("UNREAD");
    let data: Vec<Value> = f
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, read)| !unread || !read)
        .take(limit)
        .map(|(_, r, _)| r.clone())
        .collect();
    Json(json!({"data": data, "total": data.len(), "page": 1})).into_response()
}

async fn mark(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) || body["status"] != "READ" {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let ids: Vec<String> = body["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    for r in f.records.lock().unwrap().iter_mut() {
        if ids.contains(&r.0) {
            r.2 = true;
        }
    }
    Json(json!({"message": "updated"})).into_response()
}

fn notification(id: &str, event: &str, meta: Value) -> (String, Value, bool) {
    (
        id.to_owned(),
        json!({"id": id, "timestamp": "2026-12-02T15:00:00.000Z", "event": event, "identifier": "G1", "metaData": meta}),
        false,
    )
}

#[tokio::test]
async fn missed_events_are_recovered_once() {
    let t = TestDb::new().await;
    let su = t.superuser().await;
    let team = nextier_testkit::fixtures::team(&t, "T").await;
    nextier_testkit::fixtures::sending_number(&t, &team, "+12127363100").await;
    let fake = Arc::new(Fake::default());
    let reply =
        |id: &str, text: &str| json!({"from": "+13126181234", "to": "+12127363100", "text": text, "message_id": id});
    fake.records.lock().unwrap().extend([
        notification("n1", "message.received", reply("sh-1", "yes call me")),
        notification("n2", "message.received", reply("sh-2", "what's the offer?")),
        notification("n3", "brand.add", json!({"brandId": "B1"})),
    ]);
    let app = Router::new()
        .route("/notification", get(list))
        .route("/notification/status", put(mark))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let source = SignalHouseNotifications::new(Config {
        base_url: base,
        api_key: "sh-key".into(),
        group_id: "G1".into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(5),
    });
    let publisher = OutboxPublisher::new(
        t.worker.clone(),
        Arc::new(PgQueue::new(t.db.clone())),
        Arc::new(PgEventBus::new(t.db.clone(), "default")),
    );
    let p = Processor {
        db: t.worker.clone(),
        gate: Arc::new(Gate::sandbox(Arc::new(SandboxTransport::new()))),
        clock: Arc::new(ManualClock::at(chrono::Utc::now())),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    // The webhook did deliver sh-1 (under its own delivery id) before the outage.
    let delivered = Job::Webhook {
        webhook_event_id: "whk_x".into(),
        payload: json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100", "text": "yes call me", "message_id": "sh-1"}),
    };
    assert!(matches!(p.process(&delivered, 1).await.unwrap(), Processed::Received { .. }));

    let s = reconcile::run(&t.worker, &publisher, &source, 5).await.unwrap();
    assert_eq!((s.read, s.recovered), (3, 3));
    assert_eq!(fake.queries.lock().unwrap()[0].get("groupId").map(String::as_str), Some("G1"));
    assert!(fake.records.lock().unwrap().iter().all(|r| r.2), "every record is marked read");
    let jobs = su
        .query("SELECT payload FROM outbox WHERE destination = 'inbound' AND payload->>'kind' = 'webhook' ORDER BY created_at", &[])
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for r in jobs {
        let job: Job = serde_json::from_value(r.get(0)).unwrap();
        outcomes.push(p.process(&job, 1).await.unwrap());
    }
    // (Staged in one transaction, the three jobs share a timestamp: their order is not fixed.)
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Processed::Duplicate)).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Processed::Received { .. })).count(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, Processed::Ignored(e) if e == "brand.add")).count(),
        1,
        "{outcomes:?}"
    );
    let n: i64 = su.query_one("SELECT count(*) FROM messages WHERE direction = 'inbound'", &[]).await.unwrap().get(0);
    assert_eq!(n, 2, "sh-1 once, sh-2 recovered");
    let sources: Vec<String> = su
        .query("SELECT source FROM webhook_events ORDER BY received_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sources, ["reconcile", "reconcile", "reconcile"]);

    // Nothing unread: nothing more.
    let s = reconcile::run(&t.worker, &publisher, &source, 5).await.unwrap();
    assert_eq!((s.read, s.recovered), (0, 0));
    // A notification read again (a crash before marking) is stored once.
    fake.records.lock().unwrap()[1].2 = false;
    let s = reconcile::run(&t.worker, &publisher, &source, 5).await.unwrap();
    assert_eq!((s.read, s.recovered), (1, 0));
}
