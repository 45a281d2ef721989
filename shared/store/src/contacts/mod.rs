//! Contacts and what hangs off them: phones, emails, addresses, the timeline, merges and
//! lead-state transitions. Every function runs in a tenant-scoped transaction.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, RowId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_domain::page::PageRequest;
use nextier_domain::phone::E164;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

mod merge;
mod query;

pub use merge::*;
pub use query::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phone {
    pub e164: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub carrier: Option<String>,
    pub is_primary: bool,
    pub do_not_call: bool,
    /// A-F, from phone intelligence.
    pub line_grade: Option<String>,
    /// What phone intelligence says the line is (a person's `type` is kept as given).
    #[serde(default)]
    pub line_type: Option<String>,
    /// 0-100, from phone intelligence.
    #[serde(default)]
    pub activity_score: Option<i32>,
    #[serde(default)]
    pub name_match: Option<bool>,
    #[serde(default)]
    pub graded_at: Option<DateTime<Utc>>,
    /// Where the number came from: `user`, `import`, or the provider that found it.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub sourced_at: Option<DateTime<Utc>>,
    /// Whether a text may go to it: never a landline (by its type or by phone intelligence),
    /// never a number marked do-not-contact.
    #[serde(default)]
    pub textable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactEmail {
    pub email: String,
    pub is_primary: bool,
    pub unsubscribed: bool,
    /// Where the address came from: `user`, `import`, or the provider that found it.
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub time_zone: Option<String>,
    pub is_current: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub status: String,
    pub pipeline_status: String,
    pub lead_state: LeadState,
    pub score: i32,
    pub tags: Vec<String>,
    pub source: Option<String>,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    pub needs_review: bool,
    /// raw, traced, graded, ready or rejected.
    pub enrichment_status: nextier_domain::enrichment::Status,
    /// Why it is rejected or graded (or which number made it ready).
    pub enrichment_reason: Option<String>,
    pub phones: Vec<Phone>,
    pub emails: Vec<ContactEmail>,
    pub addresses: Vec<Address>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT c.id, c.first_name, c.last_name, c.company, c.title, c.status, c.pipeline_status,
    c.lead_state::text AS lead_state, c.score, c.tags, c.source, c.custom_fields, c.needs_review,
    c.enrichment_status, c.enrichment_reason, c.created_at, c.updated_at,
    coalesce((SELECT json_agg(json_build_object('e164', p.e164, 'type', p.type, 'carrier', p.carrier,
              'isPrimary', p.is_primary, 'doNotCall', p.do_not_call, 'lineGrade', p.line_grade,
              'lineType', p.line_type, 'activityScore', p.activity_score, 'nameMatch', p.name_match,
              'gradedAt', p.graded_at, 'source', p.source, 'sourcedAt', p.sourced_at,
              'textable', NOT p.do_not_call AND p.type <> 'landline' AND p.line_type IS DISTINCT FROM 'landline')
              ORDER BY p.is_primary DESC, p.id) FROM contact_phones p WHERE p.contact_id = c.id), '[]') AS phones,
    coalesce((SELECT json_agg(json_build_object('email', e.email, 'isPrimary', e.is_primary,
              'unsubscribed', e.unsubscribed, 'source', e.source) ORDER BY e.is_primary DESC, e.id)
              FROM contact_emails e WHERE e.contact_id = c.id), '[]') AS emails,
    coalesce((SELECT json_agg(json_build_object('line1', a.line1, 'city', a.city, 'state', a.state, 'zip', a.zip,
              'timeZone', a.time_zone, 'isCurrent', a.is_current) ORDER BY a.is_current DESC, a.id)
              FROM contact_addresses a WHERE a.contact_id = c.id), '[]') AS addresses
  FROM contacts c";

fn contact(row: &Row) -> Contact {
    let json = |col: &str| row.get::<_, serde_json::Value>(col);
    Contact {
        id: ContactId::from_trusted(row.get("id")),
        first_name: row.get("first_name"),
        last_name: row.get("last_name"),
        company: row.get("company"),
        title: row.get("title"),
        status: row.get("status"),
        pipeline_status: row.get("pipeline_status"),
        lead_state: row.get::<_, &str>("lead_state").parse().unwrap_or(LeadState::New),
        score: row.get("score"),
        tags: row.get("tags"),
        source: row.get("source"),
        custom_fields: row.get("custom_fields"),
        needs_review: row.get("needs_review"),
        enrichment_status: nextier_domain::enrichment::Status::parse(row.get("enrichment_status"))
            .unwrap_or(nextier_domain::enrichment::Status::Raw),
        enrichment_reason: row.get("enrichment_reason"),
        phones: serde_json::from_value(json("phones")).unwrap_or_default(),
        emails: serde_json::from_value(json("emails")).unwrap_or_default(),
        addresses: serde_json::from_value(json("addresses")).unwrap_or_default(),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The editable scalar fields of a contact.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub status: String,
    pub pipeline_status: String,
    pub score: i32,
    pub tags: Vec<String>,
    pub source: Option<String>,
    pub custom_fields: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewPhone {
    pub e164: E164,
    pub kind: String,
    pub is_primary: bool,
}

#[derive(Debug, Clone, Default)]
pub struct NewAddress {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub fields: Fields,
    pub phones: Vec<NewPhone>,
    pub emails: Vec<String>,
    pub address: Option<NewAddress>,
    pub needs_review: bool,
}

/// Records an entry on the contact's timeline.
pub async fn record(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    kind: &str,
    data: serde_json::Value,
    actor: &str,
) -> Result<()> {
    tx.query_typed(
        "INSERT INTO contact_events (id, team_id, contact_id, kind, data, actor) VALUES ($1, $2, $3, $4, $5, $6)",
        params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, kind => TEXT,
                data => JSONB, actor => TEXT],
    )
    .await?;
    Ok(())
}

/// The provider filtered this number out as a landline or inactive: it is no longer texted
/// (marked a landline), and the contact's timeline says why.
pub async fn mark_untextable(tx: &Tx<'_>, team: &TeamId, e164: &str, reason: &str, actor: &str) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE contact_phones SET type = 'landline' WHERE e164 = $1 RETURNING contact_id",
            params![e164 => TEXT],
        )
        .await?;
    for r in &rows {
        let contact = ContactId::from_trusted(r.get(0));
        let data = serde_json::json!({"phone": e164, "reason": reason});
        record(tx, team, &contact, "phone_untextable", data, actor).await?;
    }
    Ok(())
}

/// Which contact already holds a phone number or email in this team, if any.
pub async fn holder_of_phone(tx: &Tx<'_>, e164: &E164) -> Result<Option<ContactId>> {
    let rows =
        tx.query_typed("SELECT contact_id FROM contact_phones WHERE e164 = $1", params![e164.as_str() => TEXT]).await?;
    Ok(rows.first().map(|r| ContactId::from_trusted(r.get(0))))
}

pub async fn holder_of_email(tx: &Tx<'_>, email: &str) -> Result<Option<ContactId>> {
    let rows = tx.query_typed("SELECT contact_id FROM contact_emails WHERE email = $1", params![email => TEXT]).await?;
    Ok(rows.first().map(|r| ContactId::from_trusted(r.get(0))))
}

pub async fn create(tx: &Tx<'_>, team: &TeamId, new: &NewContact, actor: &str) -> Result<ContactId> {
    let id = ContactId::new();
    let f = &new.fields;
    tx.query_typed(
        "INSERT INTO contacts (id, team_id, first_name, last_name, company, title, status, pipeline_status, score,
                               tags, source, custom_fields, needs_review)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, f.first_name => TEXT, f.last_name => TEXT,
                f.company => TEXT, f.title => TEXT, f.status => TEXT, f.pipeline_status => TEXT, f.score => INT4,
                f.tags => TEXT_ARRAY, f.source => TEXT, f.custom_fields => JSONB, new.needs_review => BOOL],
    )
    .await?;
    for (i, p) in new.phones.iter().enumerate() {
        add_phone(tx, team, &id, p).await.map_err(|e| match e {
            StoreError::Conflict(m) => StoreError::Conflict(format!("phones[{i}]: {m}")),
            other => other,
        })?;
    }
    for (i, email) in new.emails.iter().enumerate() {
        add_email(tx, team, &id, email, i == 0).await.map_err(|e| match e {
            StoreError::Conflict(m) => StoreError::Conflict(format!("emails[{i}]: {m}")),
            other => other,
        })?;
    }
    if let Some(a) = &new.address {
        tx.query_typed(
            "INSERT INTO contact_addresses (id, team_id, contact_id, line1, city, state, zip) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, id.as_str() => TEXT, a.line1 => TEXT,
                    a.city => TEXT, a.state => TEXT, a.zip => TEXT],
        )
        .await?;
    }
    record(tx, team, &id, "created", serde_json::json!({"source": f.source}), actor).await?;
    Ok(id)
}

