//! Exactly once in effect, even when things die, against fake SignalHouse, SendGrid and Twilio
//! servers: a provider refusing our credentials holds sends back without blaming the number or
//! the message; a mail or call handed over before a crash is not handed over again; the
//! reconciler settles what was left queued, resending only under a replayable key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use nextier_domain::ids::{ContactId, MessageId, RowId, TeamId};
use nextier_outbound::reconcile::{self, ReconcileConfig};
use nextier_outbound::{Gate, OutboundGate, OutboundRequest, Prepared, UnsubscribeLinks, Verdict};
use nextier_providers::lookup::{ProviderLookup, SignalHouseLookupConfig};
use nextier_providers::retry::Retry;
use nextier_providers::{sendgrid, signalhouse, twilio};
use nextier_store::campaigns::Channel;
use nextier_store::{contacts, scope, Scope};
use nextier_testkit::fixtures::{postal_address, sending_number, team};
use nextier_testkit::TestDb;
use serde_json::{json, Value};

const PHONE: &str = "+12125550147";
const NUMBER: &str = "+12125550100";

#[derive(Default)]
struct Fake {
    /// Answer every request 401 (SignalHouse, Twilio) or 403 (SendGrid).
    locked_out: Mutex<bool>,
    /// Idempotency key → provider id of the one text it made.
    texts: Mutex<HashMap<String, (String, String, String)>>,
    mails: Mutex<u32>,
    calls: Mutex<u32>,
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

async fn sms(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if *f.locked_out.lock().unwrap() {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "invalid api key"}))).into_response();
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut texts = f.texts.lock().unwrap();
    let n = texts.len();
    let (id, _, _) = texts
        .entry(key)
        .or_insert_with(|| {
            let to = body["recipientPhoneNumber"][0].as_str().unwrap_or_default().to_owned();
            (format!("sh-{n}"), digits(&to), body["messageBody"].as_str().unwrap_or_default().to_owned())
        })
        .clone();
    Json(json!({"enqueuedCount": 1, "failedCount": 0, "insertedMessages": [{"messageId": id, "status": "ENQUEUED"}]}))
        .into_response()
}

async fn list(State(f): State<Arc<Fake>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let to = q.get("recipientPhoneNumber").cloned().unwrap_or_default();
    let data: Vec<Value> = f
        .texts
        .lock()
        .unwrap()
        .values()
        .filter(|(_, r, _)| *r == to)
        .map(|(id, r, b)| json!({"id": id, "recipientPhoneNumber": r, "messageBody": b, "status": "SENT"}))
        .collect();
    Json(json!({"success": true, "data": data})).into_response()
}

async fn mail(State(f): State<Arc<Fake>>) -> Response {
    if *f.locked_out.lock().unwrap() {
        return (StatusCode::FORBIDDEN, Json(json!({"errors": [{"message": "access forbidden"}]}))).into_response();
    }
    *f.mails.lock().unwrap() += 1;
    (StatusCode::ACCEPTED, [("x-message-id", "sg-1")]).into_response()
}

async fn call(State(f): State<Arc<Fake>>) -> Response {
    if *f.locked_out.lock().unwrap() {
        return (StatusCode::UNAUTHORIZED, Json(json!({"code": 20003, "message": "Authenticate"}))).into_response();
    }
    *f.calls.lock().unwrap() += 1;
    (StatusCode::CREATED, Json(json!({"sid": "CA1"}))).into_response()
}

struct Fx {
    t: TestDb,
    team: TeamId,
    contact: ContactId,
    fake: Arc<Fake>,
    gate: Gate,
    lookup: ProviderLookup,
}

/// Wednesday 2 December 2026, 15:00 UTC (10:00 in New York).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap()
}

