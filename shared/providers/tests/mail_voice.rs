//! SendGrid mail and Twilio voice behind the real outbound gate, against local fake servers
//! speaking their contracts: auth, request shape, accepted answers, refusals, and retried
//! outages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use nextier_domain::campaign::Delay;
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, StepId, TeamId};
use nextier_outbound::{FromCampaign, Gate, OutboundGate, OutboundRequest, Prepared, SandboxTransport, Verdict};
use nextier_providers::retry::Retry;
use nextier_providers::{sendgrid, twilio};
use nextier_store::campaigns::Channel;
use nextier_store::{contacts, scope, Scope};
use nextier_testkit::TestDb;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    mails: Mutex<Vec<Value>>,
    calls: Mutex<Vec<Vec<(String, String)>>>,
    /// Answer the next N requests with 503.
    down: Mutex<u32>,
    requests: Mutex<u32>,
}

impl Fake {
    fn outage(&self) -> bool {
        *self.requests.lock().unwrap() += 1;
        let mut d = self.down.lock().unwrap();
        if *d > 0 {
            *d -= 1;
            return true;
        }
        false
    }
}

async fn mail(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if f.outage() {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer SG.test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"errors": [{"message": "bad key"}]}))).into_response();
    }
    if body["personalizations"][0]["to"][0]["email"].as_str().is_none_or(|e| !e.contains('@')) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errors": [{"message": "invalid to", "field": "personalizations"}]})),
        )
            .into_response();
    }
    f.mails.lock().unwrap().push(body);
    (StatusCode::ACCEPTED, [("x-message-id", "sg-1")]).into_response()
}

async fn call(State(f): State<Arc<Fake>>, headers: HeaderMap, Form(form): Form<Vec<(String, String)>>) -> Response {
    if f.outage() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"code": 20500, "message": "busy"}))).into_response();
    }
    // Basic auth: AC123:token.
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Basic QUMxMjM6dG9rZW4=") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"code": 20003, "message": "Authenticate"}))).into_response();
    }
    let to = form.iter().find(|(k, _)| k == "To").map(|(_, v)| v.clone()).unwrap_or_default();
    if to == "+12125550666" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient"})),
        )
            .into_response();
    }
    f.calls.lock().unwrap().push(form);
    (StatusCode::CREATED, Json(json!({"sid": "CA0001", "status": "queued"}))).into_response()
}

struct Fx {
    t: TestDb,
    team: TeamId,
    contact: ContactId,
    fake: Arc<Fake>,
    gate: Gate,
    url: String,
}

async fn fx(phone: &str) -> Fx {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v3/mail/send", post(mail))
        .route("/2010-04-01/Accounts/AC123/Calls.json", post(call))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = TestDb::new().await;
    let (team, contact) = (TeamId::new(), ContactId::new());
    t.superuser()
        .await
        .batch_execute(&format!(
            "INSERT INTO users (id, subject) VALUES ('usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X', 's');
             INSERT INTO teams (id, name, slug, created_by) VALUES ('{team}', 'T', '{team}', 'usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X');
             INSERT INTO contacts (id, team_id, first_name) VALUES ('{contact}', '{team}', 'Ada');
             INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
                  VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', '{team}', '{contact}', '{phone}', 'mobile', true);
             INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary)
                  VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1Y', '{team}', '{contact}', 'ada@example.com', true);"
        ))
        .await
        .unwrap();
    let retry = Retry { attempts: 3, backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(200) };
    let mail = Arc::new(sendgrid::SendGrid::new(sendgrid::Config {
        base_url: url.clone(),
        api_key: "SG.test".into(),
        from_email: "team@acme.example".into(),
        from_name: "Acme".into(),
        retry: retry.clone(),
        timeout: Duration::from_secs(2),
    }));
    let voice = Arc::new(twilio::Twilio::new(twilio::Config {
        base_url: url.clone(),
        account_sid: "AC123".into(),
        auth_token: "token".into(),
        from: "+12125550100".into(),
        status_callback_url: Some("https://hooks.example.com/twilio".into()),
        retry,
        timeout: Duration::from_secs(2),
    }));
    nextier_testkit::fixtures::postal_address(&t, &team).await;
    let links = nextier_outbound::UnsubscribeLinks {
        base_url: "https://mail.acme.example".into(),
        secret: b"unsubscribe-secret".to_vec(),
        mailto: Some("unsubscribe@acme.example".into()),
    };
    let gate = Gate::new(Arc::new(SandboxTransport::new()), mail, voice).with_unsubscribe_links(links);
    Fx { t, team, contact, fake, gate, url }
}

