//! The chat-completions suggester against a local fake server speaking the OpenAI-compatible
//! contract: bearer auth, the model and messages it was given, choices[0].message.content;
//! retried on 503, refused on 401, garbage and empty answers are errors, not suggestions.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use nextier_domain::inbox::Classification;
use nextier_platform::ports::suggester::{Context, Suggester};
use nextier_providers::llm::{ChatCompletions, Config};
use nextier_providers::retry::Retry;
use serde_json::{json, Value};

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<(u16, Value)>>,
    seen: Mutex<Vec<Value>>,
}

async fn completions(State(f): State<Arc<Fake>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided"}})))
            .into_response();
    }
    f.seen.lock().unwrap().push(body.clone());
    let (status, answer) = f.script.lock().unwrap().pop_front().unwrap_or((
        200,
        json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " \"Thanks Ana! Could we talk tomorrow at 10?\" "}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 12, "total_tokens": 92}}),
    ));
    (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response()
}

async fn fake() -> (Arc<Fake>, String) {
    let f = Arc::new(Fake::default());
    let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (f, format!("http://{addr}/v1"))
}

fn client(base: &str, key: &str) -> ChatCompletions {
    ChatCompletions::new(Config {
        base_url: base.into(),
        api_key: key.into(),
        model: "gpt-test".into(),
        retry: Retry { attempts: 3, backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(50) },
        timeout: Duration::from_secs(5),
    })
}

fn ctx(c: Classification) -> Context {
    Context {
        first_name: Some("Ana".into()),
        classification: c,
        text: "How much would you pay?".into(),
        conversation: vec![
            ("outbound".into(), "Hi Ana, would you sell 12 Oak St?".into()),
            ("inbound".into(), "How much would you pay?".into()),
        ],
        settings: Default::default(),
    }
}

#[tokio::test]
async fn a_suggestion_comes_from_the_first_choice_with_the_conversation_in_the_prompt() {
    let (f, base) = fake().await;
    let w = client(&base, "sk-test").suggest(&ctx(Classification::Question)).await.unwrap().unwrap();
    assert_eq!(w.text, "Thanks Ana! Could we talk tomorrow at 10?");
    assert_eq!(w.source, "llm:gpt-test");
    let seen = f.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["model"], "gpt-test");
    assert_eq!(seen[0]["messages"][0]["role"], "system");
    let prompt = seen[0]["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains("Us: Hi Ana, would you sell 12 Oak St?") && prompt.contains("QUESTION"), "{prompt}");
}

#[tokio::test]
async fn transient_failures_are_retried_and_bad_answers_are_errors() {
    let (f, base) = fake().await;
    f.script.lock().unwrap().push_back((503, json!({"error": {"message": "overloaded"}})));
    let w = client(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.unwrap();
    assert!(w.is_some());
    assert_eq!(f.seen.lock().unwrap().len(), 2, "one retry");

    let e = client(&base, "sk-wrong").suggest(&ctx(Classification::Positive)).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e}");
    f.script.lock().unwrap().push_back((200, json!({"choices": []})));
    assert!(client(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.is_err());
    f.script
        .lock()
        .unwrap()
        .push_back((200, json!({"choices": [{"message": {"role": "assistant", "content": "   "}}]})));
    assert!(client(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.is_err());
    f.script.lock().unwrap().push_back((200, json!("not a completion")));
    assert!(client(&base, "sk-test").suggest(&ctx(Classification::Positive)).await.is_err());
    // An opt-out is never sent to the model.
    let before = f.seen.lock().unwrap().len();
    assert_eq!(client(&base, "sk-test").suggest(&ctx(Classification::DncRequest)).await.unwrap(), None);
    assert_eq!(f.seen.lock().unwrap().len(), before);
}
