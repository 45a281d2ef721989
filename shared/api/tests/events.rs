//! The sample events in events/ go through lambda_http's own parser and the admin app, so
//! they stay real and `cargo lambda invoke` with them does what the README says.

mod support;

use axum::body::Body;
use axum::http::StatusCode;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn invoke(h: &support::Harness, file: &str) -> (StatusCode, serde_json::Value) {
    invoke_on(h.app.clone(), file).await
}

async fn invoke_on(app: axum::Router, file: &str) -> (StatusCode, serde_json::Value) {
    let raw = std::fs::read_to_string(nextier_testkit::workspace_root().join("events").join(file)).unwrap();
    let req = lambda_http::request::from_str(&raw).expect("a valid API Gateway event");
    let (parts, body) = req.into_parts();
    let req = axum::http::Request::from_parts(parts, Body::new(body));
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_sample_api_gateway_events_are_answered_as_documented() {
    let h = support::harness().await;
    let (status, body) = invoke(&h, "api-admin-health.json").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));

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

#[tokio::test]
async fn on_the_local_platform_sample_claims_are_kept_and_bad_tokens_refused() {
    // `cargo lambda invoke --data-file events/…` runs the admin function with PLATFORM=local.
    let h = support::harness().await;
    let verifier =
        nextier_http::jwt::JwtVerifier::hs256(b"a-local-secret-a-local-secret!!", "nextier-local", "nextier-api");
    let app = nextier_api::admin_app(h.state.clone(), Some(verifier));
    let (status, _) = invoke_on(app.clone(), "api-admin-create-team.json").await;
    assert_eq!(status, StatusCode::CREATED);
    let mut req = h.request(&support::As::Nobody, "GET", "/teams", None);
    req.headers_mut().insert("authorization", "Bearer not.a.token".parse().unwrap());
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::UNAUTHORIZED);
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
