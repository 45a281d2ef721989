//! Workflows end to end: a definition made through the API; an API change commits an event
//! through the outbox; the bus's rule (as the template's EventBridge rule) puts it on the
//! workflow queue; the consumer starts the workflow and runs its actions; a wait is woken by
//! the timer; every step is read back through the API. Loops, deleted contacts, duplicates,
//! bad definitions, other teams and lower roles get clear answers.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::Queue;
use nextier_workflows::{Engine, QUEUE};
use serde_json::{json, Value};
use support::{harness, sqs_event, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const MO: As = As::User("mo");

struct Rig {
    h: Harness,
    queue: PgQueue,
    engine: Engine,
    clock: ManualClock,
    team: String,
}

async fn rig() -> Rig {
    let mut h = harness().await;
    let queue = PgQueue::new(h.t.db.clone());
    for name in [QUEUE, nextier_inbound::notify::QUEUE] {
        queue.declare(&QueueSpec::with_dlq(name, Duration::from_secs(180), 5)).await.unwrap();
    }
    // The bus with the template's workflow rule, for the API and the engine alike.
    let bus =
        PgEventBus::new(h.t.db.clone(), "default").with_rule(queue.clone(), QUEUE, nextier_domain::workflow::EVENTS);
    h.state.outbox = OutboxPublisher::new(h.t.db.clone(), Arc::new(queue.clone()), Arc::new(bus.clone()));
    h.app = nextier_api::full_app(h.state.clone(), None);
    let clock = ManualClock::at(chrono::Utc::now());
    let engine = Engine {
        db: h.t.worker.clone(),
        clock: Arc::new(clock.clone()),
        publisher: Some(OutboxPublisher::new(h.t.worker.clone(), Arc::new(queue.clone()), Arc::new(bus))),
    };
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "bob", "ADMIN").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    Rig { h, queue, engine, clock, team }
}

impl Rig {
    fn url(&self, rest: &str) -> String {
        format!("/teams/{}{rest}", self.team)
    }

    async fn ok(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        let r = self.h.call(&ALICE, method, &self.url(rest), body).await;
        assert!(r.status.is_success(), "{method} {rest}: {} {}", r.status, r.body);
        r.body
    }

    /// Runs the workflow consumer over the queue until it is empty; how many events it took.
    async fn drain(&self) -> usize {
        let mut handled = 0;
        for _ in 0..50 {
            let batch = self.queue.receive(QUEUE, 10).await.unwrap();
            if batch.is_empty() {
                return handled;
            }
            handled += batch.len();
            let resp = nextier_workflows::handle(&self.engine, sqs_event(QUEUE, &batch)).await;
            assert!(resp.batch_item_failures.is_empty(), "{:?}", resp.batch_item_failures);
            for m in &batch {
                self.queue.delete(QUEUE, &m.receipt_handle).await.unwrap();
            }
        }
        panic!("the workflow queue never drained");
    }

    async fn contact(&self, body: Value) -> String {
        self.ok("POST", "/contacts", Some(body)).await["id"].as_str().unwrap().to_owned()
    }

