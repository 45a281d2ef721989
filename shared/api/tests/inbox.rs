//! The inbox API over replies the inbound consumer filed: listing by bucket, priority and due
//! time, the conversation, moves (with suppression), bulk moves (all or nothing), processing,
//! escalation, stats, and the classification preview, which stores nothing.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use nextier_inbound::{Job, Processed, Processor};
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const MALLORY: As = As::User("mallory");
const NUMBER: &str = "+12127363100";

async fn reply(h: &Harness, from: &str, text: &str, id: &str) {
    let p = Processor {
        db: h.t.worker.clone(),
        gate: h.state.gate.clone(),
        clock: h.state.clock.clone(),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    let job = Job::Webhook {
        webhook_event_id: format!("whk_{id}"),
        payload: json!({"event": "message.received", "from": from, "to": NUMBER, "text": text, "message_id": id}),
    };
    let out = p.process(&job, 1).await.unwrap();
    assert!(matches!(out, Processed::Received { .. }), "{out:?}");
}

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

async fn setup(h: &Harness) -> String {
    let team = h.team("alice", "Acme").await;
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at) VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, $2, 'test', now())",
            &[&team, &NUMBER],
        )
        .await
        .unwrap();
    reply(h, "+13126181234", "Yes! call me at 4", "sh-1").await;
    reply(h, "+14155238800", "ok", "sh-2").await;
    reply(h, "+13058684000", "wrong number", "sh-3").await;
    reply(h, "+16172531000", "What's the offer? email me at ana@example.com", "sh-4").await;
    team
}

