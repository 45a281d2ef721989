//! The inbound path on a real PostgreSQL: the signed webhook, the consumer, the inbox, the
//! compliance actions and the SLA sweep.

use std::sync::Arc;

use axum::body::Body;
use chrono::{DateTime, Duration, Utc};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nextier_domain::ids::{TeamId, UserId};
use nextier_domain::inbox::Classification;
use nextier_domain::message::MessageStatus;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::{Job, Processed, Processor};
use nextier_outbound::{Gate, SandboxTransport};
use nextier_platform::local::{PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::ManualClock;
use nextier_testkit::TestDb;
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &[u8] = b"whsec_current";
const OLD_SECRET: &[u8] = b"whsec_previous";

struct Fx {
    t: TestDb,
    sandbox: Arc<SandboxTransport>,
    p: Arc<Processor>,
    clock: Arc<ManualClock>,
    team: TeamId,
    /// The team's receiving number.
    number: &'static str,
}

use nextier_testkit::fixtures::{sending_number as number, team};

fn ulid() -> String {
    nextier_domain::ids::RowId::new().as_str().trim_start_matches("row_").to_owned()
}

async fn fx() -> Fx {
    let t = TestDb::new().await;
    let team = team(&t, "Acme").await;
    number(&t, &team, "+12127363100").await;
    let sandbox = Arc::new(SandboxTransport::new());
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let p = Arc::new(Processor {
        db: t.worker.clone(),
        gate: Arc::new(Gate::sandbox(sandbox.clone())),
        clock: clock.clone(),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    });
    Fx { t, sandbox, p, clock, team, number: "+12127363100" }
}

fn received(from: &str, to: &str, text: &str, id: &str) -> Value {
    json!({"event": "message.received", "text": text, "to": to, "from": from, "message_id": id,
           "timestamp": "2026-01-27T18:21:10.78-05:00"})
}

impl Fx {
    fn webhook(&self) -> axum::Router {
        let queue = Arc::new(PgQueue::new(self.t.db.clone()));
        let bus = Arc::new(PgEventBus::new(self.t.db.clone(), "default"));
        let publisher = OutboxPublisher::new(self.t.worker.clone(), queue, bus);
        webhook::router(WebhookState::new(self.t.worker.clone(), publisher, vec![OLD_SECRET.to_vec(), SECRET.to_vec()]))
    }

    /// Runs a job as the consumer would.
    async fn job(&self, payload: Value) -> Processed {
        let job = Job::Webhook { webhook_event_id: "whk_test".into(), payload };
        self.p.process(&job, 1).await.unwrap()
    }

    /// Runs every reply job the consumer staged (the answers), returning their outcomes.
    async fn run_replies(&self) -> Vec<Processed> {
        let su = self.t.superuser().await;
        let rows = su
            .query(
                "DELETE FROM outbox WHERE destination = 'answers' AND payload->>'kind' = 'reply' RETURNING payload",
                &[],
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        for r in rows {
            let job: Job = serde_json::from_value(r.get(0)).unwrap();
            out.push(self.p.process(&job, 1).await.unwrap());
        }
        out
    }

    async fn count(&self, sql: &str) -> i64 {
        self.t.superuser().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

fn signed(body: &str, delivery: Option<&str>, secret: &[u8], at: DateTime<Utc>) -> Request<Body> {
    let ts = at.timestamp_millis();
    let mut b = Request::post(webhook::PATH)
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={}", sign_signalhouse(secret, ts, body.as_bytes())));
    if let Some(d) = delivery {
        b = b.header("x-signalhouse-delivery-id", d);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

async fn answer(router: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn signatures_are_checked_over_the_raw_body() {
    let f = fx().await;
    let r = f.webhook();
    let body = received("+13126181234", f.number, "hi", "sh-1").to_string();
    let now = Utc::now();

    let (s, v) = answer(&r, signed(&body, Some("d-1"), SECRET, now)).await;
    assert_eq!((s, v["duplicate"].as_bool()), (StatusCode::OK, Some(false)));
    // The previous secret is still valid during a rotation.
    let (s, _) = answer(&r, signed(&body, Some("d-2"), OLD_SECRET, now)).await;
    assert_eq!(s, StatusCode::OK);
    // Tampered body: signed over one body, sent with another.
    let mut req = signed(&body, Some("d-3"), SECRET, now);
    *req.body_mut() = Body::from(body.replace("hi", "STOP"));
    let (s, v) = answer(&r, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["detail"], "the signature does not match");
    // A secret we do not hold.
    let (s, _) = answer(&r, signed(&body, Some("d-4"), b"whsec_stranger", now)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Stale: signed six minutes ago.
    let (s, v) = answer(&r, signed(&body, Some("d-5"), SECRET, now - Duration::minutes(6))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("five minutes"), "{v}");
    // Unsigned, and a malformed header.
    let unsigned = Request::post(webhook::PATH).body(Body::from(body.clone())).unwrap();
    let (s, v) = answer(&r, unsigned).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("not signed"));
    let bad = Request::post(webhook::PATH)
        .header("x-signalhouse-signature-v1", "v1=zz")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(answer(&r, bad).await.0, StatusCode::UNAUTHORIZED);
    // The older header pair.
    let ts = now.timestamp_millis();
    let pair = Request::post(webhook::PATH)
        .header("x-signalhouse-signature", sign_signalhouse(SECRET, ts, body.as_bytes()))
        .header("x-signalhouse-timestamp", ts.to_string())
        .header("x-signalhouse-delivery-id", "d-6")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(answer(&r, pair).await.0, StatusCode::OK);
    // Signed but not an event: 400 naming the field; nothing stored.
    let (s, v) = answer(&r, signed("[1,2]", Some("d-7"), SECRET, now)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errors"][0]["field"], "event");
    let (s, v) = answer(&r, signed("not json", Some("d-8"), SECRET, now)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errors"][0]["field"], "body");

    assert_eq!(f.count("SELECT count(*) FROM webhook_events").await, 3, "d-1, d-2 and d-6 only");
    let raw: Vec<u8> =
        f.t.superuser()
            .await
            .query_one("SELECT raw_body FROM webhook_events WHERE delivery_id = 'd-1'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(raw, body.as_bytes(), "the delivery is kept exactly as it arrived");
    assert_eq!(f.count("SELECT count(*) FROM outbox WHERE destination = 'inbound'").await, 3);
}

#[tokio::test]
async fn ten_concurrent_deliveries_give_one_message_and_one_inbox_item() {
    let f = fx().await;
    let r = f.webhook();
    let body = received("+13126181234", f.number, "Yes I am interested", "sh-42").to_string();
    let now = Utc::now();
    let answers =
        futures::future::join_all((0..10).map(|_| answer(&r, signed(&body, Some("dup-1"), SECRET, now)))).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    let fresh = answers.iter().filter(|(_, v)| v["duplicate"] == false).count();
    assert_eq!(fresh, 1, "exactly one delivery is new; nine are acknowledged duplicates");
    assert_eq!(f.count("SELECT count(*) FROM webhook_events").await, 1);
    let jobs: Vec<Value> =
        f.t.superuser()
            .await
            .query("SELECT payload FROM outbox WHERE destination = 'inbound'", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(jobs.len(), 1);

    // The consumer, too, may see the same reply many times (SQS delivers at least once, and
    // the provider may send it under new delivery ids): ten at once still give one of each.
    let job: Job = serde_json::from_value(jobs[0].clone()).unwrap();
    let outcomes = futures::future::join_all((0..10).map(|_| {
        let (p, job) = (f.p.clone(), job.clone());
        async move { p.process(&job, 1).await.unwrap() }
    }))
    .await;
    let created = outcomes.iter().filter(|o| matches!(o, Processed::Received { .. })).count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Processed::Received { .. } | Processed::Duplicate)));
    assert_eq!(f.count("SELECT count(*) FROM messages WHERE direction = 'inbound'").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM inbox_items").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 1, "one new contact for the unknown sender");
    let (needs_review, bucket, priority): (bool, String, String) = {
        let su = f.t.superuser().await;
        let r = su
            .query_one(
                "SELECT c.needs_review, i.bucket, i.priority FROM inbox_items i JOIN contacts c ON c.id = i.contact_id",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert!(needs_review, "an unknown sender is marked for review");
    let state: String =
        f.t.superuser().await.query_one("SELECT lead_state::text FROM contacts", &[]).await.unwrap().get(0);
    assert_eq!(state, "high_intent", "new -> responded -> high_intent on an interested reply");
    assert_eq!((bucket.as_str(), priority.as_str()), ("POSITIVE_RESPONSES", "HOT"));
    assert!(f.sandbox.sent().is_empty(), "a positive reply is answered by a person, not automatically");
}

#[tokio::test]
async fn a_number_known_to_two_teams_lands_with_the_owner_of_the_receiving_number() {
    let f = fx().await;
    let other = team(&f.t, "Other").await;
    number(&f.t, &other, "+13058684000").await;
    let sender = "+14155238800";
    // Both teams know the sender as a contact.
    let su = f.t.superuser().await;
    for (team, name) in [(&f.team, "Ana at Acme"), (&other, "Ana at Other")] {
        let c = format!("con_{}", ulid());
        su.execute("INSERT INTO contacts (id, team_id, first_name) VALUES ($1, $2, $3)", &[&c, &team.as_str(), &name])
            .await
            .unwrap();
        su.execute(
            "INSERT INTO contact_phones (id, team_id, contact_id, e164, type) VALUES ($1, $2, $3, $4, 'mobile')",
            &[&format!("row_{}", ulid()), &team.as_str(), &c, &sender],
        )
        .await
        .unwrap();
    }
    let out = f.job(received(sender, "+13058684000", "Call me tomorrow", "sh-7")).await;
    let Processed::Received { team, classification, .. } = out else { panic!("{out:?}") };
    assert_eq!((team, classification), (other.clone(), Classification::Positive));
    let rows = su
        .query(
            "SELECT m.team_id, c.first_name FROM messages m JOIN contacts c ON c.id = m.contact_id
              WHERE m.direction = 'inbound'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), other.as_str());
    assert_eq!(rows[0].get::<_, String>(1), "Ana at Other");
    assert_eq!(f.count("SELECT count(*) FROM inbox_items").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 2, "no contact was created anywhere");

    // A reply to a number nobody owns is kept as unroutable, not guessed.
    let out = f.job(received(sender, "+16175550188", "hello", "sh-8")).await;
    assert!(matches!(out, Processed::Unroutable(_)), "{out:?}");
}

async fn running_campaigns(f: &Fx, contact: &str, n: usize) {
    let su = f.t.superuser().await;
    su.batch_execute("SET session_replication_role = replica").await.unwrap();
    for i in 0..n {
        let c = format!("cmp_{}", ulid());
        su.execute(
            "INSERT INTO campaigns (id, team_id, name, status, created_by, approved_at, exit_on_reply)
             VALUES ($1, $2, $3, 'RUNNING', 'test', now(), false)",
            &[&c, &f.team.as_str(), &format!("C{i}")],
        )
        .await
        .unwrap();
        su.execute(
            "INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, exclusive, next_run_at, enrolled_by)
             VALUES ($1, $2, $3, $4, false, now(), 'test')",
            &[&format!("enr_{}", ulid()), &f.team.as_str(), &c, &contact],
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn an_opt_out_suppresses_stops_every_enrolment_and_confirms_once() {
    let f = fx().await;
    let sender = "+13126181234";
    // First contact: the sender writes in, then is enrolled in two running campaigns.
    let Processed::Received { .. } = f.job(received(sender, f.number, "who are you guys", "m-1")).await else {
        panic!()
    };
    let contact: String = f.t.superuser().await.query_one("SELECT id FROM contacts", &[]).await.unwrap().get(0);
    running_campaigns(&f, &contact, 2).await;

    // Not opt-outs: on word boundaries only.
    for (i, text) in ["See you this weekend", "That guy is a legend", "I stopped by the house"].iter().enumerate() {
        let out = f.job(received(sender, f.number, text, &format!("n-{i}"))).await;
        assert!(!matches!(out, Processed::Received { classification: Classification::DncRequest, .. }), "{text}");
    }
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0);

    let out = f.job(received(sender, f.number, "Please stop texting me", "m-2")).await;
    assert!(matches!(out, Processed::Received { classification: Classification::DncRequest, .. }), "{out:?}");
    assert_eq!(f.count("SELECT count(*) FROM suppressions WHERE kind = 'OPTED_OUT'").await, 1);
    assert_eq!(
        f.count("SELECT count(*) FROM campaign_enrolments WHERE status = 'exited' AND exit_reason = 'opt_out'").await,
        2,
        "every running enrolment of the contact ends"
    );
    let replies = f.run_replies().await;
    assert!(matches!(replies.as_slice(), [Processed::Replied(_)]), "{replies:?}");
    // STOP again, and an ordinary message: nothing more is sent.
    f.clock.advance(Duration::minutes(1));
    f.job(received(sender, f.number, "STOP", "m-3")).await;
    f.job(received(sender, f.number, "ok whatever", "m-3b")).await;
    f.run_replies().await;
    let sent = f.sandbox.sent();
    assert_eq!(sent.len(), 1, "one confirmation, ever: {sent:?}");
    assert!(sent[0].body.contains("unsubscribed"));
    // The confirmation key cannot be reused for anything else.
    let job = Job::Reply {
        team_id: f.team.to_string(),
        contact_id: contact.clone(),
        body: "Special offer!".into(),
        send_key: "opt-out-confirmation:row_forged".into(),
        confirmation: true,
        to: None,
    };
    let out = f.p.process(&job, 1).await.unwrap();
    assert!(matches!(out, Processed::Ignored(ref r) if r.contains("opt_out")), "{out:?}");
    assert_eq!(f.sandbox.sent().len(), 1);
    let item: (String, bool) = {
        let r = f
            .t
            .superuser()
            .await
            .query_one("SELECT bucket, processed_at IS NOT NULL FROM inbox_items i JOIN messages m ON m.id = i.message_id WHERE m.provider_message_id = 'm-2'", &[])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(item, ("LEGAL_DNC".to_owned(), true), "handled by the system, filed processed");

    // START opts back in and is answered; then HELP gets the team's own help text.
    f.t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'inbox', 'help_text', 'Acme Realty: call 212-736-3100')",
            &[&f.team.as_str()],
        )
        .await
        .unwrap();
    f.job(received(sender, f.number, "START", "m-4")).await;
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0);
    f.job(received(sender, f.number, "help", "m-5")).await;
    let replies = f.run_replies().await;
    assert_eq!(replies.iter().filter(|r| matches!(r, Processed::Replied(_))).count(), 2, "{replies:?}");
    let bodies: Vec<String> = f.sandbox.sent().into_iter().map(|s| s.body).collect();
    assert!(bodies.iter().any(|b| b.contains("subscribed again")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b == "Acme Realty: call 212-736-3100"), "{bodies:?}");
}

#[tokio::test]
async fn receipts_move_the_status_timeline_forward_only() {
    let f = fx().await;
    let su = f.t.superuser().await;
    let contact = format!("con_{}", ulid());
    su.execute("INSERT INTO contacts (id, team_id) VALUES ($1, $2)", &[&contact, &f.team.as_str()]).await.unwrap();
    su.execute(
        "INSERT INTO messages (id, team_id, contact_id, channel, direction, to_address, body, status, provider,
                               provider_message_id, send_key)
         VALUES ('msg_01J0000000000000000000000A', $1, $2, 'SMS', 'outbound', '+13126181234', 'hi', 'sent',
                 'signalhouse', 'SH-1', 'k1')",
        &[&f.team.as_str(), &contact],
    )
    .await
    .unwrap();
    let out = f.job(json!({"event": "message.delivered", "message_id": "SH-1"})).await;
    assert_eq!(out, Processed::Receipt { status: MessageStatus::Delivered, moved: true });
    // Late and repeated receipts change nothing.
    assert_eq!(
        f.job(json!({"event": "message.sent", "message_id": "SH-1"})).await,
        Processed::Receipt { status: MessageStatus::Sent, moved: false }
    );
    assert_eq!(
        f.job(json!({"event": "message.delivered", "message_id": "SH-1"})).await,
        Processed::Receipt { status: MessageStatus::Delivered, moved: false }
    );
    let r = su
        .query_one(
            "SELECT status, delivered_at IS NOT NULL, (SELECT count(*) FROM message_events WHERE message_id = m.id)
               FROM messages m WHERE provider_message_id = 'SH-1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, bool>(1), r.get::<_, i64>(2)), ("delivered".into(), true, 1));
    // A receipt for a message we have no record of is retried, then kept as unmatched.
    let job = Job::Webhook {
        webhook_event_id: "whk_x".into(),
        payload: json!({"event": "message.failed", "message_id": "SH-404"}),
    };
    assert!(f.p.process(&job, 1).await.is_err());
    assert!(matches!(f.p.process(&job, 9).await.unwrap(), Processed::Unroutable(_)));
}

#[tokio::test]
async fn the_sla_sweep_escalates_overdue_items_once_per_period() {
    let f = fx().await;
    f.job(received("+13126181234", f.number, "Yes, call me", "m-1")).await;
    f.job(received("+14155238800", f.number, "ok", "m-2")).await;
    let queue = Arc::new(PgQueue::new(f.t.db.clone()));
    let bus = Arc::new(PgEventBus::new(f.t.db.clone(), "default"));
    let publisher = OutboxPublisher::new(f.t.worker.clone(), queue, bus);
    let now = nextier_platform::ports::clock::Clock::now(f.clock.as_ref());
    // Positive responses have a 5-minute SLA; the neutral one 240 minutes.
    let s = nextier_inbound::sla::run(&f.t.worker, &publisher, now + Duration::minutes(4)).await.unwrap();
    assert_eq!(s.escalated, 0);
    let s = nextier_inbound::sla::run(&f.t.worker, &publisher, now + Duration::minutes(6)).await.unwrap();
    assert_eq!(s.escalated, 1);
    assert!(s.published >= 1);
    let s = nextier_inbound::sla::run(&f.t.worker, &publisher, now + Duration::minutes(7)).await.unwrap();
    assert_eq!(s.escalated, 0, "once per SLA period");
    let s = nextier_inbound::sla::run(&f.t.worker, &publisher, now + Duration::minutes(12)).await.unwrap();
    assert_eq!(s.escalated, 1, "the next period escalates again");
    let r =
        f.t.superuser()
            .await
            .query_one("SELECT escalation_level, bucket FROM inbox_items WHERE escalated_at IS NOT NULL", &[])
            .await
            .unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, String>(1)), (2, "POSITIVE_RESPONSES".to_owned()));
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE destination = 'InboxItemSLABreached' AND published_at IS NOT NULL")
            .await,
        2
    );
}

#[tokio::test]
async fn hot_replies_join_the_call_queue_and_an_opt_out_leaves_it() {
    let f = fx().await;
    let sender = "+13126181234";
    f.job(received(sender, f.number, "ok", "m-0")).await;
    assert_eq!(f.count("SELECT count(*) FROM call_queue").await, 0, "a neutral reply does not qualify");
    f.job(received(sender, f.number, "Yes! email me at ana@example.com", "m-1")).await;
    let r =
        f.t.superuser().await.query_one("SELECT priority, reason, status, source FROM call_queue", &[]).await.unwrap();
    assert_eq!(
        (r.get::<_, i32>(0), r.get::<_, String>(1), r.get::<_, String>(2), r.get::<_, String>(3)),
        (100, "gold_label".into(), "pending".into(), "inbound_reply".into())
    );
    f.job(received(sender, f.number, "Call me tomorrow", "m-2")).await;
    assert_eq!(f.count("SELECT count(*) FROM call_queue").await, 1, "one open entry per contact");
    f.job(received(sender, f.number, "Actually, stop texting me", "m-3")).await;
    assert_eq!(f.count("SELECT count(*) FROM call_queue WHERE status = 'cancelled'").await, 1);
}

#[tokio::test]
async fn with_auto_send_on_a_suggestion_goes_out_through_the_gate_with_its_log_row() {
    let f = fx().await;
    // Noon in Chicago: inside the sender's window.
    f.clock.set(chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 2, 18, 0, 0).unwrap());
    let run_suggest = || async {
        let rows =
            f.t.superuser()
                .await
                .query(
                    "DELETE FROM outbox WHERE destination = 'ai' AND payload->>'kind' = 'suggest' RETURNING payload",
                    &[],
                )
                .await
                .unwrap();
        let mut out = Vec::new();
        for r in rows {
            let job: Job = serde_json::from_value(r.get(0)).unwrap();
            out.push(f.p.process(&job, 1).await.unwrap());
        }
        out
    };
    // Off (the default): suggested, waiting for a person.
    f.job(received("+13126181234", f.number, "Yes, call me", "m-1")).await;
    let out = run_suggest().await;
    assert!(matches!(out.as_slice(), [Processed::Suggested { auto_sent: false, .. }]), "{out:?}");
    assert!(f.sandbox.sent().is_empty());
    assert_eq!(f.count("SELECT count(*) FROM ai_approval_log").await, 0);

    // GIANNA (the opener a new lead's reply goes to) may answer interest on her own, at
    // once, any day.
    f.t.superuser()
        .await
        .execute(
            "UPDATE ai_workers SET auto_send = 'confident', auto_threshold = 40, auto_classes = '{positive,question}',
                    delay_min_secs = 0, delay_max_secs = 0, active_from = 0, active_until = 1440,
                    active_days = '{1,2,3,4,5,6,7}' WHERE team_id = $1 AND key = 'gianna'",
            &[&f.team.as_str()],
        )
        .await
        .unwrap();
    f.job(received("+14155238800", f.number, "How much would you pay?", "m-2")).await;
    let out = run_suggest().await;
    assert!(matches!(out.as_slice(), [Processed::Suggested { auto_sent: true, .. }]), "{out:?}");
    let sent = f.sandbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.starts_with("Thanks! When is a good time"), "{}", sent[0].body);
    let r = f
        .t
        .superuser()
        .await
        .query_one("SELECT action, actor, final_text, message_id IS NOT NULL, policy_version FROM ai_approval_log", &[])
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2), r.get::<_, bool>(3)),
        ("auto_sent".into(), "ai:gianna".into(), sent[0].body.clone(), true)
    );
    assert_eq!(r.get::<_, Option<i32>>(4), Some(2), "the policy version that let it out");
    // Redelivered, the job sends nothing more.
    let job = Job::Suggest {
        team_id: f.team.to_string(),
        item_id: f
            .t
            .superuser()
            .await
            .query_one("SELECT inbox_item_id FROM ai_approval_log", &[])
            .await
            .unwrap()
            .get(0),
    };
    f.p.process(&job, 2).await.unwrap();
    assert_eq!(f.sandbox.sent().len(), 1);
    // Opt-outs and wrong numbers get no suggestion at all.
    f.job(received("+13058684000", f.number, "wrong number", "m-3")).await;
    assert!(run_suggest().await.is_empty());
}

#[tokio::test]
async fn an_sla_breach_mails_the_teams_owners_and_admins_once() {
    use nextier_inbound::notify::{self, MailJob, Mailed};
    use nextier_platform::ports::mailer::LogMailer;
    let f = fx().await;
    let su = f.t.superuser().await;
    for (email, role, status) in [
        ("owner@acme.test", "OWNER", "APPROVED"),
        ("admin@acme.test", "ADMIN", "APPROVED"),
        ("member@acme.test", "MEMBER", "APPROVED"),
        ("pending@acme.test", "ADMIN", "PENDING"),
    ] {
        let u = UserId::new();
        su.execute("INSERT INTO users (id, subject, email) VALUES ($1, $2, $3)", &[&u.as_str(), &u.as_str(), &email])
            .await
            .unwrap();
        su.execute(
            "INSERT INTO team_members (team_id, user_id, role, status) VALUES ($1, $2, $3::text::member_role, $4::text::member_status)",
            &[&f.team.as_str(), &u.as_str(), &role, &status],
        )
        .await
        .unwrap();
    }
    f.job(received("+13126181234", f.number, "Yes, call me", "m-1")).await;
    f.job(received("+14155238800", f.number, "How much?", "m-2")).await;
    let publisher = OutboxPublisher::new(
        f.t.worker.clone(),
        Arc::new(PgQueue::new(f.t.db.clone())),
        Arc::new(PgEventBus::new(f.t.db.clone(), "default")),
    );
    let now = nextier_platform::ports::clock::Clock::now(f.clock.as_ref());
    let s = nextier_inbound::sla::run(&f.t.worker, &publisher, now + Duration::minutes(6)).await.unwrap();
    assert_eq!(s.escalated, 2);
    let jobs: Vec<MailJob> = su
        .query("SELECT payload FROM outbox WHERE destination = 'mail'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r.get(0)).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1, "one mail per team per run");
    assert!(
        jobs[0].subject.starts_with("2 inbox item(s)") && jobs[0].text.contains("POSITIVE_RESPONSES"),
        "{:?}",
        jobs[0]
    );
    let mailer = LogMailer::default();
    let out = notify::deliver(&f.t.db, &mailer, &jobs[0]).await.unwrap();
    assert_eq!(out, Mailed::Sent(vec!["admin@acme.test".into(), "owner@acme.test".into()]));
    assert_eq!(notify::deliver(&f.t.db, &mailer, &jobs[0]).await.unwrap(), Mailed::AlreadySent);
    assert_eq!(mailer.sent().len(), 1);
}

#[tokio::test]
async fn odd_signed_payloads_never_fail_the_webhook_or_the_consumer() {
    let f = fx().await;
    let r = f.webhook();
    let now = Utc::now();
    let odd = [
        json!({"event": "message.received"}),
        json!({"event": "message.received", "from": 15551234567u64, "to": ["+12127363100"], "text": {"a": 1}}),
        json!({"event": "message.received", "from": "+1", "to": "+12127363100", "text": "hi"}),
        json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100", "text": "x".repeat(5000), "message_id": "big"}),
        json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100", "text": "\u{0}\u{1f600}", "message_id": "nul"}),
        json!({"event": "message.received", "data": "not an object"}),
        json!({"event": "message.delivered"}),
        json!({"event": "message.delivered", "message_id": ["x"]}),
        json!({"event": "message.status", "message_id": "nope", "status": 42}),
        json!({"event": "MESSAGE_RECEIVED", "data": {"from": "+13126181234", "to": "+12127363100", "message": "ok", "messageId": "d1"}}),
        json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100", "text": "hi", "timestamp": "yesterday", "message_id": "ts"}),
        json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100", "text": "hi", "timestamp": 99999999999999999u64, "message_id": "ts2"}),
        json!({"event": "x".repeat(100)}),
        json!({"event": "number.purchased", "data": {"phoneNumber": "+12127363100"}}),
    ];
    for (i, body) in odd.iter().enumerate() {
        let (status, v) = answer(&r, signed(&body.to_string(), Some(&format!("odd-{i}")), SECRET, now)).await;
        assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{body}: {status} {v}");
    }
    // Whatever was stored, the consumer works through without an error (a retry would not help).
    let jobs =
        f.t.superuser().await.query("SELECT payload FROM outbox WHERE destination = 'inbound'", &[]).await.unwrap();
    assert!(jobs.len() >= 12, "{}", jobs.len());
    for row in jobs {
        let job: Job = serde_json::from_value(row.get(0)).unwrap();
        let out = f.p.process(&job, 9).await;
        assert!(out.is_ok(), "{job:?}: {out:?}");
    }
    assert_eq!(
        f.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL").await,
        0,
        "every delivery has an outcome"
    );
}

#[tokio::test]
async fn replies_from_one_unknown_number_at_once_make_one_contact() {
    let f = fx().await;
    let jobs: Vec<Job> = (0..6)
        .map(|i| Job::Webhook {
            webhook_event_id: format!("whk_{i}"),
            payload: received("+13126181234", f.number, &format!("message {i}"), &format!("burst-{i}")),
        })
        .collect();
    let outcomes = futures::future::join_all(jobs.iter().map(|j| {
        let p = f.p.clone();
        async move { p.process(j, 1).await.unwrap() }
    }))
    .await;
    assert!(outcomes.iter().all(|o| matches!(o, Processed::Received { .. })), "{outcomes:?}");
    assert_eq!(f.count("SELECT count(*) FROM contacts").await, 1);
    assert_eq!(f.count("SELECT count(*) FROM messages WHERE direction = 'inbound'").await, 6);
    assert_eq!(f.count("SELECT count(*) FROM inbox_items").await, 6);
}
