//! The suggester port: writes a message for an AI worker (a reply to an inbox item, or the
//! nurture cadence's follow-up). Deployed, an LLM chain (`nextier_providers::llm`) with the
//! templates as its fallback; locally, the team's templates (`nextier_ai::suggest`), which are
//! deterministic.
//!
//! A suggester is told only what the message needs: the lead's first name, the conversation,
//! the worker and the team's prompt. Never a phone number, an email, a surname or an address.

use std::collections::HashMap;

use async_trait::async_trait;
use nextier_domain::inbox::Classification;

/// Who is writing: the worker's configuration.
#[derive(Debug, Clone, Default)]
pub struct Persona {
    pub name: String,
    /// opener, nurture, closer.
    pub role: String,
    pub persona: String,
    pub tone: String,
    pub goal: String,
    pub industry: String,
    pub faqs: Vec<(String, String)>,
    pub sign_off: String,
}

/// A team's versioned prompt.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    pub key: String,
    pub version: i32,
    pub system: String,
    pub user: String,
    pub model: Option<String>,
    pub temperature: f32,
}

/// What a suggester is told.
#[derive(Debug, Clone)]
pub struct Context {
    pub first_name: Option<String>,
    pub classification: Classification,
    /// How sure the classification is (0-100).
    pub classification_confidence: u8,
    /// The reply being answered (empty for a follow-up).
    pub text: String,
    /// The conversation, oldest first: (direction, body).
    pub conversation: Vec<(String, String)>,
    /// The team's `ai` settings.
    pub settings: HashMap<String, String>,
    /// The worker writing (absent: the team has none for this reply).
    pub worker: Option<Persona>,
    /// The team's prompt for this kind of message, when it has one.
    pub prompt: Option<PromptTemplate>,
    /// A follow-up of the nurture cadence: its stage (1-based) and whether it is the last.
    pub follow_up: Option<(i32, bool)>,
    /// Times the closer may offer (already formatted in the team's zone) and the booking link.
    pub proposals: Vec<String>,
    pub booking_link: Option<String>,
}

impl Context {
    /// A reply's context with nothing but the essentials (tests and simple callers).
    pub fn reply(first_name: Option<&str>, classification: Classification, text: &str) -> Self {
        Self {
            first_name: first_name.map(str::to_owned),
            classification,
            classification_confidence: 80,
            text: text.to_owned(),
            conversation: vec![],
            settings: HashMap::new(),
            worker: None,
            prompt: None,
            follow_up: None,
            proposals: vec![],
            booking_link: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    /// `template:<class>`, `llm:<provider>:<model>`, or `template:<class>` after a failed model.
    pub source: String,
    /// How sure the writer is (0-100); `None` when it cannot say (a fallback): such a
    /// suggestion never goes out on its own.
    pub confidence: Option<u8>,
    /// Why it is what it is (the model failed and a template stands in...).
    pub note: Option<String>,
    /// The prompt version used.
    pub prompt: Option<(String, i32)>,
}

impl Written {
    pub fn new(text: impl Into<String>, source: impl Into<String>) -> Self {
        Self { text: text.into(), source: source.into(), confidence: None, note: None, prompt: None }
    }
}

#[async_trait]
pub trait Suggester: Send + Sync {
    /// A message, or `None` when the item should not be answered by a machine.
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>>;
}

/// What a researcher is told: the lead's business facts, never who they are personally.
#[derive(Debug, Clone, Default)]
pub struct ResearchSubject {
    pub company: Option<String>,
    pub title: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    /// Properties they own (street, city, state).
    pub properties: Vec<String>,
    /// Recent signals we hold (a reply, a score, an enrichment), newest first.
    pub signals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    pub text: String,
    /// Where each fact came from (URLs from a search-capable model, or our own records).
    pub citations: Vec<String>,
    /// `llm:<provider>:<model>` or `records`.
    pub source: String,
}

/// NEVA's port: a research brief on a lead.
#[async_trait]
pub trait Researcher: Send + Sync {
    async fn brief(&self, subject: &ResearchSubject) -> anyhow::Result<Brief>;
}

/// The local default: a brief from what we already hold, each line citing its record.
pub struct RecordsResearcher;

#[async_trait]
impl Researcher for RecordsResearcher {
    async fn brief(&self, s: &ResearchSubject) -> anyhow::Result<Brief> {
        Ok(records_brief(s))
    }
}

/// A brief from our own records (also the fallback when a research model fails).
pub fn records_brief(s: &ResearchSubject) -> Brief {
    let mut lines = Vec::new();
    let mut citations = Vec::new();
    match (&s.company, &s.title) {
        (Some(c), Some(t)) => lines.push(format!("{t} at {c}.")),
        (Some(c), None) => lines.push(format!("Works with {c}.")),
        (None, Some(t)) => lines.push(format!("Role: {t}.")),
        (None, None) => {}
    }
    if s.company.is_some() || s.title.is_some() {
        citations.push("record:contact".to_owned());
    }
    let place: Vec<&str> = [s.city.as_deref(), s.state.as_deref()].into_iter().flatten().collect();
    if !place.is_empty() {
        lines.push(format!("Based in {}.", place.join(", ")));
    }
    if !s.properties.is_empty() {
        lines.push(format!(
            "Owns {} propert{}: {}.",
            s.properties.len(),
            if s.properties.len() == 1 { "y" } else { "ies" },
            s.properties.join("; ")
        ));
        citations.push("record:properties".to_owned());
    }
    for signal in s.signals.iter().take(5) {
        lines.push(format!("Signal: {signal}."));
    }
    if !s.signals.is_empty() {
        citations.push("record:timeline".to_owned());
    }
    if lines.is_empty() {
        lines.push("Nothing is known about this lead yet beyond their contact details.".to_owned());
    }
    Brief { text: lines.join(" "), citations, source: "records".into() }
}
