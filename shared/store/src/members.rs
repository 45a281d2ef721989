use chrono::{DateTime, Utc};
use nextier_domain::ids::{TeamId, UserId};
use nextier_domain::page::PageRequest;
use nextier_domain::team::{MemberStatus, Role};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: UserId,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub status: MemberStatus,
    pub joined_at: DateTime<Utc>,
}

fn member(row: &Row) -> Member {
    Member {
        user_id: UserId::from_trusted(row.get("user_id")),
        email: row.get("email"),
        name: row.get("name"),
        role: row.get::<_, &str>("role").parse().unwrap_or(Role::Member),
        status: MemberStatus::from_db(row.get("status")),
        joined_at: row.get("created_at"),
    }
}

const SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role::text AS role, m.status::text AS status, m.created_at
                        FROM team_members m JOIN users u ON u.id = m.user_id";

pub async fn add(tx: &Tx<'_>, team: &TeamId, user: &UserId, role: Role, status: MemberStatus) -> Result<()> {
    tx.query_typed(
        "INSERT INTO team_members (team_id, user_id, role, status) VALUES ($1, $2, $3::member_role, $4::member_status)",
        params![team.as_str() => TEXT, user.as_str() => TEXT, role.as_str() => TEXT, status.as_str() => TEXT],
    )
    .await
    .map_err(|e| StoreError::unique(e, "team_members_pkey", "already a member of this team"))?;
    Ok(())
}

pub async fn get(tx: &Tx<'_>, team: &TeamId, user: &UserId) -> Result<Member> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE m.team_id = $1 AND m.user_id = $2"),
            params![team.as_str() => TEXT, user.as_str() => TEXT],
        )
        .await?;
    rows.first().map(member).ok_or(StoreError::NotFound)
}

/// Locks the member row for a role change or removal and returns it with the number of
/// approved owners. Owner rows are locked too, so two concurrent demotions cannot both see
/// "two owners left" and leave none.
pub async fn lock_for_change(tx: &Tx<'_>, team: &TeamId, user: &UserId) -> Result<(Member, i64)> {
    let owners = tx
        .query_typed(
            "SELECT count(*) FROM (SELECT 1 FROM team_members
               WHERE team_id = $1 AND role = 'OWNER' AND status = 'APPROVED' FOR UPDATE) o",
            params![team.as_str() => TEXT],
        )
        .await?;
    let owners: i64 = owners.first().map(|r| r.get(0)).unwrap_or(0);
    tx.query_typed(
        "SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2 FOR UPDATE",
        params![team.as_str() => TEXT, user.as_str() => TEXT],
    )
    .await?;
    Ok((get(tx, team, user).await?, owners))
}

pub async fn set_role(tx: &Tx<'_>, team: &TeamId, user: &UserId, role: Role) -> Result<()> {
    let rows = tx
        .query_typed(
            "UPDATE team_members SET role = $3::member_role, updated_at = now()
              WHERE team_id = $1 AND user_id = $2 RETURNING 1",
            params![team.as_str() => TEXT, user.as_str() => TEXT, role.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn remove(tx: &Tx<'_>, team: &TeamId, user: &UserId) -> Result<()> {
    let rows = tx
        .query_typed(
            "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2 RETURNING 1",
            params![team.as_str() => TEXT, user.as_str() => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn list(tx: &Tx<'_>, team: &TeamId, page: &PageRequest) -> Result<Vec<Member>> {
    let after = page.after.as_deref().unwrap_or("");
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE m.team_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3"),
            params![team.as_str() => TEXT, after => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(member).collect())
}
