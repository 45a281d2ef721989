use nextier_domain::ids::UserId;

use crate::error::{Result, StoreError};
use crate::Tx;

/// Maps an identity-provider subject to our user, creating it on first sight. Works before
/// any team is in scope (a SECURITY DEFINER function does the cross-tenant lookup).
pub async fn resolve(tx: &Tx<'_>, subject: &str, email: Option<&str>, name: Option<&str>) -> Result<UserId> {
    let candidate = UserId::new();
    let row = tx
        .query_typed(
            "SELECT auth_resolve_user($1, $2, $3, $4)",
            params![candidate.as_str() => TEXT, subject => TEXT, email => TEXT, name => TEXT],
        )
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    Ok(UserId::from_trusted(row.get(0)))
}
