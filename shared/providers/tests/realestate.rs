//! The RealEstateAPI skip-trace client against a local fake speaking its contract:
//! `POST /SkipTrace/Bulk` with `x-api-key`, `{inputs, webhookUrl}` → `{jobId}`; 503 retried,
//! a refusal is an error naming the status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use nextier_platform::ports::skip_tracer::{SkipTracer, TraceInput};
use nextier_providers::realestate::{Config, RealEstateApi};
use nextier_providers::retry::Retry;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Value>>,
    down: Mutex<u32>,
}

async fn bulk(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    {
        let mut d = f.down.lock().unwrap();
        if *d > 0 {
            *d -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
        }
    }
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("rea-key") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid API key"}))).into_response();
    }
    if body["inputs"].as_array().is_none_or(|i| i.is_empty()) || body["webhookUrl"].as_str().is_none() {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "inputs and webhookUrl are required"})))
            .into_response();
    }
    f.seen.lock().unwrap().push(body);
    Json(json!({"jobId": "job-77", "status": "queued", "count": 1})).into_response()
}

#[tokio::test]
async fn a_bulk_trace_is_requested_with_the_callback_and_retried_through_an_outage() {
    let f = Arc::new(Fake::default());
    let app = Router::new().route("/v2/SkipTrace/Bulk", post(bulk)).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = |key: &str| {
        RealEstateApi::new(Config {
            base_url: base.clone(),
            api_key: key.into(),
            retry: Retry { attempts: 3, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50) },
            timeout: Duration::from_secs(5),
        })
    };
    let input = TraceInput {
        key: "con_1".into(),
        first_name: Some("Ana".into()),
        last_name: Some("Ruiz".into()),
        address: Some("12 Oak St".into()),
        city: Some("Tampa".into()),
        state: Some("FL".into()),
        zip: Some("33602".into()),
        phone: None,
        email: None,
    };
    *f.down.lock().unwrap() = 1;
    let job = client("rea-key")
        .bulk(std::slice::from_ref(&input), "https://hooks.example.com/webhooks/skip-trace/tok")
        .await
        .unwrap();
    assert_eq!(job, "job-77");
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["webhookUrl"], "https://hooks.example.com/webhooks/skip-trace/tok");
    assert_eq!(
        (seen[0]["inputs"][0]["key"].as_str(), seen[0]["inputs"][0]["zip"].as_str()),
        (Some("con_1"), Some("33602"))
    );
    let e = client("wrong").bulk(&[input], "https://x").await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
}
