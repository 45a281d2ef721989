//! The LLM layer: models behind one [`Model`] trait, tried in a fallback order, and the
//! [`LlmSuggester`] that writes for the AI workers with structured output.
//!
//! - [`OpenAi`]: any OpenAI-compatible chat-completions endpoint (`POST {base}/chat/completions`,
//!   `Authorization: Bearer`, `{model, messages, temperature, max_tokens, response_format}`;
//!   the answer is `choices[0].message.content`; a search-capable one such as Perplexity adds
//!   top-level `citations`). `AI_API_KEY`, `AI_BASE_URL` (`https://api.openai.com/v1`),
//!   `AI_MODEL` (`gpt-4o-mini`).
//! - [`Anthropic`]: the Messages API (`POST {base}/v1/messages`, `x-api-key`,
//!   `anthropic-version: 2023-06-01`, `{model, system, messages, max_tokens, temperature}`; the
//!   answer is the `text` blocks of `content`). `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`
//!   (`https://api.anthropic.com`), `ANTHROPIC_MODEL` (`claude-3-5-haiku-latest`).
//! - `AI_PROVIDERS` (`openai,anthropic`) orders the fallback among the configured ones.
//!
//! Every call's timeout is its own (`AI_TIMEOUT_SECS`, 20) capped by what is left of the
//! Lambda invocation; 408, 429, 5xx and timeouts are retried (the shared policy), then the next
//! model is tried. The suggester asks for JSON (`{"reply", "confidence"}`), validates it, asks
//! once more with the error when it is invalid, and otherwise falls back to the team's
//! template, which then never goes out on its own. A model is told the lead's first name, the
//! conversation, the worker and the team's prompt: never a number, an email, a surname or an
//! address.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nextier_ai::suggest::{needs_reply, signed, TemplateSuggester};
use nextier_platform::ports::suggester::{
    records_brief, Brief, Context, ResearchSubject, Researcher, Suggester, Written,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::retry::{self, Retry};

/// The most characters a suggestion may have (three SMS segments).
pub const MAX_CHARS: usize = 459;

/// What a model is asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub system: String,
    pub user: String,
    /// A model named by the team's prompt (used by the provider that serves it).
    pub model: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    /// Ask for a JSON object.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// `<provider>:<model>`.
    pub model: String,
    pub citations: Vec<String>,
}

#[async_trait]
pub trait Model: Send + Sync {
    fn provider(&self) -> &'static str;
    async fn complete(&self, r: &Request) -> anyhow::Result<Completion>;
}

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    pub retry: Retry,
    pub timeout: Duration,
}

fn timeout() -> Duration {
    Duration::from_secs(nextier_runtime::config::parse("AI_TIMEOUT_SECS").unwrap_or(20))
}

impl Config {
    /// The OpenAI-compatible model from `AI_*`.
    pub fn openai_from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("AI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key: var("AI_API_KEY")?,
            model: var("AI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            retry: Retry::default(),
            timeout: timeout(),
        })
    }

    /// The Anthropic model from `ANTHROPIC_*`.
    pub fn anthropic_from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into()),
            api_key: var("ANTHROPIC_API_KEY")?,
            model: var("ANTHROPIC_MODEL").unwrap_or_else(|| "claude-3-5-haiku-latest".into()),
            retry: Retry::default(),
            timeout: timeout(),
        })
    }

    /// The search-capable research model from `RESEARCH_*` (Perplexity by default).
    pub fn research_from_env() -> Option<Config> {
        let var = |n: &str| nextier_runtime::config::get(n);
        Some(Config {
            base_url: var("RESEARCH_BASE_URL").unwrap_or_else(|| "https://api.perplexity.ai".into()),
            api_key: var("RESEARCH_API_KEY")?,
            model: var("RESEARCH_MODEL").unwrap_or_else(|| "sonar".into()),
            retry: Retry::default(),
            timeout: timeout(),
        })
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap_or_default()
}

fn refused(provider: &str, a: &retry::Answer) -> anyhow::Error {
    anyhow::anyhow!("{provider} refused: HTTP {}: {}", a.status, a.body.chars().take(300).collect::<String>())
}

/// An OpenAI-compatible chat-completions endpoint.
pub struct OpenAi {
    http: reqwest::Client,
    config: Config,
    name: &'static str,
}

impl OpenAi {
    pub fn new(config: Config) -> Self {
        Self { http: client(config.timeout), config, name: "openai" }
    }

    /// The same protocol under another provider's name (a search-capable model).
    pub fn named(config: Config, name: &'static str) -> Self {
        Self { http: client(config.timeout), config, name }
    }
}

