//! The SignalHouse transport behind the real outbound gate, against a local fake server that
//! speaks SignalHouse's contract: bearer auth, Idempotency-Key replay, enqueued/failed counts,
//! per-recipient error codes, DNC lists, the landline filter, numbers as digits only (a `+`
//! is refused, as the SDK documents), and scripted faults (503 with Retry-After, 429, answers
//! slower than the client's timeout). No message is lost and none is sent twice, and no text
//! goes out without a number of the team's own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use nextier_domain::campaign::Delay;
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, StepId, TeamId};
use nextier_outbound::{FromCampaign, Gate, OutboundGate, OutboundRequest, Prepared, Verdict};
use nextier_providers::signalhouse::{Config, SignalHouse};
use nextier_store::campaigns::{Channel, Step};
use nextier_store::{contacts, scope, Scope};
use nextier_testkit::TestDb;
use serde_json::{json, Value};

/// What the fake should do with the next request.
#[derive(Clone)]
enum Fault {
    /// Answer 503 with `Retry-After: 1`.
    Unavailable,
    /// Answer 429 without Retry-After.
    Throttled,
    /// Accept the send, but answer after the client has given up.
    Slow,
}

#[derive(Default)]
struct Fake {
    faults: Mutex<VecDeque<Fault>>,
    /// Idempotency key → the first answer.
    answers: Mutex<HashMap<String, Value>>,
    /// Every message actually sent: (idempotency key, recipient, body).
    sent: Mutex<Vec<(String, String, String)>>,
    requests: Mutex<u32>,
    opted_out: Mutex<Vec<String>>,
    dnc: Mutex<Vec<String>>,
    /// Recipients the landline filter drops (when the request asks for it).
    landlines: Mutex<Vec<String>>,
    /// Accept the request but enqueue nothing and say nothing more (a moderation block).
    enqueue_nothing: Mutex<bool>,
}

async fn send(State(fake): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    *fake.requests.lock().unwrap() += 1;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sh-test-key") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "bad key"}))).into_response();
    }
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "Idempotency-Key required"}))).into_response();
    };
    let fault = fake.faults.lock().unwrap().pop_front();
    match fault {
        Some(Fault::Unavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], Json(json!({"message": "busy"})))
                .into_response()
        }
        Some(Fault::Throttled) => {
            return (StatusCode::TOO_MANY_REQUESTS, Json(json!({"message": "slow down"}))).into_response()
        }
        _ => {}
    }
    if let Some(prev) = fake.answers.lock().unwrap().get(&key) {
        return Json(prev.clone()).into_response();
    }
    let to = body["recipientPhoneNumber"][0].as_str().unwrap_or_default().to_owned();
    let from = body["senderPhoneNumber"].as_str().unwrap_or_default();
    if [from, to.as_str()].iter().any(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_digit())) {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "numbers are digits only"}))).into_response();
    }
    let filtering = body["filterLandlinesAndInactiveNumbers"] == json!(true);
    // A moderation block, or a recipient the landline filter dropped: accepted, nothing enqueued.
    let dropped = filtering && fake.landlines.lock().unwrap().contains(&to);
    let answer = if *fake.enqueue_nothing.lock().unwrap() || dropped {
        json!({"requestedRecipientCount": 1, "enqueuedCount": 0, "failedCount": 0, "insertedMessages": [],
               "dncBlockedNumbers": []})
    } else if fake.dnc.lock().unwrap().contains(&to) {
        json!({"enqueuedCount": 0, "failedCount": 1, "insertedMessages": [], "dncBlockedNumbers": [format!("+{to}")]})
    } else if fake.opted_out.lock().unwrap().contains(&to) {
        json!({"enqueuedCount": 0, "failedCount": 1, "dncBlockedNumbers": [],
               "insertedMessages": [{"messageId": "shm_x", "status": "FAILED", "errorCode": "OUT",
                                     "errorMessage": "recipient opted out of this campaign"}]})
    } else {
        let id = format!("shm_{}", fake.sent.lock().unwrap().len() + 1);
        fake.sent.lock().unwrap().push((key.clone(), to, body["messageBody"].as_str().unwrap_or_default().to_owned()));
        json!({"enqueuedCount": 1, "failedCount": 0, "dncBlockedNumbers": [],
               "requestedRecipientCount": 1,
               "insertedMessages": [{"messageId": id, "status": "ENQUEUED", "recipientPhoneNumber": body["recipientPhoneNumber"][0]}]})
    };
    fake.answers.lock().unwrap().insert(key, answer.clone());
    if matches!(fault, Some(Fault::Slow)) {
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    Json(answer).into_response()
}

async fn fake() -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake::default());
    let app = Router::new().route("/api/v1/message/sms", post(send)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, url)
}

