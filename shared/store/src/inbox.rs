//! The inbox: one item per inbound reply, in a bucket with an SLA, and every move between
//! buckets recorded.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, ContactId, InboxItemId, MessageId, TeamId};
use nextier_domain::inbox::{Assessment, Bucket, Priority};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketView {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub position: i32,
    pub sla_minutes: Option<i32>,
    /// Unprocessed items in it.
    pub open: i64,
    /// Unprocessed items past their due time.
    pub overdue: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemView {
    pub id: InboxItemId,
    pub contact_id: ContactId,
    pub message_id: MessageId,
    pub campaign_id: Option<CampaignId>,
    pub phone: String,
    pub response_text: String,
    pub classification: String,
    pub confidence: i32,
    pub labels: Vec<String>,
    pub priority: String,
    pub score: i32,
    pub bucket: String,
    pub requires_review: bool,
    pub is_read: bool,
    pub assigned_to: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalation_level: i32,
    pub processed_at: Option<DateTime<Utc>>,
    pub processed_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str =
    "SELECT i.id, i.contact_id, i.message_id, i.campaign_id, i.phone, i.response_text, i.classification,
    i.confidence, i.labels, i.priority, i.score, i.bucket, i.requires_review, i.is_read, i.assigned_to, i.due_at,
    i.escalated_at, i.escalation_level, i.processed_at, i.processed_by, i.created_at,
    CASE i.priority WHEN 'URGENT' THEN 3 WHEN 'HOT' THEN 2 WHEN 'WARM' THEN 1 ELSE 0 END AS rank
  FROM inbox_items i";

fn item(r: &Row) -> ItemView {
    ItemView {
        id: InboxItemId::from_trusted(r.get("id")),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        message_id: MessageId::from_trusted(r.get("message_id")),
        campaign_id: r.get::<_, Option<String>>("campaign_id").map(CampaignId::from_trusted),
        phone: r.get("phone"),
        response_text: r.get("response_text"),
        classification: r.get("classification"),
        confidence: r.get("confidence"),
        labels: r.get("labels"),
        priority: r.get("priority"),
        score: r.get("score"),
        bucket: r.get("bucket"),
        requires_review: r.get("requires_review"),
        is_read: r.get("is_read"),
        assigned_to: r.get("assigned_to"),
        due_at: r.get("due_at"),
        escalated_at: r.get("escalated_at"),
        escalation_level: r.get("escalation_level"),
        processed_at: r.get("processed_at"),
        processed_by: r.get("processed_by"),
        created_at: r.get("created_at"),
    }
}

pub struct NewItem<'a> {
    pub contact: &'a ContactId,
    pub message: &'a MessageId,
    pub campaign: Option<&'a CampaignId>,
    pub phone: &'a str,
    pub text: &'a str,
    pub assessment: &'a Assessment,
    pub now: DateTime<Utc>,
}

/// Files a reply; one item per message (a second call returns the first item, `false`).
/// The due time is now plus the bucket's SLA; a reply the system handled (opt-out, HELP,
/// START) is filed processed.
pub async fn create(tx: &Tx<'_>, team: &TeamId, n: &NewItem<'_>) -> Result<(InboxItemId, bool)> {
    let id = InboxItemId::new();
    let a = n.assessment;
    let auto = a.classification.handled_automatically();
    let rows = tx
        .query_typed(
            "WITH b AS (SELECT sla_minutes FROM inbox_buckets WHERE team_id = $2 AND type = $10),
                  i AS (INSERT INTO inbox_items (id, team_id, contact_id, message_id, campaign_id, phone, response_text,
                            classification, confidence, labels, priority, score, bucket, requires_review, due_at,
                            processed_at, processed_by, created_at)
                        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, $10, $14,
                               CASE WHEN $15 THEN NULL ELSE $16 + make_interval(mins => b.sla_minutes) END,
                               CASE WHEN $15 THEN $16 END, CASE WHEN $15 THEN 'system' END, $16
                          FROM b
                        ON CONFLICT (team_id, message_id) DO NOTHING RETURNING id, bucket, classification)
             INSERT INTO bucket_movements (team_id, inbox_item_id, from_bucket, to_bucket, moved_by, reason, at)
             SELECT $2, id, NULL, bucket, 'classifier', classification, $16 FROM i RETURNING inbox_item_id",
            params![id.as_str() => TEXT, team.as_str() => TEXT, n.contact.as_str() => TEXT, n.message.as_str() => TEXT,
                    n.campaign.map(|c| c.as_str()) => TEXT, n.phone => TEXT, n.text => TEXT,
                    a.classification.as_str() => TEXT, a.confidence => INT4, a.bucket.as_str() => TEXT,
                    a.labels => TEXT_ARRAY, a.priority.as_str() => TEXT, a.score => INT4, a.requires_review => BOOL,
                    auto => BOOL, n.now => TIMESTAMPTZ],
        )
        .await?;
    if !rows.is_empty() {
        return Ok((id, true));
    }
    let existing =
        tx.query_typed("SELECT id FROM inbox_items WHERE message_id = $1", params![n.message.as_str() => TEXT]).await?;
    match existing.first() {
        Some(r) => Ok((InboxItemId::from_trusted(r.get(0)), false)),
        None => Err(StoreError::Conflict("the team has no inbox buckets".into())),
    }
}

pub async fn get(tx: &Tx<'_>, id: &InboxItemId) -> Result<ItemView> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE i.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(item).ok_or(StoreError::NotFound)
}

async fn lock(tx: &Tx<'_>, id: &InboxItemId) -> Result<ItemView> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE i.id = $1 FOR UPDATE"), params![id.as_str() => TEXT]).await?;
    rows.first().map(item).ok_or(StoreError::NotFound)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Highest priority first, then highest score.
    #[default]
    Priority,
    /// Soonest due first (items without an SLA last).
    Due,
    Newest,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub bucket: Option<Bucket>,
    pub priority: Option<Priority>,
    /// Include processed items (default: open ones only).
    pub processed: bool,
    pub requires_review: Option<bool>,
    pub contact: Option<ContactId>,
    pub order: Order,
}

/// The cursor names the last row's position in the chosen order.
pub fn cursor(order: Order, i: &ItemView) -> String {
    let rank = Priority::parse(&i.priority).map(|p| p as i32).unwrap_or(0);
    match order {
        Order::Priority => format!("{rank}|{}|{}", i.score, i.id),
        Order::Due => format!("{}|{}", i.due_at.map(|d| d.timestamp_micros()).unwrap_or(i64::MAX), i.id),
        Order::Newest => i.id.to_string(),
    }
}

/// Whether `after` is a cursor of a listing in this order (checked before it reaches SQL).
pub fn cursor_ok(order: Order, after: &str) -> bool {
    let parts: Vec<&str> = after.split('|').collect();
    match order {
        _ if after.is_empty() => true,
        Order::Priority => parts.len() == 3 && parts[0].parse::<i32>().is_ok() && parts[1].parse::<i32>().is_ok(),
        Order::Due => parts.len() == 2 && parts[0].parse::<i64>().is_ok(),
        Order::Newest => parts.len() == 1,
    }
}

pub async fn list(tx: &Tx<'_>, f: &Filter, page: &PageRequest) -> Result<Vec<ItemView>> {
    let bucket = f.bucket.map(|b| b.as_str());
    let priority = f.priority.map(|p| p.as_str());
    let contact = f.contact.as_ref().map(|c| c.as_str());
    let after = page.after.as_deref().unwrap_or("");
    if !cursor_ok(f.order, after) {
        return Err(StoreError::Conflict("the cursor is not a cursor of this listing".into()));
    }
    let (keyset, order) = match f.order {
        Order::Priority => (
            "($6 = '' OR (CASE i.priority WHEN 'URGENT' THEN 3 WHEN 'HOT' THEN 2 WHEN 'WARM' THEN 1 ELSE 0 END,
                          i.score, i.id) < (split_part($6, '|', 1)::int, split_part($6, '|', 2)::int, split_part($6, '|', 3)))",
            "rank DESC, i.score DESC, i.id DESC",
        ),
        Order::Due => (
            "($6 = '' OR (coalesce((extract(epoch FROM i.due_at) * 1000000)::bigint, 9223372036854775807), i.id)
                          > (split_part($6, '|', 1)::bigint, split_part($6, '|', 2)))",
            "coalesce((extract(epoch FROM i.due_at) * 1000000)::bigint, 9223372036854775807), i.id",
        ),
        Order::Newest => ("($6 = '' OR i.id < $6)", "i.id DESC"),
    };
    let rows = tx
        .query_typed(
            &format!(
                "{SELECT} WHERE ($1::text IS NULL OR i.bucket = $1) AND ($2::text IS NULL OR i.priority = $2)
                   AND ($3 OR i.processed_at IS NULL) AND ($4::bool IS NULL OR i.requires_review = $4)
                   AND ($5::text IS NULL OR i.contact_id = $5) AND {keyset}
                 ORDER BY {order} LIMIT $7"
            ),
            params![bucket => TEXT, priority => TEXT, f.processed => BOOL, f.requires_review => BOOL,
                    contact => TEXT, after => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(item).collect())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    pub from_bucket: Option<String>,
    pub to_bucket: String,
    pub moved_by: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

pub async fn movements(tx: &Tx<'_>, id: &InboxItemId) -> Result<Vec<Movement>> {
    let rows = tx
        .query_typed(
            "SELECT from_bucket, to_bucket, moved_by, reason, at FROM bucket_movements WHERE inbox_item_id = $1 ORDER BY id",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Movement {
            from_bucket: r.get(0),
            to_bucket: r.get(1),
            moved_by: r.get(2),
            reason: r.get(3),
            at: r.get(4),
        })
        .collect())
}

