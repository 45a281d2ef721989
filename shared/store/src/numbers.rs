//! Sending numbers: which number a text goes from. A campaign sends from its assigned
//! numbers; a contact's thread keeps the number it started on while that number is usable;
//! new threads spread over the numbers by a hash of the contact id. Picking writes nothing to
//! the number rows, so concurrent sends never queue behind each other on a number. A number
//! that keeps failing is taken out of rotation.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, ContactId, RowId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// Consecutive failures that take a number out of rotation.
pub const FAILURE_LIMIT: i32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendingNumber {
    pub id: RowId,
    pub e164: String,
    pub provider: String,
    pub brand_id: Option<String>,
    pub provider_campaign_id: Option<String>,
    pub att_class: Option<String>,
    pub tmobile_tier: Option<String>,
    pub status: String,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    /// When SignalHouse last confirmed the number is in the team's subgroup; only verified
    /// numbers route inbound messages.
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLS: &str = "id, e164, provider, brand_id, provider_campaign_id, att_class, tmobile_tier, status,
    consecutive_failures, last_error, verified_at, created_at";

fn number(r: &Row) -> SendingNumber {
    SendingNumber {
        id: RowId::from_trusted(r.get("id")),
        e164: r.get("e164"),
        provider: r.get("provider"),
        brand_id: r.get("brand_id"),
        provider_campaign_id: r.get("provider_campaign_id"),
        att_class: r.get("att_class"),
        tmobile_tier: r.get("tmobile_tier"),
        status: r.get("status"),
        consecutive_failures: r.get("consecutive_failures"),
        last_error: r.get("last_error"),
        verified_at: r.get("verified_at"),
        created_at: r.get("created_at"),
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewNumber<'a> {
    pub e164: &'a str,
    pub brand_id: Option<&'a str>,
    pub provider_campaign_id: Option<&'a str>,
    pub att_class: Option<&'a str>,
    pub tmobile_tier: Option<&'a str>,
}

/// Registers a number the provider has just listed in the team's subgroup (so it is verified
/// now). A number another team holds is a conflict.
pub async fn add(tx: &Tx<'_>, team: &TeamId, n: &NewNumber<'_>, actor: &str) -> Result<SendingNumber> {
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO sending_numbers (id, team_id, e164, brand_id, provider_campaign_id, att_class, tmobile_tier,
                                              created_by, verified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now()) RETURNING {COLS}"
            ),
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, n.e164 => TEXT, n.brand_id => TEXT,
                    n.provider_campaign_id => TEXT, n.att_class => TEXT, n.tmobile_tier => TEXT, actor => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "sending_numbers_live_e164_idx", "this number is already registered"))?;
    rows.first().map(number).ok_or(StoreError::NotFound)
}

/// The team's live (not retired) registration of a number, if any.
pub async fn find_live(tx: &Tx<'_>, e164: &str) -> Result<Option<SendingNumber>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM sending_numbers WHERE e164 = $1 AND status <> 'retired'"),
            params![e164 => TEXT],
        )
        .await?;
    Ok(rows.first().map(number))
}

/// One of the team's numbers.
pub async fn get(tx: &Tx<'_>, id: &RowId) -> Result<SendingNumber> {
    let rows = tx
        .query_typed(&format!("SELECT {COLS} FROM sending_numbers WHERE id = $1"), params![id.as_str() => TEXT])
        .await?;
    rows.first().map(number).ok_or(StoreError::NotFound)
}

/// Records that the provider has just confirmed the team's number is in its subgroup.
pub async fn verify(tx: &Tx<'_>, id: &RowId) -> Result<SendingNumber> {
    let rows = tx
        .query_typed(
            &format!("UPDATE sending_numbers SET verified_at = now() WHERE id = $1 RETURNING {COLS}"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(number).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<SendingNumber>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM sending_numbers WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(number).collect())
}

/// Sets a number's status (`active` also clears its failure count).
pub async fn set_status(tx: &Tx<'_>, id: &RowId, status: &str) -> Result<SendingNumber> {
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE sending_numbers SET status = $2,
                        consecutive_failures = CASE WHEN $2 = 'active' THEN 0 ELSE consecutive_failures END
                  WHERE id = $1 RETURNING {COLS}"
            ),
            params![id.as_str() => TEXT, status => TEXT],
        )
        .await?;
    rows.first().map(number).ok_or(StoreError::NotFound)
}

