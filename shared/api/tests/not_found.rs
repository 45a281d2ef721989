//! Not found means not found: every route that names a resource answers a random
//! well-formed id and another team's id alike, 404 with the same problem body, on the item
//! and on its sub-collections (which must not answer an empty 200).

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use nextier_inbound::{Job, Processed, Processor};
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const ZOE: As = As::User("zoe");
const NUMBER: &str = "+12127363100";
const PHONE: &str = "+12127364301";

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

fn first_id(v: &Value) -> String {
    let items = v.get("items").unwrap_or(v);
    items[0]["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// Zoe's team with one of everything; the ids by placeholder name.
async fn other_team(h: &Harness) -> HashMap<&'static str, String> {
    let team = h.team("zoe", "Other").await;
    let t = |rest: &str| format!("/teams/{team}{rest}");
    let team_id = nextier_domain::ids::TeamId::parse("team", &team).unwrap();
    nextier_testkit::fixtures::sending_number(&h.t, &team_id, NUMBER).await;
    let mut ids = HashMap::new();
    let contact = ok(
        h,
        &ZOE,
        "POST",
        &t("/contacts"),
        Some(json!({"firstName": "Zed", "phones": [{"number": PHONE, "type": "mobile"}]})),
    )
    .await;
    let contact = contact["id"].as_str().unwrap().to_owned();
    let other = ok(h, &ZOE, "POST", &t("/contacts"), Some(json!({"firstName": "Zia"}))).await;
    ids.insert("contact2", other["id"].as_str().unwrap().to_owned());
    let campaign = ok(h, &ZOE, "POST", &t("/campaigns"), Some(json!({"name": "Theirs"}))).await;
    let campaign = campaign["id"].as_str().unwrap().to_owned();
    let step = json!({"channel": "SMS", "body": "Hi"});
    let steps = ok(h, &ZOE, "POST", &t(&format!("/campaigns/{campaign}/steps")), Some(step)).await;
    ids.insert("step", first_id(&steps));
    let tpl = json!({"name": "t", "channel": "SMS", "body": "Hi"});
    ids.insert(
        "template",
        ok(h, &ZOE, "POST", &t("/message-templates"), Some(tpl)).await["id"].as_str().unwrap().into(),
    );
    let filter = json!({"name": "f", "filter": {"tag": "x"}});
    ids.insert("filter", ok(h, &ZOE, "POST", &t("/saved-filters"), Some(filter)).await["id"].as_str().unwrap().into());
    let inv = ok(h, &ZOE, "POST", &t("/invitations"), Some(json!({"email": "q@example.com", "role": "MEMBER"}))).await;
    ids.insert("invitation", inv["invitation"]["id"].as_str().unwrap().into());
    let key = ok(h, &ZOE, "POST", &t("/api-keys"), Some(json!({"name": "k", "scopes": ["contacts:read"]}))).await;
    ids.insert("key", key["apiKey"]["id"].as_str().unwrap().into());
    ids.insert("user", h.user_id(&team, "zoe", "zoe").await);
    let import = ok(h, &ZOE, "POST", &t("/imports"), Some(json!({"fileName": "a.csv"}))).await;
    ids.insert("import", import["import"]["id"].as_str().unwrap().into());
    ids.insert("number", first_id(&ok(h, &ZOE, "GET", &t("/sending-numbers"), None).await));
    reply(h, PHONE, "Yes! call me at 4").await;
    ids.insert("message", first_id(&ok(h, &ZOE, "GET", &t(&format!("/contacts/{contact}/messages")), None).await));
    let item = first_id(&ok(h, &ZOE, "GET", &t("/inbox/items"), None).await);
    let suggestion = ok(h, &ZOE, "POST", &t(&format!("/inbox/items/{item}/suggestions")), None).await;
    ids.insert("suggestion", suggestion["id"].as_str().unwrap().into());
    ids.insert("item", item);
    ids.insert("call", first_id(&ok(h, &ZOE, "GET", &t("/call-queue"), None).await));
    let session = json!({"title": "s", "contactIds": [contact]});
    ids.insert(
        "session",
        ok(h, &ZOE, "POST", &t("/dialer-sessions"), Some(session)).await["id"].as_str().unwrap().into(),
    );
    let job = ok(h, &ZOE, "POST", &t("/skip-traces"), Some(json!({"contactIds": [contact]}))).await;
    ids.insert("job", job["id"].as_str().unwrap().into());
    ids.insert("contact", contact);
    ids.insert("campaign", campaign);
    ids
}

async fn reply(h: &Harness, from: &str, text: &str) {
    let p = Processor {
        db: h.t.worker.clone(),
        gate: h.state.gate.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    let job = Job::Webhook {
        webhook_event_id: "whk_nf".into(),
        payload: json!({"event": "message.received", "from": from, "to": NUMBER, "text": text, "message_id": "sh-nf"}),
    };
    let out = p.process(&job, 1).await.unwrap();
    assert!(matches!(out, Processed::Received { .. }), "{out:?}");
}

/// Random well-formed ids, one per placeholder.
fn random_ids() -> HashMap<&'static str, String> {
    use nextier_domain::ids::*;
    [
        ("contact", ContactId::new().to_string()),
        ("contact2", ContactId::new().to_string()),
        ("campaign", CampaignId::new().to_string()),
        ("step", StepId::new().to_string()),
        ("template", TemplateId::new().to_string()),
        ("filter", FilterId::new().to_string()),
        ("invitation", InvitationId::new().to_string()),
        ("key", ApiKeyId::new().to_string()),
        ("user", UserId::new().to_string()),
        ("import", ImportId::new().to_string()),
        ("number", RowId::new().to_string()),
        ("message", MessageId::new().to_string()),
        ("item", InboxItemId::new().to_string()),
        ("suggestion", SuggestionId::new().to_string()),
        ("call", CallId::new().to_string()),
        ("session", DialerSessionId::new().to_string()),
        ("job", SkipTraceId::new().to_string()),
    ]
    .into_iter()
    .collect()
}

/// Every route that names a resource (in its path, query or body), with a body that is
/// otherwise valid, so that the resource is the only thing wrong.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("DELETE", "/api-keys/{key}", None),
        ("PATCH", "/members/{user}", Some(json!({"role": "MEMBER"}))),
        ("DELETE", "/members/{user}", None),
        ("DELETE", "/invitations/{invitation}", None),
        ("GET", "/contacts/{contact}", None),
        ("PATCH", "/contacts/{contact}", Some(json!({"firstName": "X"}))),
        ("DELETE", "/contacts/{contact}", None),
        ("POST", "/contacts/{contact}/lead-state", Some(json!({"to": "responded"}))),
        ("POST", "/contacts/{contact}/merge", Some(json!({"mergeId": "{contact2}"}))),
        ("GET", "/contacts/{contact}/merges", None),
        ("GET", "/contacts/{contact}/messages", None),
        ("POST", "/contacts/{contact}/messages", Some(json!({"body": "hello"}))),
        ("GET", "/contacts/{contact}/timeline", None),
        ("POST", "/contacts/bulk", Some(json!({"action": "tag", "tags": ["x"], "ids": ["{contact}"]}))),
        ("GET", "/messages/{message}", None),
        ("GET", "/imports/{import}", None),
        ("POST", "/skip-traces", Some(json!({"contactIds": ["{contact}"]}))),
        ("GET", "/skip-traces/{job}", None),
        ("GET", "/campaigns/{campaign}", None),
        ("PATCH", "/campaigns/{campaign}", Some(json!({"name": "X"}))),
        ("DELETE", "/campaigns/{campaign}", None),
        ("POST", "/campaigns/{campaign}/pause", None),
        ("POST", "/campaigns/{campaign}/cancel", None),
        ("GET", "/campaigns/{campaign}/history", None),
        ("GET", "/campaigns/{campaign}/changes", None),
        ("GET", "/campaigns/{campaign}/stats", None),
        ("GET", "/campaigns/{campaign}/steps", None),
        ("POST", "/campaigns/{campaign}/steps", Some(json!({"channel": "SMS", "body": "Hi"}))),
        ("PATCH", "/campaigns/{campaign}/steps/{step}", Some(json!({"body": "Hello"}))),
        ("DELETE", "/campaigns/{campaign}/steps/{step}", None),
        ("GET", "/campaigns/{campaign}/enrolments", None),
        ("POST", "/campaigns/{campaign}/enrolments", Some(json!({"contactIds": ["{contact}"]}))),
        ("POST", "/campaigns/{campaign}/enrolments/remove", Some(json!({"contactIds": ["{contact}"]}))),
        ("PUT", "/campaigns/{campaign}/numbers", Some(json!({"numberIds": ["{number}"]}))),
        ("GET", "/message-templates/{template}", None),
        ("PATCH", "/message-templates/{template}", Some(json!({"name": "X"}))),
        ("DELETE", "/message-templates/{template}", None),
        ("DELETE", "/saved-filters/{filter}", None),
        ("PATCH", "/sending-numbers/{number}", Some(json!({"status": "paused"}))),
        ("GET", "/inbox/items/{item}", None),
        ("POST", "/inbox/items/{item}/move", Some(json!({"bucket": "NEUTRAL_REVIEW"}))),
        ("POST", "/inbox/items/move", Some(json!({"itemIds": ["{item}"], "bucket": "NEUTRAL_REVIEW"}))),
        ("POST", "/inbox/items/{item}/processed", None),
        ("POST", "/inbox/items/{item}/escalate", None),
        ("GET", "/inbox/items/{item}/suggestions", None),
        ("POST", "/inbox/items/{item}/suggestions", None),
        ("POST", "/inbox/suggestions/{suggestion}/approve", None),
        ("POST", "/inbox/suggestions/{suggestion}/reject", None),
        ("POST", "/call-queue", Some(json!({"contactId": "{contact}", "priority": 10}))),
        ("POST", "/call-queue/claim", Some(json!({"callId": "{call}"}))),
        ("POST", "/call-queue/{call}/complete", Some(json!({"outcome": "connected"}))),
        ("GET", "/call-history?contactId={contact}", None),
        ("POST", "/dialer-sessions", Some(json!({"title": "t", "contactIds": ["{contact}"]}))),
        ("GET", "/dialer-sessions/{session}", None),
        ("POST", "/dialer-sessions/{session}/next", None),
        ("POST", "/dialer-sessions/{session}/calls", Some(json!({"contactId": "{contact}", "outcome": "connected"}))),
    ]
}

