//! The team's suppression list: numbers and addresses that get nothing from any campaign of
//! the team. Adding and checking take a transaction-level advisory lock on (team, address),
//! exclusive to add and shared to check, so a send and an opt-out of the same number are
//! ordered: a send that checked before the opt-out committed is recorded before it, and any
//! send after it sees it.
//!
//! Entries only get stronger (`nextier_domain::suppression`): adding over an entry keeps the
//! stronger kind and the original provenance, and a permanent kind never gets an expiry. The
//! database enforces the same (migration 0013), and records every change in
//! `suppression_audit` with who, why, from where and the message that asked.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{RowId, TeamId};
use nextier_domain::page::PageRequest;
use nextier_domain::suppression::Kind;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// Every kind, weakest first.
pub const KINDS: [&str; 5] = ["WRONG_NUMBER", "BOUNCED", "BLACKLIST", "OPTED_OUT", "LEGAL_DNC"];

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub id: RowId,
    pub address: String,
    pub kind: Kind,
    pub reason: Option<String>,
    pub source: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The message that asked for it (a STOP, an unsubscribe), when one did.
    pub source_message_id: Option<String>,
    /// The `ContactOptedOut` event this change staged (a new or stronger revocation): publish
    /// it after commit, else the sweeper does.
    #[serde(skip)]
    pub event: Option<nextier_domain::ids::OutboxId>,
}

impl Suppression {
    /// A person's revocation of consent or a legal do-not-contact.
    pub fn is_opt_out(&self) -> bool {
        self.kind.is_revocation()
    }

    /// Why the gate refuses a message to this address.
    pub fn block_reason(&self) -> String {
        if self.kind == Kind::OptedOut {
            "opt_out".to_owned()
        } else {
            format!("suppressed: {}", self.kind)
        }
    }
}

fn suppression(r: &Row) -> Suppression {
    Suppression {
        id: RowId::from_trusted(r.get("id")),
        address: r.get("address"),
        // The database allows only these kinds (a CHECK); were another to appear, it would
        // count as the strongest, so that nothing is sent on a misreading.
        kind: Kind::parse(r.get("kind")).unwrap_or(Kind::LegalDnc),
        reason: r.get("reason"),
        source: r.get("source"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        source_message_id: r.get("source_message_id"),
        event: None,
    }
}

const COLS: &str = "id, address, kind, reason, source, created_by, created_at, expires_at, source_message_id";

fn lock_key(team: &TeamId, address: &str) -> String {
    format!("suppression:{team}:{address}")
}

async fn lock(tx: &Tx<'_>, team: &TeamId, address: &str, exclusive: bool) -> Result<()> {
    let f = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
    tx.query_typed(&format!("SELECT {f}(hashtextextended($1, 0))"), params![lock_key(team, address) => TEXT]).await?;
    Ok(())
}

/// Who changes the list, and why: read by the audit trigger for the next statement.
#[derive(Debug, Clone, Copy)]
pub struct Provenance<'a> {
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    pub source: &'a str,
    pub message: Option<&'a str>,
}

/// The exclusive lock on the address, and the provenance the audit trigger records, in one
/// round trip.
async fn lock_for_change(tx: &Tx<'_>, team: &TeamId, address: &str, p: &Provenance<'_>) -> Result<()> {
    tx.query_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)),
                set_config('app.suppression_actor', $2, true), set_config('app.suppression_reason', $3, true),
                set_config('app.suppression_source', $4, true), set_config('app.suppression_message', $5, true)",
        params![lock_key(team, address) => TEXT, p.actor => TEXT, p.reason.unwrap_or("") => TEXT,
                p.source => TEXT, p.message.unwrap_or("") => TEXT],
    )
    .await?;
    Ok(())
}

/// What to add.
#[derive(Debug, Clone)]
pub struct NewSuppression<'a> {
    pub address: &'a str,
    pub kind: &'a str,
    pub reason: Option<&'a str>,
    pub source: &'a str,
    pub actor: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    /// The message that asked for it (a STOP, an unsubscribe).
    pub source_message: Option<&'a str>,
}