fn ids(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn items_are_listed_by_priority_bucket_and_due_time() {
    let h = harness().await;
    let team = setup(&h).await;
    let url = |rest: &str| format!("/teams/{team}/inbox{rest}");
    let all = ok(&h, &ALICE, "GET", &url("/items"), None).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let priorities: Vec<&str> = items.iter().map(|i| i["priority"].as_str().unwrap()).collect();
    assert_eq!(priorities, ["URGENT", "HOT", "WARM", "COLD"], "{all}");
    assert!(items[0]["labels"].as_array().unwrap().contains(&json!("gold_label")));

    let pos = ok(&h, &ALICE, "GET", &url("/items?bucket=POSITIVE_RESPONSES"), None).await;
    assert_eq!(ids(&pos).len(), 2);
    // Soonest due first: the positive ones (5-minute SLA) come before review (240) and wrong number (1440).
    let due = ok(&h, &ALICE, "GET", &url("/items?order=due"), None).await;
    let buckets: Vec<&str> = due["items"].as_array().unwrap().iter().map(|i| i["bucket"].as_str().unwrap()).collect();
    assert_eq!(buckets, ["POSITIVE_RESPONSES", "POSITIVE_RESPONSES", "NEUTRAL_REVIEW", "WRONG_NUMBER"]);
    // Pages follow the order.
    let p1 = ok(&h, &ALICE, "GET", &url("/items?order=due&limit=3"), None).await;
    let cursor = p1["nextCursor"].as_str().unwrap().to_owned();
    let p2 = ok(&h, &ALICE, "GET", &url(&format!("/items?order=due&limit=3&cursor={cursor}")), None).await;
    assert_eq!(ids(&p2), vec![due["items"][3]["id"].as_str().unwrap().to_owned()]);
    let r = h.call(&ALICE, "GET", &url(&format!("/items?order=newest&cursor={cursor}")), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("cursor")), "{}", r.body);

    let r = h.call(&ALICE, "GET", &url("/items?bucket=SPAM"), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("bucket")));
    let r = h.call(&ALICE, "GET", &url("/items?priority=hot"), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("priority")));

    // Another team sees none of it.
    let other = h.team("mallory", "Other").await;
    let theirs = ok(&h, &MALLORY, "GET", &format!("/teams/{other}/inbox/items"), None).await;
    assert!(ids(&theirs).is_empty());
    let id = &ids(&all)[0];
    let r = h.call(&MALLORY, "GET", &format!("/teams/{other}/inbox/items/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.call(&MALLORY, "GET", &url(&format!("/items/{id}")), None).await;
    assert!(r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND, "{}", r.status);
}

#[tokio::test]
async fn moves_are_recorded_and_blacklisting_suppresses() {
    let h = harness().await;
    let team = setup(&h).await;
    let url = |rest: &str| format!("/teams/{team}/inbox{rest}");
    let all = ok(&h, &ALICE, "GET", &url("/items"), None).await;
    let ids = ids(&all);

    let detail = ok(&h, &ALICE, "GET", &url(&format!("/items/{}", ids[0])), None).await;
    assert_eq!(detail["conversation"][0]["direction"], "inbound");
    assert_eq!(detail["movements"][0]["movedBy"], "classifier");

    let moved = ok(
        &h,
        &ALICE,
        "POST",
        &url(&format!("/items/{}/move", ids[1])),
        Some(json!({"bucket": "FOLLOW_UP", "reason": "call back Friday"})),
    )
    .await;
    assert_eq!(moved["bucket"], "FOLLOW_UP");
    let detail = ok(&h, &ALICE, "GET", &url(&format!("/items/{}", ids[1])), None).await;
    let last = detail["movements"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["fromBucket"].as_str(), last["toBucket"].as_str(), last["reason"].as_str()),
        (Some("POSITIVE_RESPONSES"), Some("FOLLOW_UP"), Some("call back Friday"))
    );
    assert!(last["movedBy"].as_str().unwrap().starts_with("usr_"));

    assert_eq!(h.count("suppressions").await, 1, "only the wrong number so far");
    ok(&h, &ALICE, "POST", &url(&format!("/items/{}/move", ids[2])), Some(json!({"bucket": "BLACKLIST"}))).await;
    let kinds: Vec<String> =
        h.t.superuser()
            .await
            .query("SELECT kind FROM suppressions ORDER BY kind", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(kinds, ["BLACKLIST", "WRONG_NUMBER"]);

    let r = h.call(&ALICE, "POST", &url(&format!("/items/{}/move", ids[0])), Some(json!({"bucket": "NOPE"}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("bucket")));

    // Bulk: an unknown id moves nothing.
    let before = h.count("bucket_movements").await;
    let r = h
        .call(
            &ALICE,
            "POST",
            &url("/items/move"),
            Some(json!({"itemIds": [ids[0], "inb_01JD8Z6Q3M4N5P6R7S8T9V0W1X"], "bucket": "LEGAL_DNC"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("itemIds[1]"));
    assert_eq!(h.count("bucket_movements").await, before);
    assert_eq!(h.count("suppressions").await, 2);
    let r = h.call(&ALICE, "POST", &url("/items/move"), Some(json!({"itemIds": ["x"], "bucket": "FOLLOW_UP"}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("itemIds[0]")));
    let r = ok(
        &h,
        &ALICE,
        "POST",
        &url("/items/move"),
        Some(json!({"itemIds": [ids[0], ids[3], ids[0]], "bucket": "FOLLOW_UP"})),
    )
    .await;
    assert_eq!(r["moved"], 2);

    // Processed and escalated.
    let p = ok(&h, &ALICE, "POST", &url(&format!("/items/{}/processed", ids[0])), None).await;
    assert!(p["processedAt"].is_string() && p["dueAt"].is_null());
    let open = ok(&h, &ALICE, "GET", &url("/items"), None).await;
    assert!(!self::ids(&open).contains(&ids[0]));
    let e = ok(&h, &ALICE, "POST", &url(&format!("/items/{}/escalate", ids[3])), None).await;
    assert_eq!(e["escalationLevel"], 1);
    let stats = ok(&h, &ALICE, "GET", &url("/stats"), None).await;
    assert_eq!(
        (stats["open"].as_i64(), stats["escalated"].as_i64(), stats["processedToday"].as_i64()),
        (Some(3), Some(1), Some(1)),
        "{stats}"
    );
    let buckets = ok(&h, &ALICE, "GET", &url("/buckets"), None).await;
    assert_eq!(buckets.as_array().unwrap().len(), 8);
    assert_eq!(buckets[1]["type"], "POSITIVE_RESPONSES");
    assert_eq!(buckets[1]["slaMinutes"], 5);
    // An admin tunes a bucket; a bad value names the field and changes nothing.
    let b =
        ok(&h, &ALICE, "PATCH", &url("/buckets/POSITIVE_RESPONSES"), Some(json!({"slaMinutes": 15, "name": "Hot"})))
            .await;
    assert_eq!((b[1]["slaMinutes"].as_i64(), b[1]["name"].as_str()), (Some(15), Some("Hot")));
    let b = ok(&h, &ALICE, "PATCH", &url("/buckets/FOLLOW_UP"), Some(json!({"slaMinutes": null}))).await;
    assert!(b[7]["slaMinutes"].is_null() && b[7]["name"] == "Follow up");
    let r = h.call(&ALICE, "PATCH", &url("/buckets/POSITIVE_RESPONSES"), Some(json!({"slaMinutes": 0}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("slaMinutes")));
    let r = h.call(&ALICE, "PATCH", &url("/buckets/NOPE"), Some(json!({"name": "x"}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("bucket")));
}

#[tokio::test]
async fn the_classification_preview_uses_the_team_configuration_and_stores_nothing() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let url = format!("/teams/{team}/inbox/classify");
    let c = ok(&h, &ALICE, "POST", &url, Some(json!({"text": "Please stop texting me"}))).await;
    assert_eq!((c["classification"].as_str(), c["optOut"].as_bool()), (Some("DNC_REQUEST"), Some(true)));
    for text in ["See you this weekend", "He's a legend", "I stopped by the house"] {
        let c = ok(&h, &ALICE, "POST", &url, Some(json!({"text": text}))).await;
        assert_eq!(c["optOut"], false, "{text}: {c}");
    }
    let c = ok(&h, &ALICE, "POST", &url, Some(json!({"text": "YES", "optedOut": true}))).await;
    assert_eq!(c["classification"], "OPT_IN");
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'inbox', 'label.positive', 'hot_seller'),
                    ($1, 'inbox', 'score.positive', '40')",
            &[&team],
        )
        .await
        .unwrap();
    let c = ok(&h, &ALICE, "POST", &url, Some(json!({"text": "sounds good"}))).await;
    assert_eq!(
        (c["labels"].clone(), c["score"].as_i64(), c["priority"].as_str()),
        (json!(["hot_seller"]), Some(90), Some("URGENT"))
    );
    let r = h.call(&ALICE, "POST", &url, Some(json!({"text": "   "}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("text")));
    let r = h.call(&ALICE, "POST", &url, Some(json!({"txt": "hi"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.count("inbox_items").await + h.count("messages").await, 0);
}

#[tokio::test]
async fn ai_suggestions_are_sent_only_with_a_persons_approval_and_logged() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at) VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, $2, 'test', now())",
            &[&team, &NUMBER],
        )
        .await
        .unwrap();
    let area = nextier_testkit::fixtures::daytime_area();
    let (ana, bo) = (format!("+1{area}7363101"), format!("+1{area}7363102"));
    for (n, name) in [(&ana, "Ana"), (&bo, "Bo")] {
        ok(
            &h,
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": name, "phones": [{"number": n, "type": "mobile"}]})),
        )
        .await;
    }
    reply(&h, &ana, "Yes, I'd sell for the right price", "sh-1").await;
    reply(&h, &bo, "maybe", "sh-2").await;
    reply(&h, &ana, "STOP", "sh-3").await;
    let url = |rest: &str| format!("/teams/{team}/inbox{rest}");
    let items = ok(&h, &ALICE, "GET", &url("/items?order=newest&processed=true"), None).await;
    let id_of = |text: &str| {
        items["items"].as_array().unwrap().iter().find(|i| i["responseText"] == text).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ana_item, bo_item, stop_item) = (id_of("Yes, I'd sell for the right price"), id_of("maybe"), id_of("STOP"));

    let r = h.call(&ALICE, "POST", &url(&format!("/items/{stop_item}/suggestions")), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "an opt-out is never answered by a machine");
    let s = h.call(&ALICE, "POST", &url(&format!("/items/{bo_item}/suggestions")), None).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    assert_eq!(s.body["suggestedText"], "Thanks Bo! When is a good time for a quick call to go over the details?");
    assert_eq!((s.body["status"].as_str(), s.body["source"].as_str()), (Some("pending"), Some("template:positive")));
    let again = h.call(&ALICE, "POST", &url(&format!("/items/{bo_item}/suggestions")), None).await;
    assert_eq!(
        (again.status, again.body["id"].clone()),
        (StatusCode::OK, s.body["id"].clone()),
        "one pending at a time"
    );
    let sid = s.body["id"].as_str().unwrap().to_owned();

    // Nothing has been sent; an API key cannot approve; a person edits and sends it.
    assert!(h.sandbox.sent().is_empty());
    let key = h.key(&team, "alice", &["*"]).await;
    let r = h.call(&As::Key(key), "POST", &url(&format!("/suggestions/{sid}/approve")), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Text PostgreSQL could not store is refused before anything is tried.
    let r =
        h.call(&ALICE, "POST", &url(&format!("/suggestions/{sid}/approve")), Some(json!({"text": "hi\u{0}"}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("text")));
    let bo_contact = items["items"].as_array().unwrap().iter().find(|i| i["responseText"] == "maybe").unwrap()
        ["contactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts/{bo_contact}/messages"),
            Some(json!({"body": "a\u{0}b"})),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("body")));
    let a = ok(
        &h,
        &ALICE,
        "POST",
        &url(&format!("/suggestions/{sid}/approve")),
        Some(json!({"text": "Thanks Bo! Could I call you tomorrow at 10?"})),
    )
    .await;
    assert_eq!((a["suggestion"]["status"].as_str(), a["message"]["status"].as_str()), (Some("edited"), Some("sent")));
    let log = &a["suggestion"]["log"];
    assert_eq!(
        (log["action"].as_str(), log["finalText"].as_str()),
        (Some("edited"), Some("Thanks Bo! Could I call you tomorrow at 10?"))
    );
    assert_eq!(log["suggestedText"], "Thanks Bo! When is a good time for a quick call to go over the details?");
    assert!(log["actor"].as_str().unwrap().starts_with("usr_"));
    let sent = h.sandbox.sent();
    assert_eq!(
        (sent.len(), sent[0].to.as_str(), sent[0].body.as_str()),
        (1, bo.as_str(), "Thanks Bo! Could I call you tomorrow at 10?")
    );
    let item = ok(&h, &ALICE, "GET", &url(&format!("/items/{bo_item}")), None).await;
    assert!(item["item"]["processedAt"].is_string());
    let r = h.call(&ALICE, "POST", &url(&format!("/suggestions/{sid}/approve")), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "decided once");
    assert_eq!(h.sandbox.sent().len(), 1);

    // Ana opted out after her reply: approving is refused by the gate, nothing is logged, and
    // the suggestion still waits; it can be rejected, with a reason.
    let s = ok(&h, &ALICE, "POST", &url(&format!("/items/{ana_item}/suggestions")), None).await;
    let sid = s["id"].as_str().unwrap().to_owned();
    let r = h.call(&ALICE, "POST", &url(&format!("/suggestions/{sid}/approve")), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("opt_out"));
    let list = ok(&h, &ALICE, "GET", &url(&format!("/items/{ana_item}/suggestions")), None).await;
    assert_eq!((list[0]["status"].as_str(), list[0]["log"].is_null()), (Some("pending"), true));
    let rj =
        ok(&h, &ALICE, "POST", &url(&format!("/suggestions/{sid}/reject")), Some(json!({"reason": "opted out"}))).await;
    assert_eq!(
        (rj["status"].as_str(), rj["log"]["action"].as_str(), rj["log"]["finalText"].is_null()),
        (Some("rejected"), Some("rejected"), true)
    );
    assert_eq!(h.count("ai_approval_log").await, 2);
    // Every AI-written message that left has its log row.
    let unlogged: i64 =
        h.t.superuser()
            .await
            .query_one(
                "SELECT count(*) FROM messages m WHERE m.send_key LIKE 'ai:%' AND NOT EXISTS
           (SELECT 1 FROM ai_approval_log l WHERE l.message_id = m.id)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(unlogged, 0);
}