#[derive(Deserialize)]
struct ChatAnswer {
    choices: Vec<ChatChoice>,
    #[serde(default)]
    citations: Vec<Value>,
    model: Option<String>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[async_trait]
impl Model for OpenAi {
    fn provider(&self) -> &'static str {
        self.name
    }

    async fn complete(&self, r: &Request) -> anyhow::Result<Completion> {
        let model = r.model.as_deref().filter(|m| !m.starts_with("claude")).unwrap_or(&self.config.model);
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let mut body = json!({
            "model": model,
            "messages": [{"role": "system", "content": r.system}, {"role": "user", "content": r.user}],
            "temperature": r.temperature,
            "max_tokens": r.max_tokens,
        });
        if r.json {
            body["response_format"] = json!({"type": "json_object"});
        }
        let a = retry::send(&self.config.retry, self.name, || {
            self.http.post(&url).bearer_auth(&self.config.api_key).json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{} did not answer: {e}", self.name))?;
        if !a.status.is_success() {
            return Err(refused(self.name, &a));
        }
        let parsed: ChatAnswer = serde_json::from_str(&a.body)
            .map_err(|e| anyhow::anyhow!("{}'s answer is not a completion: {e}", self.name))?;
        let choice =
            parsed.choices.into_iter().next().ok_or_else(|| anyhow::anyhow!("{} gave no choice", self.name))?;
        if let Some(why) = choice.message.refusal.filter(|r| !r.trim().is_empty()) {
            anyhow::bail!("{} refused: {why}", self.name);
        }
        let text = choice.message.content.unwrap_or_default();
        if text.trim().is_empty() {
            anyhow::bail!("{} wrote nothing", self.name);
        }
        let citations = parsed
            .citations
            .into_iter()
            .filter_map(|c| match c {
                Value::String(s) => Some(s),
                Value::Object(o) => o.get("url").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect();
        Ok(Completion {
            text,
            model: format!("{}:{}", self.name, parsed.model.unwrap_or_else(|| model.to_owned())),
            citations,
        })
    }
}

/// The Anthropic Messages API.
pub struct Anthropic {
    http: reqwest::Client,
    config: Config,
}

impl Anthropic {
    pub fn new(config: Config) -> Self {
        Self { http: client(config.timeout), config }
    }
}

#[derive(Deserialize)]
struct MessagesAnswer {
    #[serde(default)]
    content: Vec<Block>,
    model: Option<String>,
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[async_trait]
impl Model for Anthropic {
    fn provider(&self) -> &'static str {
        "anthropic"
    }

    async fn complete(&self, r: &Request) -> anyhow::Result<Completion> {
        let model = r.model.as_deref().filter(|m| m.starts_with("claude")).unwrap_or(&self.config.model);
        let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "model": model,
            "system": r.system,
            "messages": [{"role": "user", "content": r.user}],
            "max_tokens": r.max_tokens,
            "temperature": r.temperature.min(1.0),
        });
        let a = retry::send(&self.config.retry, "anthropic", || {
            self.http
                .post(&url)
                .header("x-api-key", &self.config.api_key)
                .header("anthropic-version", "2023-06-01")
                .json(&body)
        })
        .await
        .map_err(|e| anyhow::anyhow!("anthropic did not answer: {e}"))?;
        if !a.status.is_success() {
            return Err(refused("anthropic", &a));
        }
        let parsed: MessagesAnswer =
            serde_json::from_str(&a.body).map_err(|e| anyhow::anyhow!("anthropic's answer is not a message: {e}"))?;
        if parsed.stop_reason.as_deref() == Some("refusal") {
            anyhow::bail!("anthropic refused");
        }
        let text: String =
            parsed.content.into_iter().filter(|b| b.kind == "text").filter_map(|b| b.text).collect::<Vec<_>>().join("");
        if text.trim().is_empty() {
            anyhow::bail!("anthropic wrote nothing");
        }
        Ok(Completion {
            text,
            model: format!("anthropic:{}", parsed.model.unwrap_or_else(|| model.to_owned())),
            citations: vec![],
        })
    }
}

/// Models in fallback order: the first that answers wins.
#[derive(Clone, Default)]
pub struct Chain(pub Vec<Arc<dyn Model>>);

impl Chain {
    /// The configured models in `AI_PROVIDERS` order (`openai,anthropic` by default).
    pub fn from_env() -> Self {
        let order = nextier_runtime::config::get("AI_PROVIDERS").unwrap_or_else(|| "openai,anthropic".into());
        let mut models: Vec<Arc<dyn Model>> = Vec::new();
        for name in order.split(',').map(str::trim) {
            match name {
                "openai" => {
                    if let Some(c) = Config::openai_from_env() {
                        models.push(Arc::new(OpenAi::new(c)));
                    }
                }
                "anthropic" => {
                    if let Some(c) = Config::anthropic_from_env() {
                        models.push(Arc::new(Anthropic::new(c)));
                    }
                }
                other => tracing::warn!(provider = other, "AI_PROVIDERS names an unknown provider"),
            }
        }
        Self(models)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub async fn complete(&self, r: &Request) -> anyhow::Result<Completion> {
        let mut errors = Vec::new();
        for m in &self.0 {
            match m.complete(r).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(provider = m.provider(), error = %format!("{e:#}"), "model failed; trying the next");
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if errors.is_empty() {
            anyhow::bail!("no model is configured");
        }
        anyhow::bail!("{}", errors.join("; "))
    }
}

const DEFAULT_SYSTEM: &str = "You are {{workerName}}, writing text messages for a {{industry}} outreach team. \
{{persona}} Tone: {{tone}}. Goal: {{goal}}.\n\
Rules: at most 300 characters; plain words; no emojis; no links except a booking link you are given; \
no pressure and no promises about price; never write to someone who asked to stop.\n\
Answers the team gives to common questions:\n{{faqs}}";

const DEFAULT_USER: &str = "The conversation so far (oldest first):\n{{conversation}}\n\n\
Their latest message ({{classification}}): {{reply}}\nTheir first name: {{firstName}}\n\n{{task}}";

/// The output contract, always appended to the system prompt.
const CONTRACT: &str = "\n\nAnswer with one JSON object and nothing else: \
{\"reply\": \"<the text message>\", \"confidence\": <0-100: how sure you are that this is the right message>}";

/// A template with `{{name}}` placeholders filled from `vars` (unknown ones left empty).
pub fn render(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
                    out.push_str(v);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The variables a prompt may use, from the context (the lead's first name only).
pub fn variables(ctx: &Context) -> Vec<(&'static str, String)> {
    let w = ctx.worker.clone().unwrap_or_default();
    let faqs = if w.faqs.is_empty() {
        "(none)".to_owned()
    } else {
        w.faqs.iter().map(|(q, a)| format!("- Q: {q}\n  A: {a}")).collect::<Vec<_>>().join("\n")
    };
    let conversation = ctx
        .conversation
        .iter()
        .map(|(d, b)| format!("{}: {b}", if d == "inbound" { "Them" } else { "Us" }))
        .collect::<Vec<_>>()
        .join("\n");
    let task = match ctx.follow_up {
        Some((stage, true)) => format!("They have not answered. Write follow-up {stage}, the final attempt: friendly, no pressure, leaving the door open."),
        Some((stage, false)) => format!("They have not answered. Write follow-up {stage}: short and light."),
        None if !ctx.proposals.is_empty() || ctx.booking_link.is_some() => format!(
            "Write our reply, offering a call at {}{}.",
            if ctx.proposals.is_empty() { "a time of their choosing".to_owned() } else { ctx.proposals.join(" or ") },
            ctx.booking_link.as_ref().map(|l| format!(" (booking link: {l})")).unwrap_or_default()
        ),
        None => "Write our reply.".to_owned(),
    };
    vec![
        ("workerName", if w.name.is_empty() { "an assistant".into() } else { w.name }),
        ("persona", w.persona),
        ("tone", if w.tone.is_empty() { "friendly".into() } else { w.tone }),
        ("goal", if w.goal.is_empty() { "help the lead".into() } else { w.goal }),
        ("industry", if w.industry.is_empty() { "real estate".into() } else { w.industry }),
        ("signOff", w.sign_off),
        ("faqs", faqs),
        ("conversation", if conversation.is_empty() { "(none)".into() } else { conversation }),
        ("reply", ctx.text.clone()),
        ("classification", ctx.classification.key()),
        ("firstName", ctx.first_name.clone().unwrap_or_else(|| "unknown".into())),
        ("times", ctx.proposals.join(" or ")),
        ("link", ctx.booking_link.clone().unwrap_or_default()),
        ("stage", ctx.follow_up.map(|(s, _)| s.to_string()).unwrap_or_default()),
        ("task", task),
    ]
}

/// A model's reply, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub reply: String,
    pub confidence: u8,
}

const REFUSALS: &[&str] = &[
    "as an ai",
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i'm sorry, but",
    "language model",
];

/// Reads and checks a model's structured answer: one JSON object (a fenced block is accepted)
/// with a non-empty `reply` of at most [`MAX_CHARS`], no link but the booking link, no
/// refusal, and a `confidence` from 0 to 100 (or 0 to 1).
pub fn parse_reply(raw: &str, booking_link: Option<&str>) -> Result<Reply, String> {
    let t = raw.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|s| s.trim_end_matches("```"))
        .unwrap_or(t)
        .trim();
    let start = t.find('{').ok_or("the answer is not a JSON object")?;
    let end = t.rfind('}').ok_or("the answer is not a JSON object")?;
    if end < start {
        return Err("the answer is not a JSON object".into());
    }
    let v: Value = serde_json::from_str(&t[start..=end]).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
    let reply = v.get("reply").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_owned();
    if reply.is_empty() {
        return Err("\"reply\" is missing or empty".into());
    }
    if reply.chars().count() > MAX_CHARS {
        return Err(format!("\"reply\" has {} characters; at most {MAX_CHARS}", reply.chars().count()));
    }
    let lower = reply.to_lowercase();
    if REFUSALS.iter().any(|r| lower.contains(r)) {
        return Err("\"reply\" is a refusal, not a message".into());
    }
    let linkless = match booking_link {
        Some(l) if !l.is_empty() => lower.replace(&l.to_lowercase(), ""),
        _ => lower.clone(),
    };
    if linkless.contains("http://") || linkless.contains("https://") || linkless.contains("www.") {
        return Err("\"reply\" has a link that is not the booking link".into());
    }
    let confidence = match v.get("confidence").and_then(Value::as_f64) {
        Some(c) if (0.0..=1.0).contains(&c) && c.fract() != 0.0 => (c * 100.0).round() as u8,
        Some(c) if (0.0..=100.0).contains(&c) => c.round() as u8,
        Some(c) => return Err(format!("\"confidence\" is {c}; it must be 0 to 100")),
        None => return Err("\"confidence\" is missing".into()),
    };
    Ok(Reply { reply, confidence })
}

/// Writes for the workers with a [`Chain`] of models; the team's template stands in when they
/// fail.
pub struct LlmSuggester {
    pub chain: Chain,
}

impl LlmSuggester {
    async fn fallback(&self, ctx: &Context, why: String) -> anyhow::Result<Option<Written>> {
        tracing::warn!(reason = %why, "the model failed; the template stands in");
        let w = TemplateSuggester.suggest(ctx).await?;
        Ok(w.map(|w| Written {
            confidence: None,
            note: Some(format!(
                "the model failed ({}); a template stands in",
                why.chars().take(300).collect::<String>()
            )),
            ..w
        }))
    }
}

#[async_trait]
impl Suggester for LlmSuggester {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        if ctx.follow_up.is_none() && !needs_reply(ctx.classification) {
            return Ok(None);
        }
        let vars = variables(ctx);
        let (system, user, temperature, model, prompt) = match &ctx.prompt {
            Some(p) => (
                render(&p.system, &vars),
                render(&p.user, &vars),
                p.temperature,
                p.model.clone(),
                Some((p.key.clone(), p.version)),
            ),
            None => (render(DEFAULT_SYSTEM, &vars), render(DEFAULT_USER, &vars), 0.3, None, None),
        };
        let mut req =
            Request { system: format!("{system}{CONTRACT}"), user, model, temperature, max_tokens: 300, json: true };
        let mut last_error = String::new();
        for attempt in 0..2 {
            let c = match self.chain.complete(&req).await {
                Ok(c) => c,
                Err(e) => return self.fallback(ctx, format!("{e:#}")).await,
            };
            match parse_reply(&c.text, ctx.booking_link.as_deref()) {
                Ok(r) => {
                    let confidence = if ctx.follow_up.is_some() {
                        r.confidence
                    } else {
                        r.confidence.min(ctx.classification_confidence)
                    };
                    return Ok(Some(Written {
                        text: signed(r.reply, ctx),
                        source: format!("llm:{}", c.model),
                        confidence: Some(confidence),
                        note: (attempt > 0).then(|| format!("repaired after: {last_error}")),
                        prompt: prompt.clone(),
                    }));
                }
                Err(why) => {
                    last_error = why.clone();
                    // One repair: the same request, told what was wrong with the answer.
                    req.user = format!(
                        "{}\n\nYour previous answer was:\n{}\nIt was not usable: {why}. Answer again with the JSON object only.",
                        req.user,
                        c.text.chars().take(600).collect::<String>()
                    );
                }
            }
        }
        self.fallback(ctx, format!("the answer was unusable twice: {last_error}")).await
    }
}

/// The models when any is configured, else the deterministic template suggester.
pub fn suggester_from_env() -> Arc<dyn Suggester> {
    let chain = Chain::from_env();
    if chain.is_empty() {
        Arc::new(TemplateSuggester)
    } else {
        Arc::new(LlmSuggester { chain })
    }
}

/// [`suggester_from_env`] built on first use, so an API function's cold start does not pay
/// for an HTTP client most invocations never use.
#[derive(Default)]
pub struct LazySuggester(std::sync::OnceLock<Arc<dyn Suggester>>);

#[async_trait]
impl Suggester for LazySuggester {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        self.0.get_or_init(suggester_from_env).suggest(ctx).await
    }
}

/// NEVA with a search-capable model: a brief with the sources it cites.
pub struct LlmResearcher {
    pub model: Arc<dyn Model>,
}

const RESEARCH_SYSTEM: &str =
    "You research a business lead for a sales team before they call. Write a brief of at most \
120 words: the company, the role, the property, and any recent public signals (sales, permits, news). \
Only state facts you can cite; say plainly what you could not find. No speculation about the person's private life.";

#[async_trait]
impl Researcher for LlmResearcher {
    async fn brief(&self, s: &ResearchSubject) -> anyhow::Result<Brief> {
        let mut facts = Vec::new();
        if let Some(c) = &s.company {
            facts.push(format!("Company: {c}"));
        }
        if let Some(t) = &s.title {
            facts.push(format!("Role: {t}"));
        }
        let place: Vec<&str> = [s.city.as_deref(), s.state.as_deref()].into_iter().flatten().collect();
        if !place.is_empty() {
            facts.push(format!("Location: {}", place.join(", ")));
        }
        for p in &s.properties {
            facts.push(format!("Property: {p}"));
        }
        for sig in &s.signals {
            facts.push(format!("Our records: {sig}"));
        }
        if facts.is_empty() {
            return Ok(records_brief(s));
        }
        let req = Request {
            system: RESEARCH_SYSTEM.into(),
            user: facts.join("\n"),
            model: None,
            temperature: 0.2,
            max_tokens: 400,
            json: false,
        };
        let c = self.model.complete(&req).await?;
        let text: String = c.text.trim().chars().take(2000).collect();
        let mut citations = c.citations;
        citations.extend(records_brief(s).citations);
        Ok(Brief { text, citations, source: format!("llm:{}", c.model) })
    }
}

/// The research model when `RESEARCH_API_KEY` is set, else our records.
pub fn researcher_from_env() -> Arc<dyn Researcher> {
    match Config::research_from_env() {
        Some(c) => Arc::new(LlmResearcher { model: Arc::new(OpenAi::named(c, "research")) }),
        None => Arc::new(nextier_platform::ports::suggester::RecordsResearcher),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_answers_are_checked() {
        let ok = parse_reply(r#"{"reply": "Thanks Ana! Tuesday at 10?", "confidence": 92}"#, None).unwrap();
        assert_eq!(ok, Reply { reply: "Thanks Ana! Tuesday at 10?".into(), confidence: 92 });
        let fenced = parse_reply("```json\n{\"reply\": \"Hi\", \"confidence\": 0.85}\n```", None).unwrap();
        assert_eq!(fenced.confidence, 85);
        for (bad, why) in [
            ("Sure! Here's a reply: Hi Ana", "not a JSON object"),
            (r#"{"reply": "", "confidence": 90}"#, "missing or empty"),
            (r#"{"reply": "Hi"}"#, "confidence\" is missing"),
            (r#"{"reply": "Hi", "confidence": 140}"#, "0 to 100"),
            (r#"{"reply": "I'm sorry, but I can't help with that.", "confidence": 90}"#, "refusal"),
            (r#"{"reply": "See https://evil.example.com", "confidence": 90}"#, "link"),
        ] {
            let e = parse_reply(bad, None).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = format!(r#"{{"reply": "{}", "confidence": 90}}"#, "é".repeat(460));
        assert!(parse_reply(&long, None).unwrap_err().contains("460 characters"));
        let link = r#"{"reply": "Pick a time: https://cal.example.com/acme", "confidence": 90}"#;
        assert!(parse_reply(link, Some("https://cal.example.com/acme")).is_ok(), "the booking link is allowed");
    }

    #[test]
    fn templates_fill_known_names_and_drop_unknown_ones() {
        let vars = vec![("firstName", "Ana".to_owned())];
        assert_eq!(render("Hi {{firstName}}{{nope}}! {{ firstName }}", &vars), "Hi Ana! Ana");
        assert_eq!(render("unclosed {{firstName", &vars), "unclosed {{firstName");
    }
}
