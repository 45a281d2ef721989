//! Real text is never refused or lost (issue 11.11): replies with emoji, 1,600 characters,
//! Windows-1252 characters that arrived as C1 controls, mixed and right-to-left scripts, go
//! through the signed webhook and the consumer and read back, through the API, as the
//! characters their senders meant; the classification preview takes the same texts. A STOP
//! hidden in such text is still a STOP.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::{Job, Processed, Processor};
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::{json, Value};
use support::{harness, As, Harness};
use tower::ServiceExt;

const ALICE: As = As::User("alice");
const NUMBER: &str = "+12127363100";
const SECRET: &[u8] = b"whsec_text";

/// (what the phone sent, what the inbox must show, how it reads)
fn replies() -> Vec<(String, String, &'static str)> {
    let long: String = "We inherited the house on Elm St from my grandmother and honestly we are not sure what \
                        to do with it yet, the roof needs work and the tenants leave in March. "
        .repeat(12)
        .chars()
        .take(1_594)
        .collect::<String>()
        + " 🙂 ok?";
    let cases = [
        ("Yes 😀 call me 👍🏽", "Yes 😀 call me 👍🏽", "POSITIVE"),
        (
            "I don\u{92}t know \u{93}maybe\u{94} \u{96} it\u{92}s worth \u{80}200k\u{85}",
            "I don’t know “maybe” – it’s worth €200k…",
            "POSITIVE",
        ),
        ("Hola, 你好, привет, مرحبا — how much?", "Hola, 你好, привет, مرحبا — how much?", "POSITIVE"),
        (
            "👨\u{200D}👩\u{200D}👧\u{200D}👦 family home 🏳\u{FE0F}\u{200D}🌈",
            "👨\u{200D}👩\u{200D}👧\u{200D}👦 family home 🏳\u{FE0F}\u{200D}🌈",
            "NEUTRAL",
        ),
        ("\u{200F}שלום, מה המחיר? مرحبا؟ ok?", "\u{200F}שלום, מה המחיר? مرحبا؟ ok?", "QUESTION"),
        ("line one\r\n\tline two  ", "line one\r\n\tline two  ", "NEUTRAL"),
        ("undefined \u{81}\u{8D}\u{8F}\u{90}\u{9D} kept", "undefined \u{81}\u{8D}\u{8F}\u{90}\u{9D} kept", "NEUTRAL"),
        ("hi\u{0} there", "hi there", "NEUTRAL"),
        ("STOP\u{92}", "STOP’", "DNC_REQUEST"),
        ("Stop 🙏", "Stop 🙏", "DNC_REQUEST"),
        ("Don\u{92}t text me again", "Don’t text me again", "DNC_REQUEST"),
        ("ST\u{0}OP", "STOP", "DNC_REQUEST"),
        ("🛑🛑🛑", "🛑🛑🛑", "DNC_REQUEST"),
        ("NO M\u{C1}S MENSAJES \u{85}", "NO MÁS MENSAJES …", "DNC_REQUEST"),
    ];
    let mut out: Vec<_> = cases.iter().map(|(s, e, c)| (s.to_string(), e.to_string(), *c)).collect();
    out.push((long.clone(), long, "POSITIVE"));
    out
}

fn signed(body: Vec<u8>, delivery: &str) -> Request<Body> {
    let ts = Utc::now().timestamp_millis();
    Request::post(webhook::PATH)
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={}", sign_signalhouse(SECRET, ts, &body)))
        .header("x-signalhouse-delivery-id", delivery)
        .body(Body::from(body))
        .unwrap()
}

async fn setup(h: &Harness) -> String {
    let team = h.team("alice", "Acme").await;
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at) VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, $2, 'test', now())",
            &[&team, &NUMBER],
        )
        .await
        .unwrap();
    team
}

