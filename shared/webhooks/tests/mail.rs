//! Campaign email as safe as SMS, attacked from outside: the SendGrid Event Webhook (signed
//! with a fresh P-256 key here), replays of it, and the unsubscribe link in every mail.

use std::sync::Arc;

use axum::body::Body;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nextier_domain::ids::{ContactId, MessageId, RowId, TeamId};
use nextier_inbound::{Job, Processed, Processor};
use nextier_outbound::{Gate, OutboundGate, OutboundRequest, Prepared, SandboxTransport, UnsubscribeLinks, Verdict};
use nextier_platform::local::{PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::ManualClock;
use nextier_store::campaigns::Channel;
use nextier_store::{contacts, scope, Scope};
use nextier_testkit::fixtures::{postal_address, team};
use nextier_testkit::TestDb;
use nextier_webhooks::sendgrid::{self as mail_webhook, MailState};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &[u8] = b"unsubscribe-test-secret";
const EMAIL: &str = "ada@example.com";
const PHONE: &str = "+12125550147";

struct Fx {
    t: TestDb,
    team: TeamId,
    contact: ContactId,
    key: SigningKey,
    sandbox: Arc<SandboxTransport>,
    gate: Arc<Gate>,
    p: Processor,
}

/// Wednesday 2 December 2026, 15:00 UTC.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap()
}

async fn fx() -> Fx {
    let t = TestDb::new().await;
    let team = team(&t, "Acme").await;
    postal_address(&t, &team).await;
    let contact = ContactId::new();
    t.superuser()
        .await
        .batch_execute(&format!(
            "INSERT INTO contacts (id, team_id, first_name) VALUES ('{contact}', '{team}', 'Ada');
             INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
                  VALUES ('{}', '{team}', '{contact}', '{PHONE}', 'mobile', true);
             INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary)
                  VALUES ('{}', '{team}', '{contact}', '{EMAIL}', true);",
            RowId::new(),
            RowId::new()
        ))
        .await
        .unwrap();
    let sandbox = Arc::new(SandboxTransport::new());
    let links = UnsubscribeLinks { base_url: "https://mail.example".into(), secret: SECRET.to_vec(), mailto: None };
    let gate = Arc::new(Gate::sandbox(sandbox.clone()).with_unsubscribe_links(links));
    let p = Processor {
        db: t.worker.clone(),
        gate: gate.clone(),
        clock: Arc::new(ManualClock::at(now())),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    };
    Fx { t, team, contact, key: SigningKey::random(&mut rand::rngs::OsRng), sandbox, gate, p }
}

fn public_key(key: &SigningKey) -> Arc<p256::ecdsa::VerifyingKey> {
    let der = p256::PublicKey::from(key.verifying_key()).to_public_key_der().unwrap();
    Arc::new(nextier_domain::sendgrid_signature::public_key(&STANDARD.encode(der.as_bytes())).unwrap())
}

impl Fx {
    fn router(&self, at: fn() -> DateTime<Utc>) -> axum::Router {
        let queue = Arc::new(PgQueue::new(self.t.worker.clone()));
        let bus = Arc::new(PgEventBus::new(self.t.worker.clone(), "default"));
        let publisher = OutboxPublisher::new(self.t.worker.clone(), queue, bus);
        mail_webhook::router(MailState {
            db: self.t.worker.clone(),
            outbox: publisher,
            key: Some(public_key(&self.key)),
            unsubscribe_secret: Some(Arc::new(SECRET.to_vec())),
            clock: Arc::new(nextier_platform::ports::clock::ManualClock::at(at())),
        })
    }

    /// A campaign-style email to Ada through the gate; the message and what went out.
    async fn email(&self) -> Verdict {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let contact = contacts::get(&tx, &self.contact).await.unwrap();
        let req = OutboundRequest {
            team: &self.team,
            contact: &contact,
            channel: Channel::Email,
            subject: Some("Hello Ada".into()),
            body: "A note from Acme.".into(),
            send_key: format!("test:{}", MessageId::new()),
            campaign: None,
            sent_by: "campaign",
            purpose: nextier_outbound::Purpose::Outreach,
            to: None,
            now: now(),
        };
        match self.gate.prepare(&tx, &req).await.unwrap() {
            Prepared::Decided(v) => v,
            Prepared::Ready(d) => {
                tx.commit().await.unwrap();
                let outcome = self.gate.deliver(&d).await;
                let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
                let v = self.gate.settle(&tx, &d, outcome, now()).await.unwrap();
                tx.commit().await.unwrap();
                v
            }
        }
    }

