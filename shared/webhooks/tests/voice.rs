//! Twilio voice webhooks on a real PostgreSQL: signed form posts, TwiML answers, the call and
//! its voicemail recorded once in the team that owns the number called.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nextier_domain::ids::TeamId;
use nextier_domain::webhook_signature::twilio_signature;
use nextier_testkit::{fixtures, TestDb};
use nextier_webhooks::twilio::{self as voice, VoiceState};
use tower::ServiceExt;

const TOKEN: &str = "twilio-auth-token";
const BASE: &str = "https://abc.lambda-url.us-east-1.on.aws";

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(path: &str, params: &[(&str, &str)], token: &str) -> Request<Body> {
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let sig = twilio_signature(token, &format!("{BASE}{path}"), &owned);
    let body = params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(body))
        .unwrap()
}

async fn send(r: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (status, String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap())
}

async fn setup() -> (TestDb, TeamId, axum::Router) {
    let t = TestDb::new().await;
    let team = fixtures::team(&t, "T").await;
    fixtures::sending_number(&t, &team, "+12127363100").await;
    let state = VoiceState {
        db: t.worker.clone(),
        auth_token: Arc::new(TOKEN.into()),
        base_url: Arc::new(BASE.into()),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
    };
    (t, team, voice::router(state))
}

#[tokio::test]
async fn a_call_is_answered_with_twiml_and_its_voicemail_lands_in_the_inbox() {
    let (t, team, r) = setup().await;
    let call = [
        ("CallSid", "CA100"),
        ("AccountSid", "AC1"),
        ("From", "+13126181234"),
        ("To", "+12127363100"),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("CallerName", "ANA\0RUIZ"),
    ];
    // Unsigned, mis-signed, or with a parameter changed after signing: refused.
    let mut unsigned = form(voice::PATH, &call, TOKEN);
    unsigned.headers_mut().remove("x-twilio-signature");
    assert_eq!(send(&r, unsigned).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(&r, form(voice::PATH, &call, "wrong-token")).await.0, StatusCode::FORBIDDEN);
    let mut tampered = form(voice::PATH, &call, TOKEN);
    *tampered.body_mut() = Body::from("CallSid=CA100&From=%2B19995550000&To=%2B12127363100");
    assert_eq!(send(&r, tampered).await.0, StatusCode::FORBIDDEN);

    let (status, xml) = send(&r, form(voice::PATH, &call, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(xml.contains("<Say>Thanks for calling.") && xml.contains("<Record maxLength=\"120\""), "{xml}");
    assert!(xml.contains(&format!("action=\"{BASE}/webhooks/twilio/voice/recording\"")), "{xml}");
    // Twilio retries: still one call.
    send(&r, form(voice::PATH, &call, TOKEN)).await;
    let su = t.superuser().await;
    let row = su
        .query_one(
            "SELECT m.team_id, m.channel, c.needs_review, count(*) OVER () FROM messages m JOIN contacts c ON c.id = m.contact_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, bool>(2), row.get::<_, i64>(3)),
        (team.to_string(), "VOICE".into(), true, 1)
    );

    let rec = [
        ("CallSid", "CA100"),
        ("From", "+13126181234"),
        ("To", "+12127363100"),
        ("RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"),
        ("RecordingDuration", "34"),
    ];
    let (status, xml) = send(&r, form("/webhooks/twilio/voice/recording", &rec, TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(xml.contains("<Hangup/>"));
    send(&r, form("/webhooks/twilio/voice/recording", &rec, TOKEN)).await;
    let item =
        su.query_one("SELECT priority, labels, response_text, count(*) OVER () FROM inbox_items", &[]).await.unwrap();
    assert_eq!(item.get::<_, String>(0), "HOT");
    assert!(item.get::<_, Vec<String>>(1).contains(&"voicemail".to_owned()));
    assert!(item.get::<_, String>(2).starts_with("Voicemail (34 s)"));
    assert_eq!(item.get::<_, i64>(3), 1, "the same recording twice is one item");

    let st = [
        ("CallSid", "CA100"),
        ("From", "+13126181234"),
        ("To", "+12127363100"),
        ("CallStatus", "completed"),
        ("CallDuration", "52"),
    ];
    assert_eq!(send(&r, form("/webhooks/twilio/voice/status", &st, TOKEN)).await.0, StatusCode::NO_CONTENT);
    send(&r, form("/webhooks/twilio/voice/status", &st, TOKEN)).await;
    let events: Vec<String> = su
        .query("SELECT status FROM message_events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events, ["received", "voicemail", "call:completed"]);

    // A call to a number nobody owns is told so, and nothing is recorded for any team.
    let stray = [("CallSid", "CA200"), ("From", "+13126181234"), ("To", "+13058684000")];
    let (_, xml) = send(&r, form(voice::PATH, &stray, TOKEN)).await;
    assert!(xml.contains("not in service"), "{xml}");
    let n: i64 = su.query_one("SELECT count(*) FROM messages", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_team_greeting_is_escaped_into_the_twiml() {
    let (t, team, r) = setup().await;
    t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'voice', 'greeting', 'Acme <Realty> & Sons')",
            &[&team.as_str()],
        )
        .await
        .unwrap();
    let call = [("CallSid", "CA1"), ("From", "+13126181234"), ("To", "+12127363100")];
    let (_, xml) = send(&r, form(voice::PATH, &call, TOKEN)).await;
    assert!(xml.contains("<Say>Acme &lt;Realty&gt; &amp; Sons</Say>"), "{xml}");
}
