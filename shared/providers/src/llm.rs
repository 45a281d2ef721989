//! An OpenAI-compatible chat-completions client as a reply [`Suggester`]:
//! `POST {base}/chat/completions` with `Authorization: Bearer`, body
//! `{model, messages: [{role, content}], temperature, max_tokens}`; the reply is
//! `choices[0].message.content`. Set by `AI_BASE_URL` (default `https://api.openai.com/v1`),
//! `AI_API_KEY` and `AI_MODEL`. Timeouts, 408, 429 and 5xx are retried (the shared policy);
//! a suggestion that fails is simply not made, and a person writes the reply.

use std::time::Duration;

use async_trait::async_trait;
use nextier_inbound::suggest::needs_reply;
use nextier_platform::ports::suggester::{Context, Suggester, Written};
use serde::Deserialize;
use serde_json::json;

use crate::retry::{self, Retry};

/// The most characters a suggestion may have (three SMS segments).
pub const MAX_CHARS: usize = 459;

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    pub retry: Retry,
    pub timeout: Duration,
}

impl Config {
    pub fn from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("AI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key: var("AI_API_KEY")?,
            model: var("AI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            retry: Retry::default(),
            timeout: Duration::from_secs(20),
        })
    }
}

pub struct ChatCompletions {
    http: reqwest::Client,
    config: Config,
}

#[derive(Deserialize)]
struct Answer {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
}

const SYSTEM: &str = "You write the next SMS from a real-estate outreach team to a property owner who replied. \
Be brief, warm and plain: at most 300 characters, no links, no emojis, no pressure, no promises about price. \
Offer a short call when they show interest. Never reply to someone who asked to stop. Write only the message.";

impl ChatCompletions {
    pub fn new(config: Config) -> Self {
        let http = reqwest::Client::builder().timeout(config.timeout).build().unwrap_or_default();
        Self { http, config }
    }

    fn prompt(ctx: &Context) -> String {
        let mut p = String::new();
        for (direction, body) in &ctx.conversation {
            let who = if direction == "inbound" { "Owner" } else { "Us" };
            p.push_str(&format!("{who}: {body}\n"));
        }
        p.push_str(&format!(
            "\nTheir latest reply ({}): {}\nTheir first name: {}\nWrite our reply.",
            ctx.classification.as_str(),
            ctx.text,
            ctx.first_name.as_deref().unwrap_or("unknown")
        ));
        p
    }
}

#[async_trait]
impl Suggester for ChatCompletions {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        if !needs_reply(ctx.classification) {
            return Ok(None);
        }
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "model": self.config.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": Self::prompt(ctx)}],
            "temperature": 0.3,
            "max_tokens": 200,
        });
        let answer = retry::send(&self.config.retry, "llm", || {
            self.http.post(&url).bearer_auth(&self.config.api_key).json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the model did not answer: {e}"))?;
        if !answer.status.is_success() {
            anyhow::bail!(
                "the model refused: HTTP {}: {}",
                answer.status,
                answer.body.chars().take(300).collect::<String>()
            );
        }
        let parsed: Answer = serde_json::from_str(&answer.body)
            .map_err(|e| anyhow::anyhow!("the model's answer is not a completion: {e}"))?;
        let text = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .map(|t| t.trim().trim_matches('"').trim().to_owned())
            .unwrap_or_default();
        if text.is_empty() {
            anyhow::bail!("the model wrote nothing");
        }
        let text: String = text.chars().take(MAX_CHARS).collect();
        Ok(Some(Written { text, source: format!("llm:{}", self.config.model) }))
    }
}

/// The model when `AI_API_KEY` is set, else the deterministic template suggester.
pub fn suggester_from_env() -> std::sync::Arc<dyn Suggester> {
    match Config::from_env() {
        Some(c) => std::sync::Arc::new(ChatCompletions::new(c)),
        None => std::sync::Arc::new(nextier_inbound::suggest::TemplateSuggester),
    }
}

/// [`suggester_from_env`] built on first use, so an API function's cold start does not pay
/// for an HTTP client most invocations never use.
#[derive(Default)]
pub struct LazySuggester(std::sync::OnceLock<std::sync::Arc<dyn Suggester>>);

#[async_trait]
impl Suggester for LazySuggester {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        self.0.get_or_init(suggester_from_env).suggest(ctx).await
    }
}
