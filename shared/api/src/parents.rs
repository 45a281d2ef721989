//! The one check that a route's named resource belongs to the caller's team, made inside the
//! team's transaction: another team's id answers exactly like a missing one (404), and a
//! sub-collection of a resource the team does not hold is 404, never an empty 200.

use nextier_domain::ids::ContactId;
use nextier_http::ApiError;
use nextier_store::parents::{self, Parent};
use nextier_store::{StoreError, Tx};

pub async fn require(tx: &Tx<'_>, parent: Parent<'_>) -> Result<(), ApiError> {
    parents::require(tx, parent).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no such {}", parent.noun())),
        other => other.into(),
    })
}

/// Every id in `ids` (the body's `field`) must be a live contact of the team; else 404 naming
/// the first that is not.
pub async fn require_contacts(tx: &Tx<'_>, field: &str, ids: &[ContactId]) -> Result<(), ApiError> {
    match parents::first_missing_contact(tx, ids).await? {
        Some(i) => Err(ApiError::NotFound(format!("{field}[{i}]: no such contact; nothing was changed"))),
        None => Ok(()),
    }
}
