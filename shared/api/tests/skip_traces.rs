//! Requesting skip traces over HTTP: bad ids are named, unknown contacts request nothing, a
//! request is accepted with the provider's job id, and the job can be read back.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{harness, As};

const ALICE: As = As::User("alice");
const MALLORY: As = As::User("mallory");

#[tokio::test]
async fn skip_traces_are_requested_for_known_contacts_only() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let url = format!("/teams/{team}/skip-traces");
    let c = h
        .call(&ALICE, "POST", &format!("/teams/{team}/contacts"), Some(json!({"firstName": "Ana", "lastName": "Ruiz"})))
        .await;
    let id = c.body["id"].as_str().unwrap().to_owned();

    let r = h.call(&ALICE, "POST", &url, Some(json!({"contactIds": [id, "x"]}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("contactIds[1]")));
    let r = h.call(&ALICE, "POST", &url, Some(json!({"contactIds": []}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("contactIds")));
    let r = h.call(&ALICE, "POST", &url, Some(json!({"contactIds": [id, "con_01JD8Z6Q3M4N5P6R7S8T9V0W1X"]}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["detail"].as_str().unwrap().contains("contactIds[1]"));
    assert_eq!(h.count("skip_trace_jobs").await, 0, "nothing half-written");

    let r = h.call(&ALICE, "POST", &url, Some(json!({"contactIds": [id, id]}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["providerJobId"].as_str()),
        (Some("requested"), Some("sandbox-job-1"))
    );
    assert_eq!(r.body["contactIds"], json!([id]));
    let job = r.body["id"].as_str().unwrap().to_owned();
    let g = h.call(&ALICE, "GET", &format!("{url}/{job}"), None).await;
    assert_eq!((g.status, g.body["id"].as_str()), (StatusCode::OK, Some(job.as_str())));
    // Another team cannot read it.
    let other = h.team("mallory", "Other").await;
    let r = h.call(&MALLORY, "GET", &format!("/teams/{other}/skip-traces/{job}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