/// Adds a suppression, or strengthens the one there: the stronger kind wins, a permanent kind
/// never gets an expiry, the same kind again lasts the longer of the two, and an entry that
/// only repeats keeps its original provenance (the first STOP stays the record). What had
/// lapsed is replaced.
pub async fn add(tx: &Tx<'_>, team: &TeamId, s: &NewSuppression<'_>) -> Result<Suppression> {
    let (mut added, changed) = add_one(tx, team, s).await?;
    if changed && added.kind.is_revocation() {
        added.event = Some(opted_out(tx, team, std::slice::from_ref(&added)).await?);
    }
    Ok(added)
}

/// A new or stronger opt-out is an event (the team's webhooks, its feed): one per person's
/// revocation, naming every address it covers and the contacts that hold them.
async fn opted_out(tx: &Tx<'_>, team: &TeamId, entries: &[Suppression]) -> Result<nextier_domain::ids::OutboxId> {
    let addresses: Vec<String> = entries.iter().map(|e| e.address.clone()).collect();
    let contacts = tx
        .query_typed(
            "SELECT contact_id FROM contact_phones WHERE e164 = ANY($1)
             UNION SELECT contact_id FROM contact_emails WHERE email = ANY($1) ORDER BY 1",
            params![addresses => TEXT_ARRAY],
        )
        .await?;
    let contacts: Vec<String> = contacts.iter().map(|r| r.get(0)).collect();
    let first = &entries[0];
    let data = serde_json::json!({
        "address": first.address, "addresses": addresses, "kind": first.kind.as_str(), "source": first.source,
        "reason": first.reason, "contactIds": contacts,
    });
    crate::outbox::stage_for_team(
        tx,
        team,
        crate::outbox::Destination::Event("ContactOptedOut".into()),
        data,
        format!("opt-out-{}", first.id),
    )
    .await
}

/// Adds or strengthens one entry; whether it changed (new, or stronger, or renewed).
async fn add_one(tx: &Tx<'_>, team: &TeamId, s: &NewSuppression<'_>) -> Result<(Suppression, bool)> {
    let kind =
        Kind::parse(s.kind).ok_or_else(|| StoreError::Conflict(format!("unknown suppression kind {}", s.kind)))?;
    let expires_at = if kind.is_permanent() { None } else { s.expires_at };
    let p = Provenance { actor: s.actor, reason: s.reason, source: s.source, message: s.source_message };
    lock_for_change(tx, team, s.address, &p).await?;
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO suppressions AS o (id, team_id, address, kind, reason, source, created_by, expires_at,
                                                source_message_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (team_id, address) DO UPDATE SET
                   (kind, reason, source, created_by, created_at, source_message_id, expires_at) =
                   (SELECT CASE WHEN up THEN excluded.kind ELSE o.kind END,
                           CASE WHEN up THEN excluded.reason ELSE o.reason END,
                           CASE WHEN up THEN excluded.source ELSE o.source END,
                           CASE WHEN up THEN excluded.created_by ELSE o.created_by END,
                           CASE WHEN up THEN clock_timestamp() ELSE o.created_at END,
                           CASE WHEN up THEN excluded.source_message_id ELSE o.source_message_id END,
                           CASE WHEN up THEN excluded.expires_at
                                WHEN suppression_rank(o.kind) >= 3 THEN NULL
                                WHEN suppression_rank(excluded.kind) < suppression_rank(o.kind) THEN o.expires_at
                                WHEN o.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                                ELSE greatest(o.expires_at, excluded.expires_at) END
                      FROM (SELECT (o.expires_at IS NOT NULL AND o.expires_at <= now())
                                   OR suppression_rank(excluded.kind) > suppression_rank(o.kind) AS up) d)
                 RETURNING {COLS}, (xmax = 0 OR created_at >= statement_timestamp()) AS changed"
            ),
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, s.address => TEXT, s.kind => TEXT,
                    s.reason => TEXT, s.source => TEXT, s.actor => TEXT, expires_at => TIMESTAMPTZ,
                    s.source_message => TEXT],
        )
        .await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    Ok((suppression(row), row.get::<_, bool>("changed")))
}

