//! AI reply suggestions and their approval log.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, InboxItemId, MessageId, SuggestionId, TeamId};
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
    pub inbox_item_id: InboxItemId,
    pub contact_id: ContactId,
    pub suggested_text: String,
    pub source: String,
    pub status: SuggestionStatus,
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
    pub at: DateTime<Utc>,
}

const SELECT: &str = "SELECT s.id, s.inbox_item_id, s.contact_id, s.suggested_text, s.source, s.status, s.created_at,
    s.decided_at, l.suggested_text AS l_suggested, l.final_text, l.action, l.reason, l.actor, l.message_id, l.at
  FROM ai_suggestions s LEFT JOIN ai_approval_log l ON l.suggestion_id = s.id";

fn suggestion(r: &Row) -> Suggestion {
    let log = r.get::<_, Option<String>>("action").map(|action| LogEntry {
        suggested_text: r.get("l_suggested"),
        final_text: r.get("final_text"),
        action,
        reason: r.get("reason"),
        actor: r.get("actor"),
        message_id: r.get("message_id"),
        at: r.get("at"),
    });
    Suggestion {
        id: SuggestionId::from_trusted(r.get("id")),
        inbox_item_id: InboxItemId::from_trusted(r.get("inbox_item_id")),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        suggested_text: r.get("suggested_text"),
        source: r.get("source"),
        // The database allows only these (a CHECK); another would count as decided.
        status: SuggestionStatus::parse(r.get("status")).unwrap_or(SuggestionStatus::Rejected),
        created_at: r.get("created_at"),
        decided_at: r.get("decided_at"),
        log,
    }
}

/// Stores a suggestion; an item has at most one pending suggestion, so a second one while
/// the first waits returns the first (`false`).
pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    item: &InboxItemId,
    contact: &ContactId,
    text: &str,
    source: &str,
) -> Result<(Suggestion, bool)> {
    let id = SuggestionId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO ai_suggestions (id, team_id, inbox_item_id, contact_id, suggested_text, source)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (inbox_item_id) WHERE status = 'pending' DO NOTHING
             RETURNING id",
            params![id.as_str() => TEXT, team.as_str() => TEXT, item.as_str() => TEXT, contact.as_str() => TEXT,
                    text => TEXT, source => TEXT],
        )
        .await?;
    let created = !rows.is_empty();
    let rows = if created {
        tx.query_typed(&format!("{SELECT} WHERE s.id = $1"), params![id.as_str() => TEXT]).await?
    } else {
        tx.query_typed(
            &format!("{SELECT} WHERE s.inbox_item_id = $1 AND s.status = 'pending'"),
            params![item.as_str() => TEXT],
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

/// Records the decision: the suggestion's status and its one log row.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    tx: &Tx<'_>,
    team: &TeamId,
    s: &Suggestion,
    action: &str,
    final_text: Option<&str>,
    reason: Option<&str>,
    actor: &str,
    message: Option<&MessageId>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.query_typed(
        "WITH u AS (UPDATE ai_suggestions SET status = $3, decided_at = $8 WHERE id = $1 AND status = 'pending' RETURNING id)
         INSERT INTO ai_approval_log (team_id, suggestion_id, inbox_item_id, suggested_text, final_text, action, reason,
                                      actor, message_id, at)
         SELECT $2, u.id, $4, $5, $6, $3, $7, $9, $10, $8 FROM u",
        params![s.id.as_str() => TEXT, team.as_str() => TEXT, action => TEXT, s.inbox_item_id.as_str() => TEXT,
                s.suggested_text.as_str() => TEXT, final_text => TEXT, reason => TEXT, now => TIMESTAMPTZ,
                actor => TEXT, message.map(|m| m.as_str()) => TEXT],
    )
    .await?;
    Ok(())
}
