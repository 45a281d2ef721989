//! Opening a request's transaction with the caller's access established: the user is
//! resolved, membership and role (or the API key's team and scopes) are checked, and the
//! transaction is scoped for row-level security. One call, so no route can forget a step.

use deadpool_postgres::{Object, Transaction};
use nextier_domain::access::{Authority, Permission};
use nextier_domain::api_key;
use nextier_domain::ids::{ApiKeyId, TeamId, UserId};
use nextier_domain::team::Role;
use nextier_store::{api_keys, users, StoreError};

use crate::auth::Credential;
use crate::ApiError;

/// Who acted, for audit columns and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    Key(ApiKeyId),
}

impl Actor {
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Actor::User(u) => Some(u),
            Actor::Key(_) => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Actor::User(u) => u.to_string(),
            Actor::Key(k) => k.to_string(),
        }
    }
}

/// The caller's standing in one team.
#[derive(Debug, Clone)]
pub struct TeamAccess {
    pub team: TeamId,
    pub actor: Actor,
    pub authority: Authority,
}

impl TeamAccess {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.authority.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match &self.authority {
                Authority::Member(role) => {
                    format!("your role ({role}) does not allow this; it needs {}", permission.min_role())
                }
                Authority::Key(_) => format!("this API key lacks the scope {}", permission.scope().as_str()),
            }))
        }
    }

    pub fn role(&self) -> Role {
        self.authority.effective_role()
    }
}

fn no_team() -> ApiError {
    // The same answer whether the team does not exist or the caller is not in it.
    ApiError::NotFound("no such team".into())
}

/// Opens a transaction scoped to `team` for a caller who holds `permission` there.
/// Non-members get 404 (no hint that the team exists); members without the permission 403.
pub async fn open_team<'c>(
    conn: &'c mut Object,
    credential: &Credential,
    team: &TeamId,
    permission: Permission,
) -> Result<(Transaction<'c>, TeamAccess), ApiError> {
    // A plain BEGIN: the lookup below writes both tenant settings in the same round trip.
    let tx = conn.transaction().await.map_err(StoreError::from)?;
    let access = match credential {
        Credential::User(claims) => {
            let (email, name) = (claims.email.as_deref(), claims.name.as_deref());
            let (user, role) = users::resolve_member(&tx, &claims.subject, email, name, team).await?;
            let role = role.ok_or_else(no_team)?;
            TeamAccess { team: team.clone(), actor: Actor::User(user), authority: Authority::Member(role) }
        }
        Credential::ApiKey(raw) => {
            let key = match api_key::looks_like_key(raw) {
                true => api_keys::resolve_scoped(&tx, &api_key::hash(raw), team).await?,
                false => None,
            }
            .ok_or_else(|| ApiError::Unauthorized("the API key is invalid, expired or revoked".into()))?;
            if &key.team != team {
                return Err(no_team());
            }
            TeamAccess { team: team.clone(), actor: Actor::Key(key.id), authority: Authority::Key(key.scopes) }
        }
    };
    tracing::Span::current().record("team_id", team.as_str());
    access.require(permission)?;
    crate::limits::check(&tx, &access).await?;
    Ok((tx, access))
}

/// Opens a transaction for routes that act as a person before any team is chosen (list my
/// teams, create a team, accept an invitation). API keys belong to a team, not a person.
pub async fn open_user<'c>(
    conn: &'c mut Object,
    credential: &Credential,
) -> Result<(Transaction<'c>, UserId), ApiError> {
    let Credential::User(claims) = credential else {
        return Err(ApiError::Forbidden("this route needs a signed-in user, not an API key".into()));
    };
    let tx = conn.transaction().await.map_err(StoreError::from)?;
    let user =
        users::resolve_scoped(&tx, &claims.subject, claims.email.as_deref(), claims.name.as_deref(), None).await?;
    Ok((tx, user))
}
