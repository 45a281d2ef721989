//! Campaigns, their steps, enrolments, executions, message templates and saved audiences.
//! The lifecycle rules live in `nextier_domain::campaign`; this module makes each move one
//! conditional statement, so of two concurrent requests only one can win. One file per
//! concept; the paths stay `nextier_store::campaigns::…`.

use chrono::{DateTime, Utc};
use nextier_domain::campaign::{CampaignStatus, Delay, EnrolmentStatus};
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, FilterId, StepId, TeamId, TemplateId, UserId};
use nextier_domain::page::PageRequest;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::contacts::{Contact, Selection, Where};
use crate::error::{Result, StoreError};
use crate::Tx;

mod enrolments;
mod library;
mod sequence;
mod steps;

pub use enrolments::*;
pub use library::*;
pub use sequence::*;
pub use steps::*;

// Campaigns ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub description: Option<String>,
    pub status: CampaignStatus,
    pub created_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sends_per_minute: i32,
    pub exit_on_reply: bool,
    pub exit_on_meeting: bool,
    /// The score band whose contacts are enrolled automatically while the campaign runs.
    pub auto_enrol: Option<ScoreBand>,
    pub steps: i64,
    pub active_enrolments: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub author_user_id: Option<UserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBand {
    pub min_score: i32,
    pub max_score: i32,
}

/// The editable settings of a campaign.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub description: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sends_per_minute: i32,
    pub exit_on_reply: bool,
    pub exit_on_meeting: bool,
    pub auto_enrol: Option<ScoreBand>,
}

const SELECT: &str = "SELECT c.id, c.name, c.description, c.status, c.author_user_id, c.created_by, c.approved_by,
    c.approved_at, c.starts_at, c.ends_at, c.sends_per_minute, c.exit_on_reply, c.exit_on_meeting,
    c.auto_min_score, c.auto_max_score, c.created_at, c.updated_at,
    (SELECT count(*) FROM campaign_steps s WHERE s.campaign_id = c.id) AS steps,
    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = c.id AND e.status = 'active') AS active
  FROM campaigns c";

fn campaign(row: &Row) -> Campaign {
    let band = match (row.get::<_, Option<i32>>("auto_min_score"), row.get::<_, Option<i32>>("auto_max_score")) {
        (Some(min_score), Some(max_score)) => Some(ScoreBand { min_score, max_score }),
        _ => None,
    };
    Campaign {
        id: CampaignId::from_trusted(row.get("id")),
        name: row.get("name"),
        description: row.get("description"),
        status: row.get::<_, &str>("status").parse().unwrap_or(CampaignStatus::Draft),
        created_by: row.get("created_by"),
        approved_by: row.get("approved_by"),
        approved_at: row.get("approved_at"),
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        sends_per_minute: row.get("sends_per_minute"),
        exit_on_reply: row.get("exit_on_reply"),
        exit_on_meeting: row.get("exit_on_meeting"),
        auto_enrol: band,
        steps: row.get("steps"),
        active_enrolments: row.get("active"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        author_user_id: row.get::<_, Option<String>>("author_user_id").map(UserId::from_trusted),
    }
}

pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    s: &Settings,
    author: Option<&UserId>,
    actor: &str,
) -> Result<CampaignId> {
    let id = CampaignId::new();
    let (min, max) = band_parts(s.auto_enrol);
    tx.query_typed(
        "INSERT INTO campaigns (id, team_id, name, description, author_user_id, created_by, starts_at, ends_at,
                sends_per_minute, exit_on_reply, exit_on_meeting, auto_min_score, auto_max_score)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, s.name => TEXT, s.description => TEXT,
                author.map(|a| a.as_str()) => TEXT, actor => TEXT, s.starts_at => TIMESTAMPTZ, s.ends_at => TIMESTAMPTZ,
                s.sends_per_minute => INT4, s.exit_on_reply => BOOL, s.exit_on_meeting => BOOL, min => INT4, max => INT4],
    )
    .await?;
    Ok(id)
}

fn band_parts(b: Option<ScoreBand>) -> (Option<i32>, Option<i32>) {
    (b.map(|b| b.min_score), b.map(|b| b.max_score))
}

pub async fn get(tx: &Tx<'_>, id: &CampaignId) -> Result<Campaign> {
    let row = tx
        .query_typed(&format!("{SELECT} WHERE c.id = $1"), params![id.as_str() => TEXT])
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)?;
    Ok(campaign(&row))
}