    /// Runs the mail-event jobs the webhook staged, as the inbound consumer would.
    async fn run_jobs(&self) -> Vec<Processed> {
        let rows = self
            .t
            .superuser()
            .await
            .query("DELETE FROM outbox WHERE payload->>'kind' = 'mailEvent' RETURNING payload", &[])
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

fn signed_by(key: &SigningKey, body: &str, ts: i64) -> Request<Body> {
    let mut msg = ts.to_string().into_bytes();
    msg.extend_from_slice(body.as_bytes());
    let sig: Signature = key.sign(&msg);
    Request::post(mail_webhook::WEBHOOK_PATH)
        .header("content-type", "application/json")
        .header("x-twilio-email-event-webhook-signature", STANDARD.encode(sig.to_der().as_bytes()))
        .header("x-twilio-email-event-webhook-timestamp", ts.to_string())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn answer(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn event(kind: &str, id: &str, message: &str) -> Value {
    json!({"email": EMAIL, "event": kind, "sg_event_id": id, "sg_message_id": "sg-abc.filter1",
           "timestamp": now().timestamp() - 5, "message_id": message})
}

fn sent_message(v: &Verdict) -> String {
    match v {
        Verdict::Sent { message } => message.to_string(),
        other => panic!("not sent: {other:?}"),
    }
}

#[tokio::test]
async fn campaign_email_carries_one_click_headers_a_signed_link_and_the_postal_address() {
    let f = fx().await;
    let message = sent_message(&f.email().await);
    let sent = f.sandbox.sent();
    assert_eq!(sent.len(), 1);
    let body = &sent[0].body;
    assert!(body.starts_with("A note from Acme."), "{body}");
    assert!(body.contains("https://mail.example/unsubscribe/"), "{body}");
    assert!(body.ends_with("Acme Realty, 1 Main St, Springfield, IL 62701"), "{body}");
    let token = body.split("/unsubscribe/").nth(1).unwrap().split_whitespace().next().unwrap();
    let u = nextier_domain::unsubscribe::verify(SECRET, token).unwrap();
    assert_eq!((u.team, u.message.to_string(), u.address.as_str()), (f.team.clone(), message, EMAIL));

    // Without a postal address the team's campaign email waits (staging refuses it first).
    f.t.superuser().await.execute("DELETE FROM team_settings", &[]).await.unwrap();
    let v = f.email().await;
    assert!(matches!(&v, Verdict::Deferred { reason, .. } if reason.contains("postal address")), "{v:?}");
    assert_eq!(f.sandbox.sent().len(), 1);
}

#[tokio::test]
async fn sendgrid_events_are_verified_over_the_timestamp_and_the_raw_body() {
    let f = fx().await;
    let router = f.router(now);
    let body = json!([event("open", "ev-1", "msg_none")]).to_string();
    let ts = now().timestamp();
    assert_eq!(answer(&router, signed_by(&f.key, &body, ts)).await.0, StatusCode::OK);

    let tampered = signed_by(&f.key, &body, ts);
    let (parts, _) = tampered.into_parts();
    let tampered = Request::from_parts(parts, Body::from(body.replace("open", "spamreport")));
    assert_eq!(answer(&router, tampered).await.0, StatusCode::UNAUTHORIZED, "a changed body");
    let stale = ts - 3600;
    assert_eq!(answer(&router, signed_by(&f.key, &body, stale)).await.0, StatusCode::UNAUTHORIZED, "an old signature");
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    assert_eq!(answer(&router, signed_by(&other, &body, ts)).await.0, StatusCode::UNAUTHORIZED, "another key");
    let unsigned = Request::post(mail_webhook::WEBHOOK_PATH).body(Body::from(body.clone())).unwrap();
    let (status, problem) = answer(&router, unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    let (status, problem) = answer(&router, signed_by(&f.key, r#"{"event":"open"}"#, ts)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "signed but not a list of events");
    assert!(problem.contains("body"), "{problem}");
    let (status, problem) = answer(&router, signed_by(&f.key, r#"[{"event":"open"}]"#, ts)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem.contains("[0].sg_event_id"), "{problem}");
    assert_eq!(f.count("SELECT count(*) FROM webhook_events WHERE provider = 'sendgrid'").await, 1);
}

#[tokio::test]
async fn a_replayed_unsubscribe_is_processed_once_and_blocks_the_persons_next_campaign_email() {
    let f = fx().await;
    let message = sent_message(&f.email().await);
    let router = f.router(now);
    let body = json!([event("delivered", "ev-d", &message), event("unsubscribe", "ev-u", &message)]).to_string();
    let (status, first) = answer(&router, signed_by(&f.key, &body, now().timestamp())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, again) = answer(&router, signed_by(&f.key, &body, now().timestamp())).await;
    assert!(again.contains("\"duplicates\":2"), "{again}");
    let done = f.run_jobs().await;
    assert_eq!(done.len(), 2, "each event once: {done:?}");
    assert!(done.contains(&Processed::Mail("opted out: unsubscribe".into())), "{done:?}");
    assert!(f.run_jobs().await.is_empty(), "the replay staged nothing");

    // The person's opt-out: the address and the phone, the contact suppressed.
    assert_eq!(
        f.count(&format!(
            "SELECT count(*) FROM suppressions WHERE kind = 'OPTED_OUT' AND address IN ('{EMAIL}', '{PHONE}')
               AND source = 'email_unsubscribe'"
        ))
        .await,
        2
    );
    assert_eq!(f.count("SELECT count(*) FROM contacts WHERE lead_state = 'suppressed'").await, 1);
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM messages WHERE id = '{message}' AND status = 'delivered'")).await,
        1
    );
    assert_eq!(f.email().await, Verdict::Blocked { reason: "opt_out".into() });
    assert_eq!(f.sandbox.sent().len(), 1, "nothing more went out");
}

#[tokio::test]
async fn a_hard_bounce_suppresses_that_address_only_and_events_for_other_addresses_are_ignored() {
    let f = fx().await;
    let message = sent_message(&f.email().await);
    let router = f.router(now);
    let mut soft = event("bounce", "ev-soft", &message);
    soft["type"] = json!("blocked");
    let mut forged = event("unsubscribe", "ev-x", &message);
    forged["email"] = json!("someone-else@example.com");
    let mut hard = event("bounce", "ev-hard", &message);
    hard["type"] = json!("bounce");
    let body = json!([soft, forged, hard]).to_string();
    assert_eq!(answer(&router, signed_by(&f.key, &body, now().timestamp())).await.0, StatusCode::OK);
    f.run_jobs().await;
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 1);
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM suppressions WHERE address = '{EMAIL}' AND kind = 'BOUNCED'")).await,
        1
    );
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM messages WHERE id = '{message}' AND status = 'failed'")).await,
        1
    );
    assert_eq!(f.email().await, Verdict::Blocked { reason: "suppressed: BOUNCED".into() });
}

#[tokio::test]
async fn the_unsubscribe_link_asks_on_get_and_opts_the_person_out_on_one_click() {
    let f = fx().await;
    sent_message(&f.email().await);
    let body = f.sandbox.sent()[0].body.clone();
    let token = body.split("/unsubscribe/").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let router = f.router(Utc::now);
    let path = format!("/unsubscribe/{token}");

    let (status, page) = answer(&router, Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0, "a link scanner's GET changes nothing");

    let forged = format!("/unsubscribe/{}x", token);
    let one_click = |p: &str| {
        Request::post(p)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("List-Unsubscribe=One-Click"))
            .unwrap()
    };
    assert_eq!(answer(&router, one_click(&forged)).await.0, StatusCode::NOT_FOUND);
    let (status, problem) = answer(&router, Request::post(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem.contains("List-Unsubscribe"), "{problem}");
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0);

    let (status, page) = answer(&router, one_click(&path)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(f.count("SELECT count(*) FROM suppressions WHERE kind = 'OPTED_OUT'").await, 2, "email and phone");
    assert_eq!(answer(&router, one_click(&path)).await.0, StatusCode::OK, "a second click is harmless");
    assert_eq!(f.email().await, Verdict::Blocked { reason: "opt_out".into() });
}
