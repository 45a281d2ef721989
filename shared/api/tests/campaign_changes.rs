//! A campaign cannot be changed behind its approver's back: after approval, changing its
//! sending rate, exit rules or schedule sends it back to STAGED; while RUNNING only an ADMIN
//! person may change them, and the change is audited.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const MO: As = As::User("mo");

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

struct Setup {
    team: String,
    campaign: String,
    contacts: Vec<String>,
}

impl Setup {
    fn url(&self, rest: &str) -> String {
        format!("/teams/{}/campaigns/{}{rest}", self.team, self.campaign)
    }
}

/// A team (alice OWNER, bob ADMIN, mo MEMBER) with an APPROVED one-step campaign of two contacts.
async fn approved(h: &Harness) -> Setup {
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "bob", "ADMIN").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    let mut contacts = vec![];
    for n in 1..=2 {
        let body = json!({"phones": [{"number": format!("21255521{n:02}"), "type": "mobile"}]});
        contacts.push(
            ok(h, &ALICE, "POST", &format!("/teams/{team}/contacts"), Some(body)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let c = ok(h, &MO, "POST", &format!("/teams/{team}/campaigns"), Some(json!({"name": "Spring"}))).await;
    let s = Setup { team, campaign: c["id"].as_str().unwrap().to_owned(), contacts };
    ok(h, &MO, "POST", &s.url("/steps"), Some(json!({"channel": "SMS", "body": "Hi"}))).await;
    ok(h, &MO, "POST", &s.url("/enrolments"), Some(json!({"contactIds": s.contacts}))).await;
    ok(h, &MO, "POST", &s.url("/stage"), None).await;
    assert_eq!(ok(h, &BOB, "POST", &s.url("/approve"), None).await["status"], "APPROVED");
    s
}

async fn status(h: &Harness, s: &Setup) -> Value {
    ok(h, &ALICE, "GET", &s.url(""), None).await["status"].clone()
}

#[tokio::test]
async fn a_member_raising_the_rate_of_an_approved_campaign_sends_it_back_for_approval() {
    let h = harness().await;
    let s = approved(&h).await;
    let c = ok(&h, &MO, "PATCH", &s.url(""), Some(json!({"sendsPerMinute": 4500}))).await;
    assert_eq!((c["status"].as_str(), c["sendsPerMinute"].as_i64()), (Some("STAGED"), Some(4500)));
    assert_eq!(c["approvedBy"], Value::Null);
    // It cannot start until someone approves it again.
    let r = h.call(&BOB, "POST", &s.url("/start"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(status(&h, &s).await, "STAGED");

    let history = ok(&h, &ALICE, "GET", &s.url("/history"), None).await;
    let last = history["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("APPROVED"), Some("STAGED")));
    assert!(last["reason"].as_str().unwrap().contains("sendsPerMinute"), "{last}");
    let changes = ok(&h, &ALICE, "GET", &s.url("/changes"), None).await;
    assert_eq!(changes["items"][0]["changes"], json!({"sendsPerMinute": {"from": 75, "to": 4500}}));
    assert_eq!(changes["items"][0]["restaged"], true);

    // Exit rules and schedule count too, from PAUSED as from APPROVED.
    ok(&h, &BOB, "POST", &s.url("/approve"), None).await;
    ok(&h, &BOB, "POST", &s.url("/start"), None).await;
    ok(&h, &MO, "POST", &s.url("/pause"), None).await;
    let c = ok(&h, &MO, "PATCH", &s.url(""), Some(json!({"exitOnReply": false}))).await;
    assert_eq!(c["status"], "STAGED");
    ok(&h, &BOB, "POST", &s.url("/approve"), None).await;
    let c = ok(&h, &MO, "PATCH", &s.url(""), Some(json!({"endsAt": "2031-01-01T00:00:00Z"}))).await;
    assert_eq!(c["status"], "STAGED");

    // Renaming needs no approval.
    ok(&h, &BOB, "POST", &s.url("/approve"), None).await;
    let c = ok(&h, &MO, "PATCH", &s.url(""), Some(json!({"name": "Spring 2", "description": "more"}))).await;
    assert_eq!(c["status"], "APPROVED");
}

#[tokio::test]
async fn a_running_campaign_changes_only_in_an_admin_persons_hands_and_is_audited() {
    let h = harness().await;
    let s = approved(&h).await;
    ok(&h, &BOB, "POST", &s.url("/start"), None).await;
    let key = As::Key(h.key(&s.team, "alice", &["campaigns:manage"]).await);

    let r = h.call(&key, "PATCH", &s.url(""), Some(json!({"startsAt": "2030-01-01T00:00:00Z"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "an API key cannot reschedule a running campaign: {}", r.body);
    let r = h.call(&MO, "PATCH", &s.url(""), Some(json!({"sendsPerMinute": 2400}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a MEMBER cannot either: {}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("pause the campaign"));
    let c = ok(&h, &ALICE, "GET", &s.url(""), None).await;
    assert_eq!(
        (c["status"].as_str(), c["sendsPerMinute"].as_i64(), c["startsAt"].clone()),
        (Some("RUNNING"), Some(75), Value::Null)
    );
    assert_eq!(ok(&h, &ALICE, "GET", &s.url("/changes"), None).await["items"], json!([]));

    // An ADMIN person may; it keeps running and the change is on record.
    let c = ok(&h, &BOB, "PATCH", &s.url(""), Some(json!({"sendsPerMinute": 240, "exitOnMeeting": false}))).await;
    assert_eq!((c["status"].as_str(), c["sendsPerMinute"].as_i64()), (Some("RUNNING"), Some(240)));
    let changes = ok(&h, &ALICE, "GET", &s.url("/changes"), None).await;
    let entry = &changes["items"][0];
    assert_eq!(entry["status"], "RUNNING");
    assert_eq!(entry["restaged"], false);
    assert_eq!(
        entry["changes"],
        json!({"sendsPerMinute": {"from": 75, "to": 240}, "exitOnMeeting": {"from": true, "to": false}})
    );
    let bob = h.user_id(&s.team, "alice", "bob").await;
    assert_eq!(entry["actor"], bob.as_str());
    let events = h.bus.recent("CampaignSettingsChanged", 10).await.unwrap();
    assert_eq!(events.len(), 1);

    // Removing contacts still needs no approval, even while running.
    let r = ok(&h, &MO, "POST", &s.url("/enrolments/remove"), Some(json!({"contactIds": [s.contacts[0]]}))).await;
    assert_eq!(r["removed"], 1);
    assert_eq!(status(&h, &s).await, "RUNNING");
}

#[tokio::test]
async fn the_audit_of_changes_is_insert_only_for_the_application() {
    let h = harness().await;
    let s = approved(&h).await;
    ok(&h, &MO, "PATCH", &s.url(""), Some(json!({"sendsPerMinute": 100}))).await;
    let db = h.t.db.clone();
    let mut conn = db.conn().await.unwrap();
    let tx = conn.transaction().await.unwrap();
    tx.execute("SELECT set_config('app.team_id', $1, true)", &[&s.team]).await.unwrap();
    let err = tx.execute("UPDATE campaign_changes SET actor = 'nobody'", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&nextier_store::tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{err}");
}
