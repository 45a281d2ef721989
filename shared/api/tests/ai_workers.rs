//! The AI workers end to end, through the code a deployment runs: a signed SignalHouse webhook,
//! the `inbound` queue and its consumer's handler, the `ai` queue (routing, the suggestion,
//! the worker's policy), the AI scheduler putting due work on the `ai` queue, the outbound
//! gate with its sandbox carrier, and the effect read back over HTTP. The clock is a manual
//! one set to a weekday noon in New York, so hours, delays and cadences are exact.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Datelike, TimeZone, Utc, Weekday};
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::{handle_queue, Processor, AI_QUEUE, ANSWERS_QUEUE, QUEUE as INBOUND};
use nextier_platform::local::{PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::ports::suggester::Suggester;
use nextier_platform::Queue;
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::{json, Value};
use support::{harness, sqs_event, As, Harness};
use tower::ServiceExt;

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
/// The team's two sending numbers (SABRINA will own the second).
const MAIN: &str = "+12127363100";
const CLOSER_LINE: &str = "+12127363101";
const SECRET: &[u8] = b"whsec_ai";

struct Rig {
    h: Harness,
    team: String,
    clock: ManualClock,
    queue: PgQueue,
    p: Arc<Processor>,
    publisher: OutboxPublisher,
    deliveries: std::sync::atomic::AtomicUsize,
}

/// The next weekday (from tomorrow) at 17:00 UTC: noon in New York, ahead of the real clock.
fn weekday_noon() -> DateTime<Utc> {
    let mut d = (Utc::now() + chrono::Duration::days(1)).date_naive();
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d += chrono::Duration::days(1);
    }
    Utc.from_utc_datetime(&d.and_hms_opt(17, 0, 0).unwrap())
}

async fn rig_with(suggester: Arc<dyn Suggester>) -> Rig {
    let mut h = harness().await;
    let clock = ManualClock::at(weekday_noon());
    let queue = PgQueue::new(h.t.db.clone()).with_clock(Arc::new(clock.clone()));
    for q in [INBOUND, ANSWERS_QUEUE, AI_QUEUE] {
        queue.declare(&QueueSpec::with_dlq(q, Duration::from_secs(180), 5)).await.unwrap();
    }
    let bus = nextier_platform::local::PgEventBus::new(h.t.db.clone(), "default");
    let publisher = OutboxPublisher::new(h.t.worker.clone(), Arc::new(queue.clone()), Arc::new(bus));
    // The API on the same clock.
    h.state.clock = Arc::new(clock.clone());
    h.state.outbox = publisher.clone();
    h.app = nextier_api::full_app(h.state.clone(), None);
    let team = h.team("alice", "Acme").await;
    for (i, n) in [MAIN, CLOSER_LINE].into_iter().enumerate() {
        h.t.superuser()
            .await
            .execute(
                "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at) VALUES ($1, $2, $3, 'test', now())",
                &[&format!("row_01JD8Z6Q3M4N5P6R7S8T9V0W{i}X"), &team, &n],
            )
            .await
            .unwrap();
    }
    let p = Arc::new(Processor {
        db: h.t.worker.clone(),
        gate: h.state.gate.clone(),
        clock: Arc::new(clock.clone()),
        outbox: Some(publisher.clone()),
        suggester,
    });
    Rig { h, team, clock, queue, p, publisher, deliveries: Default::default() }
}

async fn rig() -> Rig {
    rig_with(Arc::new(nextier_inbound::suggest::TemplateSuggester)).await
}

impl Rig {
    fn url(&self, path: &str) -> String {
        format!("/teams/{}{path}", self.team)
    }