struct Fx {
    t: TestDb,
    team: TeamId,
    contact: ContactId,
    fake: Arc<Fake>,
    gate: Gate,
}

async fn fx() -> Fx {
    let (fake, url) = fake().await;
    let t = TestDb::new().await;
    let (team, contact) = (TeamId::new(), ContactId::new());
    let su = t.superuser().await;
    su.batch_execute(&format!(
        "INSERT INTO users (id, subject) VALUES ('usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X', 's');
         INSERT INTO teams (id, name, slug, created_by) VALUES ('{team}', 'T', '{team}', 'usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X');
         INSERT INTO contacts (id, team_id, first_name) VALUES ('{contact}', '{team}', 'Ada');
         INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
              VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', '{team}', '{contact}', '+12125550199', 'mobile', true);"
    ))
    .await
    .unwrap();
    nextier_testkit::fixtures::sending_number(&t, &team, "+12125550100").await;
    let sh = Arc::new(SignalHouse::new(Config {
        base_url: url,
        api_key: "sh-test-key".into(),
        status_callback_url: Some("https://hooks.example.com/signalhouse".into()),
        retry: nextier_providers::retry::Retry {
            attempts: 3,
            backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
        },
        timeout: Duration::from_millis(300),
    }));
    let sandbox = Arc::new(nextier_outbound::SandboxTransport::new());
    let gate = Gate::new(sh, sandbox.clone(), sandbox);
    Fx { t, team, contact, fake, gate }
}

impl Fx {
    /// Submits step 1 of one enrolment through the gate, in its own transaction.
    async fn submit(&self, enrolment: &EnrolmentId) -> Verdict {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let contact = contacts::get(&tx, &self.contact).await.unwrap();
        let step = Step {
            id: StepId::new(),
            position: 1,
            channel: Channel::Sms,
            delay: Delay::Minutes(0),
            subject: None,
            body: "Hi Ada".into(),
            template_id: None,
            opener_category: None,
            variants: vec![],
        };
        let campaign = CampaignId::new();
        let req = OutboundRequest {
            team: &self.team,
            contact: &contact,
            channel: Channel::Sms,
            subject: None,
            body: "Hi Ada".into(),
            send_key: format!("{enrolment}:1"),
            campaign: Some(FromCampaign { campaign: &campaign, enrolment, step: &step.id, per_minute: 75 }),
            sent_by: "campaign",
            // Wednesday 2 December 2026, 10:00 in New York.
            purpose: nextier_outbound::Purpose::Outreach,
            to: None,
            now: Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap(),
        };
        match self.gate.prepare(&tx, &req).await.unwrap() {
            Prepared::Decided(v) => {
                tx.commit().await.unwrap();
                v
            }
            Prepared::Ready(d) => {
                tx.commit().await.unwrap();
                let outcome = self.gate.deliver(&d).await;
                let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
                let v = self.gate.settle(&tx, &d, outcome, req.now).await.unwrap();
                tx.commit().await.unwrap();
                v
            }
        }
    }

    async fn message_status(&self) -> Vec<(String, Option<String>)> {
        self.t
            .superuser()
            .await
            .query("SELECT status, provider_message_id FROM messages ORDER BY created_at", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }
}

#[tokio::test]
async fn a_send_reaches_signalhouse_once_with_its_idempotency_key() {
    let f = fx().await;
    let e = EnrolmentId::new();
    assert!(matches!(f.submit(&e).await, Verdict::Sent { .. }));
    let sent = f.fake.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].0.starts_with("msg_"), "the message id is the idempotency key");
    assert_eq!((sent[0].1.as_str(), sent[0].2.as_str()), ("12125550199", "Hi Ada"), "digits only, no +");
    assert_eq!(f.message_status().await, vec![("sent".into(), Some("shm_1".into()))]);
    // The same step submitted again: the gate finds it sent and the provider is not called.
    let requests = *f.fake.requests.lock().unwrap();
    assert!(matches!(f.submit(&e).await, Verdict::Sent { .. }));
    assert_eq!(*f.fake.requests.lock().unwrap(), requests);
}

#[tokio::test]
async fn unavailable_throttled_and_slow_answers_are_retried_without_a_second_send() {
    let f = fx().await;
    f.fake.faults.lock().unwrap().extend([Fault::Unavailable, Fault::Throttled]);
    assert!(matches!(f.submit(&EnrolmentId::new()).await, Verdict::Sent { .. }));
    assert_eq!(*f.fake.requests.lock().unwrap(), 3, "503 (Retry-After 1), 429, then accepted");
    assert_eq!(f.fake.sent.lock().unwrap().len(), 1);

    // Accepted, but the answer comes after the client gave up: the retry replays it.
    f.fake.faults.lock().unwrap().push_back(Fault::Slow);
    assert!(matches!(f.submit(&EnrolmentId::new()).await, Verdict::Sent { .. }));
    assert_eq!(f.fake.sent.lock().unwrap().len(), 2, "one send per message, however many requests");
}