/// Moves an item to `to`, recording who and why (and on the team's live feed), and restarts
/// its SLA clock from the new bucket. Returns the item before the move; moving to the bucket it is in records nothing.
pub async fn move_to(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &InboxItemId,
    to: Bucket,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ItemView> {
    move_in_chain(tx, team, id, to, actor, reason, now, &[]).await
}

/// [`move_to`], by a workflow: the move's event carries the chain of workflows that led to it
/// (`nextier_domain::workflow::chain`), so a chain that comes back is stopped as a loop.
#[allow(clippy::too_many_arguments)]
pub async fn move_in_chain(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &InboxItemId,
    to: Bucket,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
    chain: &[String],
) -> Result<ItemView> {
    let before = lock(tx, id).await?;
    if before.bucket == to.as_str() {
        return Ok(before);
    }
    tx.query_typed(
        "WITH b AS (SELECT sla_minutes FROM inbox_buckets WHERE team_id = $2 AND type = $3),
              u AS (UPDATE inbox_items i SET bucket = $3,
                           due_at = CASE WHEN i.processed_at IS NULL THEN $6 + make_interval(mins => b.sla_minutes) END,
                           escalated_at = NULL, escalation_level = 0
                      FROM b WHERE i.id = $1 RETURNING i.id)
         INSERT INTO bucket_movements (team_id, inbox_item_id, from_bucket, to_bucket, moved_by, reason, at)
         SELECT $2, id, $4, $3, $5, $7, $6 FROM u",
        params![id.as_str() => TEXT, team.as_str() => TEXT, to.as_str() => TEXT, before.bucket.as_str() => TEXT,
                actor => TEXT, now => TIMESTAMPTZ, reason => TEXT],
    )
    .await?;
    // An event (workflows start on it; the sweeper publishes it) and on the team's live feed,
    // committed with the move.
    let mut moved = serde_json::json!({"inboxItemId": id, "contactId": before.contact_id, "from": before.bucket,
                                       "to": to.as_str(), "movedBy": actor, "reason": reason});
    if !chain.is_empty() {
        moved["workflowChain"] = serde_json::json!(chain);
    }
    let event = crate::outbox::OutboxMessage {
        team: Some(team.clone()),
        destination: crate::outbox::Destination::Event("InboxItemMoved".into()),
        payload: moved,
        correlation_id: String::new(),
        dedupe_key: None,
    };
    crate::outbox::stage(tx, &event).await?;
    Ok(before)
}

/// Marks an item processed (idempotent: the first marking stands).
pub async fn mark_processed(tx: &Tx<'_>, id: &InboxItemId, actor: &str, now: DateTime<Utc>) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE inbox_items SET processed_at = coalesce(processed_at, $2), processed_by = coalesce(processed_by, $3),
                    is_read = true, due_at = CASE WHEN processed_at IS NULL THEN NULL ELSE due_at END
              WHERE id = $1 RETURNING id",
            params![id.as_str() => TEXT, now => TIMESTAMPTZ, actor => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Escalates an item by hand: one level up (at most 3), now.
pub async fn escalate(tx: &Tx<'_>, id: &InboxItemId, now: DateTime<Utc>) -> Result<i32> {
    let rows = tx
        .query_typed(
            "UPDATE inbox_items SET escalated_at = $2, escalation_level = least(escalation_level + 1, 3)
              WHERE id = $1 RETURNING escalation_level",
            params![id.as_str() => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    rows.first().map(|r| r.get(0)).ok_or(StoreError::NotFound)
}

pub async fn buckets(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<Vec<BucketView>> {
    let rows = tx
        .query_typed(
            "SELECT b.type, b.name, b.position, b.sla_minutes,
                    count(i.id) FILTER (WHERE i.processed_at IS NULL) AS open,
                    count(i.id) FILTER (WHERE i.processed_at IS NULL AND i.due_at <= $1) AS overdue
               FROM inbox_buckets b LEFT JOIN inbox_items i ON i.team_id = b.team_id AND i.bucket = b.type
              GROUP BY b.team_id, b.type ORDER BY b.position",
            params![now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| BucketView {
            kind: r.get(0),
            name: r.get(1),
            position: r.get(2),
            sla_minutes: r.get(3),
            open: r.get(4),
            overdue: r.get(5),
        })
        .collect())
}

/// Renames a bucket or changes its SLA (`None`: no SLA). Items already waiting keep their due
/// time; new ones and moves use the new SLA.
pub async fn update_bucket(
    tx: &Tx<'_>,
    bucket: Bucket,
    name: Option<&str>,
    sla_minutes: Option<Option<i32>>,
) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE inbox_buckets SET name = coalesce($2, name),
                    sla_minutes = CASE WHEN $3 THEN $4 ELSE sla_minutes END
              WHERE team_id = app_team_id() AND type = $1 RETURNING type",
            params![bucket.as_str() => TEXT, name => TEXT, sla_minutes.is_some() => BOOL, sla_minutes.flatten() => INT4],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub open: i64,
    pub overdue: i64,
    pub requires_review: i64,
    pub escalated: i64,
    pub processed_today: i64,
    #[schema(value_type = Object)]
    pub by_priority: serde_json::Value,
    #[schema(value_type = Object)]
    pub by_classification: serde_json::Value,
    pub buckets: Vec<BucketView>,
}

pub async fn stats(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<Stats> {
    let r = tx
        .query_typed(
            "SELECT count(*) FILTER (WHERE processed_at IS NULL),
                    count(*) FILTER (WHERE processed_at IS NULL AND due_at <= $1),
                    count(*) FILTER (WHERE processed_at IS NULL AND requires_review),
                    count(*) FILTER (WHERE processed_at IS NULL AND escalation_level > 0),
                    count(*) FILTER (WHERE processed_at >= date_trunc('day', $1)),
                    coalesce((SELECT json_object_agg(priority, n) FROM (SELECT priority, count(*) n FROM inbox_items
                               WHERE processed_at IS NULL GROUP BY priority) p), '{}'),
                    coalesce((SELECT json_object_agg(classification, n) FROM (SELECT classification, count(*) n
                               FROM inbox_items GROUP BY classification) c), '{}')
               FROM inbox_items",
            params![now => TIMESTAMPTZ],
        )
        .await?;
    let r = &r[0];
    Ok(Stats {
        open: r.get(0),
        overdue: r.get(1),
        requires_review: r.get(2),
        escalated: r.get(3),
        processed_today: r.get(4),
        by_priority: r.get(5),
        by_classification: r.get(6),
        buckets: buckets(tx, now).await?,
    })
}

/// An item the SLA sweep escalated.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    pub item_id: String,
    pub team_id: String,
    pub contact_id: String,
    pub bucket: String,
    pub level: i32,
    pub due_at: Option<DateTime<Utc>>,
}

/// Across teams (a SECURITY DEFINER function): escalates up to `limit` overdue items.
pub async fn escalate_due(tx: &Tx<'_>, now: DateTime<Utc>, limit: i32) -> Result<Vec<Breach>> {
    let rows = tx
        .query_typed(
            "SELECT item_id, team_id, contact_id, bucket, level, due_at FROM inbox_escalate_due($1, $2)",
            params![now => TIMESTAMPTZ, limit => INT4],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Breach {
            item_id: r.get(0),
            team_id: r.get(1),
            contact_id: r.get(2),
            bucket: r.get(3),
            level: r.get(4),
            due_at: r.get(5),
        })
        .collect())
}

/// Whether `item` is the contact's newest inbox item (its latest message to us).
pub async fn is_latest_for_contact(tx: &Tx<'_>, item: &InboxItemId, contact: &ContactId) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT id FROM inbox_items WHERE contact_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| r.get::<_, String>(0)).as_deref() == Some(item.as_str()))
}
