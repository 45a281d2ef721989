//! The migrate function as a CloudFormation custom resource, against a real PostgreSQL and a
//! local server standing in for the pre-signed response URL: a Create or Update migrates and
//! answers SUCCESS; a migration that fails answers FAILED with the reason (the deploy rolls
//! back); a Delete answers at once and migrates nothing; a response URL that fails once is
//! retried; a hand-made invocation just migrates.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::Router;
use nextier_providers::cloudformation;
use nextier_testkit::TestDb;
use serde_json::{json, Value};

/// What the response URL received: (content type, answer).
type Answers = Arc<Mutex<Vec<(Option<String>, Value)>>>;

#[derive(Clone, Default)]
struct Fake {
    answers: Answers,
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(f): State<Fake>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut fail = f.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let ct = headers.get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned());
    f.answers.lock().unwrap().push((ct, serde_json::from_slice(&body).unwrap()));
    StatusCode::OK
}

async fn fake() -> (String, Fake) {
    let f = Fake::default();
    let app = Router::new().route("/response", put(receive)).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/response"), f)
}

fn event(kind: &str, url: &str) -> Value {
    json!({"RequestType": kind, "ResponseURL": url, "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/nextier-dev/1",
           "RequestId": "req-1", "LogicalResourceId": "Migrations", "ResourceType": "Custom::Migrations",
           "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrate"}})
}

async fn migrate(url: String) -> anyhow::Result<Value> {
    let applied = nextier_store::migrate::run_url(&url, Default::default()).await?;
    Ok(json!({"applied": applied.len().to_string()}))
}

#[tokio::test]
async fn a_deploy_migrates_and_a_failed_migration_fails_the_deploy() {
    let t = TestDb::new().await;
    let (url, f) = fake().await;

    // Create: the migrations run (the test database is already migrated: none to apply).
    let out = cloudformation::handle(event("Create", &url), || migrate(t.superuser_url())).await.unwrap();
    assert_eq!(out["Status"], "SUCCESS");
    let (ct, answer) = f.answers.lock().unwrap().pop().unwrap();
    assert_eq!(ct.as_deref(), Some(""), "the pre-signed URL is signed for no content type");
    assert_eq!(answer["Status"], "SUCCESS");
    assert_eq!(answer["PhysicalResourceId"], cloudformation::PHYSICAL_ID);
    assert_eq!(
        (answer["RequestId"].clone(), answer["LogicalResourceId"].clone()),
        (json!("req-1"), json!("Migrations"))
    );
    assert_eq!(answer["Data"]["applied"], "0");

    // Update against a database that refuses: FAILED, with why, so CloudFormation rolls back.
    let bad = "postgres://nobody@127.0.0.1:1/nextier".to_owned();
    let out = cloudformation::handle(event("Update", &url), || migrate(bad)).await.unwrap();
    assert_eq!(out["Status"], "FAILED");
    let (_, answer) = f.answers.lock().unwrap().pop().unwrap();
    assert_eq!(answer["Status"], "FAILED");
    assert!(!answer["Reason"].as_str().unwrap().is_empty());
    assert_eq!(answer["PhysicalResourceId"], cloudformation::PHYSICAL_ID, "an update never replaces it");

    // Delete: answered at once; the schema outlives the stack and nothing runs.
    let ran = Arc::new(Mutex::new(false));
    let r = ran.clone();
    cloudformation::handle(event("Delete", &url), || async move {
        *r.lock().unwrap() = true;
        Ok(json!({}))
    })
    .await
    .unwrap();
    assert!(!*ran.lock().unwrap());
    assert_eq!(f.answers.lock().unwrap().pop().unwrap().1["Status"], "SUCCESS");

    // The response URL fails once: the answer is sent again, not lost (the deploy would hang).
    *f.fail_first.lock().unwrap() = 1;
    cloudformation::handle(event("Update", &url), || migrate(t.superuser_url())).await.unwrap();
    assert_eq!(f.answers.lock().unwrap().pop().unwrap().1["Status"], "SUCCESS");

    // By hand: it just migrates and says so; nobody is called back.
    let out = cloudformation::handle(json!({}), || migrate(t.superuser_url())).await.unwrap();
    assert_eq!(out, json!({"applied": "0"}));
    assert!(f.answers.lock().unwrap().is_empty());
}
