//! The call queue and power-dialer sessions over HTTP: eligibility, priority order, claims
//! that respect opt-outs and quiet hours, outcomes and their effects, history.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");

use nextier_testkit::fixtures::daytime_area as area;

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

async fn contact(h: &Harness, team: &str, n: u32, tags: &[&str], score: i32) -> String {
    let phone = format!("+1{}73631{n:02}", area());
    let body = json!({"firstName": format!("C{n}"), "phones": [{"number": phone, "type": "mobile"}], "tags": tags, "score": score});
    ok(h, &ALICE, "POST", &format!("/teams/{team}/contacts"), Some(body)).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_queue_follows_the_rules_and_hands_out_only_callable_numbers() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "bob", "MEMBER").await;
    let url = |rest: &str| format!("/teams/{team}{rest}");
    let gold = contact(&h, &team, 1, &["gold_label"], 10).await;
    let green = contact(&h, &team, 2, &["responded"], 10).await;
    let scored = contact(&h, &team, 3, &[], 60).await;
    let plain = contact(&h, &team, 4, &[], 10).await;
    let opted = contact(&h, &team, 5, &["gold_label"], 90).await;
    ok(
        &h,
        &ALICE,
        "POST",
        &url("/suppressions"),
        Some(json!({"address": format!("+1{}7363105", area()), "kind": "OPTED_OUT"})),
    )
    .await;

    let queue_url = url("/call-queue");
    let push = |c: &str, priority: Option<i32>| {
        let mut b = json!({"contactId": c});
        if let Some(p) = priority {
            b["priority"] = json!(p);
        }
        h.call(&ALICE, "POST", &queue_url, Some(b))
    };
    let r = push(&gold, None).await;
    assert_eq!(
        (r.status, r.body["entry"]["priority"].as_i64(), r.body["entry"]["reason"].as_str()),
        (StatusCode::CREATED, Some(100), Some("gold_label"))
    );
    let r = push(&green, None).await;
    assert_eq!(
        (r.body["entry"]["priority"].as_i64(), r.body["entry"]["reason"].as_str()),
        (Some(75), Some("green_tag"))
    );
    let r = push(&scored, None).await;
    assert_eq!(r.body["entry"]["reason"], "score_threshold");
    let r = push(&plain, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["detail"].as_str().unwrap().contains("no_qualifying_signal"));
    let r = push(&plain, Some(30)).await;
    assert_eq!((r.status, r.body["entry"]["reason"].as_str()), (StatusCode::CREATED, Some("manual")));
    let r = push(&opted, Some(500)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "an opted-out contact is never queued, even by hand");
    let r = push(&gold, None).await;
    assert_eq!((r.status, r.body["created"].as_bool()), (StatusCode::OK, Some(false)), "one open entry per contact");
    let r = push(&gold, Some(2000)).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("priority")));

    let q = ok(&h, &ALICE, "GET", &url("/call-queue"), None).await;
    let prios: Vec<i64> = q["items"].as_array().unwrap().iter().map(|e| e["priority"].as_i64().unwrap()).collect();
    assert_eq!(prios, [100, 75, 75, 30]);

    // Claims go highest first; a retryable outcome returns the entry for later.
    let c = ok(&h, &BOB, "POST", &url("/call-queue/claim"), None).await;
    assert_eq!(c["contactId"], gold.as_str());
    let id = c["id"].as_str().unwrap().to_owned();
    let r = h
        .call(&ALICE, "POST", &url(&format!("/call-queue/{id}/complete")), Some(json!({"outcome": "no_answer"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "only the claimant completes");
    let r =
        h.call(&BOB, "POST", &url(&format!("/call-queue/{id}/complete")), Some(json!({"outcome": "hung_up"}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("outcome")));
    let e = ok(
        &h,
        &BOB,
        "POST",
        &url(&format!("/call-queue/{id}/complete")),
        Some(json!({"outcome": "no_answer", "durationSeconds": 0})),
    )
    .await;
    assert_eq!((e["status"].as_str(), e["attempts"].as_i64()), (Some("pending"), Some(1)));
    // Not before the retry time: the next claim is someone else.
    let c2 = ok(&h, &BOB, "POST", &url("/call-queue/claim"), None).await;
    assert_ne!(c2["contactId"], gold.as_str());
    let id2 = c2["id"].as_str().unwrap().to_owned();
    let booked = ok(
        &h,
        &BOB,
        "POST",
        &url(&format!("/call-queue/{id2}/complete")),
        Some(json!({"outcome": "appointment_booked", "notes": "Tue 3pm", "durationSeconds": 240})),
    )
    .await;
    assert_eq!(booked["status"], "completed");
    let booked_contact = c2["contactId"].as_str().unwrap();
    let hist = ok(&h, &ALICE, "GET", &url(&format!("/call-history?contactId={booked_contact}")), None).await;
    assert_eq!(
        (hist[0]["outcome"].as_str(), hist[0]["notes"].as_str(), hist[0]["durationSeconds"].as_i64()),
        (Some("appointment_booked"), Some("Tue 3pm"), Some(240))
    );

    // A contact who opts out after being queued is cancelled at claim time, never handed out.
    let c3 = ok(&h, &BOB, "POST", &url("/call-queue/claim"), None).await;
    let id3 = c3["id"].as_str().unwrap().to_owned();
    ok(&h, &BOB, "POST", &url(&format!("/call-queue/{id3}/complete")), Some(json!({"outcome": "wrong_number"}))).await;
    let s = ok(&h, &ALICE, "GET", &url("/suppressions"), None).await;
    assert!(s["items"].as_array().unwrap().iter().any(|x| x["kind"] == "WRONG_NUMBER"), "{s}");
    ok(
        &h,
        &ALICE,
        "POST",
        &url("/suppressions"),
        Some(json!({"address": format!("+1{}7363104", area()), "kind": "LEGAL_DNC"})),
    )
    .await;
    let r = h.call(&BOB, "POST", &url("/call-queue/claim"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let cancelled = ok(&h, &ALICE, "GET", &url("/call-queue?status=cancelled"), None).await;
    assert_eq!(cancelled["items"][0]["contactId"], plain.as_str());
    assert_eq!(cancelled["items"][0]["lastOutcome"], "suppressed: LEGAL_DNC");

    let hist = ok(&h, &ALICE, "GET", &url(&format!("/call-history?contactId={gold}")), None).await;
    assert_eq!(hist.as_array().unwrap().len(), 1);
    assert_eq!(hist[0]["outcome"], "no_answer");
    let all = ok(&h, &ALICE, "GET", &url("/call-history"), None).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_dialer_session_walks_its_list_skipping_who_may_not_be_called() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let url = |rest: &str| format!("/teams/{team}{rest}");
    let a = contact(&h, &team, 1, &[], 10).await;
    let b = contact(&h, &team, 2, &[], 10).await;
    let c = contact(&h, &team, 3, &[], 10).await;
    ok(
        &h,
        &ALICE,
        "POST",
        &url("/suppressions"),
        Some(json!({"address": format!("+1{}7363102", area()), "kind": "OPTED_OUT"})),
    )
    .await;

    let r = h
        .call(&ALICE, "POST", &url("/dialer-sessions"), Some(json!({"title": "Tuesday", "contactIds": [a, "nope"]})))
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("contactIds[1]")));
    let r = h
        .call(
            &ALICE,
            "POST",
            &url("/dialer-sessions"),
            Some(json!({"title": "Tuesday", "contactIds": [a, "con_01JD8Z6Q3M4N5P6R7S8T9V0W1X"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.count("dialer_sessions").await, 0, "nothing half-written");

    let s =
        ok(&h, &ALICE, "POST", &url("/dialer-sessions"), Some(json!({"title": "Tuesday", "contactIds": [a, b, c, a]})))
            .await;
    assert_eq!(s["contacts"].as_array().unwrap().len(), 3);
    let sid = s["id"].as_str().unwrap().to_owned();
    let next = ok(&h, &ALICE, "POST", &url(&format!("/dialer-sessions/{sid}/next")), None).await;
    assert_eq!(next["contactId"], a.as_str());
    let r = h
        .call(
            &ALICE,
            "POST",
            &url(&format!("/dialer-sessions/{sid}/calls")),
            Some(json!({"contactId": c, "outcome": "connected"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "only the contact handed out can be recorded");
    ok(
        &h,
        &ALICE,
        "POST",
        &url(&format!("/dialer-sessions/{sid}/calls")),
        Some(json!({"contactId": a, "outcome": "connected", "durationSeconds": 65})),
    )
    .await;
    // b opted out: skipped on the way to c.
    let next = ok(&h, &ALICE, "POST", &url(&format!("/dialer-sessions/{sid}/next")), None).await;
    assert_eq!((next["contactId"].as_str(), next["skipped"][0].as_str()), (Some(c.as_str()), Some(b.as_str())));
    ok(
        &h,
        &ALICE,
        "POST",
        &url(&format!("/dialer-sessions/{sid}/calls")),
        Some(json!({"contactId": c, "outcome": "voicemail"})),
    )
    .await;
    let r = h.call(&ALICE, "POST", &url(&format!("/dialer-sessions/{sid}/next")), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let s = ok(&h, &ALICE, "GET", &url(&format!("/dialer-sessions/{sid}")), None).await;
    assert_eq!(s["status"], "finished");
    let statuses: Vec<&str> = s["contacts"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["called", "skipped", "called"]);
    assert_eq!(s["contacts"][1]["skipReason"], "opt_out");
    assert_eq!(h.count("call_history").await, 2);
}
