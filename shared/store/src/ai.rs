//! AI reply suggestions and their approval log.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, InboxItemId, MessageId, NurtureId, SuggestionId, TeamId, WorkerId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// Where a reply suggestion stands (`ai_suggestions.status`): pending until a person (or the
/// team's auto-send) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    Pending,
    Approved,
    Edited,
    Rejected,
    AutoSent,
}

impl SuggestionStatus {
    pub const ALL: [SuggestionStatus; 5] = [
        SuggestionStatus::Pending,
        SuggestionStatus::Approved,
        SuggestionStatus::Edited,
        SuggestionStatus::Rejected,
        SuggestionStatus::AutoSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Pending => "pending",
            SuggestionStatus::Approved => "approved",
            SuggestionStatus::Edited => "edited",
            SuggestionStatus::Rejected => "rejected",
            SuggestionStatus::AutoSent => "auto_sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for SuggestionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub id: SuggestionId,
    /// The reply it answers (absent for the nurture cadence's own follow-ups).
    pub inbox_item_id: Option<InboxItemId>,
    pub contact_id: ContactId,
    pub suggested_text: String,
    /// `template:<class>`, `llm:<provider>:<model>`, or a fallback with its reason.
    pub source: String,
    pub status: SuggestionStatus,
    /// `reply` or `follow_up`.
    pub kind: String,
    /// The worker that wrote it.
    pub worker_id: Option<String>,
    /// The class of what it answers (`follow_up` for the cadence's own messages).
    pub classification: Option<String>,
    /// How sure the writer is, 0-100 (the lower of the classification's and the model's).
    pub confidence: Option<i16>,
    pub prompt_key: Option<String>,
    pub prompt_version: Option<i32>,
    /// Why it waits or fell back (outside active hours, a cap, the model failed...).
    pub note: Option<String>,
    /// When the worker's policy sends it on its own (its delay, inside its active hours).
    pub send_after: Option<DateTime<Utc>>,
    pub nurture_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The decision, once made.
    pub log: Option<LogEntry>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub suggested_text: String,
    pub final_text: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub actor: String,
    pub message_id: Option<String>,
    /// The auto-send policy version that let it out on its own.
    pub policy_version: Option<i32>,
    /// Characters a person changed.
    pub edit_distance: Option<i32>,
    pub at: DateTime<Utc>,
}

const SELECT: &str = "SELECT s.id, s.inbox_item_id, s.contact_id, s.suggested_text, s.source, s.status, s.created_at,
    s.decided_at, s.kind, s.worker_id, s.classification, s.confidence, s.prompt_key, s.prompt_version, s.note,
    s.send_after, s.nurture_id,
    l.suggested_text AS l_suggested, l.final_text, l.action, l.reason, l.actor, l.message_id, l.at,
    l.policy_version, l.edit_distance
  FROM ai_suggestions s LEFT JOIN ai_approval_log l ON l.suggestion_id = s.id";

fn suggestion(r: &Row) -> Suggestion {
    let log = r.get::<_, Option<String>>("action").map(|action| LogEntry {
        suggested_text: r.get("l_suggested"),
        final_text: r.get("final_text"),
        action,
        reason: r.get("reason"),
        actor: r.get("actor"),
        message_id: r.get("message_id"),
        policy_version: r.get("policy_version"),
        edit_distance: r.get("edit_distance"),
        at: r.get("at"),
    });
    Suggestion {
        id: SuggestionId::from_trusted(r.get("id")),
        inbox_item_id: r.get::<_, Option<String>>("inbox_item_id").map(InboxItemId::from_trusted),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        suggested_text: r.get("suggested_text"),
        source: r.get("source"),
        // The database allows only these (a CHECK); another would count as decided.
        status: SuggestionStatus::parse(r.get("status")).unwrap_or(SuggestionStatus::Rejected),
        created_at: r.get("created_at"),
        decided_at: r.get("decided_at"),
        kind: r.get("kind"),
        worker_id: r.get("worker_id"),
        classification: r.get("classification"),
        confidence: r.get("confidence"),
        prompt_key: r.get("prompt_key"),
        prompt_version: r.get("prompt_version"),
        note: r.get("note"),
        send_after: r.get("send_after"),
        nurture_id: r.get("nurture_id"),
        log,
    }
}

/// What a new suggestion is.
#[derive(Debug, Clone, Default)]
pub struct New<'a> {
    /// The reply it answers; `None` for a nurture follow-up (then `nurture` is set).
    pub item: Option<&'a InboxItemId>,
    pub nurture: Option<&'a NurtureId>,
    pub contact: Option<&'a ContactId>,
    pub text: &'a str,
    pub source: &'a str,
    pub worker: Option<&'a WorkerId>,
    pub classification: Option<&'a str>,
    pub confidence: Option<i16>,
    pub prompt: Option<(&'a str, i32)>,
    pub note: Option<&'a str>,
    pub send_after: Option<DateTime<Utc>>,
}

/// Stores a suggestion; an item (or a nurture cadence) has at most one pending suggestion, so
/// a second one while the first waits returns the first (`false`).
pub async fn create(tx: &Tx<'_>, team: &TeamId, n: &New<'_>) -> Result<(Suggestion, bool)> {
    let id = SuggestionId::new();
    let kind = if n.item.is_some() { "reply" } else { "follow_up" };
    let contact = n.contact.map(|c| c.as_str()).unwrap_or_default();
    let rows = tx
        .query_typed(
            "INSERT INTO ai_suggestions (id, team_id, inbox_item_id, contact_id, suggested_text, source, kind, worker_id,
                classification, confidence, prompt_key, prompt_version, note, send_after, nurture_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING
             RETURNING id",
            params![id.as_str() => TEXT, team.as_str() => TEXT, n.item.map(|i| i.as_str()) => TEXT, contact => TEXT,
                    n.text => TEXT, n.source => TEXT, kind => TEXT, n.worker.map(|w| w.as_str()) => TEXT,
                    n.classification => TEXT, n.confidence => INT2, n.prompt.map(|p| p.0) => TEXT,
                    n.prompt.map(|p| p.1) => INT4, n.note => TEXT, n.send_after => TIMESTAMPTZ,
                    n.nurture.map(|x| x.as_str()) => TEXT],
        )
        .await?;
    let created = !rows.is_empty();
    let rows = if created {
        tx.query_typed(&format!("{SELECT} WHERE s.id = $1"), params![id.as_str() => TEXT]).await?
    } else {
        tx.query_typed(
            &format!(
                "{SELECT} WHERE s.status = 'pending' AND (s.inbox_item_id = $1 OR s.nurture_id = $2)
                  ORDER BY s.created_at LIMIT 1"
            ),
            params![n.item.map(|i| i.as_str()) => TEXT, n.nurture.map(|x| x.as_str()) => TEXT],
        )
        .await?
    };
    rows.first().map(|r| (suggestion(r), created)).ok_or(StoreError::NotFound)
}

pub async fn get(tx: &Tx<'_>, id: &SuggestionId) -> Result<Suggestion> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE s.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(suggestion).ok_or(StoreError::NotFound)
}

/// Locks a suggestion for a decision.
pub async fn lock(tx: &Tx<'_>, id: &SuggestionId) -> Result<Suggestion> {
    let rows =
        tx.query_typed("SELECT 1 FROM ai_suggestions WHERE id = $1 FOR UPDATE", params![id.as_str() => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn for_item(tx: &Tx<'_>, item: &InboxItemId) -> Result<Vec<Suggestion>> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE s.inbox_item_id = $1 ORDER BY s.created_at DESC"),
            params![item.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(suggestion).collect())
}

/// How a decision is recorded.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub action: &'a str,
    pub final_text: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub actor: &'a str,
    pub message: Option<&'a MessageId>,
    /// The policy version that allowed an auto-send.
    pub policy_version: Option<i32>,
    pub now: DateTime<Utc>,
}

/// Records the decision: the suggestion's status and its one log row (with the worker and,
/// for an edit, how much a person changed).
pub async fn decide(tx: &Tx<'_>, team: &TeamId, s: &Suggestion, d: &Decision<'_>) -> Result<()> {
    let distance = d.final_text.map(|t| nextier_domain::ai::edit_distance(&s.suggested_text, t));
    tx.query_typed(
        "WITH u AS (UPDATE ai_suggestions SET status = $3, decided_at = $8, send_after = NULL
                     WHERE id = $1 AND status = 'pending' RETURNING id)
         INSERT INTO ai_approval_log (team_id, suggestion_id, inbox_item_id, suggested_text, final_text, action, reason,
                                      actor, message_id, at, worker_id, policy_version, edit_distance)
         SELECT $2, u.id, $4, $5, $6, $3, $7, $9, $10, $8, $11, $12, $13 FROM u",
        params![s.id.as_str() => TEXT, team.as_str() => TEXT, d.action => TEXT,
                s.inbox_item_id.as_ref().map(|i| i.as_str()) => TEXT, s.suggested_text.as_str() => TEXT,
                d.final_text => TEXT, d.reason => TEXT, d.now => TIMESTAMPTZ, d.actor => TEXT,
                d.message.map(|m| m.as_str()) => TEXT, s.worker_id.as_deref() => TEXT, d.policy_version => INT4,
                distance => INT4],
    )
    .await?;
    Ok(())
}

/// Notes why a pending suggestion waits (and stops any auto-send of it).
pub async fn hold(tx: &Tx<'_>, id: &SuggestionId, note: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_suggestions SET note = $2, send_after = NULL WHERE id = $1 AND status = 'pending'",
        params![id.as_str() => TEXT, note => TEXT],
    )
    .await?;
    Ok(())
}

/// Moves a pending auto-send to a later time (a cap or quiet hours), with the reason.
pub async fn postpone(tx: &Tx<'_>, id: &SuggestionId, until: DateTime<Utc>, note: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_suggestions SET note = $2, send_after = $3 WHERE id = $1 AND status = 'pending'",
        params![id.as_str() => TEXT, note => TEXT, until => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Pending suggestions of the team (a worker's, or every worker's), oldest first: the review
/// queue.
pub async fn pending(tx: &Tx<'_>, worker: Option<&WorkerId>, limit: i64) -> Result<Vec<Suggestion>> {
    let rows = tx
        .query_typed(
            &format!(
                "{SELECT} WHERE s.status = 'pending' AND ($1::text IS NULL OR s.worker_id = $1)
                  ORDER BY s.created_at, s.id LIMIT $2"
            ),
            params![worker.map(|w| w.as_str()) => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(suggestion).collect())
}

/// Holds the lead's waiting auto-sends other than `except` (a person decides them).
pub async fn hold_others(tx: &Tx<'_>, contact: &ContactId, except: &SuggestionId, note: &str) -> Result<u64> {
    Ok(tx
        .execute_typed(
            "UPDATE ai_suggestions SET note = $3, send_after = NULL
              WHERE contact_id = $1 AND id <> $2 AND status = 'pending' AND send_after IS NOT NULL",
            params![contact.as_str() => TEXT, except.as_str() => TEXT, note => TEXT],
        )
        .await?)
}

/// Holds every waiting auto-send to the lead.
pub async fn hold_contact(tx: &Tx<'_>, contact: &ContactId, note: &str) -> Result<u64> {
    Ok(tx
        .execute_typed(
            "UPDATE ai_suggestions SET note = $2, send_after = NULL
              WHERE contact_id = $1 AND status = 'pending' AND send_after IS NOT NULL",
            params![contact.as_str() => TEXT, note => TEXT],
        )
        .await?)
}

/// Whether a cadence's follow-up waits for a person.
pub async fn pending_for_nurture(tx: &Tx<'_>, nurture: &NurtureId) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT 1 FROM ai_suggestions WHERE nurture_id = $1 AND status = 'pending'",
            params![nurture.as_str() => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}