fn fill(template: &str, ids: &HashMap<&'static str, String>) -> String {
    ids.iter().fold(template.to_owned(), |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
}

/// What a caller can tell apart: status, problem type, title and detail.
fn shape(r: &support::Resp) -> (StatusCode, Value, Value, Value) {
    (r.status, r.body["type"].clone(), r.body["title"].clone(), r.body["detail"].clone())
}

#[tokio::test]
async fn another_teams_resources_answer_exactly_like_missing_ones() {
    let h = harness().await;
    let mine = h.team("alice", "Mine").await;
    let theirs = other_team(&h).await;
    let random = random_ids();
    let mut wrong = vec![];
    for (method, path, body) in routes() {
        let mut answers = vec![];
        for ids in [&random, &theirs] {
            let uri = format!("/teams/{mine}{}", fill(path, ids));
            let body = body.as_ref().map(|b| serde_json::from_str(&fill(&b.to_string(), ids)).unwrap());
            answers.push(shape(&h.call(&ALICE, method, &uri, body).await));
        }
        let (missing, foreign) = (&answers[0], &answers[1]);
        if missing.0 != StatusCode::NOT_FOUND || foreign != missing {
            wrong.push(format!("{method} {path}: random id {missing:?}, another team's {foreign:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} routes leak or answer differently:\n{}", wrong.len(), wrong.join("\n"));

    // Nothing of the other team was touched by any of it.
    let t = |rest: &str| format!("/teams/{}{rest}", mine);
    assert!(!t("").is_empty());
    let zoe_team = ok(&h, &ZOE, "GET", "/teams", None).await["items"][0]["id"].as_str().unwrap().to_owned();
    let c = ok(&h, &ZOE, "GET", &format!("/teams/{zoe_team}/contacts/{}", theirs["contact"]), None).await;
    assert_eq!(c["firstName"], "Zed");
    let camp = ok(&h, &ZOE, "GET", &format!("/teams/{zoe_team}/campaigns/{}", theirs["campaign"]), None).await;
    assert_eq!((camp["name"].as_str(), camp["status"].as_str()), (Some("Theirs"), Some("DRAFT")));
    assert_eq!(
        ok(&h, &ZOE, "GET", &format!("/teams/{zoe_team}/call-queue"), None).await["items"].as_array().unwrap().len(),
        1
    );
}
