mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");

/// A contact whose number is inside its quiet-hours window on the API's clock (the daytime
/// clock), so the test does not depend on when it runs.
async fn reachable_contact(h: &Harness, team: &str) -> (String, String) {
    let number = format!("+1{}5553101", nextier_testkit::fixtures::daytime_area());
    let number = number.as_str();
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": "Ada", "phones": [{"number": number, "type": "mobile"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (r.body["id"].as_str().unwrap().to_owned(), number.to_owned())
}

async fn send(h: &Harness, team: &str, contact: &str, body: &str, key: Option<&str>) -> support::Resp {
    let mut req =
        h.request(&ALICE, "POST", &format!("/teams/{team}/contacts/{contact}/messages"), Some(json!({"body": body})));
    if let Some(k) = key {
        req.headers_mut().insert("idempotency-key", k.parse().unwrap());
    }
    h.send(req).await
}

#[tokio::test]
async fn a_cockpit_text_goes_through_the_gate_once_per_idempotency_key() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let (contact, number) = reachable_contact(&h, &team).await;
    let first = send(&h, &team, &contact, "Hi Ada, it's Alice from Acme.", Some("cockpit-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["status"], "sent");
    assert_eq!(first.body["to"], number.as_str());
    assert_eq!(first.body["segments"], 1);
    assert!(first.body["sentBy"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(first.body["timeline"][0]["status"], "sent");
    // The same request again: the same message, not a second text.
    let again = send(&h, &team, &contact, "Hi Ada, it's Alice from Acme.", Some("cockpit-1")).await;
    assert_eq!((again.status, again.body["id"].clone()), (StatusCode::OK, first.body["id"].clone()));
    assert_eq!(h.sandbox.sent().len(), 1);
    // The same key for something else is refused.
    let other = send(&h, &team, &contact, "Something else", Some("cockpit-1")).await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    let bad = send(&h, &team, &contact, "x", Some("has spaces")).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("Idempotency-Key")));
    let empty = send(&h, &team, &contact, "   ", None).await;
    assert_eq!((empty.status, empty.field()), (StatusCode::BAD_REQUEST, Some("body")));

    let id = first.body["id"].as_str().unwrap();
    let got = h.call(&ALICE, "GET", &format!("/teams/{team}/messages/{id}"), None).await;
    assert_eq!(got.body, first.body);
}

#[tokio::test]
async fn a_suppressed_number_is_refused_and_the_refusal_is_on_the_thread() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let (contact, number) = reachable_contact(&h, &team).await;
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/suppressions"),
            Some(json!({"address": number, "kind": "OPTED_OUT"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let refused = send(&h, &team, &contact, "Hello?", None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["detail"], "not sent: opt_out");
    assert!(h.sandbox.sent().is_empty());
    let thread: Value = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{contact}/messages"), None).await.body;
    assert_eq!(thread["items"][0]["status"], "blocked");
    assert_eq!(thread["items"][0]["error"], "not sent: opt_out");
    // Another team's member sees nothing of it: the contact is not theirs (404, as for a
    // contact that does not exist).
    let other = h.team("eve", "Evil").await;
    let r = h.call(&As::User("eve"), "GET", &format!("/teams/{other}/contacts/{contact}/messages"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body.get("items").is_none());
}

#[tokio::test]
async fn a_retried_send_without_an_idempotency_key_sends_once() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let (contact, _) = reachable_contact(&h, &team).await;
    // The client timed out and sent the same request again, with no key.
    let first = send(&h, &team, &contact, "Hi Ada, are you around today?", None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = send(&h, &team, &contact, "Hi Ada, are you around today?", None).await;
    assert_eq!((again.status, again.body["id"].clone()), (StatusCode::OK, first.body["id"].clone()));
    assert_eq!(h.sandbox.sent().len(), 1, "one text");
    // Another text is another message; so is the same text from another person of the team.
    // (The team's bucket has a burst of 1 at 600 a minute until issue 12: a second text inside
    // the same 100 ms would be held for the rate limit, which is not what this test is about.)
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let other = send(&h, &team, &contact, "And one more thing.", None).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_eq!(h.sandbox.sent().len(), 2);
    let thread: Value = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{contact}/messages"), None).await.body;
    assert_eq!(thread["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_refusal_by_the_carrier_after_delivery_is_a_409_and_its_opt_out_is_kept() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let (contact, number) = reachable_contact(&h, &team).await;
    // The carrier knows of an opt-out we did not: it refuses the text (SignalHouse OUT).
    h.sandbox.opt_out(&number);
    let r = send(&h, &team, &contact, "Hi Ada, it's Alice from Acme.", Some("carrier-out")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("not sent"), "{}", r.body);
    // The refusal is the person's opt-out from now on: the number is suppressed.
    let s = h.call(&ALICE, "GET", &format!("/teams/{team}/suppressions"), None).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let entry = s.body["items"].as_array().unwrap().iter().find(|e| e["address"] == number.as_str()).cloned();
    assert_eq!(entry.map(|e| e["kind"].clone()), Some(json!("OPTED_OUT")), "{}", s.body);
    // The message is on the thread as failed, and a retry with the key answers with it,
    // without asking the carrier again.
    let again = send(&h, &team, &contact, "Hi Ada, it's Alice from Acme.", Some("carrier-out")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "failed");
    let third = send(&h, &team, &contact, "Hi Ada, it's Alice from Acme.", Some("carrier-out")).await;
    assert_eq!((third.status, third.body["id"].clone()), (StatusCode::OK, again.body["id"].clone()));
    assert!(h.sandbox.sent().is_empty());
    // Anything new to the person is refused before any carrier is asked.
    let next = send(&h, &team, &contact, "Another note", Some("carrier-out-2")).await;
    assert_eq!(next.status, StatusCode::CONFLICT, "{}", next.body);
}
