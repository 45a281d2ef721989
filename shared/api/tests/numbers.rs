//! Sending numbers belong to a team because SignalHouse says so: the team's own subgroup,
//! registration only of numbers the provider lists there (with one answer whether the number
//! is unknown or another team's), buying by webhook event, routing only by verified numbers,
//! and no platform sender when the transport is a real provider.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{TimeZone, Utc};
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::{Job, Processed, Processor};
use nextier_outbound::{
    Cleared, Delivered, Dispatch, Gate, OutboundGate, OutboundRequest, Prepared, Transport, TransportError, Verdict,
};
use nextier_platform::local::{PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::{json, Value};
use support::{harness, As, Harness};
use tower::ServiceExt;

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const MO: As = As::User("mo");
const MALLORY: As = As::User("mallory");
const SECRET: &[u8] = b"whsec_numbers";

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

/// Acme (alice OWNER, bob ADMIN, mo MEMBER) and Other (mallory OWNER).
async fn teams(h: &Harness) -> (String, String) {
    let acme = h.team("alice", "Acme").await;
    h.join(&acme, "alice", "bob", "ADMIN").await;
    h.join(&acme, "alice", "mo", "MEMBER").await;
    let other = h.team("mallory", "Other").await;
    (acme, other)
}

async fn connect(h: &Harness, who: &As, team: &str) -> String {
    ok(h, who, "POST", &format!("/teams/{team}/signalhouse/connect"), None).await["subgroupId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A SignalHouse webhook delivery, signed, then the job it staged run by the consumer.
async fn deliver(h: &Harness, delivery: &str, payload: Value) -> Processed {
    let queue = Arc::new(PgQueue::new(h.t.worker.clone()));
    let bus = Arc::new(PgEventBus::new(h.t.worker.clone(), "default"));
    let publisher = OutboxPublisher::new(h.t.worker.clone(), queue, bus);
    let router = webhook::router(WebhookState::new(h.t.worker.clone(), publisher, vec![SECRET.to_vec()]));
    let body = payload.to_string();
    let ts = Utc::now().timestamp_millis();
    let req = Request::post(webhook::PATH)
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={}", sign_signalhouse(SECRET, ts, body.as_bytes())))
        .header("x-signalhouse-delivery-id", delivery)
        .body(Body::from(body))
        .unwrap();
    assert_eq!(router.oneshot(req).await.unwrap().status(), StatusCode::OK);
    let rows =
        h.t.superuser()
            .await
            .query("DELETE FROM outbox WHERE destination = 'inbound' RETURNING payload", &[])
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "the webhook staged one job");
    let job: Job = serde_json::from_value(rows[0].get(0)).unwrap();
    let p = Processor {
        db: h.t.worker.clone(),
        gate: h.state.gate.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    p.process(&job, 1).await.unwrap()
}

#[tokio::test]
async fn connecting_gives_each_team_its_own_subgroup_once() {
    let h = harness().await;
    let (acme, other) = teams(&h).await;
    let url = format!("/teams/{acme}/signalhouse/connect");
    assert_eq!(h.call(&MO, "POST", &url, None).await.status, StatusCode::FORBIDDEN, "a MEMBER cannot");
    let narrow = As::Key(h.key(&acme, "alice", &["campaigns:read"]).await);
    assert_eq!(h.call(&narrow, "POST", &url, None).await.status, StatusCode::FORBIDDEN);
    assert!(h.call(&MALLORY, "POST", &url, None).await.status.is_client_error(), "another team's owner cannot");
    let first = h.call(&BOB, "POST", &url, None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let id = first.body["subgroupId"].as_str().unwrap().to_owned();
    // Again (as an API key with settings:manage): the same subgroup, nothing new at the provider.
    let key = As::Key(h.key(&acme, "alice", &["settings:manage"]).await);
    let again = h.call(&key, "POST", &url, None).await;
    assert_eq!((again.status, again.body["subgroupId"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let theirs = connect(&h, &MALLORY, &other).await;
    assert_ne!(theirs, id);
    assert_eq!(h.numbers.subgroups().len(), 2);
    let stored: Option<String> =
        h.t.superuser()
            .await
            .query_one("SELECT signalhouse_subgroup_id FROM teams WHERE id = $1", &[&acme])
            .await
            .unwrap()
            .get(0);
    assert_eq!(stored.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn a_number_is_registered_only_when_the_provider_lists_it_and_never_tells_whose_it_is() {
    let h = harness().await;
    let (acme, other) = teams(&h).await;
    let url = format!("/teams/{acme}/sending-numbers");
    let add = |n: &str| Some(json!({"number": n}));
    let r = h.call(&BOB, "POST", &url, add("2125550402")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "not connected yet: {}", r.body);
    let mine = connect(&h, &BOB, &acme).await;
    let theirs = connect(&h, &MALLORY, &other).await;
    // Other holds 212-555-0401 (listed in its subgroup, registered).
    h.numbers.place(&theirs, "+12125550401");
    ok(&h, &MALLORY, "POST", &format!("/teams/{other}/sending-numbers"), add("2125550401")).await;

    let unknown = h.call(&BOB, "POST", &url, add("2125550402")).await;
    let held = h.call(&BOB, "POST", &url, add("2125550401")).await;
    assert_eq!((unknown.status, unknown.field()), (StatusCode::BAD_REQUEST, Some("number")));
    assert_eq!((held.status, &held.body["errors"]), (unknown.status, &unknown.body["errors"]), "one answer for both");
    // Even when the provider now lists it in our subgroup while the other team still holds a
    // live registration, the database's uniqueness does not leak it.
    h.numbers.place(&mine, "+12125550401");
    let moved = h.call(&BOB, "POST", &url, add("2125550401")).await;
    assert_eq!((moved.status, &moved.body["errors"]), (unknown.status, &unknown.body["errors"]));

    h.numbers.place(&mine, "+12125550403");
    assert_eq!(h.call(&MO, "POST", &url, add("2125550403")).await.status, StatusCode::FORBIDDEN);
    assert!(h.call(&MALLORY, "POST", &url, add("2125550403")).await.status.is_client_error());
    let narrow = As::Key(h.key(&acme, "alice", &["campaigns:write"]).await);
    assert_eq!(h.call(&narrow, "POST", &url, add("2125550403")).await.status, StatusCode::FORBIDDEN);
    let key = As::Key(h.key(&acme, "alice", &["settings:manage"]).await);
    let n = ok(&h, &key, "POST", &url, add("(212) 555-0403")).await;
    assert_eq!((n["e164"].as_str(), n["status"].as_str()), (Some("+12125550403"), Some("active")));
    assert_eq!(h.call(&BOB, "POST", &url, add("2125550403")).await.status, StatusCode::CONFLICT, "already ours");
    let verified: i64 = h
        .t
        .superuser()
        .await
        .query_one("SELECT count(*) FROM sending_numbers WHERE e164 = '+12125550403' AND verified_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(verified, 1);
    let list = ok(&h, &MO, "GET", &url, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let id = n["id"].as_str().unwrap();
    let health = ok(&h, &MO, "GET", &format!("{url}/{id}/health"), None).await;
    assert_eq!(health, json!({"number": "+12125550403", "score": 10.0}));
    let theirs = h.call(&MALLORY, "GET", &format!("/teams/{other}/sending-numbers/{id}/health"), None).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "another team's number is not found");
}

fn purchase_event(event: &str, digits: &str, subgroup: &str) -> Value {
    json!({"event": event, "data": {"phoneNumber": digits, "subgroupId": subgroup}})
}

#[tokio::test]
async fn a_bought_number_becomes_the_teams_when_the_provider_says_so() {
    let h = harness().await;
    let (acme, other) = teams(&h).await;
    let base = format!("/teams/{acme}/sending-numbers");
    let bad = h.call(&BOB, "GET", &format!("{base}/available?npa=12x"), None).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("npa")));
    let found = ok(&h, &BOB, "GET", &format!("{base}/available?state=NY&npa=212&limit=3"), None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 3);
    let number = found["items"][0]["number"].as_str().unwrap().to_owned();
    let buy = Some(json!({"numbers": [number]}));
    assert_eq!(h.call(&BOB, "POST", &format!("{base}/purchase"), buy.clone()).await.status, StatusCode::CONFLICT);
    let mine = connect(&h, &BOB, &acme).await;
    let theirs = connect(&h, &MALLORY, &other).await;
    assert_eq!(h.call(&MO, "POST", &format!("{base}/purchase"), buy.clone()).await.status, StatusCode::FORBIDDEN);
    let bad = h.call(&BOB, "POST", &format!("{base}/purchase"), Some(json!({"numbers": ["12"]}))).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("numbers[0]")));
    let r = h.call(&BOB, "POST", &format!("{base}/purchase"), buy).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["items"][0]["status"], "pending");
    assert_eq!(h.numbers.purchases(), vec![(mine.clone(), vec![number.clone()])]);
    assert_eq!(h.count("sending_numbers").await, 0, "not ours until the provider says so");

    // An event for the same number in another team's subgroup, and one for a number nobody
    // ordered: nothing changes.
    let digits = number.trim_start_matches('+');
    let out = deliver(&h, "d-1", purchase_event("NUMBER_PURCHASE_SUCCESSFUL", digits, &theirs)).await;
    assert!(matches!(out, Processed::Ignored(_)), "{out:?}");
    let out = deliver(&h, "d-2", purchase_event("NUMBER_PURCHASE_SUCCESSFUL", "12125550999", &mine)).await;
    assert!(matches!(out, Processed::Ignored(_)), "{out:?}");
    assert_eq!(h.count("sending_numbers").await, 0);

    // The provider's word: the number is the team's active sending number.
    let out = deliver(&h, "d-3", purchase_event("NUMBER_PURCHASE_SUCCESSFUL", digits, &mine)).await;
    assert!(matches!(&out, Processed::Purchase { active: true, number: n, .. } if *n == number), "{out:?}");
    let list = ok(&h, &MO, "GET", &base, None).await;
    assert_eq!(list["items"][0]["e164"].as_str(), Some(number.as_str()));
    assert_eq!(list["items"][0]["status"], "active");
    // A replayed event changes nothing more.
    let out = deliver(&h, "d-4", purchase_event("NUMBER_PURCHASE_SUCCESSFUL", digits, &mine)).await;
    assert!(matches!(out, Processed::Ignored(_)), "{out:?}");
    // Replies to it are routed to the team (the provider writes numbers either way).
    let reply =
        json!({"event": "message.received", "from": "13126181234", "to": digits, "text": "hi", "message_id": "m1"});
    assert!(matches!(deliver(&h, "d-5", reply).await, Processed::Received { .. }));
}

#[tokio::test]
async fn a_failed_purchase_leaves_nothing_and_routing_ignores_unverified_numbers() {
    let h = harness().await;
    let (acme, _) = teams(&h).await;
    let mine = connect(&h, &BOB, &acme).await;
    let base = format!("/teams/{acme}/sending-numbers");
    ok(&h, &BOB, "POST", &format!("{base}/purchase"), Some(json!({"numbers": ["+12125550777"]}))).await;
    let failed = json!({"event": "NUMBER_PURCHASE_FAILED", "identifier": "+12125550777",
                        "metaData": {"subgroupId": mine, "reason": "no longer available"}});
    let out = deliver(&h, "d-1", failed).await;
    assert!(matches!(out, Processed::Purchase { active: false, .. }), "{out:?}");
    assert_eq!(h.count("sending_numbers").await, 0);
    let status: String = h.t.superuser().await.query_one("SELECT status FROM number_orders", &[]).await.unwrap().get(0);
    assert_eq!(status, "failed");
    // A number written straight into the table (never verified by the provider) routes nothing.
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by) VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, '+12125550888', 'x')",
            &[&acme],
        )
        .await
        .unwrap();
    let reply = json!({"event": "message.received", "from": "+13126181234", "to": "+12125550888", "text": "hi", "message_id": "m2"});
    assert!(matches!(deliver(&h, "d-2", reply.clone()).await, Processed::Unroutable(_)));
    // Registering it again once the provider lists it verifies it, and then it routes.
    let again = h.call(&BOB, "POST", &base, Some(json!({"number": "2125550888"}))).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "not listed yet: {}", again.body);
    h.numbers.place(&mine, "+12125550888");
    let again = h.call(&BOB, "POST", &base, Some(json!({"number": "2125550888"}))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.body["verifiedAt"].is_string());
    let reply = json!({"event": "message.received", "from": "+13126181234", "to": "+12125550888", "text": "hi", "message_id": "m3"});
    assert!(matches!(deliver(&h, "d-3", reply).await, Processed::Received { .. }));
}

/// A provider transport (it never lends a number), accepting every text.
struct Provider;

#[async_trait]
impl Transport for Provider {
    fn name(&self) -> &'static str {
        "provider"
    }
    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        assert!(m.from().is_some(), "never without a sender");
        Ok(Delivered { provider_message_id: format!("p_{}", m.message()) })
    }
}

