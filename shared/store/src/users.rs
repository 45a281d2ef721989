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

/// For a request on `team`: resolves the person (as [`resolve_scoped`]) and reads their
/// approved role there, scoping the transaction to the user and — only when they are an
/// approved member — to the team, in one round trip. `None` role: not (yet) a member.
pub async fn resolve_member(
    tx: &Tx<'_>,
    subject: &str,
    email: Option<&str>,
    name: Option<&str>,
    team: &nextier_domain::ids::TeamId,
) -> Result<(UserId, Option<nextier_domain::team::Role>)> {
    let candidate = UserId::new();
    let row = tx
        .query_typed(
            "SELECT a.user_id, a.role, set_config('app.user_id', a.user_id, true),
                    set_config('app.team_id', CASE WHEN a.role IS NULL THEN '' ELSE $5 END, true)
               FROM auth_team_member($1, $2, $3, $4, $5) a",
            params![candidate.as_str() => TEXT, subject => TEXT, email => TEXT, name => TEXT, team.as_str() => TEXT],
        )
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    let role = row.get::<_, Option<&str>>(1).and_then(|r| r.parse().ok());
    Ok((UserId::from_trusted(row.get(0)), role))
}
