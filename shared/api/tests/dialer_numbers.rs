//! The call queue and the dialer check the exact number they hand out: its own suppression,
//! its do-not-call flag and the quiet hours where it rings, not those of whichever of the
//! contact's numbers happens to come first.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use nextier_inbound::{Job, Processed, Processor};
use nextier_testkit::fixtures::daytime_area as area;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const NUMBER: &str = "+12127363100";

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

/// A team with a receiving number.
async fn team(h: &Harness) -> String {
    let team = h.team("alice", "Acme").await;
    let id = nextier_domain::ids::TeamId::parse("team", &team).unwrap();
    nextier_testkit::fixtures::sending_number(&h.t, &id, NUMBER).await;
    team
}

async fn contact(h: &Harness, team: &str, phones: &[&str]) -> String {
    let phones: Vec<Value> = phones.iter().map(|p| json!({"number": p, "type": "mobile"})).collect();
    let body = json!({"firstName": "Pat", "phones": phones});
    ok(h, &ALICE, "POST", &format!("/teams/{team}/contacts"), Some(body)).await["id"].as_str().unwrap().to_owned()
}

/// A reply asking for a call, from `from`: the inbound consumer queues a call to that number.
async fn reply_wanting_a_call(h: &Harness, from: &str, id: &str) {
    let p = Processor {
        db: h.t.worker.clone(),
        gate: h.state.gate.clone(),
        clock: h.state.clock.clone(),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    let job = Job::Webhook {
        webhook_event_id: format!("whk_{id}"),
        payload: json!({"event": "message.received", "from": from, "to": NUMBER, "text": "Yes! call me at 4", "message_id": id}),
    };
    let out = p.process(&job, 1).await.unwrap();
    assert!(matches!(out, Processed::Received { .. }), "{out:?}");
}

async fn queue(h: &Harness, team: &str, status: &str) -> Vec<Value> {
    let q = ok(h, &ALICE, "GET", &format!("/teams/{team}/call-queue?status={status}"), None).await;
    q["items"].as_array().unwrap().clone()
}

async fn mark_do_not_call(h: &Harness, e164: &str) {
    let n =
        h.t.superuser().await.execute("UPDATE contact_phones SET do_not_call = true WHERE e164 = $1", &[&e164]).await;
    assert_eq!(n.unwrap(), 1);
}

#[tokio::test]
async fn a_queued_call_to_a_suppressed_number_is_skipped_though_another_number_is_callable() {
    let h = harness().await;
    let team = team(&h).await;
    let (first, second) = (format!("+1{}7364101", area()), format!("+1{}7364102", area()));
    let c = contact(&h, &team, &[&first, &second]).await;
    reply_wanting_a_call(&h, &second, "sh-1").await;
    let pending = queue(&h, &team, "pending").await;
    assert_eq!(pending[0]["phone"], second.as_str(), "the reply's number is queued");

    let wrong = json!({"address": second, "kind": "WRONG_NUMBER"});
    ok(&h, &ALICE, "POST", &format!("/teams/{team}/suppressions"), Some(wrong)).await;
    let r = h.call(&ALICE, "POST", &format!("/teams/{team}/call-queue/claim"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the suppressed number is never handed out: {}", r.body);
    let cancelled = queue(&h, &team, "cancelled").await;
    assert_eq!(
        (cancelled[0]["phone"].as_str(), cancelled[0]["lastOutcome"].as_str()),
        (Some(second.as_str()), Some("suppressed: WRONG_NUMBER"))
    );

    // Queued again by hand, the contact is queued on the number that may still be called.
    let r = ok(&h, &ALICE, "POST", &format!("/teams/{team}/call-queue"), Some(json!({"contactId": c, "priority": 50})))
        .await;
    assert_eq!(r["entry"]["phone"], first.as_str());
    let claimed = ok(&h, &ALICE, "POST", &format!("/teams/{team}/call-queue/claim"), None).await;
    assert_eq!(claimed["phone"], first.as_str());
}

#[tokio::test]
async fn a_queued_call_to_a_do_not_call_number_is_skipped() {
    let h = harness().await;
    let team = team(&h).await;
    let (first, second) = (format!("+1{}7364111", area()), format!("+1{}7364112", area()));
    contact(&h, &team, &[&first, &second]).await;
    reply_wanting_a_call(&h, &second, "sh-2").await;
    mark_do_not_call(&h, &second).await;
    let r = h.call(&ALICE, "POST", &format!("/teams/{team}/call-queue/claim"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(queue(&h, &team, "cancelled").await[0]["lastOutcome"], "do_not_call");
}

/// An area code now in its quiet hours, if any of these is (all are in their window only
/// for about an hour a day, around 22:00 UTC).
fn quiet_area() -> Option<&'static str> {
    // On the API's clock (the daytime one).
    let now = nextier_testkit::fixtures::daytime_now();
    ["212", "415", "808", "671", "907", "401", "684"].into_iter().find(|a| {
        let loc = nextier_domain::quiet_hours::locate(&format!("+1{a}7364200"), None);
        !nextier_domain::quiet_hours::allowed(now, &loc)
            && !nextier_domain::quiet_hours::allowed(now + chrono::Duration::minutes(10), &loc)
    })
}

#[tokio::test]
async fn a_queued_call_waits_for_the_quiet_hours_of_its_own_number() {
    let h = harness().await;
    let team = team(&h).await;
    let daytime = format!("+1{}7364121", area());
    let Some(quiet) = quiet_area().map(|a| format!("+1{a}7364200")) else {
        // Every candidate zone is in daytime right now: the rule cannot be shown with the wall
        // clock, but the daytime number must still be callable.
        contact(&h, &team, &[&daytime]).await;
        reply_wanting_a_call(&h, &daytime, "sh-3").await;
        let claimed = ok(&h, &ALICE, "POST", &format!("/teams/{team}/call-queue/claim"), None).await;
        assert_eq!(claimed["phone"], daytime.as_str());
        return;
    };
    contact(&h, &team, &[&daytime, &quiet]).await;
    reply_wanting_a_call(&h, &quiet, "sh-3").await;
    let r = h.call(&ALICE, "POST", &format!("/teams/{team}/call-queue/claim"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{quiet} is in its quiet hours: {}", r.body);
    let pending = queue(&h, &team, "pending").await;
    assert_eq!(pending[0]["phone"], quiet.as_str(), "it waits, it is not cancelled");
    let at: chrono::DateTime<chrono::Utc> = pending[0]["availableAt"].as_str().unwrap().parse().unwrap();
    assert!(at > nextier_testkit::fixtures::daytime_now(), "not before its window opens");
}

#[tokio::test]
async fn a_dialer_session_hands_out_a_callable_number_and_records_the_call_on_it() {
    let h = harness().await;
    let team = team(&h).await;
    let (first, second) = (format!("+1{}7364131", area()), format!("+1{}7364132", area()));
    let (third, fourth) = (format!("+1{}7364133", area()), format!("+1{}7364134", area()));
    let a = contact(&h, &team, &[&first, &second]).await;
    let b = contact(&h, &team, &[&third, &fourth]).await;
    let wrong = json!({"address": first, "kind": "WRONG_NUMBER"});
    ok(&h, &ALICE, "POST", &format!("/teams/{team}/suppressions"), Some(wrong)).await;
    mark_do_not_call(&h, &third).await;

    let url = |rest: &str| format!("/teams/{team}/dialer-sessions{rest}");
    let s = ok(&h, &ALICE, "POST", &url(""), Some(json!({"title": "Numbers", "contactIds": [a, b]}))).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let next = ok(&h, &ALICE, "POST", &url(&format!("/{sid}/next")), None).await;
    assert_eq!((next["contactId"].as_str(), next["phone"].as_str()), (Some(a.as_str()), Some(second.as_str())));
    // The outcome lands on the number called: a wrong number suppresses that one.
    let call = json!({"contactId": a, "outcome": "wrong_number"});
    ok(&h, &ALICE, "POST", &url(&format!("/{sid}/calls")), Some(call)).await;
    let list = ok(&h, &ALICE, "GET", &format!("/teams/{team}/suppressions?limit=100"), None).await;
    let addresses: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|s| s["address"].as_str().unwrap()).collect();
    assert!(addresses.contains(&second.as_str()), "{list}");
    let hist = ok(&h, &ALICE, "GET", &format!("/teams/{team}/call-history?contactId={a}"), None).await;
    assert_eq!(hist[0]["phone"], second.as_str());

    let next = ok(&h, &ALICE, "POST", &url(&format!("/{sid}/next")), None).await;
    assert_eq!((next["contactId"].as_str(), next["phone"].as_str()), (Some(b.as_str()), Some(fourth.as_str())));
    let session = ok(&h, &ALICE, "GET", &url(&format!("/{sid}")), None).await;
    assert_eq!(session["contacts"][1]["phone"], fourth.as_str());
}
