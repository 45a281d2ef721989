//! The LLM layer against a local fake speaking both contracts: OpenAI-compatible chat
//! completions (bearer auth, `choices[0].message.content`, a search model's `citations`) and
//! Anthropic Messages (`x-api-key`, `anthropic-version`, `content[].text`). Transient failures
//! are retried, a dead or refusing model falls to the next, a garbage answer is repaired once,
//! and otherwise the template stands in, marked so it never goes out on its own. What the
//! model is told carries no number, email, surname or address.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use nextier_domain::inbox::Classification;
use nextier_platform::ports::suggester::{Context, Persona, PromptTemplate, ResearchSubject, Researcher, Suggester};
use nextier_providers::llm::{Anthropic, Chain, Config, LlmResearcher, LlmSuggester, Model, OpenAi};
use nextier_providers::retry::Retry;
use serde_json::{json, Value};

/// What the fake does with the next call.
#[derive(Clone)]
enum Act {
    /// Answer with this HTTP status and body.
    Say(u16, Value),
    /// Never answer in time.
    Hang,
}

#[derive(Default)]
struct Fake {
    openai: Mutex<VecDeque<Act>>,
    anthropic: Mutex<VecDeque<Act>>,
    seen: Mutex<Vec<(String, Value)>>,
}

fn completion(content: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
           "usage": {"prompt_tokens": 80, "completion_tokens": 12, "total_tokens": 92}})
}

fn message(text: &str) -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": "end_turn",
           "content": [{"type": "text", "text": text}], "usage": {"input_tokens": 80, "output_tokens": 12}})
}

async fn act(a: Option<Act>, default: Value) -> Response {
    match a {
        Some(Act::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Act::Say(status, body)) => (StatusCode::from_u16(status).unwrap(), Json(body)).into_response(),
        None => (StatusCode::OK, Json(default)).into_response(),
    }
}

async fn openai(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided"}})))
            .into_response();
    }
    f.seen.lock().unwrap().push(("openai".into(), body));
    let next = f.openai.lock().unwrap().pop_front();
    act(next, completion(r#"{"reply": "Thanks Ana! Could we talk tomorrow at 10?", "confidence": 91}"#)).await
}

async fn anthropic(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let version = headers.get("anthropic-version").and_then(|v| v.to_str().ok());
    if key != Some("ak-test") || version != Some("2023-06-01") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"type": "error", "error": {"type": "authentication_error"}})))
            .into_response();
    }
    f.seen.lock().unwrap().push(("anthropic".into(), body));
    let next = f.anthropic.lock().unwrap().pop_front();
    act(next, message(r#"{"reply": "Thanks Ana, happy to talk. Does Tuesday work?", "confidence": 0.8}"#)).await
}

async fn fake() -> (Arc<Fake>, String) {
    let f = Arc::new(Fake::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (f, format!("http://{addr}"))
}

fn config(base: &str, key: &str, model: &str) -> Config {
    Config {
        base_url: base.into(),
        api_key: key.into(),
        model: model.into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50) },
        timeout: Duration::from_millis(800),
    }
}

fn chain(base: &str, openai_key: &str) -> LlmSuggester {
    let models: Vec<Arc<dyn Model>> = vec![
        Arc::new(OpenAi::new(config(&format!("{base}/v1"), openai_key, "gpt-test"))),
        Arc::new(Anthropic::new(config(base, "ak-test", "claude-test"))),
    ];
    LlmSuggester { chain: Chain(models) }
}

fn ctx(c: Classification) -> Context {
    let mut ctx = Context::reply(Some("Ana"), c, "How much would you pay?");
    ctx.classification_confidence = 95;
    ctx.conversation = vec![
        ("outbound".into(), "Hi Ana, would you sell 12 Oak St?".into()),
        ("inbound".into(), "How much would you pay?".into()),
    ];
    ctx.worker = Some(Persona {
        name: "GIANNA".into(),
        role: "opener".into(),
        persona: "Warm and curious.".into(),
        tone: "friendly".into(),
        goal: "Start a conversation.".into(),
        industry: "real estate".into(),
        faqs: vec![("Who are you?".into(), "Acme Homes, local buyers.".into())],
        sign_off: "- Gianna, Acme".into(),
    });
    ctx
}