async fn fx() -> Fx {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/message/sms", post(sms))
        .route("/message", axum::routing::get(list))
        .route("/v3/mail/send", post(mail))
        .route("/2010-04-01/Accounts/AC1/Calls.json", post(call))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = TestDb::new().await;
    let team = team(&t, "Acme").await;
    postal_address(&t, &team).await;
    sending_number(&t, &team, NUMBER).await;
    let contact = ContactId::new();
    t.superuser()
        .await
        .batch_execute(&format!(
            "INSERT INTO contacts (id, team_id, first_name) VALUES ('{contact}', '{team}', 'Ada');
             INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
                  VALUES ('{}', '{team}', '{contact}', '{PHONE}', 'mobile', true);
             INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary)
                  VALUES ('{}', '{team}', '{contact}', 'ada@example.com', true);",
            RowId::new(),
            RowId::new()
        ))
        .await
        .unwrap();
    let retry = Retry { attempts: 2, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50) };
    let timeout = Duration::from_secs(2);
    let sms = Arc::new(signalhouse::SignalHouse::new(signalhouse::Config {
        base_url: url.clone(),
        api_key: "sh-key".into(),
        status_callback_url: None,
        retry: retry.clone(),
        timeout,
    }));
    let mail = Arc::new(sendgrid::SendGrid::new(sendgrid::Config {
        base_url: url.clone(),
        api_key: "SG.key".into(),
        from_email: "team@acme.example".into(),
        from_name: "Acme".into(),
        retry: retry.clone(),
        timeout,
    }));
    let voice = Arc::new(twilio::Twilio::new(twilio::Config {
        base_url: url.clone(),
        account_sid: "AC1".into(),
        auth_token: "tok".into(),
        from: NUMBER.into(),
        status_callback_url: None,
        retry: retry.clone(),
        timeout,
    }));
    let links = UnsubscribeLinks { base_url: "https://mail.example".into(), secret: b"s".to_vec(), mailto: None };
    let gate = Gate::new(sms, mail, voice).with_unsubscribe_links(links);
    let lookup = ProviderLookup::new(Some(SignalHouseLookupConfig {
        base_url: url,
        api_key: "sh-key".into(),
        replay_window: Duration::from_secs(3600),
        retry,
        timeout,
    }));
    Fx { t, team, contact, fake, gate, lookup }
}

impl Fx {
    /// Prepares and commits a message; then delivers it (`deliver`) and settles it (`settle`).
    /// Stopping before either is a crash at that point.
    async fn send(&self, channel: Channel, key: &str, deliver: bool, settle: bool) -> (Option<MessageId>, Verdict) {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let contact = contacts::get(&tx, &self.contact).await.unwrap();
        let req = OutboundRequest {
            team: &self.team,
            contact: &contact,
            channel,
            subject: (channel == Channel::Email).then(|| "Hello".to_owned()),
            body: format!("Hi Ada ({key})"),
            send_key: key.into(),
            campaign: None,
            sent_by: "campaign",
            purpose: nextier_outbound::Purpose::Outreach,
            to: None,
            now: t0(),
        };
        let d = match self.gate.prepare(&tx, &req).await.unwrap() {
            Prepared::Decided(v) => return (None, v),
            Prepared::Ready(d) => d,
        };
        tx.commit().await.unwrap();
        let id = Some(d.message().clone());
        if !deliver {
            return (id, Verdict::Failed { reason: "crashed before delivering".into() });
        }
        let outcome = self.gate.deliver(&d).await;
        if !settle {
            return (id, Verdict::Failed { reason: "crashed after delivering".into() });
        }
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let v = self.gate.settle(&tx, &d, outcome, t0()).await.unwrap();
        tx.commit().await.unwrap();
        (id, v)
    }

    async fn status(&self, id: &MessageId) -> (String, Option<String>) {
        let r = self
            .t
            .superuser()
            .await
            .query_one("SELECT status, error FROM messages WHERE id = $1", &[&id.as_str()])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    }