/// Posts a signed delivery and runs the job it staged, as the consumer would.
async fn deliver(h: &Harness, body: Vec<u8>, delivery: &str) -> Processed {
    let router = webhook::router(WebhookState::new(h.t.worker.clone(), h.state.outbox.clone(), vec![SECRET.to_vec()]));
    let resp = router.oneshot(signed(body.clone(), delivery)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{delivery}");
    let su = h.t.superuser().await;
    let raw: Vec<u8> =
        su.query_one("SELECT raw_body FROM webhook_events WHERE delivery_id = $1", &[&delivery]).await.unwrap().get(0);
    assert_eq!(raw, body, "{delivery}: the delivery is kept byte for byte");
    let job: Value = su
        .query_one(
            "DELETE FROM outbox WHERE id = (SELECT id FROM outbox WHERE destination = 'inbound'
                AND payload->>'kind' = 'webhook' ORDER BY created_at LIMIT 1) RETURNING payload",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let job: Job = serde_json::from_value(job).unwrap();
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
async fn replies_read_back_as_their_senders_meant_them() {
    let h = harness().await;
    let team = setup(&h).await;
    for (i, (sent, shown, class)) in replies().into_iter().enumerate() {
        let from = format!("+1312618{:04}", 1000 + i);
        let body = json!({"event": "message.received", "text": sent, "from": from, "to": NUMBER,
                          "message_id": format!("sh-{i}"), "timestamp": Utc::now().to_rfc3339()});
        let out = deliver(&h, body.to_string().into_bytes(), &format!("d-{i}")).await;
        let Processed::Received { message, classification, .. } = out else { panic!("{sent:?}: {out:?}") };
        assert_eq!(classification.as_str(), class, "{sent:?}");
        let m = h.call(&ALICE, "GET", &format!("/teams/{team}/messages/{message}"), None).await;
        assert_eq!(m.status, StatusCode::OK, "{}", m.body);
        assert_eq!(m.body["body"].as_str(), Some(shown.as_str()), "{sent:?}");
        let items = h.call(&ALICE, "GET", &format!("/teams/{team}/inbox/items?limit=200&processed=true"), None).await;
        let item = items.body["items"].as_array().unwrap().iter().find(|it| it["messageId"] == message.as_str());
        assert_eq!(item.map(|it| it["responseText"].clone()), Some(json!(shown)), "{sent:?}: {}", items.body);
        if class == "DNC_REQUEST" {
            let n: i64 =
                h.t.superuser()
                    .await
                    .query_one("SELECT count(*) FROM suppressions WHERE address = $1 AND kind = 'OPTED_OUT'", &[&from])
                    .await
                    .unwrap()
                    .get(0);
            assert_eq!(n, 1, "{sent:?} suppresses its sender");
        }
    }
    assert_eq!(h.count("suppressions").await, 6, "the six hidden STOPs, nothing else");
}

#[tokio::test]
async fn a_body_written_carelessly_is_read_not_refused() {
    let h = harness().await;
    let team = setup(&h).await;
    // Escaped in the JSON: \u0092 (the C1 control) and an emoji as a surrogate pair.
    let escaped = br#"{"event":"message.received","text":"I don\u0092t think so \ud83d\ude00 STOP","from":"+13126180001","to":"+12127363100","message_id":"esc"}"#;
    // Windows-1252 bytes that are not UTF-8, and a raw tab and line break inside the string.
    let cp1252 = b"{\"event\":\"message.received\",\"text\":\"caf\xe9 \x93ok\x94\tfine\nthanks\",\"from\":\"+13126180002\",\"to\":\"+12127363100\",\"message_id\":\"cp\"}";
    // A concatenated message cut inside an emoji: half a surrogate pair.
    let cut = br#"{"event":"message.received","text":"ok call me \ud83d","from":"+13126180003","to":"+12127363100","message_id":"cut"}"#;
    for (body, delivery, shown, class) in [
        (cut.to_vec(), "cut", "ok call me \u{FFFD}", "POSITIVE"),
        (escaped.to_vec(), "esc", "I don’t think so 😀 STOP", "DNC_REQUEST"),
        (cp1252.to_vec(), "cp", "café “ok”\tfine\nthanks", "NEUTRAL"),
    ] {
        let out = deliver(&h, body, delivery).await;
        let Processed::Received { message, classification, .. } = out else { panic!("{delivery}: {out:?}") };
        assert_eq!(classification.as_str(), class);
        let m = h.call(&ALICE, "GET", &format!("/teams/{team}/messages/{message}"), None).await;
        assert_eq!(m.body["body"].as_str(), Some(shown), "{delivery}");
    }
}

#[tokio::test]
async fn the_classification_preview_takes_any_real_reply() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let url = format!("/teams/{team}/inbox/classify");
    for (sent, shown, class) in replies() {
        let r = h.call(&ALICE, "POST", &url, Some(json!({"text": sent}))).await;
        assert_eq!(r.status, StatusCode::OK, "{sent:?}: {}", r.body);
        assert_eq!((r.body["text"].as_str(), r.body["classification"].as_str()), (Some(shown.as_str()), Some(class)));
    }
    // Emoji-heavy text longer than 1,600 characters is still a reply.
    let family = "👨\u{200D}👩\u{200D}👧\u{200D}👦".repeat(300);
    let r = h.call(&ALICE, "POST", &url, Some(json!({"text": family}))).await;
    assert_eq!((r.status, r.body["text"].as_str()), (StatusCode::OK, Some(family.as_str())));
    // Blank (NUL counts as nothing) and absurdly long texts are refused, naming the field.
    for text in ["\u{0}", " \u{0}\t\r\n ", &"x".repeat(10_001)] {
        let r = h.call(&ALICE, "POST", &url, Some(json!({"text": text}))).await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("text")), "{}", r.body);
    }
    assert_eq!(h.count("messages").await + h.count("inbox_items").await, 0, "the preview stores nothing");
}