#[tokio::test]
async fn a_structured_answer_becomes_a_signed_suggestion_with_the_lower_confidence() {
    let (f, base) = fake().await;
    let w = chain(&base, "sk-test").suggest(&ctx(Classification::Question)).await.unwrap().unwrap();
    assert_eq!(w.text, "Thanks Ana! Could we talk tomorrow at 10?\n- Gianna, Acme");
    assert_eq!(w.source, "llm:openai:gpt-test");
    assert_eq!(w.confidence, Some(91), "the model's 91 is below the classification's 95");
    assert_eq!(w.note, None);
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let body = &seen[0].1;
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["response_format"]["type"], "json_object");
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("You are GIANNA")
            && system.contains("Acme Homes, local buyers.")
            && system.contains("\"confidence\""),
        "{system}"
    );
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Us: Hi Ana, would you sell 12 Oak St?") && user.contains("(question)"), "{user}");
}

#[tokio::test]
async fn the_team_prompt_and_its_version_are_used() {
    let (f, base) = fake().await;
    let mut c = ctx(Classification::Positive);
    c.prompt = Some(PromptTemplate {
        key: "reply".into(),
        version: 3,
        system: "You are {{workerName}} for {{industry}}.".into(),
        user: "Reply to {{firstName}}: {{reply}}".into(),
        model: Some("gpt-team".into()),
        temperature: 0.1,
    });
    let w = chain(&base, "sk-test").suggest(&c).await.unwrap().unwrap();
    assert_eq!(w.prompt, Some(("reply".to_owned(), 3)));
    let seen = f.seen.lock().unwrap().clone();
    let body = &seen[0].1;
    assert_eq!(body["model"], "gpt-team");
    assert!((body["temperature"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert!(body["messages"][0]["content"].as_str().unwrap().starts_with("You are GIANNA for real estate."));
    assert_eq!(body["messages"][1]["content"], "Reply to Ana: How much would you pay?");
}

#[tokio::test]
async fn garbage_is_repaired_once_then_the_template_stands_in_and_never_sends_itself() {
    let (f, base) = fake().await;
    f.openai.lock().unwrap().push_back(Act::Say(200, completion("Sure! Here is a reply for Ana.")));
    let w = chain(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.unwrap().unwrap();
    assert_eq!(w.source, "llm:openai:gpt-test", "the repair worked");
    assert!(w.note.as_deref().unwrap().contains("repaired"), "{:?}", w.note);
    let repair = f.seen.lock().unwrap()[1].1["messages"][1]["content"].as_str().unwrap().to_owned();
    assert!(repair.contains("not a JSON object") && repair.contains("Sure! Here is a reply"), "{repair}");

    f.seen.lock().unwrap().clear();
    for _ in 0..2 {
        f.openai.lock().unwrap().push_back(Act::Say(
            200,
            completion(r#"{"reply": "I'm sorry, but I can't help with that.", "confidence": 99}"#),
        ));
    }
    let w = chain(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.unwrap().unwrap();
    assert_eq!(w.source, "template:positive");
    assert_eq!(w.confidence, None, "a fallback never goes out on its own");
    assert!(w.note.as_deref().unwrap().contains("refusal"), "{:?}", w.note);
    assert!(w.text.starts_with("Thanks Ana!") && w.text.ends_with("- Gianna, Acme"), "{}", w.text);
    assert_eq!(f.seen.lock().unwrap().len(), 2, "one answer and one repair, no more");
}

#[tokio::test]
async fn a_dead_hanging_or_refusing_model_falls_to_the_next_one() {
    let (f, base) = fake().await;
    // A wrong OpenAI key: Anthropic answers.
    let w = chain(&base, "sk-wrong").suggest(&ctx(Classification::Positive)).await.unwrap().unwrap();
    assert_eq!(w.source, "llm:anthropic:claude-test");
    assert_eq!(w.confidence, Some(80), "0.8 read as 80");
    let seen = f.seen.lock().unwrap().clone();
    let body = &seen.last().unwrap().1;
    assert!(body["system"].as_str().unwrap().contains("GIANNA"));
    assert_eq!(body["messages"][0]["role"], "user");
    // OpenAI hangs past its timeout (both attempts): Anthropic answers within the budget.
    f.openai.lock().unwrap().extend([Act::Hang, Act::Hang]);
    let started = std::time::Instant::now();
    let w = chain(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.unwrap().unwrap();
    assert_eq!(w.source, "llm:anthropic:claude-test");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // Both fail (a 503 retried, then a refusal): the template, with the reasons.
    f.openai
        .lock()
        .unwrap()
        .extend([Act::Say(503, json!({"error": "overloaded"})), Act::Say(503, json!({"error": "overloaded"}))]);
    f.anthropic
        .lock()
        .unwrap()
        .push_back(Act::Say(200, json!({"type": "message", "content": [], "stop_reason": "refusal"})));
    let w = chain(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.unwrap().unwrap();
    assert_eq!((w.source.as_str(), w.confidence), ("template:positive", None));
    let note = w.note.unwrap();
    assert!(note.contains("503") && note.contains("anthropic refused"), "{note}");
}

#[tokio::test]
async fn a_model_is_told_no_number_email_surname_or_address() {
    let (f, base) = fake().await;
    let mut c = ctx(Classification::Question);
    // What the conversation itself says is the lead's own words; what we hold is not sent.
    c.first_name = Some("Ana".into());
    chain(&base, "sk-test").suggest(&c).await.unwrap().unwrap();
    let sent = serde_json::to_string(&f.seen.lock().unwrap()[0].1).unwrap();
    for private in ["+1", "@", "Ruiz", "33602"] {
        assert!(!sent.contains(private), "{private} reached the model: {sent}");
    }
    // An opt-out is never sent to a model at all.
    let before = f.seen.lock().unwrap().len();
    assert_eq!(chain(&base, "sk-test").suggest(&ctx(Classification::DncRequest)).await.unwrap(), None);
    assert_eq!(f.seen.lock().unwrap().len(), before);
}

#[tokio::test]
async fn research_cites_what_the_search_model_cites() {
    let (f, base) = fake().await;
    let mut answer = completion("Acme Homes is a Tampa investor; a permit was filed for 12 Oak St in 2026.");
    answer["citations"] = json!(["https://permits.example.gov/12-oak", {"url": "https://news.example.com/acme"}]);
    f.openai.lock().unwrap().push_back(Act::Say(200, answer));
    let r =
        LlmResearcher { model: Arc::new(OpenAi::named(config(&format!("{base}/v1"), "sk-test", "sonar"), "research")) };
    let subject = ResearchSubject {
        company: Some("Acme Homes".into()),
        title: Some("Owner".into()),
        city: Some("Tampa".into()),
        state: Some("FL".into()),
        properties: vec!["12 Oak St, Tampa, FL".into()],
        signals: vec!["replied (POSITIVE) on 2026-12-01".into()],
    };
    let b = r.brief(&subject).await.unwrap();
    assert!(b.text.contains("permit"), "{}", b.text);
    assert_eq!(b.source, "llm:research:gpt-test");
    assert!(b.citations.contains(&"https://permits.example.gov/12-oak".to_owned()));
    assert!(b.citations.contains(&"https://news.example.com/acme".to_owned()));
    assert!(b.citations.contains(&"record:properties".to_owned()));
    let user = f.seen.lock().unwrap()[0].1["messages"][1]["content"].as_str().unwrap().to_owned();
    assert!(user.contains("Company: Acme Homes") && user.contains("Property: 12 Oak St"), "{user}");
}