#[tokio::test]
async fn an_outage_longer_than_the_retries_leaves_the_message_queued_for_the_next_attempt() {
    let f = fx().await;
    f.fake.faults.lock().unwrap().extend([Fault::Throttled, Fault::Throttled, Fault::Throttled]);
    let e = EnrolmentId::new();
    assert!(matches!(f.submit(&e).await, Verdict::Failed { .. }));
    assert_eq!(f.message_status().await, vec![("queued".into(), None)]);
    // The consumer retries the step later: the same message row, the same key, one send.
    assert!(matches!(f.submit(&e).await, Verdict::Sent { .. }));
    assert_eq!(f.message_status().await, vec![("sent".into(), Some("shm_1".into()))]);
    assert_eq!(f.fake.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_opt_out_or_dnc_answer_becomes_a_suppression() {
    let f = fx().await;
    f.fake.opted_out.lock().unwrap().push("12125550199".into());
    assert_eq!(f.submit(&EnrolmentId::new()).await, Verdict::Blocked { reason: "opt_out".into() });
    let kind: String =
        f.t.superuser()
            .await
            .query_one("SELECT kind FROM suppressions WHERE address = '+12125550199'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(kind, "OPTED_OUT");
    // From now on the gate refuses before calling the provider.
    let requests = *f.fake.requests.lock().unwrap();
    assert_eq!(f.submit(&EnrolmentId::new()).await, Verdict::Blocked { reason: "opt_out".into() });
    assert_eq!(*f.fake.requests.lock().unwrap(), requests);
    assert!(f.fake.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_global_dnc_number_is_refused_and_recorded() {
    let f = fx().await;
    f.fake.dnc.lock().unwrap().push("12125550199".into());
    assert_eq!(f.submit(&EnrolmentId::new()).await, Verdict::Blocked { reason: "opt_out".into() });
    let failed: Vec<(String, Option<String>)> = f.message_status().await;
    assert_eq!(failed, vec![("failed".into(), None)]);
}

#[tokio::test]
async fn a_2xx_that_enqueued_nothing_is_not_a_send() {
    let f = fx().await;
    *f.fake.enqueue_nothing.lock().unwrap() = true;
    let v = f.submit(&EnrolmentId::new()).await;
    assert!(matches!(&v, Verdict::Blocked { reason } if reason.starts_with("not enqueued (0 of 1)")), "{v:?}");
    assert_eq!(f.message_status().await, vec![("failed".into(), None)]);
    assert!(f.fake.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_landline_filter_is_asked_for_when_the_team_wants_it_and_what_it_drops_is_recorded() {
    let f = fx().await;
    f.fake.landlines.lock().unwrap().push("12125550199".into());
    // Off by default: the provider is not asked to filter, and the text goes.
    assert!(matches!(f.submit(&EnrolmentId::new()).await, Verdict::Sent { .. }));
    let su = f.t.superuser().await;
    su.execute(
        "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'sending', 'filter_landlines', 'true')",
        &[&f.team.as_str()],
    )
    .await
    .unwrap();
    let reason = "filtered by SignalHouse as a landline or inactive number";
    assert_eq!(f.submit(&EnrolmentId::new()).await, Verdict::Blocked { reason: reason.into() });
    let failed: String = su.query_one("SELECT error FROM messages WHERE status = 'failed'", &[]).await.unwrap().get(0);
    assert_eq!(failed, reason);
    let kind: String =
        su.query_one("SELECT type::text FROM contact_phones WHERE e164 = '+12125550199'", &[]).await.unwrap().get(0);
    assert_eq!(kind, "landline", "the phone is no longer texted");
    let events: i64 =
        su.query_one("SELECT count(*) FROM contact_events WHERE kind = 'phone_untextable'", &[]).await.unwrap().get(0);
    assert_eq!(events, 1);
    // The next step finds no textable number and never reaches the provider.
    let requests = *f.fake.requests.lock().unwrap();
    assert!(matches!(f.submit(&EnrolmentId::new()).await, Verdict::Blocked { .. }));
    assert_eq!(*f.fake.requests.lock().unwrap(), requests);
}

#[tokio::test]
async fn a_team_without_a_number_of_its_own_cannot_text_and_is_told_why() {
    let f = fx().await;
    f.t.superuser().await.execute("DELETE FROM sending_numbers", &[]).await.unwrap();
    let v = f.submit(&EnrolmentId::new()).await;
    assert!(
        matches!(&v, Verdict::Deferred { reason, .. } if reason == nextier_outbound::NO_SENDING_NUMBER),
        "no platform sender: {v:?}"
    );
    assert_eq!(*f.fake.requests.lock().unwrap(), 0);
    assert!(f.message_status().await.is_empty());
}
