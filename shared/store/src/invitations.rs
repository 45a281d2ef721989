use chrono::{DateTime, Utc};
use nextier_domain::ids::{InvitationId, TeamId, UserId};
use nextier_domain::page::PageRequest;
use nextier_domain::team::Role;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: InvitationId,
    pub team_id: TeamId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

fn invitation(row: &Row) -> Invitation {
    Invitation {
        id: InvitationId::from_trusted(row.get("id")),
        team_id: TeamId::from_trusted(row.get("team_id")),
        email: row.get("email"),
        role: row.get::<_, &str>("role").parse().unwrap_or(Role::Member),
        invited_by: UserId::from_trusted(row.get("invited_by")),
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
    }
}

const COLUMNS: &str = "id, team_id, email, role::text AS role, invited_by, expires_at, created_at";

pub struct NewInvitation<'a> {
    pub team: &'a TeamId,
    pub email: &'a str,
    pub role: Role,
    pub token_hash: &'a str,
    pub invited_by: &'a UserId,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(tx: &Tx<'_>, new: &NewInvitation<'_>) -> Result<Invitation> {
    // An expired open invitation for the same address would block the unique index: close it.
    tx.query_typed(
        "UPDATE team_invitations SET revoked_at = now()
          WHERE team_id = $1 AND lower(email) = lower($2) AND accepted_at IS NULL
            AND revoked_at IS NULL AND expires_at <= now()",
        params![new.team.as_str() => TEXT, new.email => TEXT],
    )
    .await?;
    let id = InvitationId::new();
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO team_invitations (id, team_id, email, role, token_hash, invited_by, expires_at)
                 VALUES ($1, $2, $3, $4::member_role, $5, $6, $7) RETURNING {COLUMNS}"
            ),
            params![id.as_str() => TEXT, new.team.as_str() => TEXT, new.email => TEXT, new.role.as_str() => TEXT,
                    new.token_hash => TEXT, new.invited_by.as_str() => TEXT, new.expires_at => TIMESTAMPTZ],
        )
        .await
        .map_err(|e| {
            StoreError::unique(e, "team_invitations_open_idx", "this address already has an open invitation")
        })?;
    rows.first().map(invitation).ok_or(StoreError::NotFound)
}

/// Open (not accepted, not revoked, not expired) invitations, in id order.
pub async fn list_open(tx: &Tx<'_>, team: &TeamId, page: &PageRequest) -> Result<Vec<Invitation>> {
    let after = page.after.as_deref().unwrap_or("");
    let rows = tx
        .query_typed(
            &format!(
                "SELECT {COLUMNS} FROM team_invitations
                  WHERE team_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
                    AND id > $2 ORDER BY id LIMIT $3"
            ),
            params![team.as_str() => TEXT, after => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(invitation).collect())
}

pub async fn revoke(tx: &Tx<'_>, team: &TeamId, id: &InvitationId) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE team_invitations SET revoked_at = now()
              WHERE team_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING 1",
            params![team.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// What a token holder may learn before joining.
#[derive(Debug, Clone)]
pub struct TokenLookup {
    pub id: InvitationId,
    pub team: TeamId,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub accepted: bool,
    pub revoked: bool,
}

pub async fn find_by_token(tx: &Tx<'_>, token_hash: &str) -> Result<TokenLookup> {
    let rows = tx
        .query_typed(
            "SELECT id, team_id, email, role::text AS role, expires_at, accepted_at, revoked_at FROM auth_invitation($1)",
            params![token_hash => TEXT],
        )
        .await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    Ok(TokenLookup {
        id: InvitationId::from_trusted(row.get("id")),
        team: TeamId::from_trusted(row.get("team_id")),
        email: row.get("email"),
        role: row.get::<_, &str>("role").parse().unwrap_or(Role::Member),
        expires_at: row.get("expires_at"),
        accepted: row.get::<_, Option<DateTime<Utc>>>("accepted_at").is_some(),
        revoked: row.get::<_, Option<DateTime<Utc>>>("revoked_at").is_some(),
    })
}

/// Marks an invitation accepted, once: a concurrent second acceptance finds nothing to update.
pub async fn mark_accepted(tx: &Tx<'_>, id: &InvitationId, by: &UserId) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE team_invitations SET accepted_at = now(), accepted_by = $2
              WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() RETURNING 1",
            params![id.as_str() => TEXT, by.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::Conflict("this invitation is no longer open".into()));
    }
    Ok(())
}