    async fn call(&self, who: &As, method: &str, path: &str, body: Option<Value>) -> support::Resp {
        self.h.call(who, method, &self.url(path), body).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(&ALICE, method, path, body).await;
        assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.body);
        r.body
    }

    /// Runs the consumers of the inbound path over whatever is visible until nothing is; a
    /// failed message is made visible again, as SQS would after its visibility timeout.
    async fn drain(&self) -> usize {
        let mut handled = 0;
        for _ in 0..100 {
            let mut any = false;
            for q in [INBOUND, ANSWERS_QUEUE, AI_QUEUE] {
                let batch = self.queue.receive(q, 10).await.unwrap();
                if batch.is_empty() {
                    continue;
                }
                any = true;
                handled += batch.len();
                let resp = handle_queue(&self.p, q, sqs_event(q, &batch)).await;
                let failed: Vec<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
                for m in &batch {
                    if failed.contains(&m.id) {
                        self.queue.change_visibility(q, &m.receipt_handle, Duration::ZERO).await.unwrap();
                    } else {
                        self.queue.delete(q, &m.receipt_handle).await.unwrap();
                    }
                }
            }
            if !any {
                return handled;
            }
        }
        panic!("the queues never drained");
    }

    /// The AI scheduler's run (as its cron would), then the consumers.
    async fn tick(&self) -> Value {
        let s = nextier_inbound::ai_schedule::run(&self.h.t.worker, &self.publisher, self.clock.now()).await.unwrap();
        self.drain().await;
        serde_json::to_value(s).unwrap()
    }

    /// A lead's text to one of our numbers, through the signed webhook and the consumers.
    async fn text(&self, from: &str, to: &str, body: &str) -> String {
        // Time passes between messages, as it does.
        self.clock.advance(chrono::Duration::seconds(1));
        let n = self.deliveries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let payload = json!({"event": "message.received", "text": body, "from": from, "to": to,
                             "message_id": format!("sh-in-{n}"), "timestamp": self.clock.now().to_rfc3339()});
        let raw = payload.to_string().into_bytes();
        let ts = Utc::now().timestamp_millis();
        let req = Request::post(webhook::PATH)
            .header("content-type", "application/json")
            .header("x-signalhouse-signature-v1", format!("t={ts},v1={}", sign_signalhouse(SECRET, ts, &raw)))
            .header("x-signalhouse-delivery-id", format!("d-{n}"))
            .body(Body::from(raw))
            .unwrap();
        let router =
            webhook::router(WebhookState::new(self.h.t.worker.clone(), self.publisher.clone(), vec![SECRET.to_vec()]));
        assert_eq!(router.oneshot(req).await.unwrap().status(), StatusCode::OK);
        self.drain().await;
        // The inbox item this text made.
        let items = self.ok("GET", "/inbox/items?limit=200&processed=true", None).await;
        items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["responseText"] == body && i["phone"] == from)
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    async fn worker(&self, key: &str) -> Value {
        let all = self.ok("GET", "/ai/workers", None).await;
        all.as_array().unwrap().iter().find(|w| w["key"] == key).cloned().unwrap()
    }

    async fn suggestions(&self, item: &str) -> Vec<Value> {
        self.ok("GET", &format!("/inbox/items/{item}/suggestions"), None).await.as_array().unwrap().clone()
    }

    fn sent(&self) -> Vec<(String, String)> {
        self.h.sandbox.sent().into_iter().map(|m| (m.to.clone(), m.body.clone())).collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.h.t.superuser().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

#[tokio::test]
async fn replies_route_by_number_then_last_sender_then_rules_and_say_why() {
    let r = rig().await;
    let sabrina = r.worker("sabrina").await;
    let body = r
        .ok(
            "PUT",
            &format!("/ai/workers/{}/numbers", sabrina["id"].as_str().unwrap()),
            Some(json!({"numbers": [CLOSER_LINE]})),
        )
        .await;
    assert_eq!(body["numbers"], json!([CLOSER_LINE]));
    r.ok("PUT", "/settings/booking/link", Some(json!({"value": "https://cal.example.com/acme"}))).await;

    // A reply to SABRINA's number is hers, whatever it says.
    let a = r.text("+12125550201", CLOSER_LINE, "maybe, what is this about?").await;
    let route = r.ok("GET", &format!("/inbox/items/{a}/routing"), None).await;
    assert_eq!(
        (route[0]["workerId"].clone(), route[0]["reason"].clone()),
        (sabrina["id"].clone(), json!("number_owner"))
    );
    let s = &r.suggestions(&a).await[0];
    assert_eq!(s["workerId"], sabrina["id"]);
    assert!(
        s["suggestedText"].as_str().unwrap().contains("https://cal.example.com/acme"),
        "the closer offers the booking link: {s}"
    );

    // A first reply to the main number: the opener, by the messages exchanged.
    let b = r.text("+12125550202", MAIN, "Yes I'd consider it").await;
    let route = r.ok("GET", &format!("/inbox/items/{b}/routing"), None).await;
    let gianna = r.worker("gianna").await;
    assert_eq!((route[0]["workerId"].clone(), route[0]["reason"].clone()), (gianna["id"].clone(), json!("exchanged")));
    assert!(route[0]["detail"].as_str().unwrap().contains("1 messages exchanged"), "{route}");

    // Asking for a time goes to the closer.
    let c = r.text("+12125550203", MAIN, "Call me Tuesday at 3pm").await;
    let route = r.ok("GET", &format!("/inbox/items/{c}/routing"), None).await;
    assert_eq!(
        (route[0]["workerId"].clone(), route[0]["reason"].clone()),
        (sabrina["id"].clone(), json!("scheduling_intent"))
    );

    // A person sends GIANNA's suggestion; the lead's next reply is GIANNA's, as the last sender.
    let sb = r.suggestions(&b).await[0].clone();
    r.ok("POST", &format!("/inbox/suggestions/{}/approve", sb["id"].as_str().unwrap()), None).await;
    let b2 = r.text("+12125550202", MAIN, "ok what would you offer").await;
    let route = r.ok("GET", &format!("/inbox/items/{b2}/routing"), None).await;
    assert_eq!(
        (route[0]["workerId"].clone(), route[0]["reason"].clone()),
        (gianna["id"].clone(), json!("last_sender"))
    );
    // An answered item is never answered again: the job redelivered, or a person asking.
    let job = nextier_inbound::Job::Suggest { team_id: r.team.clone(), item_id: b.clone() };
    r.p.process(&job, 3).await.unwrap();
    let again = r.call(&ALICE, "POST", &format!("/inbox/items/{b}/suggestions"), None).await;
    assert_eq!((again.status, again.body["status"].clone()), (StatusCode::OK, json!("approved")), "{}", again.body);
    assert_eq!(r.suggestions(&b).await.len(), 1);
    // A rejected suggestion is not rewritten by the job; a person may ask for another, which
    // waits for a person whatever the policy.
    let sa = r.suggestions(&a).await[0].clone();
    r.ok(
        "POST",
        &format!("/inbox/suggestions/{}/reject", sa["id"].as_str().unwrap()),
        Some(json!({"reason": "off tone"})),
    )
    .await;
    let job = nextier_inbound::Job::Suggest { team_id: r.team.clone(), item_id: a.clone() };
    r.p.process(&job, 2).await.unwrap();
    assert_eq!(r.suggestions(&a).await.len(), 1);
    let fresh = r.call(&ALICE, "POST", &format!("/inbox/items/{a}/suggestions"), None).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{}", fresh.body);
    assert!(fresh.body["sendAfter"].is_null());
    // Routed once per item, however often its job runs.
    assert_eq!(r.count("SELECT count(*) FROM ai_routing_decisions").await, 4);
    // Nothing went out on its own: every worker's policy is `never` by default.
    assert_eq!(r.sent().len(), 1, "only the approved one");
    let log = r.ok("GET", "/ai/log", None).await;
    assert!(log.as_array().unwrap().iter().any(|e| e["event"] == "replied" && e["workerId"] == gianna["id"]), "{log}");
}

#[tokio::test]
async fn an_auto_send_waits_its_delay_inside_active_hours_and_logs_its_policy_version() {
    let r = rig().await;
    let gianna = r.worker("gianna").await;
    let gid = gianna["id"].as_str().unwrap().to_owned();
    let policy = json!({"autoSend": "confident", "autoThreshold": 50, "autoClasses": ["positive", "question"],
                        "responseDelay": {"minSeconds": 120, "maxSeconds": 120}});
    // A key, even one that may manage the AI, cannot switch auto-send on.
    let key = r.h.key(&r.team, "alice", &["ai:manage"]).await;
    let k = r.call(&As::Key(key.clone()), "PATCH", &format!("/ai/workers/{gid}"), Some(policy.clone())).await;
    assert_eq!(k.status, StatusCode::FORBIDDEN, "{}", k.body);
    // It may change the persona.
    let k = r.call(&As::Key(key), "PATCH", &format!("/ai/workers/{gid}"), Some(json!({"tone": "warm"}))).await;
    assert_eq!(k.status, StatusCode::OK, "{}", k.body);
    let w = r.ok("PATCH", &format!("/ai/workers/{gid}"), Some(policy)).await;
    assert_eq!(w["policyVersion"], 2);

    let item = r.text("+12125550301", MAIN, "Yes, interested").await;
    let s = r.suggestions(&item).await[0].clone();
    let at: DateTime<Utc> = s["sendAfter"].as_str().unwrap().parse().unwrap();
    assert_eq!(at, r.clock.now() + chrono::Duration::seconds(120));
    assert!(r.sent().is_empty(), "not before its delay");
    assert_eq!(r.tick().await["sends"], 0);
    r.clock.advance(chrono::Duration::seconds(121));
    assert_eq!(r.tick().await["sends"], 1);
    let sent = r.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "+12125550301");
    let s = r.suggestions(&item).await[0].clone();
    assert_eq!(s["status"], "auto_sent");
    assert_eq!((s["log"]["policyVersion"].clone(), s["log"]["actor"].clone()), (json!(2), json!("ai:gianna")));
    assert!(s["log"]["reason"].as_str().unwrap().contains("policy v2"), "{s}");
    // The scheduler running again, or the job redelivered, sends nothing more.
    r.tick().await;
    let job =
        nextier_inbound::Job::AutoSend { team_id: r.team.clone(), suggestion_id: s["id"].as_str().unwrap().into() };
    r.p.process(&job, 2).await.unwrap();
    assert_eq!(r.sent().len(), 1);
    let m = r.ok("GET", &format!("/ai/workers/{gid}/metrics"), None).await;
    assert_eq!((m["suggestions"].clone(), m["autoSent"].clone(), m["sent"].clone()), (json!(1), json!(1), json!(1)));

    // A policy narrowed after a suggestion was written holds it for a person.
    let item = r.text("+12125550302", MAIN, "Yes please").await;
    let w = r.ok("PATCH", &format!("/ai/workers/{gid}"), Some(json!({"autoSend": "never"}))).await;
    assert_eq!(w["policyVersion"], 3);
    r.clock.advance(chrono::Duration::seconds(121));
    r.tick().await;
    assert_eq!(r.sent().len(), 1);
    let queue = r.ok("GET", "/ai/suggestions", None).await;
    let held = queue.as_array().unwrap().iter().find(|s| s["inboxItemId"] == item.as_str()).unwrap();
    assert!(held["note"].as_str().unwrap().contains("policy v3"), "{held}");
    assert!(held["sendAfter"].is_null());
    let history = r.ok("GET", &format!("/ai/workers/{gid}/policies"), None).await;
    let versions: Vec<i64> = history.as_array().unwrap().iter().map(|p| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert_eq!(history[1]["changedBy"].as_str().map(|a| a.starts_with("usr_")), Some(true), "{history}");
}

#[tokio::test]
async fn outside_active_hours_and_past_a_cap_an_auto_send_waits_for_the_window() {
    let r = rig().await;
    let gid = r.worker("gianna").await["id"].as_str().unwrap().to_owned();
    r.ok(
        "PATCH",
        &format!("/ai/workers/{gid}"),
        Some(json!({"autoSend": "confident", "autoThreshold": 50, "autoClasses": ["positive"], "dailyCap": 1,
                    "responseDelay": {"minSeconds": 0, "maxSeconds": 0}, "activeFrom": "09:00", "activeUntil": "12:30"})),
    )
    .await;
    // At noon: the first goes at once, the second meets the daily cap.
    r.text("+12125550401", MAIN, "Yes, interested").await;
    assert_eq!(r.sent().len(), 1);
    let item = r.text("+12125550402", MAIN, "Yes, interested").await;
    r.tick().await;
    assert_eq!(r.sent().len(), 1, "the cap holds the second");
    let s = r.suggestions(&item).await[0].clone();
    assert!(s["note"].as_str().unwrap().contains("daily cap of 1"), "{s}");
    let next: DateTime<Utc> = s["sendAfter"].as_str().unwrap().parse().unwrap();
    let local = next.with_timezone(&nextier_domain::ai::zone(None));
    assert_eq!(local.format("%H:%M").to_string(), "09:00", "the next window opens at 9:00 New York");
    assert!(next > r.clock.now());
    // The next morning it goes.
    r.clock.set(next + chrono::Duration::seconds(1));
    r.tick().await;
    assert_eq!(r.sent().len(), 2);
    // A reply at 13:00 local (after the window) waits for tomorrow's window.
    r.clock.set(next + chrono::Duration::hours(4));
    let item = r.text("+12125550403", MAIN, "Yes, interested").await;
    let s = r.suggestions(&item).await[0].clone();
    let at: DateTime<Utc> = s["sendAfter"].as_str().unwrap().parse().unwrap();
    assert_eq!(at.with_timezone(&nextier_domain::ai::zone(None)).format("%H:%M").to_string(), "09:00");
    assert_eq!(r.sent().len(), 2);
}

#[tokio::test]
async fn the_nurture_cadence_runs_on_the_scheduler_and_stops_or_hands_over_on_a_reply() {
    let r = rig().await;
    let cathy = r.worker("cathy").await;
    let cid = cathy["id"].as_str().unwrap().to_owned();
    r.ok("PUT", "/settings/ai/nurture.min_days", Some(json!({"value": "3"}))).await;
    r.ok("PUT", "/settings/ai/nurture.max_days", Some(json!({"value": "3"}))).await;
    r.ok("PUT", "/settings/ai/nurture.stages", Some(json!({"value": "2"}))).await;
    // CATHY may send her follow-ups on her own, at once, any day.
    r.ok(
        "PATCH",
        &format!("/ai/workers/{cid}"),
        Some(json!({"autoSend": "confident", "autoThreshold": 90, "autoClasses": ["follow_up"],
                    "responseDelay": {"minSeconds": 0, "maxSeconds": 0}, "activeDays": [1,2,3,4,5,6,7]})),
    )
    .await;
    let contact =
        r.ok("POST", "/contacts", Some(json!({"firstName": "Dee", "phones": [{"number": "+12125550501"}]}))).await;
    let contact_id = contact["id"].as_str().unwrap().to_owned();
    let n = r.call(&ALICE, "POST", "/ai/nurtures", Some(json!({"contactId": contact_id}))).await;
    assert_eq!(n.status, StatusCode::CREATED, "{}", n.body);
    let again = r.call(&ALICE, "POST", "/ai/nurtures", Some(json!({"contactId": contact_id}))).await;
    assert_eq!(
        (again.status, again.body["id"].clone()),
        (StatusCode::OK, n.body["id"].clone()),
        "one cadence per lead"
    );
    let next: DateTime<Utc> = n.body["nextAt"].as_str().unwrap().parse().unwrap();
    assert_eq!((next - r.clock.now()).num_days(), 3);

    assert_eq!(r.tick().await["nurtures"], 0, "not yet");
    r.clock.set(next + chrono::Duration::seconds(1));
    assert_eq!(r.tick().await["nurtures"], 1);
    let sent = r.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("Hi Dee, just checking back in"), "{}", sent[0].1);
    let state = r.ok("GET", &format!("/ai/nurtures?contactId={contact_id}"), None).await;
    assert_eq!((state[0]["stage"].clone(), state[0]["status"].clone()), (json!(1), json!("active")));
    // The final attempt ends the cadence.
    let next: DateTime<Utc> = state[0]["nextAt"].as_str().unwrap().parse().unwrap();
    r.clock.set(next + chrono::Duration::seconds(1));
    r.tick().await;
    assert_eq!(r.sent().len(), 2);
    assert!(r.sent()[1].1.contains("last note"), "{}", r.sent()[1].1);
    let state = r.ok("GET", &format!("/ai/nurtures?contactId={contact_id}"), None).await;
    assert_eq!((state[0]["stage"].clone(), state[0]["status"].clone()), (json!(2), json!("completed")));

    // Another lead replies asking for a time: the cadence hands over, and the closer answers.
    let eve =
        r.ok("POST", "/contacts", Some(json!({"firstName": "Eve", "phones": [{"number": "+12125550502"}]}))).await;
    let eve_id = eve["id"].as_str().unwrap().to_owned();
    let n = r.ok("POST", "/ai/nurtures", Some(json!({"contactId": eve_id}))).await;
    r.clock.set(n["nextAt"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(1));
    r.tick().await;
    assert_eq!(r.sent().len(), 3);
    let item = r.text("+12125550502", MAIN, "Can you call me tomorrow morning?").await;
    let state = r.ok("GET", &format!("/ai/nurtures?contactId={eve_id}"), None).await;
    assert_eq!(state[0]["status"], "handed_over", "{state}");
    let route = r.ok("GET", &format!("/inbox/items/{item}/routing"), None).await;
    assert_eq!(
        (route[0]["workerId"].clone(), route[0]["reason"].clone()),
        (r.worker("sabrina").await["id"].clone(), json!("scheduling_intent"))
    );
    // A STOP ends a cadence too, and nothing more is written.
    let fay =
        r.ok("POST", "/contacts", Some(json!({"firstName": "Fay", "phones": [{"number": "+12125550503"}]}))).await;
    let fay_id = fay["id"].as_str().unwrap().to_owned();
    let n = r.ok("POST", "/ai/nurtures", Some(json!({"contactId": fay_id}))).await;
    r.text("+12125550503", MAIN, "STOP").await;
    let state = r.ok("GET", &format!("/ai/nurtures?contactId={fay_id}"), None).await;
    assert_eq!((state[0]["status"].clone(), state[0]["reason"].clone()), (json!("stopped"), json!("opted out")));
    r.clock.set(n["nextAt"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap() + chrono::Duration::days(10));
    r.tick().await;
    assert!(
        r.sent().iter().all(|(to, body)| to != "+12125550503"
            || body.contains("unsubscribed")
            || body.contains("STOP")
            || body.contains("opted")),
        "{:?}",
        r.sent()
    );
    // An opted-out lead cannot be put in a cadence.
    let again = r.call(&ALICE, "POST", "/ai/nurtures", Some(json!({"contactId": fay_id}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

#[tokio::test]
async fn a_follow_up_waits_for_a_person_by_default_and_holds_the_cadence() {
    let r = rig().await;
    let contact =
        r.ok("POST", "/contacts", Some(json!({"firstName": "Gus", "phones": [{"number": "+12125550601"}]}))).await;
    let id = contact["id"].as_str().unwrap().to_owned();
    let n = r.ok("POST", "/ai/nurtures", Some(json!({"contactId": id}))).await;
    r.clock.set(n["nextAt"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(1));
    r.tick().await;
    assert!(r.sent().is_empty(), "CATHY's policy is never: a person decides");
    r.ok("POST", &format!("/ai/research/{id}"), None).await;
    let queue = r.ok("GET", "/ai/suggestions", None).await;
    let s = queue.as_array().unwrap().iter().find(|s| s["kind"] == "follow_up").cloned().unwrap();
    assert_eq!(s["contactId"], id.as_str());
    assert!(s["research"]["brief"].is_string(), "the brief is shown beside it: {s}");
    // A week on, still waiting: the cadence does not pile up a second follow-up.
    r.clock.advance(chrono::Duration::days(7));
    r.tick().await;
    assert_eq!(r.count("SELECT count(*) FROM ai_suggestions WHERE kind = 'follow_up'").await, 1);
    // Approved by a person, edited: sent through the gate with the edit measured.
    let a = r
        .ok(
            "POST",
            &format!("/inbox/suggestions/{}/approve", s["id"].as_str().unwrap()),
            Some(json!({"text": "Hi Gus, any news on the house?"})),
        )
        .await;
    assert_eq!(a["suggestion"]["status"], "edited");
    assert!(a["suggestion"]["log"]["editDistance"].as_i64().unwrap() > 10);
    assert_eq!(r.sent(), vec![("+12125550601".to_owned(), "Hi Gus, any news on the house?".to_owned())]);
}

#[tokio::test]
async fn a_booked_meeting_moves_the_lead_exits_sequences_queues_a_call_and_publishes() {
    let r = rig().await;
    let contact =
        r.ok("POST", "/contacts", Some(json!({"firstName": "Hal", "phones": [{"number": "+12125550701"}]}))).await;
    let id = contact["id"].as_str().unwrap().to_owned();
    r.ok("POST", "/ai/nurtures", Some(json!({"contactId": id}))).await;
    let sabrina = r.worker("sabrina").await;
    let starts = (r.clock.now() + chrono::Duration::days(1)).to_rfc3339();
    let m = r.call(&BOB, "POST", "/ai/meetings", Some(json!({"contactId": id, "startsAt": starts}))).await;
    assert_eq!(m.status, StatusCode::NOT_FOUND, "a stranger to the team: {}", m.body);
    let m = r
        .ok(
            "POST",
            "/ai/meetings",
            Some(json!({"contactId": id, "startsAt": starts, "workerId": sabrina["id"], "notes": "roof 🏠"})),
        )
        .await;
    assert_eq!(m["status"], "booked");
    assert!(m["callId"].is_string(), "{m}");
    let c = r.ok("GET", &format!("/contacts/{id}"), None).await;
    assert_eq!(c["leadState"], "appointment_booked");
    let state = r.ok("GET", &format!("/ai/nurtures?contactId={id}"), None).await;
    assert_eq!(
        (state[0]["status"].clone(), state[0]["reason"].clone()),
        (json!("stopped"), json!("a meeting was booked"))
    );
    let calls = r.ok("GET", "/call-queue", None).await;
    assert!(calls.to_string().contains(&id), "{calls}");
    assert_eq!(r.count("SELECT count(*) FROM local_events WHERE detail_type = 'MeetingBooked'").await, 1);
    // The same time again is a conflict; a time in the past or garbage names the field.
    let again = r.call(&ALICE, "POST", "/ai/meetings", Some(json!({"contactId": id, "startsAt": starts}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    for bad in [json!("yesterday"), json!((r.clock.now() - chrono::Duration::hours(1)).to_rfc3339())] {
        let b = r.call(&ALICE, "POST", "/ai/meetings", Some(json!({"contactId": id, "startsAt": bad}))).await;
        assert_eq!((b.status, b.field()), (StatusCode::BAD_REQUEST, Some("startsAt")), "{}", b.body);
    }
    let metrics = r.ok("GET", &format!("/ai/workers/{}/metrics", sabrina["id"].as_str().unwrap()), None).await;
    assert_eq!(metrics["meetingsBooked"], 1);
}

#[tokio::test]
async fn research_is_a_cached_brief_with_citations_that_never_changes_the_contact() {
    let r = rig().await;
    let contact = r
        .ok("POST", "/contacts", Some(json!({"firstName": "Ivy", "lastName": "Stone", "company": "Stone Holdings", "title": "Owner",
                                             "phones": [{"number": "+12125550801"}],
                                             "address": {"line1": "1 Main St", "city": "Tampa", "state": "FL", "zip": "33602"}})))
        .await;
    let id = contact["id"].as_str().unwrap().to_owned();
    let none = r.call(&ALICE, "GET", &format!("/ai/research/{id}"), None).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND, "reading never pays for a model: {}", none.body);
    let b = r.ok("POST", &format!("/ai/research/{id}"), None).await;
    assert!(b["brief"].as_str().unwrap().contains("Owner at Stone Holdings"), "{b}");
    assert!(b["brief"].as_str().unwrap().contains("Tampa, FL"), "{b}");
    assert!(b["citations"].as_array().unwrap().contains(&json!("record:contact")));
    let again = r.ok("GET", &format!("/ai/research/{id}"), None).await;
    assert_eq!(again["createdAt"], b["createdAt"], "cached");
    let again = r.ok("POST", &format!("/ai/research/{id}"), None).await;
    assert_eq!(again["createdAt"], b["createdAt"], "a fresh brief is not paid for twice");
    r.clock.advance(chrono::Duration::hours(25));
    assert_eq!(r.call(&ALICE, "GET", &format!("/ai/research/{id}"), None).await.status, StatusCode::NOT_FOUND);
    let later = r.ok("POST", &format!("/ai/research/{id}"), None).await;
    assert_ne!(later["createdAt"], b["createdAt"], "a day old is stale");
    let after = r.ok("GET", &format!("/contacts/{id}"), None).await;
    assert_eq!((after["company"].clone(), after["title"].clone()), (json!("Stone Holdings"), json!("Owner")));
    // Another team's lead is not found.
    let other = r.h.team("bob", "Other").await;
    let x = r.h.call(&BOB, "GET", &format!("/teams/{other}/ai/research/{id}"), None).await;
    assert_eq!(x.status, StatusCode::NOT_FOUND, "{}", x.body);
}

#[tokio::test]
async fn workers_are_configured_by_admins_with_every_bad_field_named() {
    let r = rig().await;
    let all = r.ok("GET", "/ai/workers", None).await;
    let keys: Vec<&str> = all.as_array().unwrap().iter().map(|w| w["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["gianna", "cathy", "sabrina", "neva"]);
    r.h.join(&r.team, "alice", "carol", "MEMBER").await;
    let carol = As::User("carol");
    let gid = all[0]["id"].as_str().unwrap().to_owned();
    let m = r.call(&carol, "PATCH", &format!("/ai/workers/{gid}"), Some(json!({"tone": "brisk"}))).await;
    assert_eq!(m.status, StatusCode::FORBIDDEN, "{}", m.body);
    let m = r.call(&carol, "GET", &format!("/ai/workers/{gid}"), None).await;
    assert_eq!(m.status, StatusCode::OK, "members read");
    let bad = r
        .call(&ALICE, "POST", "/ai/workers", Some(json!({"key": "Bad Key", "name": "", "role": "boss", "activeFrom": "9am",
                                                         "autoClasses": ["dnc_request"], "dailyCap": -1, "faqs": [{"question": "", "answer": "x"}]})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["key", "name", "role", "activeFrom", "autoClasses[0]", "dailyCap", "faqs[0].question"] {
        assert!(fields.contains(&f), "{f} not named: {}", bad.body);
    }
    assert_eq!(r.count("SELECT count(*) FROM ai_workers").await, 4, "nothing half-written");
    // The closer never sends on its own.
    let sid = all[2]["id"].as_str().unwrap();
    let c = r
        .call(
            &ALICE,
            "PATCH",
            &format!("/ai/workers/{sid}"),
            Some(json!({"autoSend": "confident", "autoClasses": ["positive"]})),
        )
        .await;
    assert_eq!((c.status, c.field()), (StatusCode::BAD_REQUEST, Some("autoSend")), "{}", c.body);
    // A custom worker; a taken key; a number that is not the team's; another worker's number.
    let w = r
        .ok(
            "POST",
            "/ai/workers",
            Some(json!({"key": "nora", "name": "NORA", "role": "opener", "persona": "Spanish-speaking opener 🇲🇽"})),
        )
        .await;
    let dup = r.call(&ALICE, "POST", "/ai/workers", Some(json!({"key": "nora", "name": "N2", "role": "opener"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let nid = w["id"].as_str().unwrap();
    let n =
        r.call(&ALICE, "PUT", &format!("/ai/workers/{nid}/numbers"), Some(json!({"numbers": ["+13055550000"]}))).await;
    assert_eq!((n.status, n.field()), (StatusCode::BAD_REQUEST, Some("numbers[0]")), "{}", n.body);
    r.ok("PUT", &format!("/ai/workers/{gid}/numbers"), Some(json!({"numbers": [MAIN]}))).await;
    let n = r.call(&ALICE, "PUT", &format!("/ai/workers/{nid}/numbers"), Some(json!({"numbers": [MAIN]}))).await;
    assert_eq!(n.status, StatusCode::CONFLICT, "{}", n.body);
    assert!(n.body["detail"].as_str().unwrap().contains("gianna"), "{}", n.body);
    // Defaults are paused, not deleted; a custom one is deleted.
    let d = r.call(&ALICE, "DELETE", &format!("/ai/workers/{gid}"), None).await;
    assert_eq!(d.status, StatusCode::CONFLICT);
    assert_eq!(r.call(&ALICE, "DELETE", &format!("/ai/workers/{nid}"), None).await.status, StatusCode::NO_CONTENT);
    // Another team sees none of these.
    let other = r.h.team("bob", "Other").await;
    let x = r.h.call(&BOB, "GET", &format!("/teams/{other}/ai/workers/{gid}"), None).await;
    assert_eq!(x.status, StatusCode::NOT_FOUND);
    // Prompts are versioned.
    let p1 = r
        .ok(
            "POST",
            "/ai/prompts",
            Some(json!({"key": "reply", "systemTemplate": "You are {{workerName}}.", "userTemplate": "{{reply}}"})),
        )
        .await;
    let p2 = r.ok("POST", "/ai/prompts", Some(json!({"key": "reply", "systemTemplate": "You are {{workerName}}!", "userTemplate": "{{reply}}", "temperature": 0.5}))).await;
    assert_eq!((p1["version"].clone(), p2["version"].clone()), (json!(1), json!(2)));
    let bad = r
        .call(
            &ALICE,
            "POST",
            "/ai/prompts",
            Some(json!({"key": "nope", "systemTemplate": "", "userTemplate": "x", "temperature": 3})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"].as_array().unwrap().len(), 3, "{}", bad.body);
}

/// A model that never answers in time.
async fn hanging_model() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_hanging_model_falls_back_to_the_template_which_never_sends_itself() {
    use nextier_providers::llm::{Chain, Config, LlmSuggester, OpenAi};
    let base = hanging_model().await;
    let model = OpenAi::new(Config {
        base_url: base,
        api_key: "sk-test".into(),
        model: "gpt-test".into(),
        retry: nextier_providers::retry::Retry {
            attempts: 1,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        },
        timeout: Duration::from_millis(300),
    });
    let r = rig_with(Arc::new(LlmSuggester { chain: Chain(vec![Arc::new(model)]) })).await;
    let gid = r.worker("gianna").await["id"].as_str().unwrap().to_owned();
    r.ok(
        "PATCH",
        &format!("/ai/workers/{gid}"),
        Some(json!({"autoSend": "confident", "autoThreshold": 10, "autoClasses": ["positive"],
                    "responseDelay": {"minSeconds": 0, "maxSeconds": 0}})),
    )
    .await;
    let started = std::time::Instant::now();
    let item = r.text("+12125550901", MAIN, "Yes, interested").await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let s = r.suggestions(&item).await[0].clone();
    assert_eq!(s["source"], "template:positive");
    assert!(s["confidence"].is_null() && s["sendAfter"].is_null(), "{s}");
    assert!(s["note"].as_str().unwrap().contains("the model failed"), "{s}");
    r.clock.advance(chrono::Duration::hours(1));
    r.tick().await;
    assert!(r.sent().is_empty(), "a fallback waits for a person");
    let log = r.ok("GET", "/ai/log", None).await;
    assert_eq!(log[0]["event"], "fallback", "{log}");
    // A person can still send it.
    r.ok("POST", &format!("/inbox/suggestions/{}/approve", s["id"].as_str().unwrap()), None).await;
    assert_eq!(r.sent().len(), 1);
}

#[tokio::test]
async fn an_opt_out_holds_a_waiting_auto_send_and_the_gate_would_refuse_it_anyway() {
    let r = rig().await;
    let gid = r.worker("gianna").await["id"].as_str().unwrap().to_owned();
    r.ok(
        "PATCH",
        &format!("/ai/workers/{gid}"),
        Some(json!({"autoSend": "confident", "autoThreshold": 10, "autoClasses": ["positive"],
                    "responseDelay": {"minSeconds": 600, "maxSeconds": 600}})),
    )
    .await;
    let item = r.text("+12125551001", MAIN, "Yes, interested").await;
    assert!(r.suggestions(&item).await[0]["sendAfter"].is_string());
    r.text("+12125551001", MAIN, "STOP").await;
    let s = r.suggestions(&item).await[0].clone();
    assert!(s["sendAfter"].is_null(), "held: {s}");
    assert!(s["note"].as_str().unwrap().contains("newer message"), "{s}");
    r.clock.advance(chrono::Duration::minutes(11));
    r.tick().await;
    // Nothing AI-written went to that number (the rig's clock runs days ahead of the database's,
    // so the opt-out's confirmation, good for 24 hours, is not what this test looks at).
    let log = r.ok("GET", "/ai/log", None).await;
    assert!(log.as_array().unwrap().iter().all(|e| e["event"] != "sent"), "{log}");
    assert!(r.sent().iter().all(|(_, body)| !body.starts_with("Thanks")), "{:?}", r.sent());
    // A person approving it later is refused by the gate and nothing is recorded as sent.
    let a = r.call(&ALICE, "POST", &format!("/inbox/suggestions/{}/approve", s["id"].as_str().unwrap()), None).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let log = r.ok("GET", "/ai/log", None).await;
    assert!(log.as_array().unwrap().iter().all(|e| e["event"] != "sent"), "{log}");
}

#[tokio::test]
async fn an_opener_step_splits_sends_by_weight_keeps_its_copy_and_counts_replies() {
    use nextier_campaigns::sequence::{SequenceJob, Sequencer};
    use nextier_campaigns::{SEQUENCE_QUEUE, SYNC_QUEUE};
    let r = rig().await;
    r.h.join(&r.team, "alice", "bob", "ADMIN").await;
    for q in [SEQUENCE_QUEUE, SYNC_QUEUE] {
        r.queue.declare(&QueueSpec::with_dlq(q, Duration::from_secs(180), 5)).await.unwrap();
    }
    let a = r
        .ok(
            "POST",
            "/ai/openers",
            Some(json!({"category": "cold", "variant": "A", "tone": "friendly",
        "body": "Hi {{firstName|there}}, would you consider an offer on your place? Reply STOP to opt out."})),
        )
        .await;
    let b = r
        .ok(
            "POST",
            "/ai/openers",
            Some(json!({"category": "cold", "variant": "B", "weight": 1,
        "body": "{{firstName|Hello}}, quick question about your property 🏡 Reply STOP to opt out."})),
        )
        .await;
    r.ok("POST", "/ai/openers", Some(json!({"category": "cold", "variant": "C", "weight": 0, "body": "Paused text"})))
        .await;
    let dup =
        r.call(&ALICE, "POST", "/ai/openers", Some(json!({"category": "cold", "variant": "A", "body": "x"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    let bad = r
        .call(
            &ALICE,
            "POST",
            "/ai/openers",
            Some(json!({"category": "Cold!", "variant": "", "body": "{{nope}}", "weight": -1})),
        )
        .await;
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["category", "variant", "body", "weight"], "{}", bad.body);

    let c = r.ok("POST", "/campaigns", Some(json!({"name": "Cold A/B", "sendsPerMinute": 600}))).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    let steps = r.ok("POST", &format!("/campaigns/{cid}/steps"), Some(json!({"openerCategory": "cold"}))).await;
    assert_eq!(steps[0]["variants"].as_array().unwrap().len(), 2, "the paused variant is left out: {steps}");
    assert_eq!(steps[0]["openerCategory"], "cold");
    let none =
        r.call(&ALICE, "POST", &format!("/campaigns/{cid}/steps"), Some(json!({"openerCategory": "empty"}))).await;
    assert_eq!((none.status, none.field()), (StatusCode::BAD_REQUEST, Some("openerCategory")));
    let mut ids = Vec::new();
    for i in 0..20 {
        let c = r.ok("POST", "/contacts", Some(json!({"firstName": format!("Lead{i}"), "phones": [{"number": format!("+1212555{:04}", 1100 + i)}]}))).await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    r.ok("POST", &format!("/campaigns/{cid}/enrolments"), Some(json!({"contactIds": ids}))).await;
    r.ok("POST", &format!("/campaigns/{cid}/stage"), None).await;
    for action in ["approve", "start"] {
        let x = r.h.call(&BOB, "POST", &r.url(&format!("/campaigns/{cid}/{action}")), None).await;
        assert_eq!(x.status, StatusCode::OK, "{action}: {}", x.body);
    }
    // The library changes after approval; the approved step does not.
    r.ok(
        "PATCH",
        &format!("/ai/openers/{}", a["id"].as_str().unwrap()),
        Some(json!({"body": "CHANGED after approval"})),
    )
    .await;

    let seq =
        Sequencer { db: r.h.t.db.clone(), gate: r.h.state.gate.clone(), clock: Arc::new(r.clock.clone()), queue: None };
    for _ in 0..5 {
        nextier_campaigns::tick::tick(
            &r.h.t.worker,
            &r.queue,
            r.clock.now(),
            &nextier_campaigns::tick::TickConfig::default(),
        )
        .await
        .unwrap();
        loop {
            let msgs = r.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
                seq.process(&job).await.unwrap();
                r.queue.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
            }
        }
        r.clock.advance(chrono::Duration::seconds(61));
    }
    let sent = r.sent();
    assert_eq!(sent.len(), 20, "{sent:?}");
    let (from_a, from_b) = (
        sent.iter().filter(|(_, body)| body.contains("would you consider an offer")).count(),
        sent.iter().filter(|(_, body)| body.contains("quick question")).count(),
    );
    assert_eq!(from_a + from_b, 20, "only the approved copy: {sent:?}");
    assert!(from_a >= 3 && from_b >= 3, "both variants are drawn ({from_a}/{from_b})");
    let lib = r.ok("GET", "/ai/openers?category=cold", None).await;
    let count =
        |v: &str, k: &str| lib.as_array().unwrap().iter().find(|o| o["variant"] == v).unwrap()[k].as_i64().unwrap();
    assert_eq!((count("A", "sent"), count("B", "sent"), count("C", "sent")), (from_a as i64, from_b as i64, 0));

    // A lead answers a B text: B's replies and positives move, once.
    let (to, _) = sent.iter().find(|(_, body)| body.contains("quick question")).unwrap().clone();
    let item = r.text(&to, MAIN, "Yes, interested").await;
    r.text(&to, MAIN, "Yes, still interested").await;
    let lib = r.ok("GET", "/ai/openers?category=cold", None).await;
    let b_now = lib.as_array().unwrap().iter().find(|o| o["id"] == b["id"]).unwrap().clone();
    assert_eq!((b_now["replies"].clone(), b_now["positive"].clone()), (json!(1), json!(1)), "{b_now}");
    assert!(b_now["replyRate"].as_f64().unwrap() > 0.0);
    // The campaign's step stats split by variant: sent per variant, B's one positive reply.
    let stats = r.ok("GET", &format!("/campaigns/{cid}/stats"), None).await;
    let v = |name: &str, k: &str| {
        stats[0]["variants"].as_array().unwrap().iter().find(|x| x["variant"] == name).unwrap()[k].as_i64().unwrap()
    };
    assert_eq!((v("A", "sent"), v("B", "sent")), (from_a as i64, from_b as i64), "{stats}");
    assert_eq!((v("A", "replied"), v("B", "replied"), v("B", "positive"), v("B", "optedOut")), (0, 1, 1, 0), "{stats}");

    // The team's analytics, kept as it happened: the campaign's day, and a person's first
    // response to the reply.
    // The carrier's acceptance moves a message to sent on the database's clock (today), the
    // inbox records replies on the test clock's day (the next weekday, up to three days
    // ahead): the range holds both, whatever day of the week the test runs.
    let (test_day, today) = (r.clock.now().date_naive(), Utc::now().date_naive());
    let range = format!(
        "from={}&to={}&timeZone=UTC",
        test_day.min(today) - chrono::Duration::days(1),
        test_day.max(today) + chrono::Duration::days(1)
    );
    let by_campaign = r.ok("GET", &format!("/analytics/outreach?{range}&by=campaign"), None).await;
    let sum = |k: &str| -> i64 {
        by_campaign
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["campaignId"] == cid.as_str())
            .map(|x| x[k].as_i64().unwrap())
            .sum()
    };
    assert_eq!(
        (sum("sent"), sum("replied"), sum("positive"), sum("optedOut")),
        (20, 2, 2, 0),
        "two texts from the lead, both interested: {by_campaign}"
    );
    let by_day = r.ok("GET", &format!("/analytics/outreach?{range}"), None).await;
    let total: i64 = by_day.as_array().unwrap().iter().map(|x| x["sent"].as_i64().unwrap()).sum();
    assert_eq!(total, 20, "{by_day}");
    r.ok("POST", &format!("/inbox/items/{item}/processed"), None).await;
    r.ok("POST", &format!("/inbox/items/{item}/processed"), None).await;
    let times = r.ok("GET", &format!("/analytics/response-times?{range}"), None).await;
    let buckets: Vec<&Value> = times.as_array().unwrap().iter().filter(|x| x["group"] == "bucket").collect();
    assert_eq!(buckets.len(), 1, "{times}");
    assert_eq!(buckets[0]["responded"], 1, "a second marking counts nothing: {times}");
    assert!(times.as_array().unwrap().iter().any(|x| x["group"] == "person" && x["responded"] == 1), "{times}");
    let bad = r.h.call(&ALICE, "GET", &r.url("/analytics/outreach?from=2026-13-01&timeZone=Mars/Olympus"), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

#[tokio::test]
async fn once_a_worker_sends_on_its_own_only_a_person_changes_what_it_writes() {
    let r = rig().await;
    let key = r.h.key(&r.team, "alice", &["ai:manage", "settings:manage"]).await;
    let k = As::Key(key);
    // Before any worker auto-sends, a key may add prompts and templates.
    let p = r
        .call(&k, "POST", "/ai/prompts", Some(json!({"key": "reply", "systemTemplate": "a", "userTemplate": "b"})))
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let gid = r.worker("gianna").await["id"].as_str().unwrap().to_owned();
    r.ok("PATCH", &format!("/ai/workers/{gid}"), Some(json!({"autoSend": "confident", "autoClasses": ["positive"]})))
        .await;
    // Now: no prompts, no `ai` or `booking` settings, no change to the worker or its numbers.
    let p = r
        .call(&k, "POST", "/ai/prompts", Some(json!({"key": "reply", "systemTemplate": "a", "userTemplate": "b"})))
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    for (method, path, body) in [
        ("PUT", "/settings/ai/template.positive".to_owned(), Some(json!({"value": "Send me your SSN"}))),
        ("PUT", "/settings/booking/link".to_owned(), Some(json!({"value": "https://evil.example.com"}))),
        ("DELETE", "/settings/ai/time_zone".to_owned(), None),
        ("PATCH", format!("/ai/workers/{gid}"), Some(json!({"activeUntil": "23:00"}))),
        ("PUT", format!("/ai/workers/{gid}/numbers"), Some(json!({"numbers": [MAIN]}))),
    ] {
        let x = r.call(&k, method, &path, body).await;
        assert_eq!(x.status, StatusCode::FORBIDDEN, "{method} {path}: {}", x.body);
    }
    // Other settings stay a key's to change; a person may change all of it.
    let x = r.call(&k, "PUT", "/settings/inbox/review_below", Some(json!({"value": "70"}))).await;
    assert_eq!(x.status, StatusCode::OK, "{}", x.body);
    r.ok("PUT", "/settings/ai/template.positive", Some(json!({"value": "Thanks {{firstName}}!"}))).await;
    // Bad text never reaches the database as a 500.
    let bad = r
        .call(&ALICE, "PATCH", &format!("/ai/workers/{gid}"), Some(json!({"persona": "a\u{0}b", "name": "x\u{7}"})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}
