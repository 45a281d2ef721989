//! A person's revocation of consent, wherever it comes from (a STOP from any of their numbers,
//! an unsubscribe, a person telling a caller, an ADMIN recording a legal do-not-contact): it
//! is the person's, on every number and address and every channel, whatever their lead state,
//! deleted or not. One function does all of it, so no path can do half.

use nextier_domain::ids::{CampaignId, ContactId, TeamId};
use nextier_domain::suppression::Kind;

use crate::error::Result;
use crate::suppressions::{self, NewSuppression, Suppression};
use crate::{calls, campaigns, contacts, Tx};

/// Who revoked, how and why.
#[derive(Debug, Clone, Copy)]
pub struct Revocation<'a> {
    /// OPTED_OUT or LEGAL_DNC.
    pub kind: Kind,
    pub reason: Option<&'a str>,
    /// `inbound_reply`, `email_unsubscribe`, `api`, `lead_state`, ...
    pub source: &'a str,
    pub actor: &'a str,
    /// The message that asked (a STOP), when one did.
    pub message: Option<&'a str>,
}

/// What the revocation did.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// One entry per number and address of the person (and the one that asked).
    pub entries: Vec<Suppression>,
    pub campaigns_exited: Vec<CampaignId>,
    pub calls_cancelled: u64,
    /// Whether the contact's lead state moved to `suppressed` now.
    pub newly_suppressed: bool,
}

impl Revoked {
    /// The entry of one address.
    pub fn entry(&self, address: &str) -> Option<&Suppression> {
        self.entries.iter().find(|s| s.address == address)
    }
}

/// Every number and address the contact has ever been given, deleted contacts included.
pub async fn addresses_of(tx: &Tx<'_>, contact: &ContactId) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT e164 FROM contact_phones WHERE contact_id = $1
             UNION SELECT email FROM contact_emails WHERE contact_id = $1",
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// After a lift: whether any revocation is left on the person's numbers and addresses; when
/// none is, a contact that was `suppressed` is reinstated (consent is back).
pub async fn after_lift(tx: &Tx<'_>, team: &TeamId, contact: &ContactId, reason: &str, actor: &str) -> Result<bool> {
    let addresses = addresses_of(tx, contact).await?;
    if suppressions::revocation_among(tx, &addresses).await?.is_some() {
        return Ok(false);
    }
    contacts::reinstate(tx, team, contact, reason, actor).await
}

/// Revokes consent for the whole person: every phone and email (and `asked_from`, the address
/// the request came from) is suppressed with `r.kind`, keeping any stronger entry; every live
/// enrolment in every campaign of the team ends; open call-queue entries are cancelled; the
/// contact's lead state becomes `suppressed` from any state (an opt-out is a fact, not a
/// pipeline move), deleted contacts included.
pub async fn revoke(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    asked_from: Option<&str>,
    r: &Revocation<'_>,
) -> Result<Revoked> {
    let mut addresses = addresses_of(tx, contact).await?;
    if let Some(a) = asked_from {
        if !addresses.iter().any(|x| x == a) {
            addresses.push(a.to_owned());
        }
    }
    let template = NewSuppression {
        address: "",
        kind: r.kind.as_str(),
        reason: r.reason,
        source: r.source,
        actor: r.actor,
        expires_at: None,
        source_message: r.message,
    };
    let entries = suppressions::add_all(tx, team, &addresses, &template).await?;
    let why = if r.kind == Kind::OptedOut { "opt_out".to_owned() } else { format!("suppressed: {}", r.kind) };
    let campaigns_exited = campaigns::exit_contact(tx, contact, &why).await?;
    let calls_cancelled = calls::cancel_for_contact(tx, contact, &why).await?;
    let rows = tx
        .query_typed(
            "UPDATE contacts c SET lead_state = 'suppressed', updated_at = now()
               FROM (SELECT id, lead_state FROM contacts WHERE id = $1 FOR UPDATE) before
              WHERE c.id = before.id AND before.lead_state <> 'suppressed'
             RETURNING before.lead_state::text",
            params![contact.as_str() => TEXT],
        )
        .await?;
    let newly_suppressed = !rows.is_empty();
    if let Some(row) = rows.first() {
        let from: String = row.get(0);
        let data = serde_json::json!({"from": from, "to": "suppressed", "reason": r.reason.unwrap_or(r.source),
                                      "kind": r.kind.as_str(), "message": r.message});
        contacts::record(tx, team, contact, "lead_state_changed", data, r.actor).await?;
    }
    Ok(Revoked { entries, campaigns_exited, calls_cancelled, newly_suppressed })
}