/// Attaches a phone; a number another contact of the team holds is a conflict naming it.
/// (`ON CONFLICT DO NOTHING` rather than catching the violation: an error would abort the
/// transaction before the holder could be looked up.)
pub async fn add_phone(tx: &Tx<'_>, team: &TeamId, contact: &ContactId, p: &NewPhone) -> Result<()> {
    let inserted = tx
        .query_typed(
            "INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
             VALUES ($1, $2, $3, $4, $5::phone_type, $6) ON CONFLICT (team_id, e164) DO NOTHING RETURNING 1",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT,
                    p.e164.as_str() => TEXT, p.kind => TEXT, p.is_primary => BOOL],
        )
        .await?;
    if inserted.is_empty() {
        let holder = holder_of_phone(tx, &p.e164).await?.map(|c| c.to_string()).unwrap_or_default();
        return Err(StoreError::Conflict(format!("{} already belongs to contact {holder}", p.e164)));
    }
    Ok(())
}

pub async fn add_email(tx: &Tx<'_>, team: &TeamId, contact: &ContactId, email: &str, primary: bool) -> Result<()> {
    let inserted = tx
        .query_typed(
            "INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (team_id, email) DO NOTHING RETURNING 1",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, email => TEXT,
                    primary => BOOL],
        )
        .await?;
    if inserted.is_empty() {
        let holder = holder_of_email(tx, email).await?.map(|c| c.to_string()).unwrap_or_default();
        return Err(StoreError::Conflict(format!("{email} already belongs to contact {holder}")));
    }
    Ok(())
}

