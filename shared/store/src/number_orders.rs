//! Numbers a team ordered into its SignalHouse subgroup. Each completes or fails on its own,
//! by webhook event; an event for a number nobody ordered into that subgroup changes nothing.
//! Also the team's subgroup id, set once when the team connects SignalHouse.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{RowId, TeamId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Result;
use crate::numbers::SendingNumber;
use crate::Tx;

/// The team's subgroup id, if it has connected SignalHouse.
pub async fn subgroup(tx: &Tx<'_>, team: &TeamId) -> Result<Option<String>> {
    let rows = tx
        .query_typed("SELECT signalhouse_subgroup_id FROM teams WHERE id = $1", params![team.as_str() => TEXT])
        .await?;
    Ok(rows.first().and_then(|r| r.get(0)))
}

/// Stores the team's subgroup unless it already has one; the one it has.
pub async fn set_subgroup(tx: &Tx<'_>, team: &TeamId, id: &str) -> Result<String> {
    let rows = tx
        .query_typed(
            "UPDATE teams SET signalhouse_subgroup_id = coalesce(signalhouse_subgroup_id, $2), updated_at = now()
              WHERE id = $1 RETURNING signalhouse_subgroup_id",
            params![team.as_str() => TEXT, id => TEXT],
        )
        .await?;
    rows.first().map(|r| r.get(0)).ok_or(crate::StoreError::NotFound)
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: RowId,
    pub number: String,
    /// pending, completed or failed.
    pub status: String,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Records a pending order (one per number and subgroup at a time); the pending one.
pub async fn order(tx: &Tx<'_>, team: &TeamId, subgroup: &str, e164: &str, actor: &str) -> Result<Order> {
    tx.query_typed(
        "INSERT INTO number_orders (id, team_id, subgroup_id, e164, ordered_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, subgroup => TEXT, e164 => TEXT, actor => TEXT],
    )
    .await?;
    let rows = tx
        .query_typed(
            "SELECT id, e164, status, detail, created_at FROM number_orders
              WHERE subgroup_id = $1 AND e164 = $2 AND status = 'pending'",
            params![subgroup => TEXT, e164 => TEXT],
        )
        .await?;
    rows.first()
        .map(|r| Order {
            id: RowId::from_trusted(r.get(0)),
            number: r.get(1),
            status: r.get(2),
            detail: r.get(3),
            created_at: r.get(4),
        })
        .ok_or(crate::StoreError::NotFound)
}

/// The team with a pending order for this number (in this subgroup, when the event names
/// one), across teams; `None` when nobody (or, without a subgroup, more than one team) ordered it.
pub async fn team_for_order(tx: &Tx<'_>, e164: &str, subgroup: Option<&str>) -> Result<Option<TeamId>> {
    let rows = tx.query_typed("SELECT team_for_number_order($1, $2)", params![e164 => TEXT, subgroup => TEXT]).await?;
    Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)).map(TeamId::from_trusted))
}

/// What settling an order did.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // made once per purchase event
pub enum Settled {
    /// No pending order for this number (and subgroup) in the team: nothing changed.
    NotOrdered,
    /// The number is the team's active, verified sending number.
    Active(SendingNumber),
    /// The provider reported the purchase failed.
    Failed,
    /// Bought, but another team still holds a live registration of it.
    HeldElsewhere,
}

/// Settles the team's pending order for `e164` as the provider reported it.
pub async fn settle(
    tx: &Tx<'_>,
    team: &TeamId,
    e164: &str,
    subgroup: Option<&str>,
    success: bool,
    detail: Option<&str>,
) -> Result<Settled> {
    let status = if success { "completed" } else { "failed" };
    let rows = tx
        .query_typed(
            "UPDATE number_orders SET status = $3, detail = $4, settled_at = now()
              WHERE id = (SELECT id FROM number_orders WHERE e164 = $1 AND status = 'pending'
                            AND ($2::text IS NULL OR subgroup_id = $2) ORDER BY created_at LIMIT 1)
             RETURNING id",
            params![e164 => TEXT, subgroup => TEXT, status => TEXT, detail => TEXT],
        )
        .await?;
    let Some(order) = rows.first().map(|r| r.get::<_, String>(0)) else {
        return Ok(Settled::NotOrdered);
    };
    if !success {
        return Ok(Settled::Failed);
    }
    let rows = tx
        .query_typed(
            "WITH inserted AS (
                INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at)
                VALUES ($1, $2, $3, 'signalhouse:purchase', now()) ON CONFLICT DO NOTHING RETURNING id),
             revived AS (
                UPDATE sending_numbers SET status = 'active', verified_at = now(), consecutive_failures = 0
                 WHERE e164 = $3 AND status <> 'retired' AND NOT EXISTS (SELECT 1 FROM inserted) RETURNING id)
             SELECT id FROM inserted UNION ALL SELECT id FROM revived",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, e164 => TEXT],
        )
        .await?;
    match rows.first() {
        Some(_) => Ok(crate::numbers::find_live(tx, e164).await?.map(Settled::Active).unwrap_or(Settled::NotOrdered)),
        None => {
            tx.query_typed(
                "UPDATE number_orders SET detail = 'bought, but registered to another team' WHERE id = $1",
                params![order.as_str() => TEXT],
            )
            .await?;
            Ok(Settled::HeldElsewhere)
        }
    }
}