    async fn runs(&self, wf: &str) -> Vec<Value> {
        self.ok("GET", &format!("/workflows/{wf}/runs"), None).await.as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_lead_state_change_runs_its_workflow_through_the_queue_and_a_wait_resumes_on_the_timer() {
    let r = rig().await;
    let wf = r
        .ok(
            "POST",
            "/workflows",
            Some(json!({
                "name": "Hot responders",
                "trigger": {"type": "lead_state_changed", "to": "responded"},
                "conditions": {"minScore": 50, "withoutTags": ["dnc"]},
                "actions": [
                    {"type": "add_tag", "tag": "hot"},
                    {"type": "push_to_call_queue"},
                    {"type": "wait", "hours": 2},
                    {"type": "notify", "message": "Call them today 📞"},
                    {"type": "set_lead_state", "to": "high_intent"}
                ]
            })),
        )
        .await;
    let wf = wf["id"].as_str().unwrap().to_owned();
    let ana = r
        .contact(json!({"firstName": "Ana", "score": 80, "phones": [{"number": "2125552101", "type": "mobile"}]}))
        .await;
    let bo = r
        .contact(json!({"firstName": "Bo", "score": 10, "phones": [{"number": "2125552102", "type": "mobile"}]}))
        .await;
    for c in [&ana, &bo] {
        for to in ["touched", "responded"] {
            r.ok("POST", &format!("/contacts/{c}/lead-state"), Some(json!({"to": to}))).await;
        }
    }
    assert!(r.drain().await >= 4, "the contacts' events reached the workflow queue");
    let runs = r.runs(&wf).await;
    assert_eq!(runs.len(), 1, "Bo's score is below the condition: {runs:?}");
    let run = &runs[0];
    assert_eq!((run["contactId"].as_str(), run["status"].as_str()), (Some(ana.as_str()), Some("waiting")), "{run}");
    let steps: Vec<(&str, &str)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, vec![("add_tag", "done"), ("push_to_call_queue", "done"), ("wait", "waiting")]);
    let a = r.ok("GET", &format!("/contacts/{ana}"), None).await;
    assert!(a["tags"].as_array().unwrap().contains(&json!("hot")), "{a}");
    let queued = r.ok("GET", "/call-queue", None).await;
    assert_eq!(queued["items"][0]["contactId"], ana.as_str(), "{queued}");

    // Not before the wait is over; then the rest, and the lead-state change's own event
    // (high_intent) starts nothing.
    assert_eq!(r.engine.timer(100).await.unwrap().started, 0);
    assert_eq!(r.runs(&wf).await[0]["status"], "waiting");
    r.clock.advance(chrono::Duration::minutes(121));
    r.engine.timer(100).await.unwrap();
    r.drain().await;
    let runs = r.runs(&wf).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "done", "{}", runs[0]);
    assert_eq!(runs[0]["steps"].as_array().unwrap().len(), 5);
    let a = r.ok("GET", &format!("/contacts/{ana}"), None).await;
    assert_eq!(a["leadState"], "high_intent");
    let mail = r.queue.receive(nextier_inbound::notify::QUEUE, 10).await.unwrap();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].body.contains("Call them today 📞"), "{}", mail[0].body);

    // The same event delivered again runs nothing twice.
    let outbox_id: String =
        r.h.t
            .superuser()
            .await
            .query_one(
                "SELECT id FROM outbox WHERE destination = 'ContactLeadStateChanged' AND payload->>'contactId' = $1
              AND payload->>'to' = 'responded'",
                &[&ana],
            )
            .await
            .unwrap()
            .get(0);
    let detail = nextier_workflows::Detail {
        outbox_id,
        team_id: Some(nextier_domain::ids::TeamId::from_trusted(r.team.clone())),
        data: json!({"contactId": ana, "from": "touched", "to": "responded"}),
    };
    let again = r.engine.on_event("ContactLeadStateChanged", &detail).await.unwrap();
    assert_eq!((again.started, again.already), (0, 1));
    assert_eq!(r.runs(&wf).await.len(), 1);
    // A dry run names who the conditions take now.
    let dry = r
        .ok(
            "POST",
            "/workflows/dry-run",
            Some(json!({"name": "x", "trigger": {"type": "meeting_booked"}, "conditions": {"minScore": 50},
                        "actions": [{"type": "add_tag", "tag": "vip"}]})),
        )
        .await;
    assert_eq!((dry["wouldTouch"].clone(), dry["contacts"][0].clone()), (json!(1), json!(ana)), "{dry}");
    let _ = r.clock.now();
}