/// Replaces a campaign's numbers; returns how many were assigned.
pub async fn assign(tx: &Tx<'_>, team: &TeamId, campaign: &CampaignId, numbers: &[RowId]) -> Result<u64> {
    tx.query_typed("DELETE FROM campaign_numbers WHERE campaign_id = $1", params![campaign.as_str() => TEXT]).await?;
    let ids: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
    let rows = tx
        .query_typed(
            "INSERT INTO campaign_numbers (team_id, campaign_id, number_id)
             SELECT $1, $2, n.id FROM sending_numbers n WHERE n.id = ANY($3) AND n.status <> 'retired'
             RETURNING 1",
            params![team.as_str() => TEXT, campaign.as_str() => TEXT, ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// Which number a text goes from.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per text, moved, not stored
pub enum Pick {
    Number(SendingNumber),
    /// The team (or campaign) has no numbers at all: the transport's default sender is used.
    NoneConfigured,
    /// It has numbers, but none is active (all paused or unhealthy): the text must wait.
    NoneActive,
}

/// The number a text to `contact` goes from: the thread's number while it is active (and, for
/// a campaign with assigned numbers, one of them); otherwise one of the eligible numbers chosen
/// by a hash of the contact id, which then becomes the thread's.
pub async fn pick(tx: &Tx<'_>, team: &TeamId, contact: &ContactId, campaign: Option<&CampaignId>) -> Result<Pick> {
    let campaign = campaign.map(|c| c.as_str());
    let rows = tx
        .query_typed(
            &format!(
                "WITH eligible AS (
                    SELECT n.* FROM sending_numbers n
                     WHERE n.status = 'active'
                       AND ($1::text IS NULL
                            OR NOT EXISTS (SELECT 1 FROM campaign_numbers c WHERE c.campaign_id = $1)
                            OR EXISTS (SELECT 1 FROM campaign_numbers c WHERE c.campaign_id = $1 AND c.number_id = n.id))),
                 threaded AS (
                    SELECT e.id FROM eligible e JOIN contact_threads t ON t.contact_id = $2 AND t.number_id = e.id),
                 hashed AS (
                    SELECT id FROM eligible ORDER BY id
                    OFFSET (abs(hashtext($2)::bigint) % greatest((SELECT count(*) FROM eligible), 1)) LIMIT 1)
                 SELECT {COLS} FROM eligible
                  WHERE id = coalesce((SELECT id FROM threaded), (SELECT id FROM hashed))"
            ),
            params![campaign => TEXT, contact.as_str() => TEXT],
        )
        .await?;
    let Some(n) = rows.first().map(number) else {
        let any = tx
            .query_typed(
                "SELECT EXISTS (SELECT 1 FROM sending_numbers WHERE status <> 'retired'
                                  AND ($1::text IS NULL OR NOT EXISTS (SELECT 1 FROM campaign_numbers WHERE campaign_id = $1)
                                       OR id IN (SELECT number_id FROM campaign_numbers WHERE campaign_id = $1)))",
                params![campaign => TEXT],
            )
            .await?;
        let configured = any.first().is_some_and(|r| r.get::<_, bool>(0));
        return Ok(if configured { Pick::NoneActive } else { Pick::NoneConfigured });
    };
    tx.query_typed(
        "INSERT INTO contact_threads (team_id, contact_id, number_id) VALUES ($1, $2, $3)
         ON CONFLICT (team_id, contact_id) DO UPDATE SET number_id = excluded.number_id, started_at = now()
         WHERE contact_threads.number_id <> excluded.number_id",
        params![team.as_str() => TEXT, contact.as_str() => TEXT, n.id.as_str() => TEXT],
    )
    .await?;
    Ok(Pick::Number(n))
}

/// Records a send's outcome on its number. Returns true when this failure took the number
/// out of rotation.
pub async fn record_outcome(tx: &Tx<'_>, e164: &str, error: Option<&str>) -> Result<bool> {
    let rows = tx
        .query_typed(
            "UPDATE sending_numbers SET
                    consecutive_failures = CASE WHEN $2::text IS NULL THEN 0 ELSE consecutive_failures + 1 END,
                    last_error = coalesce($2, last_error),
                    status = CASE WHEN $2::text IS NOT NULL AND consecutive_failures + 1 >= $3 AND status = 'active'
                                  THEN 'unhealthy' ELSE status END
              WHERE e164 = $1 AND ($2::text IS NOT NULL OR consecutive_failures > 0)
             RETURNING status = 'unhealthy' AND consecutive_failures = $3",
            params![e164 => TEXT, error => TEXT, FAILURE_LIMIT => INT4],
        )
        .await?;
    Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
}
