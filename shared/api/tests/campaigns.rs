mod support;

use axum::http::StatusCode;
use chrono::Utc;
use nextier_campaigns::sequence::SequenceJob;
use nextier_campaigns::tick::{tick, TickConfig};
use nextier_campaigns::{SEQUENCE_QUEUE, SYNC_QUEUE};
use nextier_platform::local::PgQueue;
use nextier_platform::Queue;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const MO: As = As::User("mo");

struct Team {
    id: String,
}

async fn team(h: &Harness) -> Team {
    let id = h.team("alice", "Acme").await;
    h.join(&id, "alice", "bob", "ADMIN").await;
    h.join(&id, "alice", "mo", "MEMBER").await;
    Team { id }
}

impl Team {
    fn url(&self, rest: &str) -> String {
        format!("/teams/{}{rest}", self.id)
    }
}

async fn contact(h: &Harness, t: &Team, first: Option<&str>, phone: &str, score: i32) -> String {
    let mut body = json!({"phones": [{"number": phone, "type": "mobile"}], "score": score, "tags": ["fl"]});
    if let Some(f) = first {
        body["firstName"] = json!(f);
    }
    let r = h.call(&ALICE, "POST", &t.url("/contacts"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

/// A campaign with one SMS step and the given contacts, in DRAFT.
async fn draft(h: &Harness, t: &Team, body: &str, contacts: &[String]) -> String {
    let c = ok(h, &MO, "POST", &t.url("/campaigns"), Some(json!({"name": format!("c {}", contacts.len())}))).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["status"], "DRAFT");
    ok(h, &MO, "POST", &t.url(&format!("/campaigns/{id}/steps")), Some(json!({"channel": "SMS", "body": body}))).await;
    let e =
        ok(h, &MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"contactIds": contacts}))).await;
    assert_eq!(e["enrolled"], contacts.len(), "{e}");
    id
}

async fn act(h: &Harness, t: &Team, who: &As, id: &str, action: &str) -> support::Resp {
    h.call(who, "POST", &t.url(&format!("/campaigns/{id}/{action}")), None).await
}

async fn queues(h: &Harness) -> PgQueue {
    h.campaign_queues().await
}

async fn run_tick(h: &Harness, q: &PgQueue) -> u64 {
    h.run_campaign_tick(q).await
}

