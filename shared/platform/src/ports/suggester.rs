//! The suggester port: writes a reply for an inbox item (an LLM deployed,
//! `nextier_providers::llm`; the team's templates locally, `nextier_inbound::suggest`).

use std::collections::HashMap;

use async_trait::async_trait;
use nextier_domain::inbox::Classification;

/// What a suggester is told.
#[derive(Debug, Clone)]
pub struct Context {
    pub first_name: Option<String>,
    pub classification: Classification,
    /// The reply being answered.
    pub text: String,
    /// The conversation, oldest first: (direction, body).
    pub conversation: Vec<(String, String)>,
    /// The team's `ai` settings.
    pub settings: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    /// `template:<class>` or `llm:<model>`.
    pub source: String,
}

#[async_trait]
pub trait Suggester: Send + Sync {
    /// A reply, or `None` when the item should not be answered by a machine.
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>>;
}