/// Locks the campaign row for the rest of the transaction (edits serialise with moves).
pub async fn lock(tx: &Tx<'_>, id: &CampaignId) -> Result<Campaign> {
    let found =
        tx.query_typed("SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE", params![id.as_str() => TEXT]).await?;
    if found.is_empty() {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn list(tx: &Tx<'_>, status: Option<CampaignStatus>, page: &PageRequest) -> Result<Vec<Campaign>> {
    let status = status.map(|s| s.as_str());
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE ($1::text IS NULL OR c.status = $1) AND c.id > $2 ORDER BY c.id LIMIT $3"),
            params![status => TEXT, page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(campaign).collect())
}

pub async fn update(tx: &Tx<'_>, id: &CampaignId, s: &Settings) -> Result<()> {
    let (min, max) = band_parts(s.auto_enrol);
    tx.query_typed(
        "UPDATE campaigns SET name = $2, description = $3, starts_at = $4, ends_at = $5, sends_per_minute = $6,
                exit_on_reply = $7, exit_on_meeting = $8, auto_min_score = $9, auto_max_score = $10
          WHERE id = $1",
        params![id.as_str() => TEXT, s.name => TEXT, s.description => TEXT, s.starts_at => TIMESTAMPTZ,
                s.ends_at => TIMESTAMPTZ, s.sends_per_minute => INT4, s.exit_on_reply => BOOL, s.exit_on_meeting => BOOL,
                min => INT4, max => INT4],
    )
    .await?;
    Ok(())
}

/// Deletes a campaign that never left DRAFT; anything further along is cancelled instead,
/// so its history survives.
pub async fn delete_draft(tx: &Tx<'_>, id: &CampaignId) -> Result<()> {
    let n = tx
        .query_typed(
            "DELETE FROM campaigns WHERE id = $1 AND status = 'DRAFT' RETURNING 1",
            params![id.as_str() => TEXT],
        )
        .await?;
    if n.is_empty() {
        let c = get(tx, id).await?;
        return Err(StoreError::Conflict(format!(
            "only a DRAFT campaign can be deleted; this one is {} (cancel it instead)",
            c.status
        )));
    }
    Ok(())
}

/// What a move needs besides from and to.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// Recorded as the approver when moving to APPROVED.
    pub approver: Option<&'a UserId>,
}

/// Moves the campaign if, and only if, it is still in `m.from`, and records the change, in
/// one statement. Returns false when the campaign was not in `m.from` (someone else moved it
/// first). Leaving APPROVED for an earlier state clears the approval.
pub async fn apply_move(tx: &Tx<'_>, team: &TeamId, id: &CampaignId, m: &Move<'_>) -> Result<bool> {
    let rows = tx
        .query_typed(
            "WITH moved AS (
                UPDATE campaigns SET status = $3,
                       approved_by = CASE WHEN $3 = 'APPROVED' THEN $6
                                          WHEN $3 IN ('DRAFT', 'STAGED') THEN NULL ELSE approved_by END,
                       approved_at = CASE WHEN $3 = 'APPROVED' THEN now()
                                          WHEN $3 IN ('DRAFT', 'STAGED') THEN NULL ELSE approved_at END
                 WHERE id = $1 AND status = $2
             RETURNING id)
             INSERT INTO campaign_state_changes (team_id, campaign_id, from_status, to_status, actor, reason)
             SELECT $7, id, $2, $3, $4, $5 FROM moved RETURNING id",
            params![id.as_str() => TEXT, m.from.as_str() => TEXT, m.to.as_str() => TEXT, m.actor => TEXT,
                    m.reason => TEXT, m.approver.map(|u| u.as_str()) => TEXT, team.as_str() => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    pub id: i64,
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The state history, oldest first.
pub async fn history(tx: &Tx<'_>, id: &CampaignId, page: &PageRequest) -> Result<Vec<StateChange>> {
    let after: i64 = page.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let rows = tx
        .query_typed(
            "SELECT id, from_status, to_status, actor, reason, at FROM campaign_state_changes
              WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            params![id.as_str() => TEXT, after => INT8, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StateChange {
            id: r.get("id"),
            from: r.get::<_, &str>("from_status").parse().unwrap_or(CampaignStatus::Draft),
            to: r.get::<_, &str>("to_status").parse().unwrap_or(CampaignStatus::Draft),
            actor: r.get("actor"),
            reason: r.get("reason"),
            at: r.get("at"),
        })
        .collect())
}

/// Running campaigns of the team whose auto-enrol score band contains `score`.
pub async fn auto_enrol_campaigns(tx: &Tx<'_>, score: i32) -> Result<Vec<CampaignId>> {
    let rows = tx
        .query_typed(
            "SELECT id FROM campaigns WHERE status = 'RUNNING' AND auto_min_score <= $1 AND auto_max_score >= $1
              ORDER BY id",
            params![score => INT4],
        )
        .await?;
    Ok(rows.iter().map(|r| CampaignId::from_trusted(r.get(0))).collect())
}

/// An enrolment row's status. The database allows only these (a CHECK); were another to
/// appear, the enrolment would count as removed, so that nothing more is sent for it.
fn enrolment_status(r: &Row) -> EnrolmentStatus {
    EnrolmentStatus::parse(r.get("status")).unwrap_or(EnrolmentStatus::Removed)
}
