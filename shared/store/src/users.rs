use nextier_domain::ids::UserId;

use crate::error::{Result, StoreError};
use crate::Tx;

/// Maps an identity-provider subject to our user (creating it on first sight; a SECURITY
/// DEFINER function does the cross-tenant lookup) and scopes the transaction to that user
/// (and to `team`, if given) in one round trip. Both settings are written explicitly, so
/// nothing from before can linger.
pub async fn resolve_scoped(
    tx: &Tx<'_>,
    subject: &str,
    email: Option<&str>,
    name: Option<&str>,
    team: Option<&nextier_domain::ids::TeamId>,
) -> Result<UserId> {
    let candidate = UserId::new();
    let team = team.map(|t| t.as_str()).unwrap_or("");
    let row = tx
        .query_typed(
            "SELECT u.id, set_config('app.user_id', u.id, true), set_config('app.team_id', $5, true)
               FROM (SELECT auth_resolve_user($1, $2, $3, $4) AS id) u",
            params![candidate.as_str() => TEXT, subject => TEXT, email => TEXT, name => TEXT, team => TEXT],
        )
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    Ok(UserId::from_trusted(row.get(0)))
}
