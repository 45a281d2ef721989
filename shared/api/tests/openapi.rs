//! The OpenAPI document is generated from the handlers; these tests keep it complete.

mod support;

use axum::http::StatusCode;
use support::{harness, As};

#[test]
fn the_document_is_openapi_3_1_and_secures_every_team_route() {
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{:?}", paths.keys());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let public = path == "/health" || path == "/openapi.json";
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !public, "{method} {path} security");
            assert!(op["responses"]["500"].is_object(), "{method} {path} documents problems");
            if secured {
                assert!(op["responses"]["401"]["content"]["application/problem+json"].is_object());
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    // A documented path must reach a handler: anything but the router's own 404/405.
    let h = harness().await;
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{teamId}", "team_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{userId}", "usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{invitationId}", "inv_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{keyId}", "key_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{contactId}", "con_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{importId}", "imp_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{scope}", "general")
            .replace("{name}", "greeting");
        for method in item.as_object().unwrap().keys() {
            let r = h.call(&As::User("alice"), &method.to_uppercase(), &concrete, None).await;
            let routed = !(r.status == StatusCode::METHOD_NOT_ALLOWED
                || (r.status == StatusCode::NOT_FOUND && r.body["detail"] == "no route matches this path"));
            assert!(routed, "{method} {path} is documented but not routed ({})", r.status);
        }
    }
}