pub async fn get(tx: &Tx<'_>, id: &ContactId) -> Result<Contact> {
    let rows = tx
        .query_typed(&format!("{SELECT} WHERE c.id = $1 AND c.deleted_at IS NULL"), params![id.as_str() => TEXT])
        .await?;
    rows.first().map(contact).ok_or(StoreError::NotFound)
}

/// A contact whether or not it was deleted, and whether it was: compliance (an opt-out, its
/// confirmation) applies to a deleted contact too.
pub async fn get_any(tx: &Tx<'_>, id: &ContactId) -> Result<(Contact, bool)> {
    let rows = tx
        .query_typed(
            &format!("SELECT * FROM ({SELECT} WHERE c.id = $1) x, (SELECT deleted_at IS NOT NULL AS deleted FROM contacts WHERE id = $1) d"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(|r| (contact(r), r.get::<_, bool>("deleted"))).ok_or(StoreError::NotFound)
}

/// Locks a live contact for a change and returns it, in one round trip.
pub async fn lock(tx: &Tx<'_>, id: &ContactId) -> Result<Contact> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE c.id = $1 AND c.deleted_at IS NULL FOR UPDATE OF c"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(contact).ok_or(StoreError::NotFound)
}

/// Writes the scalar fields; returns whether anything changed.
pub async fn update(tx: &Tx<'_>, id: &ContactId, f: &Fields) -> Result<bool> {
    let rows = tx
        .query_typed(
            "UPDATE contacts SET first_name = $2, last_name = $3, company = $4, title = $5, status = $6,
                    pipeline_status = $7, score = $8, tags = $9, source = $10, custom_fields = $11, updated_at = now(),
                    edited_at = now()
              WHERE id = $1 AND deleted_at IS NULL
                AND (first_name, last_name, company, title, status, pipeline_status, score, tags, source, custom_fields)
                    IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
              RETURNING 1",
            params![id.as_str() => TEXT, f.first_name => TEXT, f.last_name => TEXT, f.company => TEXT,
                    f.title => TEXT, f.status => TEXT, f.pipeline_status => TEXT, f.score => INT4,
                    f.tags => TEXT_ARRAY, f.source => TEXT, f.custom_fields => JSONB],
        )
        .await?;
    Ok(!rows.is_empty())
}

pub async fn soft_delete(tx: &Tx<'_>, id: &ContactId) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE contacts SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING 1",
            params![id.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Moves a contact to another lead state if the transition table allows it.
pub async fn transition(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &ContactId,
    to: LeadState,
    reason: Option<&str>,
    actor: &str,
) -> Result<(LeadState, LeadState)> {
    let current = lock(tx, id).await?;
    let from = current.lead_state;
    if !from.can_move_to(to) {
        return Err(StoreError::Conflict(format!("a contact cannot move from {from} to {to}")));
    }
    tx.query_typed(
        "UPDATE contacts SET lead_state = $2::lead_state, updated_at = now() WHERE id = $1",
        params![id.as_str() => TEXT, to.as_str() => TEXT],
    )
    .await?;
    record(tx, team, id, "lead_state_changed", serde_json::json!({"from": from, "to": to, "reason": reason}), actor)
        .await?;
    Ok((from, to))
}

/// A suppressed contact who opted back in (START): consent is given again, which the lead
/// state machine (where `suppressed` is terminal) cannot express, so this is its own move,
/// recorded on the timeline. Returns whether the contact was suppressed.
pub async fn reinstate(tx: &Tx<'_>, team: &TeamId, id: &ContactId, reason: &str, actor: &str) -> Result<bool> {
    let rows = tx
        .query_typed(
            "UPDATE contacts SET lead_state = 'responded', updated_at = now()
              WHERE id = $1 AND lead_state = 'suppressed' RETURNING id",
            params![id.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Ok(false);
    }
    record(
        tx,
        team,
        id,
        "lead_state_changed",
        serde_json::json!({"from": "suppressed", "to": "responded", "reason": reason}),
        actor,
    )
    .await?;
    Ok(true)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    pub id: RowId,
    pub kind: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

/// The contact's timeline, newest first.
pub async fn timeline(tx: &Tx<'_>, id: &ContactId, page: &PageRequest) -> Result<Vec<TimelineEntry>> {
    let before = page.after.as_deref().unwrap_or("row_~");
    let rows = tx
        .query_typed(
            "SELECT id, kind, data, actor, created_at FROM contact_events
              WHERE contact_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            params![id.as_str() => TEXT, before => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TimelineEntry {
            id: RowId::from_trusted(r.get(0)),
            kind: r.get(1),
            data: r.get(2),
            actor: r.get(3),
            at: r.get(4),
        })
        .collect())
}

/// Records a phone's carrier where none is known yet.
pub async fn set_carrier_if_unknown(tx: &Tx<'_>, contact: &ContactId, e164: &str, carrier: &str) -> Result<()> {
    tx.query_typed(
        "UPDATE contact_phones SET carrier = $3 WHERE contact_id = $1 AND e164 = $2 AND carrier IS NULL",
        params![contact.as_str() => TEXT, e164 => TEXT, carrier => TEXT],
    )
    .await?;
    Ok(())
}

/// Replies from one number to a team are worked one at a time, until the transaction ends
/// (so concurrent replies from an unknown number make one contact, and a conversation is
/// read in order).
pub async fn serialize_replies_from(tx: &Tx<'_>, team: &TeamId, from: &str) -> Result<()> {
    reply_lock(tx, &format!("inbound:{team}:{from}")).await
}

/// Replies to one person are worked one at a time, whichever of their numbers they came from,
/// until the transaction ends.
pub async fn serialize_replies_to(tx: &Tx<'_>, contact: &ContactId) -> Result<()> {
    reply_lock(tx, &format!("inbound-contact:{contact}")).await
}

/// A transaction-level advisory lock in the reply path's key space (seed 7).
async fn reply_lock(tx: &Tx<'_>, key: &str) -> Result<()> {
    tx.query_typed("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", params![key => TEXT]).await?;
    Ok(())
}

/// Moves a contact's score by `delta` (kept within 0..=100) and adds `labels` to its tags.
pub async fn add_score_and_tags(tx: &Tx<'_>, contact: &ContactId, delta: i32, labels: &[String]) -> Result<()> {
    tx.query_typed(
        "UPDATE contacts SET score = least(greatest(score + $2, 0), 100),
                tags = ARRAY(SELECT DISTINCT unnest(tags || $3::text[])), updated_at = now()
          WHERE id = $1",
        params![contact.as_str() => TEXT, delta => INT4, labels => TEXT_ARRAY],
    )
    .await?;
    Ok(())
}
