//! The sample events in events/ go through lambda_http's own parser and the admin app, so
//! they stay real and `cargo lambda invoke` with them does what the README says.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn invoke(h: &support::Harness, file: &str) -> (StatusCode, serde_json::Value) {
    let raw = std::fs::read_to_string(nextier_testkit::workspace_root().join("events").join(file))
        .unwrap();
    let req = lambda_http::request::from_str(&raw).expect("a valid API Gateway event");
    let (parts, body) = req.into_parts();
    let req = axum::http::Request::from_parts(parts, Body::new(body));
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_sample_api_gateway_events_are_answered_as_documented() {
    let h = support::harness().await;
    let (status, body) = invoke(&h, "api-admin-health.json").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    let (status, team) = invoke(&h, "api-admin-create-team.json").await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    assert_eq!(team["name"], "Acme Roofing");

    let (status, list) = invoke(&h, "api-admin-list-teams.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["id"], team["id"]);

    let (status, problem) = invoke(&h, "api-admin-invalid-body.json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["errors"][0]["field"], "name");
    assert_eq!(problem["correlationId"], "sample-post-teams");
}

#[test]
fn every_function_has_a_sample_event() {
    let root = nextier_testkit::workspace_root();
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let has = std::fs::read_dir(root.join("events"))
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(&name));
        assert!(has, "functions/{name} has no sample event in events/");
    }
}