impl Fx {
    async fn send(&self, channel: Channel, subject: Option<&str>, body: &str) -> Verdict {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let contact = contacts::get(&tx, &self.contact).await.unwrap();
        let (campaign, enrolment, step) = (CampaignId::new(), EnrolmentId::new(), StepId::new());
        let _ = Delay::Minutes(0);
        let req = OutboundRequest {
            team: &self.team,
            contact: &contact,
            channel,
            subject: subject.map(str::to_owned),
            body: body.into(),
            send_key: format!("{enrolment}:1"),
            campaign: Some(FromCampaign { campaign: &campaign, enrolment: &enrolment, step: &step, per_minute: 75 }),
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
}

#[tokio::test]
async fn mail_goes_to_sendgrid_with_our_message_id_and_survives_an_outage() {
    let f = fx("+12125550199").await;
    *f.fake.down.lock().unwrap() = 1;
    assert!(matches!(f.send(Channel::Email, Some("Hello Ada"), "A note from Acme.").await, Verdict::Sent { .. }));
    let mails = f.fake.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["personalizations"][0]["to"][0]["email"], "ada@example.com");
    assert_eq!(mails[0]["subject"], "Hello Ada");
    let text = mails[0]["content"][0]["value"].as_str().unwrap();
    assert!(text.starts_with("A note from Acme.\n\n--\nTo stop receiving these emails, unsubscribe: https://mail.acme.example/unsubscribe/"), "{text}");
    assert!(text.ends_with("Acme Realty, 1 Main St, Springfield, IL 62701"), "{text}");
    let headers = &mails[0]["personalizations"][0]["headers"];
    let link = headers["List-Unsubscribe"].as_str().unwrap();
    assert!(link.starts_with("<https://mail.acme.example/unsubscribe/"), "{link}");
    assert!(link.ends_with(", <mailto:unsubscribe@acme.example?subject=unsubscribe>"), "{link}");
    assert!(text.contains(&link[1..link.find('>').unwrap()]), "the body's link is the header's");
    assert_eq!(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    assert!(mails[0]["personalizations"][0]["custom_args"]["message_id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(*f.fake.requests.lock().unwrap(), 2, "one 503, then accepted");
    let row: (String, String) = {
        let r = f.t.superuser().await.query_one("SELECT status, provider_message_id FROM messages", &[]).await.unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(row, ("sent".into(), "sg-1".into()));
}

#[tokio::test]
async fn calls_go_to_twilio_with_escaped_twiml_and_an_unsubscribed_number_is_suppressed() {
    let f = fx("+12125550199").await;
    assert!(matches!(f.send(Channel::Voice, None, "Hi Ada, <press 1> & more").await, Verdict::Sent { .. }));
    let calls = f.fake.calls.lock().unwrap().clone();
    let get = |k: &str| calls[0].iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("To"), "+12125550199");
    assert_eq!(get("From"), "+12125550100");
    assert_eq!(get("Twiml"), "<Response><Say>Hi Ada, &lt;press 1&gt; &amp; more</Say></Response>");
    assert_eq!(get("StatusCallback"), "https://hooks.example.com/twilio");

    let g = fx("+12125550666").await;
    assert_eq!(g.send(Channel::Voice, None, "Hi").await, Verdict::Blocked { reason: "opt_out".into() });
    let kind: String =
        g.t.superuser()
            .await
            .query_one("SELECT kind FROM suppressions WHERE address = '+12125550666'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(kind, "OPTED_OUT");
}

#[tokio::test]
async fn team_notifications_go_to_sendgrid_as_one_mail_to_every_recipient() {
    use nextier_platform::ports::mailer::Mailer;
    let f = fx("+12125550123").await;
    let mailer = sendgrid::SendGrid::new(sendgrid::Config {
        base_url: f.url.clone(),
        api_key: "SG.test".into(),
        from_email: "alerts@acme.example".into(),
        from_name: "Nextier".into(),
        retry: Retry { attempts: 3, backoff: Duration::from_millis(20), max_backoff: Duration::from_millis(200) },
        timeout: Duration::from_secs(2),
    });
    *f.fake.down.lock().unwrap() = 1;
    let to = vec!["admin@acme.test".to_owned(), "owner@acme.test".to_owned()];
    mailer.send(&to, "2 inbox item(s) past their SLA", "- inb_1 ...", "sla:2026-12-02T10:00").await.unwrap();
    let mails = f.fake.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "the outage was retried, and one mail went");
    let m = &mails[0];
    assert_eq!(m["personalizations"][0]["to"], json!([{"email": "admin@acme.test"}, {"email": "owner@acme.test"}]));
    assert_eq!(m["personalizations"][0]["custom_args"]["notification"], "sla:2026-12-02T10:00");
    assert_eq!(
        (m["subject"].as_str(), m["from"]["email"].as_str()),
        (Some("2 inbox item(s) past their SLA"), Some("alerts@acme.example"))
    );
    let bad = mailer.send(&["not-an-address".to_owned()], "s", "t", "k").await.unwrap_err();
    assert!(bad.to_string().contains("400"), "{bad}");
}