/// The gate as it would decide at noon on a weekday in New York (the API reads the wall
/// clock; quiet hours are not what this test is about).
struct AtNoon(Gate);

#[async_trait]
impl OutboundGate for AtNoon {
    async fn prepare(&self, tx: &nextier_store::Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Prepared> {
        let noon = OutboundRequest { now: Utc.with_ymd_and_hms(2026, 12, 2, 17, 0, 0).unwrap(), ..req.clone() };
        self.0.prepare(tx, &noon).await
    }
    async fn deliver(&self, d: &Dispatch) -> Result<Delivered, TransportError> {
        self.0.deliver(d).await
    }
    async fn settle(
        &self,
        tx: &nextier_store::Tx<'_>,
        d: &Dispatch,
        outcome: Result<Delivered, TransportError>,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Verdict> {
        self.0.settle(tx, d, outcome, now).await
    }
}

#[tokio::test]
async fn in_production_a_team_without_a_number_of_its_own_cannot_send_and_is_told_why() {
    let h = harness().await;
    let (acme, _) = teams(&h).await;
    let sandbox = Arc::new(nextier_outbound::SandboxTransport::new());
    let gate = Gate::new(Arc::new(Provider), sandbox.clone(), sandbox);
    let state = nextier_api::AppState { gate: Arc::new(AtNoon(gate)), ..h.state.clone() };
    let prod = Harness { app: nextier_api::full_app(state.clone(), None), state, ..h };
    let phone = "2127363141";
    let c = ok(
        &prod,
        &ALICE,
        "POST",
        &format!("/teams/{acme}/contacts"),
        Some(json!({"firstName": "Ada", "phones": [{"number": phone, "type": "mobile"}]})),
    )
    .await;
    let send = format!("/teams/{acme}/contacts/{}/messages", c["id"].as_str().unwrap());
    let r = prod.call(&ALICE, "POST", &send, Some(json!({"body": "Hello"}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("no sending number"), "{}", r.body);
    // With a number the provider lists in the team's subgroup, it goes, from that number.
    let mine = connect(&prod, &BOB, &acme).await;
    prod.numbers.place(&mine, "+12125550403");
    ok(&prod, &BOB, "POST", &format!("/teams/{acme}/sending-numbers"), Some(json!({"number": "2125550403"}))).await;
    let m = ok(&prod, &ALICE, "POST", &send, Some(json!({"body": "Hello again"}))).await;
    assert_eq!(m["status"], "sent", "{m}");
}
