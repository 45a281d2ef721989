//! The opener library: initial messages by category and tone, with A/B variants, weights and
//! counters (sent, replies, positive replies).

use chrono::{DateTime, Utc};
use nextier_domain::ids::{OpenerId, TeamId};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Opener {
    pub id: OpenerId,
    pub category: String,
    pub tone: String,
    /// The A/B label (`A`, `B`, `short`...), unique in its category.
    pub variant: String,
    /// The message, with merge fields.
    pub body: String,
    /// Its share of the category's sends (0 pauses it).
    pub weight: i32,
    pub active: bool,
    pub sent: i32,
    pub replies: i32,
    pub positive: i32,
    pub reply_rate: Option<f64>,
    pub positive_rate: Option<f64>,
    pub created_at: DateTime<Utc>,
}

/// What a campaign step keeps of a variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub opener_id: String,
    pub variant: String,
    pub body: String,
    pub weight: i32,
}

const SELECT: &str =
    "SELECT id, category, tone, variant, body, weight, active, sent, replies, positive, created_at FROM ai_openers";

fn opener(r: &Row) -> Opener {
    let (sent, replies, positive): (i32, i32, i32) = (r.get("sent"), r.get("replies"), r.get("positive"));
    let rate = |n: i32| (sent > 0).then(|| f64::from(n) / f64::from(sent));
    Opener {
        id: OpenerId::from_trusted(r.get("id")),
        category: r.get("category"),
        tone: r.get("tone"),
        variant: r.get("variant"),
        body: r.get("body"),
        weight: r.get("weight"),
        active: r.get("active"),
        sent,
        replies,
        positive,
        reply_rate: rate(replies),
        positive_rate: rate(positive),
        created_at: r.get("created_at"),
    }
}

/// A variant's content.
#[derive(Debug, Clone)]
pub struct Content {
    pub category: String,
    pub tone: String,
    pub variant: String,
    pub body: String,
    pub weight: i32,
    pub active: bool,
}

pub async fn create(tx: &Tx<'_>, team: &TeamId, c: &Content) -> Result<Opener> {
    let id = OpenerId::new();
    tx.execute_typed(
        "INSERT INTO ai_openers (id, team_id, category, tone, variant, body, weight, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, c.category => TEXT, c.tone => TEXT, c.variant => TEXT,
                c.body => TEXT, c.weight => INT4, c.active => BOOL],
    )
    .await
    .map_err(|e| {
        StoreError::unique(
            e,
            "ai_openers_team_id_category_variant_key",
            &format!("category {} already has a variant {:?}", c.category, c.variant),
        )
    })?;
    get(tx, &id).await
}

pub async fn update(tx: &Tx<'_>, id: &OpenerId, c: &Content) -> Result<Opener> {
    let n = tx
        .execute_typed(
            "UPDATE ai_openers SET category = $2, tone = $3, variant = $4, body = $5, weight = $6, active = $7 WHERE id = $1",
            params![id.as_str() => TEXT, c.category => TEXT, c.tone => TEXT, c.variant => TEXT, c.body => TEXT,
                    c.weight => INT4, c.active => BOOL],
        )
        .await
        .map_err(|e| {
            StoreError::unique(
                e,
                "ai_openers_team_id_category_variant_key",
                &format!("category {} already has a variant {:?}", c.category, c.variant),
            )
        })?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn get(tx: &Tx<'_>, id: &OpenerId) -> Result<Opener> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(opener).ok_or(StoreError::NotFound)
}

pub async fn delete(tx: &Tx<'_>, id: &OpenerId) -> Result<()> {
    let n = tx.execute_typed("DELETE FROM ai_openers WHERE id = $1", params![id.as_str() => TEXT]).await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The library (one category's, or all), by category and variant.
pub async fn list(tx: &Tx<'_>, category: Option<&str>) -> Result<Vec<Opener>> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE ($1::text IS NULL OR category = $1) ORDER BY category, variant LIMIT 1000"),
            params![category => TEXT],
        )
        .await?;
    Ok(rows.iter().map(opener).collect())
}

/// What a step keeps of a category: its active variants with a weight.
pub async fn snapshot(tx: &Tx<'_>, category: &str) -> Result<Vec<Variant>> {
    Ok(list(tx, Some(category))
        .await?
        .into_iter()
        .filter(|o| o.active && o.weight > 0)
        .map(|o| Variant { opener_id: o.id.to_string(), variant: o.variant, body: o.body, weight: o.weight })
        .collect())
}

/// A message drawn from a variant went out (counted once per message).
pub async fn count_sent(tx: &Tx<'_>, team: &TeamId, send_key: &str, opener: &str) -> Result<()> {
    tx.execute_typed(
        "WITH m AS (UPDATE messages SET opener_id = $3 WHERE team_id = $1 AND send_key = $2 AND opener_id IS NULL
                    RETURNING id)
         UPDATE ai_openers SET sent = sent + 1 WHERE id = $3 AND EXISTS (SELECT 1 FROM m)",
        params![team.as_str() => TEXT, send_key => TEXT, opener => TEXT],
    )
    .await?;
    Ok(())
}

/// The lead answered a message drawn from a variant (the first reply only).
pub async fn count_reply(tx: &Tx<'_>, opener: &str, positive: bool) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_openers SET replies = replies + 1, positive = positive + CASE WHEN $2 THEN 1 ELSE 0 END WHERE id = $1",
        params![opener => TEXT, positive => BOOL],
    )
    .await?;
    Ok(())
}
