//! Whether a resource that sub-collections and actions hang off is visible to the team of
//! the transaction. Row-level security hides other teams' rows, so another team's id and a
//! missing one look the same here: both are [`StoreError::NotFound`].

use nextier_domain::ids::{CampaignId, ContactId, DialerSessionId, InboxItemId};

use crate::error::{Result, StoreError};
use crate::Tx;

/// A resource named in a route.
#[derive(Debug, Clone, Copy)]
pub enum Parent<'a> {
    /// A live (not deleted) contact.
    Contact(&'a ContactId),
    Campaign(&'a CampaignId),
    InboxItem(&'a InboxItemId),
    DialerSession(&'a DialerSessionId),
}

impl Parent<'_> {
    /// What the caller asked for, in words.
    pub fn noun(&self) -> &'static str {
        match self {
            Parent::Contact(_) => "contact",
            Parent::Campaign(_) => "campaign",
            Parent::InboxItem(_) => "inbox item",
            Parent::DialerSession(_) => "dialer session",
        }
    }

    fn query(&self) -> (&'static str, &str) {
        match self {
            Parent::Contact(id) => ("SELECT 1 FROM contacts WHERE id = $1 AND deleted_at IS NULL", id.as_str()),
            Parent::Campaign(id) => ("SELECT 1 FROM campaigns WHERE id = $1", id.as_str()),
            Parent::InboxItem(id) => ("SELECT 1 FROM inbox_items WHERE id = $1", id.as_str()),
            Parent::DialerSession(id) => ("SELECT 1 FROM dialer_sessions WHERE id = $1", id.as_str()),
        }
    }
}

/// `Ok` when the team holds `parent`, [`StoreError::NotFound`] otherwise.
pub async fn require(tx: &Tx<'_>, parent: Parent<'_>) -> Result<()> {
    let (sql, id) = parent.query();
    let rows = tx.query_typed(sql, params![id => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The position of the first id in `ids` that is not a live contact of the team, if any
/// (lists of contacts are all-or-nothing: one unknown id refuses the whole request).
pub async fn first_missing_contact(tx: &Tx<'_>, ids: &[ContactId]) -> Result<Option<usize>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let rows = tx
        .query_typed(
            "SELECT n FROM unnest($1::text[]) WITH ORDINALITY AS x(id, n)
              WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = x.id AND c.deleted_at IS NULL)
              ORDER BY n LIMIT 1",
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.first().map(|r| r.get::<_, i64>(0) as usize - 1))
}
