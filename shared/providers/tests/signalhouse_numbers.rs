//! The SignalHouse provisioning client against a local fake that speaks the SDK's contract
//! (DOMAIN.md B2): inventory is an exact match in the subgroup (the provider's filter is a
//! partial one), a 404 is "not there", 401/403 are configuration faults, 5xx are retried and
//! then unavailable, and other refusals are refusals.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nextier_platform::ports::numbers::{NumberProvider, ProvisionError, Search};
use nextier_providers::notifications::Config;
use nextier_providers::retry::Retry;
use nextier_providers::signalhouse_numbers::SignalHouseNumbers;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    /// Statuses to answer with before the real answer.
    faults: Mutex<VecDeque<u16>>,
    requests: Mutex<u32>,
    /// (subgroup, digits) the provider lists.
    owned: Mutex<Vec<(String, String)>>,
}

impl Fake {
    fn fault(&self) -> Option<Response> {
        *self.requests.lock().unwrap() += 1;
        let code = self.faults.lock().unwrap().pop_front()?;
        Some((StatusCode::from_u16(code).unwrap(), Json(json!({"message": format!("fault {code}")}))).into_response())
    }
}

async fn numbers(State(f): State<Arc<Fake>>, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Some(r) = f.fault() {
        return r;
    }
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let (subgroup, phone) = (get("subgroupId"), get("phoneNumber"));
    if phone.contains('+') {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "digits only"}))).into_response();
    }
    // A partial match, as the SDK documents.
    let data: Vec<Value> = f
        .owned
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, n)| *s == subgroup && n.contains(&phone))
        .map(|(s, n)| json!({"phoneNumber": n, "subgroupId": s}))
        .collect();
    Json(json!({"data": data})).into_response()
}

async fn subgroup(State(f): State<Arc<Fake>>, Query(q): Query<Vec<(String, String)>>) -> Response {
    if let Some(r) = f.fault() {
        return r;
    }
    if q.iter().any(|(k, v)| k == "id" && v == "sg-1") {
        return Json(json!({"data": [{"subgroupId": "sg-1", "subgroupName": "Acme"}]})).into_response();
    }
    (StatusCode::NOT_FOUND, Json(json!({"message": "no such subgroup"}))).into_response()
}

async fn create(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    if let Some(r) = f.fault() {
        return r;
    }
    if body["groupId"] != "grp-1" {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "unknown group"}))).into_response();
    }
    Json(json!({"data": {"subgroupId": "sg-9", "subgroupName": body["subgroupName"]}})).into_response()
}

async fn purchase(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    if let Some(r) = f.fault() {
        return r;
    }
    let ok =
        body["phoneNumbers"].as_array().is_some_and(|a| a.iter().all(|n| n.as_str().is_some_and(|n| !n.contains('+'))));
    if !ok {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "digits only"}))).into_response();
    }
    Json(json!({"message": "queued"})).into_response()
}

async fn fake() -> (Arc<Fake>, SignalHouseNumbers) {
    let f = Arc::new(Fake::default());
    let app = Router::new()
        .route("/api/v1/number", get(numbers).post(purchase))
        .route("/api/v1/subgroup", get(subgroup).post(create))
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = SignalHouseNumbers::new(Config {
        base_url: url,
        api_key: "k".into(),
        group_id: "grp-1".into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(2),
    });
    (f, client)
}

#[tokio::test]
async fn a_number_is_owned_only_when_listed_exactly_in_the_subgroup() {
    let (f, c) = fake().await;
    f.owned.lock().unwrap().extend([("sg-1".into(), "12125550100".into()), ("sg-2".into(), "12125550200".into())]);
    assert!(c.owns("sg-1", "+12125550100").await.unwrap());
    assert!(!c.owns("sg-1", "+12125550200").await.unwrap(), "another subgroup's number");
    assert!(!c.owns("sg-1", "+12125550101").await.unwrap(), "unknown");
    // The provider's filter is partial: a longer number containing ours is not ours.
    *f.owned.lock().unwrap() = vec![("sg-1".into(), "121255501009".into())];
    assert!(!c.owns("sg-1", "+12125550100").await.unwrap());
}

#[tokio::test]
async fn failures_are_told_apart() {
    let (f, c) = fake().await;
    f.faults.lock().unwrap().push_back(401);
    assert!(matches!(c.owns("sg-1", "+12125550100").await, Err(ProvisionError::Unauthorized(_))));
    f.faults.lock().unwrap().push_back(403);
    assert!(matches!(c.create_subgroup("Acme", "k1").await, Err(ProvisionError::Unauthorized(_))));
    // 5xx is retried, then unavailable.
    let before = *f.requests.lock().unwrap();
    f.faults.lock().unwrap().extend([503, 502]);
    assert!(matches!(c.purchase("sg-1", &["+12125550123".into()], "k2").await, Err(ProvisionError::Unavailable(_))));
    assert_eq!(*f.requests.lock().unwrap() - before, 2);
    // One 500 then success: the retry succeeds.
    f.faults.lock().unwrap().push_back(500);
    assert!(c.purchase("sg-1", &["+12125550123".into()], "k3").await.is_ok());
    // A refusal is a refusal; a 404 is "not there".
    f.faults.lock().unwrap().push_back(422);
    assert!(matches!(c.purchase("sg-1", &["+12125550123".into()], "k4").await, Err(ProvisionError::Refused(_))));
    f.faults.lock().unwrap().push_back(404);
    assert!(!c.owns("sg-1", "+12125550100").await.unwrap());
    assert_eq!(c.subgroup("sg-404").await.unwrap(), None);
    assert_eq!(c.subgroup("sg-1").await.unwrap().unwrap().name.as_deref(), Some("Acme"));
    assert_eq!(c.create_subgroup("Acme (team_1)", "k5").await.unwrap().id, "sg-9");
}

#[tokio::test]
async fn the_available_search_needs_the_endpoint() {
    let (_f, c) = fake().await;
    // This fake has no /number/available: a 404 is an empty search, not an error.
    let found = c.available(&Search { state: Some("NY".into()), npa: None, limit: 5 }).await.unwrap();
    assert!(found.is_empty());
}