#[tokio::test]
async fn loops_are_refused_or_stopped_and_failures_retry_from_their_step() {
    let r = rig().await;
    // A workflow whose own action would start it again is refused at once.
    let selfish = r
        .h
        .call(
            &ALICE,
            "POST",
            &r.url("/workflows"),
            Some(json!({"name": "s", "trigger": {"type": "tag_added", "tag": "x"}, "actions": [{"type": "add_tag", "tag": "X"}]})),
        )
        .await;
    assert_eq!((selfish.status, selfish.field()), (StatusCode::BAD_REQUEST, Some("actions[0]")), "{}", selfish.body);
    // Two that start each other: the chain comes back to the first and is stopped there.
    let w1 = r
        .ok(
            "POST",
            "/workflows",
            Some(json!({"name": "a to b", "trigger": {"type": "tag_added", "tag": "a"},
                        "actions": [{"type": "add_tag", "tag": "b"}]})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    r.ok(
        "POST",
        "/workflows",
        Some(json!({"name": "b to a", "trigger": {"type": "tag_added", "tag": "b"},
                    "actions": [{"type": "remove_tag", "tag": "a"}, {"type": "add_tag", "tag": "a"}]})),
    )
    .await;
    r.contact(json!({"firstName": "Cy", "tags": ["a"]})).await;
    for _ in 0..5 {
        r.drain().await;
    }
    let runs = r.runs(&w1).await;
    let statuses: Vec<&str> = runs.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "done").count(), 1, "{runs:?}");
    let stopped = runs.iter().find(|x| x["status"] == "stopped").expect("the loop was stopped");
    assert!(stopped["note"].as_str().unwrap().contains("loop"), "{stopped}");

    // An enrolment into a campaign not yet approved fails; a person fixes it and retries.
    let c = r.ok("POST", "/campaigns", Some(json!({"name": "Later"}))).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    r.ok("POST", &format!("/campaigns/{cid}/steps"), Some(json!({"channel": "SMS", "body": "Hi {{firstName|there}}"})))
        .await;
    r.ok("PATCH", &format!("/campaigns/{cid}"), Some(json!({"autoEnrol": {"minScore": 90, "maxScore": 100}}))).await;
    let w3 = r
        .ok(
            "POST",
            "/workflows",
            Some(json!({"name": "enrol", "trigger": {"type": "contact_created"},
                        "actions": [{"type": "add_tag", "tag": "new"}, {"type": "enrol_in_campaign", "campaignId": cid}]})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dee = r.contact(json!({"firstName": "Dee", "phones": [{"number": "2125552103", "type": "mobile"}]})).await;
    r.drain().await;
    let run = r.runs(&w3).await.into_iter().find(|x| x["contactId"] == dee.as_str()).unwrap();
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["note"].as_str().unwrap().contains("approved or running"), "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let member = r.h.call(&MO, "POST", &r.url(&format!("/workflows/{w3}/runs/{run_id}/retry")), None).await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);
    for (who, action) in [(&ALICE, "stage"), (&BOB, "approve")] {
        let x = r.h.call(who, "POST", &r.url(&format!("/campaigns/{cid}/{action}")), None).await;
        assert_eq!(x.status, StatusCode::OK, "{action}: {}", x.body);
    }
    let retried = r.ok("POST", &format!("/workflows/{w3}/runs/{run_id}/retry"), None).await;
    assert_eq!(retried["status"], "done", "{retried}");
    let steps: Vec<(&str, &str)> = retried["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        vec![("add_tag", "done"), ("enrol_in_campaign", "failed"), ("enrol_in_campaign", "done")],
        "the tag was not added twice"
    );
    let again = r.h.call(&ALICE, "POST", &r.url(&format!("/workflows/{w3}/runs/{run_id}/retry")), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A contact deleted before its event is handled: recorded, nothing done.
    let eve = r.contact(json!({"firstName": "Eve"})).await;
    r.ok("DELETE", &format!("/contacts/{eve}"), None).await;
    r.drain().await;
    let run = r.runs(&w3).await.into_iter().find(|x| x["contactId"] == eve.as_str()).unwrap();
    assert_eq!(run["status"], "stopped", "{run}");
    assert!(run["note"].as_str().unwrap().contains("deleted"));
}

#[tokio::test]
async fn changing_a_workflow_stops_its_waiting_runs_and_turning_it_off_stops_the_rest() {
    let r = rig().await;
    let def = |name: &str, active: bool| {
        json!({"name": name, "active": active, "trigger": {"type": "contact_created"},
               "actions": [{"type": "wait", "hours": 1}, {"type": "add_tag", "tag": "followed-up"}]})
    };
    let wf = r.ok("POST", "/workflows", Some(def("later", true))).await["id"].as_str().unwrap().to_owned();
    r.contact(json!({"firstName": "Fay"})).await;
    r.drain().await;
    assert_eq!(r.runs(&wf).await[0]["status"], "waiting");
    r.ok("PUT", &format!("/workflows/{wf}"), Some(def("later, renamed", true))).await;
    let run = &r.runs(&wf).await[0];
    assert_eq!(run["status"], "stopped", "{run}");
    assert!(run["note"].as_str().unwrap().contains("changed"), "{run}");
    // A run waiting when its workflow is turned off does not go on either.
    r.contact(json!({"firstName": "Gil"})).await;
    r.drain().await;
    r.ok("PUT", &format!("/workflows/{wf}"), Some(def("later, renamed", false))).await;
    r.clock.advance(chrono::Duration::minutes(61));
    r.engine.timer(100).await.unwrap();
    let runs = r.runs(&wf).await;
    assert!(runs.iter().all(|x| x["status"] == "stopped"), "{runs:?}");
    let tagged: i64 =
        r.h.t
            .superuser()
            .await
            .query_one("SELECT count(*) FROM contacts WHERE 'followed-up' = ANY(tags)", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(tagged, 0);
}

#[tokio::test]
async fn bad_definitions_name_the_field_and_only_admins_of_the_team_make_them() {
    let r = rig().await;
    let post = |who: &'static As, body: Value| {
        let r = &r;
        async move { r.h.call(who, "POST", &r.url("/workflows"), Some(body)).await }
    };
    let other = r.h.team("zed", "Other").await;
    let theirs =
        r.h.call(&As::User("zed"), "POST", &format!("/teams/{other}/campaigns"), Some(json!({"name": "Z"}))).await;
    let theirs = theirs.body["id"].as_str().unwrap().to_owned();
    for (body, field) in [
        (json!({"name": "x", "trigger": {"type": "launch"}, "actions": [{"type": "add_tag", "tag": "a"}]}), "trigger"),
        (
            json!({"name": "x", "trigger": {"type": "no_reply", "days": 0}, "actions": [{"type": "add_tag", "tag": "a"}]}),
            "trigger.days",
        ),
        (json!({"name": "x", "trigger": {"type": "meeting_booked"}, "actions": []}), "actions"),
        (
            json!({"name": "x", "trigger": {"type": "meeting_booked"}, "actions": [{"type": "move_inbox_item", "to": "LEGAL_DNC"}]}),
            "actions[0].to",
        ),
        (
            json!({"name": "x", "trigger": {"type": "meeting_booked"}, "actions": [{"type": "set_lead_state", "to": "suppressed"}]}),
            "actions[0].to",
        ),
        (
            json!({"name": "x", "trigger": {"type": "meeting_booked"}, "actions": [{"type": "enrol_in_campaign", "campaignId": theirs}]}),
            "actions[0].campaignId",
        ),
        (
            json!({"name": "x", "trigger": {"type": "meeting_booked"}, "actions": [{"type": "add_tag", "tag": "a"}, {"type": "wait", "hours": 1}]}),
            "actions[1]",
        ),
        (
            json!({"name": "", "trigger": {"type": "meeting_booked"}, "actions": [{"type": "add_tag", "tag": "a"}]}),
            "name",
        ),
    ] {
        let x = post(&ALICE, body.clone()).await;
        assert_eq!((x.status, x.field()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {}", x.body);
    }
    assert_eq!(r.h.count("workflows").await, 0, "nothing half-written");
    let good =
        json!({"name": "ok", "trigger": {"type": "sla_breached"}, "actions": [{"type": "notify", "message": "late"}]});
    assert_eq!(post(&MO, good.clone()).await.status, StatusCode::FORBIDDEN, "a member reads, an admin makes");
    let key = r.h.key(&r.team, "alice", &["campaigns:read"]).await;
    assert_eq!(
        r.h.call(&As::Key(key.clone()), "POST", &r.url("/workflows"), Some(good.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    let made = post(&ALICE, good.clone()).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(post(&ALICE, good).await.status, StatusCode::CONFLICT, "one name per team");
    let id = made.body["id"].as_str().unwrap();
    assert_eq!(r.h.call(&As::Key(key), "GET", &r.url(&format!("/workflows/{id}")), None).await.status, StatusCode::OK);
    let zed = r.h.call(&As::User("zed"), "GET", &format!("/teams/{other}/workflows/{id}"), None).await;
    assert_eq!(zed.status, StatusCode::NOT_FOUND);
    let stranger = r.h.call(&As::Nobody, "GET", &r.url("/workflows"), None).await;
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
}