#[tokio::test]
async fn a_campaign_goes_from_draft_to_sent_messages_with_stats_and_history() {
    let h = harness().await;
    let t = team(&h).await;
    let q = queues(&h).await;
    let a = contact(&h, &t, Some("Ada"), "2125552101", 80).await;
    let b = contact(&h, &t, Some("Bo"), "2125552102", 40).await;

    // A template from the library, copied into the first step.
    let tpl = ok(
        &h,
        &MO,
        "POST",
        &t.url("/message-templates"),
        Some(json!({"name": "opener", "channel": "SMS", "body": "Hi {{firstName|there}}, this is Acme. Reply STOP to opt out."})),
    )
    .await;
    let c = ok(&h, &MO, "POST", &t.url("/campaigns"), Some(json!({"name": "Spring", "sendsPerMinute": 240}))).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let steps =
        ok(&h, &MO, "POST", &t.url(&format!("/campaigns/{id}/steps")), Some(json!({"templateId": tpl["id"]}))).await;
    assert_eq!(steps[0]["body"], tpl["body"]);
    assert_eq!(steps[0]["delay"], json!({"unit": "minutes", "amount": 0}));
    ok(
        &h,
        &MO,
        "POST",
        &t.url(&format!("/campaigns/{id}/steps")),
        Some(json!({"channel": "SMS", "delay": {"unit": "business_days", "amount": 2}, "body": "{{firstName}}, any thoughts?"})),
    )
    .await;
    // By saved filter (score ≥ 50: Ada) and by score band (Bo).
    let saved =
        ok(&h, &MO, "POST", &t.url("/saved-filters"), Some(json!({"name": "hot", "filter": {"minScore": "50"}}))).await;
    let e = ok(&h, &MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"filterId": saved["id"]})))
        .await;
    assert_eq!(e, json!({"enrolled": 1, "skipped": [], "skippedTotal": 0}));
    let e = ok(
        &h,
        &MO,
        "POST",
        &t.url(&format!("/campaigns/{id}/enrolments")),
        Some(json!({"minScore": 0, "maxScore": 100})),
    )
    .await;
    assert_eq!(e["enrolled"], 1);
    assert_eq!(e["skipped"][0]["contactId"], a);
    assert_eq!(e["skipped"][0]["reason"], "already enrolled in this campaign");

    // The author (a MEMBER) stages; approval needs someone else with ADMIN.
    assert_eq!(act(&h, &t, &MO, &id, "stage").await.status, StatusCode::OK);
    let r = act(&h, &t, &MO, &id, "approve").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = act(&h, &t, &BOB, &id, "start").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["detail"].as_str().unwrap().contains("cannot move from STAGED to RUNNING"), "{}", r.body);
    let r = h
        .call(&BOB, "POST", &t.url(&format!("/campaigns/{id}/approve")), Some(json!({"reason": "copy reviewed"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "APPROVED");
    assert!(r.body["approvedBy"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(act(&h, &t, &BOB, &id, "start").await.body["status"], "RUNNING");

    assert_eq!(run_tick(&h, &q).await, 2);
    let stats = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}/stats")), None).await;
    assert_eq!(stats[0]["sent"], 2);
    assert_eq!(stats[0]["enrolled"], 2);
    assert_eq!(stats[1]["enrolled"], 2, "both moved on to step 2");
    assert_eq!(stats[1]["sent"], 0, "step 2 waits two business days");
    let bodies: Vec<String> =
        h.t.superuser()
            .await
            .query("SELECT body FROM messages ORDER BY body", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(
        bodies,
        vec!["Hi Ada, this is Acme. Reply STOP to opt out.", "Hi Bo, this is Acme. Reply STOP to opt out."]
    );
    let _ = b;

    let hist = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}/history")), None).await;
    let moves: Vec<(String, String)> = hist["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["from"].as_str().unwrap().to_owned(), c["to"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        moves,
        vec![
            ("DRAFT".into(), "STAGED".into()),
            ("STAGED".into(), "APPROVED".into()),
            ("APPROVED".into(), "RUNNING".into())
        ]
    );
    assert_eq!(hist["items"][1]["reason"], "copy reviewed");
    let events = h.bus.recent("CampaignStateChanged", 10).await.unwrap();
    assert_eq!(events.len(), 3, "one event per move, published through the outbox");
    assert!(
        events.iter().any(|e| e.detail["data"]["to"] == "RUNNING"
            && e.detail["data"]["campaignId"] == id.as_str()
            && e.detail["teamId"] == t.id.as_str()),
        "{events:?}"
    );
}

#[tokio::test]
async fn refused_moves_name_from_and_to_and_unknown_actions_are_404() {
    let h = harness().await;
    let t = team(&h).await;
    let c = contact(&h, &t, Some("Ada"), "2125552111", 50).await;
    let id = draft(&h, &t, "Hi {{firstName}}", &[c]).await;
    for (action, to) in [("approve", "APPROVED"), ("start", "RUNNING"), ("pause", "PAUSED"), ("complete", "COMPLETED")]
    {
        let r = act(&h, &t, &BOB, &id, action).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{action}: {}", r.body);
        assert_eq!(r.body["detail"], format!("a campaign cannot move from DRAFT to {to}"), "{action}");
    }
    assert_eq!(act(&h, &t, &BOB, &id, "explode").await.status, StatusCode::NOT_FOUND);
    assert_eq!(act(&h, &t, &BOB, &id, "cancel").await.body["status"], "CANCELLED");
    let r = act(&h, &t, &BOB, &id, "cancel").await;
    assert_eq!(r.body["detail"], "a campaign cannot move from CANCELLED to CANCELLED");
    // Cancelled: its contact is free for another campaign.
    let e = h.count("campaign_enrolments WHERE status = 'active'").await;
    assert_eq!(e, 0);
    // A non-DRAFT campaign is cancelled, not deleted.
    let r = h.call(&ALICE, "DELETE", &t.url(&format!("/campaigns/{id}")), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn of_concurrent_approve_requests_exactly_one_succeeds() {
    let h = harness().await;
    let t = team(&h).await;
    let c = contact(&h, &t, Some("Ada"), "2125552121", 50).await;
    let id = draft(&h, &t, "Hi", &[c]).await;
    assert_eq!(act(&h, &t, &MO, &id, "stage").await.status, StatusCode::OK);
    let reqs: Vec<_> = (0..6)
        .map(|i| {
            let who = if i % 2 == 0 { BOB } else { ALICE };
            let req = h.request(&who, "POST", &t.url(&format!("/campaigns/{id}/approve")), None);
            let app = h.app.clone();
            tokio::spawn(async move { tower::ServiceExt::oneshot(app, req).await.unwrap().status() })
        })
        .collect();
    let mut statuses = vec![];
    for r in reqs {
        statuses.push(r.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert_eq!(h.count("campaign_state_changes WHERE to_status = 'APPROVED'").await, 1);
}

#[tokio::test]
async fn changing_steps_or_audience_after_approval_needs_a_new_approval() {
    let h = harness().await;
    let t = team(&h).await;
    let a = contact(&h, &t, Some("Ada"), "2125552131", 50).await;
    let b = contact(&h, &t, Some("Bo"), "2125552132", 50).await;
    let id = draft(&h, &t, "Hi {{firstName}}", &[a]).await;
    act(&h, &t, &MO, &id, "stage").await;
    act(&h, &t, &BOB, &id, "approve").await;
    let steps = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}/steps")), None).await;
    let step = steps[0]["id"].as_str().unwrap();
    ok(
        &h,
        &MO,
        "PATCH",
        &t.url(&format!("/campaigns/{id}/steps/{step}")),
        Some(json!({"body": "Hello {{firstName}}"})),
    )
    .await;
    let c = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}")), None).await;
    assert_eq!(c["status"], "STAGED", "a step change after approval sends it back");
    assert_eq!(c["approvedBy"], Value::Null);

    act(&h, &t, &BOB, &id, "approve").await;
    let r = act(&h, &t, &BOB, &id, "start").await;
    assert_eq!(r.body["status"], "RUNNING");
    // Running: edits and enrolments wait for a pause.
    let r = h.call(&MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"contactIds": [b]}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["detail"].as_str().unwrap().contains("pause the campaign"), "{}", r.body);
    let r = h.call(&MO, "DELETE", &t.url(&format!("/campaigns/{id}/steps/{step}")), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Paused: adding a contact is an audience change, back to STAGED.
    assert_eq!(act(&h, &t, &MO, &id, "pause").await.body["status"], "PAUSED");
    ok(&h, &MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"contactIds": [b]}))).await;
    let c = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}")), None).await;
    assert_eq!(c["status"], "STAGED");
    // A resume on a STAGED campaign is refused.
    assert_eq!(act(&h, &t, &BOB, &id, "resume").await.status, StatusCode::CONFLICT);
    // Removing contacts is allowed at any time and needs no approval.
    let r =
        ok(&h, &MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments/remove")), Some(json!({"contactIds": [b]})))
            .await;
    assert_eq!(r["removed"], 1);
}

#[tokio::test]
async fn bad_campaign_input_names_the_field_and_writes_nothing() {
    let h = harness().await;
    let t = team(&h).await;
    let nameless = contact(&h, &t, None, "2125552141", 50).await;
    let id =
        ok(&h, &MO, "POST", &t.url("/campaigns"), Some(json!({"name": "c"}))).await["id"].as_str().unwrap().to_owned();
    let steps = t.url(&format!("/campaigns/{id}/steps"));
    let cases = [
        (json!({"channel": "SMS", "body": "Hi {{first_name}}"}), "body"),
        (json!({"channel": "SMS", "body": "Hi {{firstName"}), "body"),
        (json!({"channel": "EMAIL", "body": "Hi"}), "subject"),
        (json!({"channel": "SMS", "subject": "x", "body": "Hi"}), "subject"),
        (json!({"channel": "FAX", "body": "Hi"}), "channel"),
        (json!({"channel": "SMS", "body": "Hi", "delay": {"unit": "weeks", "amount": 1}}), "delay.unit"),
        (json!({"channel": "SMS", "body": "Hi", "delay": {"unit": "days", "amount": 400}}), "delay.amount"),
        (json!({"channel": "SMS", "body": "x".repeat(1601)}), "body"),
        (json!({"body": "Hi"}), "channel"),
        (json!({"templateId": "tpl_01JD8Z6Q3M4N5P6R7S8T9V0W1X"}), "templateId"),
    ];
    for (body, field) in cases {
        let r = h.call(&MO, "POST", &steps, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.field(), Some(field), "{body}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert_eq!(h.count("campaign_steps").await, 0);
    let r = h.call(&MO, "POST", &t.url("/campaigns"), Some(json!({"name": "", "sendsPerMinute": 0}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["name", "sendsPerMinute"]);
    let r = h.call(&MO, "GET", &t.url("/campaigns/cmp_nope"), None).await;
    assert_eq!(r.field(), Some("campaignId"));
    let r = h.call(&MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({}))).await;
    assert_eq!(r.field(), Some("contactIds"));
    let r = h
        .call(&MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"filter": {"colour": "red"}})))
        .await;
    assert_eq!(r.field(), Some("filter.colour"), "{}", r.body);

    // A required merge field an enrolled contact lacks refuses staging, pointing at the step.
    ok(&h, &MO, "POST", &steps, Some(json!({"channel": "SMS", "body": "Hi {{firstName}}"}))).await;
    let e =
        ok(&h, &MO, "POST", &t.url(&format!("/campaigns/{id}/enrolments")), Some(json!({"contactIds": [nameless]})))
            .await;
    assert_eq!(e["enrolled"], 0, "skipped at enrolment, with the reason");
    assert!(e["skipped"][0]["reason"].as_str().unwrap().contains("firstName"));
    let r = act(&h, &t, &MO, &id, "stage").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.field(), Some("enrolments"), "nobody is enrolled: {}", r.body);
    let r = h.call(&MO, "POST", &t.url(&format!("/campaigns/{id}/stage")), Some(json!({"reason": 5}))).await;
    assert_eq!(r.field(), Some("reason"));
}

#[tokio::test]
async fn another_team_cannot_see_or_move_a_campaign() {
    let h = harness().await;
    let t = team(&h).await;
    let c = contact(&h, &t, Some("Ada"), "2125552151", 50).await;
    let id = draft(&h, &t, "Hi", &[c]).await;
    let other = h.team("eve", "Evil").await;
    for (m, path) in
        [("GET", format!("/teams/{other}/campaigns/{id}")), ("POST", format!("/teams/{other}/campaigns/{id}/cancel"))]
    {
        let r = h.call(&As::User("eve"), m, &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}");
    }
    let r = h.call(&As::User("eve"), "GET", &format!("/teams/{}/campaigns/{id}", t.id), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not a member");
    let list = ok(&h, &As::User("eve"), "GET", &format!("/teams/{other}/campaigns"), None).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn replies_and_opt_outs_end_enrolments_and_score_changes_enrol() {
    let h = harness().await;
    let t = team(&h).await;
    let q = queues(&h).await;
    let a = contact(&h, &t, Some("Ada"), "2125552161", 50).await;
    let b = contact(&h, &t, Some("Bo"), "2125552162", 10).await;
    let id = draft(&h, &t, "Hi {{firstName}}", std::slice::from_ref(&a)).await;
    ok(
        &h,
        &MO,
        "PATCH",
        &t.url(&format!("/campaigns/{id}")),
        Some(json!({"autoEnrol": {"minScore": 70, "maxScore": 100}})),
    )
    .await;
    act(&h, &t, &MO, &id, "stage").await;
    act(&h, &t, &BOB, &id, "approve").await;
    act(&h, &t, &BOB, &id, "start").await;

    // Ada replies: her enrolment ends before anything is sent.
    ok(&h, &ALICE, "POST", &t.url(&format!("/contacts/{a}/lead-state")), Some(json!({"to": "touched"}))).await;
    ok(&h, &ALICE, "POST", &t.url(&format!("/contacts/{a}/lead-state")), Some(json!({"to": "responded"}))).await;
    assert_eq!(run_tick(&h, &q).await, 0);
    assert_eq!(h.count("campaign_enrolments WHERE status = 'exited' AND exit_reason = 'reply'").await, 1);

    // Bo's score enters the band: the campaign queue enrols him and the next tick sends.
    ok(&h, &ALICE, "PATCH", &t.url(&format!("/contacts/{b}")), Some(json!({"score": 85}))).await;
    let msgs = q.receive(SYNC_QUEUE, 10).await.unwrap();
    assert_eq!(msgs.len(), 1);
    let job: nextier_campaigns::sync::SyncJob = serde_json::from_str(&msgs[0].body).unwrap();
    assert_eq!(job.contact_id.as_str(), b);
    assert_eq!(nextier_campaigns::sync::sync_contact(&h.t.db, &job, Utc::now()).await.unwrap(), 1);
    assert_eq!(run_tick(&h, &q).await, 1);
    let sent: Vec<String> =
        h.t.superuser().await.query("SELECT body FROM messages", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(sent, vec!["Hi Bo".to_owned()]);
}

#[tokio::test]
async fn a_transition_takes_no_body_an_empty_one_or_a_json_object() {
    let h = harness().await;
    let t = team(&h).await;
    let c = contact(&h, &t, Some("Ada"), "2125552171", 50).await;
    let id = draft(&h, &t, "Hi", &[c]).await;
    let uri = t.url(&format!("/campaigns/{id}/stage"));
    // Empty body with a JSON content type: fine.
    let mut req = h.request(&MO, "POST", &uri, None);
    req.headers_mut().insert("content-type", "application/json".parse().unwrap());
    assert_eq!(h.send(req).await.status, StatusCode::OK);
    let uri = t.url(&format!("/campaigns/{id}/unstage"));
    // A body that is not JSON: 415 without a JSON type, 400 with one; nothing moves.
    let mut req = h.request(&MO, "POST", &uri, None);
    *req.body_mut() = axum::body::Body::from("reason=x");
    req.headers_mut().insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    assert_eq!(h.send(req).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut req = h.request(&MO, "POST", &uri, None);
    *req.body_mut() = axum::body::Body::from("[1]");
    req.headers_mut().insert("content-type", "application/json".parse().unwrap());
    let r = h.send(req).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("body")));
    let got = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}")), None).await;
    assert_eq!(got["status"], "STAGED");
}

#[tokio::test]
async fn the_suppression_list_stops_campaigns_and_only_an_admin_lifts_it() {
    let h = harness().await;
    let t = team(&h).await;
    let a = contact(&h, &t, Some("Ada"), "2125552181", 50).await;
    let id = draft(&h, &t, "Hi {{firstName}}", std::slice::from_ref(&a)).await;
    for (body, field) in [
        (json!({"address": "555-0100", "kind": "OPTED_OUT"}), "address"),
        (json!({"address": "(212) 555-2181", "kind": "MAYBE"}), "kind"),
        (json!({"address": "x@example.com", "kind": "BLACKLIST", "expiresAt": "2001-01-01T00:00:00Z"}), "expiresAt"),
    ] {
        let r = h.call(&MO, "POST", &t.url("/suppressions"), Some(body.clone())).await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {}", r.body);
    }
    assert_eq!(h.count("suppressions").await, 0);
    let s =
        ok(&h, &MO, "POST", &t.url("/suppressions"), Some(json!({"address": "(212) 555-2181", "kind": "LEGAL_DNC"})))
            .await;
    assert_eq!(s["address"], "+12125552181");
    let e = ok(&h, &MO, "GET", &t.url(&format!("/campaigns/{id}/enrolments")), None).await;
    assert_eq!(e["items"][0]["status"], "exited");
    assert_eq!(e["items"][0]["exitReason"], "suppressed: LEGAL_DNC");
    let list = ok(&h, &MO, "GET", &t.url("/suppressions"), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let path = t.url("/suppressions/%2B12125552181?reason=court%20order%20vacated");
    assert_eq!(h.call(&MO, "DELETE", &path, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(h.call(&BOB, "DELETE", &path, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.count("suppressions").await, 0);

    // A contact marked suppressed puts every number and address on the list.
    let b = contact(&h, &t, Some("Bo"), "2125552182", 50).await;
    ok(&h, &ALICE, "PATCH", &t.url(&format!("/contacts/{b}")), Some(json!({"addEmails": ["bo@example.com"]}))).await;
    ok(&h, &ALICE, "POST", &t.url(&format!("/contacts/{b}/lead-state")), Some(json!({"to": "suppressed"}))).await;
    let rows: Vec<(String, String)> =
        h.t.superuser()
            .await
            .query("SELECT address, source FROM suppressions ORDER BY address", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        rows,
        vec![("+12125552182".into(), "lead_state".into()), ("bo@example.com".into(), "lead_state".into())]
    );
}

#[tokio::test]
async fn sending_numbers_are_registered_by_admins_and_assigned_to_campaigns() {
    let h = harness().await;
    let t = team(&h).await;
    let r = h.call(&MO, "POST", &t.url("/sending-numbers"), Some(json!({"number": "(212) 555-0401"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "registering numbers needs ADMIN");
    // The number is the team's because SignalHouse lists it in the team's subgroup.
    let subgroup = ok(&h, &BOB, "POST", &t.url("/signalhouse/connect"), None).await;
    h.numbers.place(subgroup["subgroupId"].as_str().unwrap(), "+12125550401");
    let r = h.call(&BOB, "POST", &t.url("/sending-numbers"), Some(json!({"number": "555", "attClass": "Z"}))).await;
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["number", "attClass"]);
    let n =
        ok(&h, &BOB, "POST", &t.url("/sending-numbers"), Some(json!({"number": "(212) 555-0401", "attClass": "T"})))
            .await;
    assert_eq!((n["e164"].as_str(), n["status"].as_str()), (Some("+12125550401"), Some("active")));
    let dup = h.call(&BOB, "POST", &t.url("/sending-numbers"), Some(json!({"number": "2125550401"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let c = contact(&h, &t, Some("Ada"), "2125552191", 50).await;
    let id = draft(&h, &t, "Hi", &[c]).await;
    let a =
        ok(&h, &MO, "PUT", &t.url(&format!("/campaigns/{id}/numbers")), Some(json!({"numberIds": [n["id"]]}))).await;
    assert_eq!(a["assigned"], 1);
    let bad = h
        .call(
            &MO,
            "PUT",
            &t.url(&format!("/campaigns/{id}/numbers")),
            Some(json!({"numberIds": ["row_01JD8Z6Q3M4N5P6R7S8T9V0W1X"]})),
        )
        .await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("numberIds")));
    let paused = ok(
        &h,
        &BOB,
        "PATCH",
        &t.url(&format!("/sending-numbers/{}", n["id"].as_str().unwrap())),
        Some(json!({"status": "paused"})),
    )
    .await;
    assert_eq!(paused["status"], "paused");
    let list = ok(&h, &MO, "GET", &t.url("/sending-numbers"), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

/// When more steps are due than the tick's budget, teams take turns: a big team's backlog,
/// though due first, does not take the whole budget while a small team waits.
#[tokio::test]
async fn the_tick_shares_its_budget_fairly_between_teams() {
    let h = harness().await;
    let q = queues(&h).await;
    let (big, small) = (team(&h).await, team(&h).await);
    let mut many = Vec::new();
    for i in 0..30 {
        many.push(contact(&h, &big, Some("Ann"), &format!("21255521{i:02}"), 50).await);
    }
    let mut few = Vec::new();
    for i in 0..4 {
        few.push(contact(&h, &small, Some("Ben"), &format!("21255531{i:02}"), 50).await);
    }
    // The big team's campaign starts first: all its steps are due before the small team's.
    for (t, contacts) in [(&big, &many), (&small, &few)] {
        let id = draft(&h, t, "Hi {{firstName}}, this is Acme. Reply STOP to opt out.", contacts).await;
        assert_eq!(act(&h, t, &MO, &id, "stage").await.status, StatusCode::OK);
        assert_eq!(act(&h, t, &BOB, &id, "approve").await.status, StatusCode::OK);
        assert_eq!(act(&h, t, &BOB, &id, "start").await.body["status"], "RUNNING");
    }
    // The first moment, from now on the API's clock, when New York numbers may be texted.
    let at = nextier_domain::quiet_hours::next_allowed(
        nextier_testkit::fixtures::daytime_now() + chrono::Duration::seconds(1),
        &nextier_domain::quiet_hours::locate("+12125552100", None),
    );
    let s = tick(&h.t.worker, &q, at, &TickConfig { budget: 10, ..TickConfig::default() }).await.unwrap();
    assert_eq!(s.claimed, 10);
    let mut by_team = std::collections::BTreeMap::<String, usize>::new();
    loop {
        let msgs = q.receive(SEQUENCE_QUEUE, 10).await.unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs {
            let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
            *by_team.entry(job.team_id.to_string()).or_default() += 1;
            q.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
        }
    }
    assert_eq!(by_team.get(&small.id), Some(&4), "the small team's four, not left waiting: {by_team:?}");
    assert_eq!(by_team.get(&big.id), Some(&6), "the rest to the big team: {by_team:?}");
}