    async fn count(&self, sql: &str) -> i64 {
        self.t.superuser().await.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn reconcile(&self, at: DateTime<Utc>) -> reconcile::Summary {
        reconcile::run(&self.t.worker, &self.gate, &self.lookup, &ReconcileConfig::default(), at).await.unwrap()
    }
}

#[tokio::test]
async fn a_provider_refusing_our_credentials_holds_sends_back_without_blaming_the_number() {
    let f = fx().await;
    *f.fake.locked_out.lock().unwrap() = true;
    for i in 0..7 {
        let (_, v) = f.send(Channel::Sms, &format!("k-{i}"), true, true).await;
        assert!(matches!(&v, Verdict::Deferred { reason, .. } if reason.contains("configuration")), "{v:?}");
    }
    for channel in [Channel::Email, Channel::Voice] {
        let (_, v) = f.send(channel, &format!("k-{}", channel.as_str()), true, true).await;
        assert!(matches!(&v, Verdict::Deferred { reason, .. } if reason.contains("configuration")), "{v:?}");
    }
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM sending_numbers WHERE e164 = '{NUMBER}' AND status = 'active'")).await,
        1,
        "seven 401s in a row leave the number in rotation"
    );
    assert_eq!(f.count("SELECT count(*) FROM messages WHERE status = 'queued'").await, 9, "nothing failed for good");
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE destination = 'ProviderConfigurationFault'").await,
        3,
        "one event per provider, not one per message"
    );
    // Fixed: the held text goes, once, under its own key.
    *f.fake.locked_out.lock().unwrap() = false;
    let (_, v) = f.send(Channel::Sms, "k-0", true, true).await;
    assert!(matches!(v, Verdict::Sent { .. }), "{v:?}");
    assert_eq!(f.fake.texts.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_mail_or_call_retried_after_a_crash_after_the_provider_took_it_goes_once() {
    let f = fx().await;
    for channel in [Channel::Email, Channel::Voice] {
        let key = format!("step-{}", channel.as_str());
        let (id, _) = f.send(channel, &key, true, false).await;
        let (_, again) = f.send(channel, &key, true, true).await;
        assert_eq!(again, Verdict::Sent { message: id.clone().unwrap() }, "the retry finds the handed-over message");
        // The reconciler cannot ask SendGrid or Twilio, and never resends: a person reviews.
        let summary = f.reconcile(t0() + chrono::Duration::minutes(20)).await;
        assert_eq!((summary.failed, summary.redelivered), (1, 0), "{summary:?}");
        let (status, error) = f.status(&id.unwrap()).await;
        assert_eq!(status, "failed");
        assert!(error.unwrap_or_default().contains("needs review"));
    }
    assert_eq!((*f.fake.mails.lock().unwrap(), *f.fake.calls.lock().unwrap()), (1, 1));
    // A provider outage is not a hand-over: the retry delivers.
    *f.fake.locked_out.lock().unwrap() = true;
    let (id, v) = f.send(Channel::Email, "after-refusal", true, true).await;
    assert!(matches!(v, Verdict::Deferred { .. }));
    *f.fake.locked_out.lock().unwrap() = false;
    let (_, v) = f.send(Channel::Email, "after-refusal", true, true).await;
    assert_eq!(v, Verdict::Sent { message: id.unwrap() });
    assert_eq!(*f.fake.mails.lock().unwrap(), 2);
}

#[tokio::test]
async fn the_reconciler_asks_signalhouse_and_resends_only_within_the_replay_window() {
    let f = fx().await;
    // Taken by SignalHouse, then the sender died: found, recorded as sent, not resent.
    let (taken, _) = f.send(Channel::Sms, "taken", true, false).await;
    // Recorded, then the sender died before calling SignalHouse: resent under its key.
    let (lost, _) = f.send(Channel::Sms, "lost", false, false).await;
    assert_eq!(f.reconcile(t0() + chrono::Duration::minutes(5)).await.examined, 0, "not yet past the deadline");
    let summary = f.reconcile(t0() + chrono::Duration::minutes(20)).await;
    assert_eq!((summary.found, summary.redelivered), (1, 1), "{summary:?}");
    assert_eq!(f.status(&taken.unwrap()).await.0, "sent");
    assert_eq!(f.status(&lost.unwrap()).await.0, "sent");
    assert_eq!(f.fake.texts.lock().unwrap().len(), 2, "one text each");
    assert_eq!(f.count("SELECT count(*) FROM messages WHERE provider_message_id LIKE 'sh-%'").await, 2);

    // Past the replay window, a text SignalHouse never saw is not resent blindly.
    let (late, _) = f.send(Channel::Sms, "late", false, false).await;
    let summary = f.reconcile(t0() + chrono::Duration::hours(2)).await;
    assert_eq!((summary.failed, summary.redelivered), (1, 0), "{summary:?}");
    let (status, error) = f.status(&late.unwrap()).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("needs review"));
    assert_eq!(f.fake.texts.lock().unwrap().len(), 2);

    // Opted out meanwhile: the reconciler's resend passes the gate again, and is refused.
    let (gone, _) = f.send(Channel::Sms, "gone", false, false).await;
    f.t.superuser()
        .await
        .execute(
            "INSERT INTO suppressions (id, team_id, address, kind, source, created_by) VALUES ($1, $2, $3, 'OPTED_OUT', 'test', 'test')",
            &[&RowId::new().as_str(), &f.team.as_str(), &PHONE],
        )
        .await
        .unwrap();
    f.reconcile(t0() + chrono::Duration::minutes(30)).await;
    assert_eq!(f.status(&gone.unwrap()).await, ("failed".into(), Some("not sent: opt_out".into())));
    assert_eq!(f.fake.texts.lock().unwrap().len(), 2);
}
