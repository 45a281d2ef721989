//! The audit of changes to what an approver signed off, made after approval (insert-only).

use chrono::{DateTime, Utc};
use nextier_domain::campaign::CampaignStatus;
use nextier_domain::ids::{CampaignId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::Result;
use crate::Tx;

/// One audited change: each field with its value before and after.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignChange {
    pub id: i64,
    pub actor: String,
    /// The campaign's state when it was changed.
    pub status: CampaignStatus,
    /// `{"sendsPerMinute": {"from": 75, "to": 240}, ...}`
    #[schema(value_type = Object)]
    pub changes: Value,
    /// True when the change sent the campaign back to STAGED for a new approval.
    pub restaged: bool,
    pub at: DateTime<Utc>,
}

pub struct NewChange<'a> {
    pub campaign: &'a CampaignId,
    pub actor: &'a str,
    pub status: CampaignStatus,
    pub changes: &'a Value,
    pub restaged: bool,
}

pub async fn record(tx: &Tx<'_>, team: &TeamId, c: &NewChange<'_>) -> Result<()> {
    tx.query_typed(
        "INSERT INTO campaign_changes (team_id, campaign_id, actor, status, changes, restaged)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![team.as_str() => TEXT, c.campaign.as_str() => TEXT, c.actor => TEXT, c.status.as_str() => TEXT,
                c.changes => JSONB, c.restaged => BOOL],
    )
    .await?;
    Ok(())
}

/// The audited changes of a campaign, oldest first.
pub async fn list(tx: &Tx<'_>, campaign: &CampaignId, page: &PageRequest) -> Result<Vec<CampaignChange>> {
    let after: i64 = page.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let rows = tx
        .query_typed(
            "SELECT id, actor, status, changes, restaged, at FROM campaign_changes
              WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            params![campaign.as_str() => TEXT, after => INT8, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CampaignChange {
            id: r.get("id"),
            actor: r.get("actor"),
            status: r.get::<_, &str>("status").parse().unwrap_or(CampaignStatus::Draft),
            changes: r.get("changes"),
            restaged: r.get("restaged"),
            at: r.get("at"),
        })
        .collect())
}