/// Puts every given address of one person on the list with the same kind and provenance (an
/// opt-out is the person's, on every number and address). Locks are taken in address order,
/// so two of these over overlapping addresses cannot deadlock. Returns the entries in the
/// order of `addresses`.
pub async fn add_all(
    tx: &Tx<'_>,
    team: &TeamId,
    addresses: &[String],
    template: &NewSuppression<'_>,
) -> Result<Vec<Suppression>> {
    let mut sorted: Vec<&String> = addresses.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut added = Vec::with_capacity(sorted.len());
    let mut changed = false;
    for address in sorted {
        let (s, c) = add_one(tx, team, &NewSuppression { address, ..template.clone() }).await?;
        changed |= c;
        added.push(s);
    }
    added.sort_by_key(|s| addresses.iter().position(|a| *a == s.address));
    if changed && added.first().is_some_and(|s| s.kind.is_revocation()) {
        let event = opted_out(tx, team, &added).await?;
        added[0].event = Some(event);
    }
    Ok(added)
}

/// The active suppression of an address at `now`, if any. Takes the shared lock first, in
/// its own statement: under READ COMMITTED each statement reads from a snapshot taken when it
/// starts, so the read must start after the lock is granted to see an opt-out that committed
/// while this transaction waited for it.
pub async fn active(tx: &Tx<'_>, team: &TeamId, address: &str, now: DateTime<Utc>) -> Result<Option<Suppression>> {
    lock(tx, team, address, false).await?;
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM suppressions WHERE address = $1 AND (expires_at IS NULL OR expires_at > $2)"),
            params![address => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(suppression))
}

/// The strongest revocation (OPTED_OUT or LEGAL_DNC) on any of a person's addresses: one on
/// any number or address stops every channel to all of them, including an address added
/// after it.
pub async fn revocation_among(tx: &Tx<'_>, addresses: &[String]) -> Result<Option<Suppression>> {
    if addresses.is_empty() {
        return Ok(None);
    }
    let rows = tx
        .query_typed(
            &format!(
                "SELECT {COLS} FROM suppressions WHERE address = ANY($1) AND suppression_rank(kind) >= 3
                  ORDER BY suppression_rank(kind) DESC, created_at LIMIT 1"
            ),
            params![addresses => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.first().map(suppression))
}

/// Lifts a suppression, with the reason the audit keeps (a permanent kind cannot be lifted
/// without one: the database refuses). Returns what was lifted.
pub async fn lift(tx: &Tx<'_>, team: &TeamId, address: &str, p: &Provenance<'_>) -> Result<Suppression> {
    if p.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(StoreError::Conflict("lifting a suppression needs a reason".into()));
    }
    lock_for_change(tx, team, address, p).await?;
    let rows = tx
        .query_typed(&format!("DELETE FROM suppressions WHERE address = $1 RETURNING {COLS}"), params![address => TEXT])
        .await?;
    rows.first().map(suppression).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Suppression>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {COLS} FROM suppressions WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(suppression).collect())
}

/// One change to the list, as the audit keeps it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub address: String,
    /// add, strengthen, repeat or lift.
    pub action: String,
    pub kind: String,
    pub previous_kind: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub actor: String,
    pub reason: Option<String>,
    pub source: String,
    pub source_message_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// The audit of the team's list (of one address when given), oldest first.
pub async fn audit(tx: &Tx<'_>, address: Option<&str>, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
    let rows = tx
        .query_typed(
            "SELECT id, address, action, kind, previous_kind, expires_at, previous_expires_at, actor, reason, source,
                    source_message_id, at
               FROM suppression_audit WHERE ($1::text IS NULL OR address = $1) AND id > $2 ORDER BY id LIMIT $3",
            params![address => TEXT, after => INT8, limit => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get("id"),
            address: r.get("address"),
            action: r.get("action"),
            kind: r.get("kind"),
            previous_kind: r.get("previous_kind"),
            expires_at: r.get("expires_at"),
            previous_expires_at: r.get("previous_expires_at"),
            actor: r.get("actor"),
            reason: r.get("reason"),
            source: r.get("source"),
            source_message_id: r.get("source_message_id"),
            at: r.get("at"),
        })
        .collect())
}
