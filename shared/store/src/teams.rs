use chrono::{DateTime, Utc};
use nextier_domain::ids::{TeamId, UserId};
use nextier_domain::page::PageRequest;
use nextier_domain::team::Role;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A team as seen by one of its members.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyTeam {
    #[serde(flatten)]
    pub team: Team,
    pub role: Role,
}

const COLUMNS: &str = "t.id, t.name, t.slug, t.created_at, t.updated_at";

fn team(row: &Row) -> Team {
    Team {
        id: TeamId::from_trusted(row.get("id")),
        name: row.get("name"),
        slug: row.get("slug"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// Inserts a team. The transaction must already be scoped to `id`.
pub async fn create(tx: &Tx<'_>, id: &TeamId, name: &str, slug: &str, created_by: &UserId) -> Result<Team> {
    let rows = tx
        .query_typed(
            &format!("INSERT INTO teams AS t (id, name, slug, created_by) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"),
            params![id.as_str() => TEXT, name => TEXT, slug => TEXT, created_by.as_str() => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "teams_slug_key", "a team with this slug already exists"))?;
    rows.first().map(team).ok_or(StoreError::NotFound)
}

pub async fn get(tx: &Tx<'_>, id: &TeamId) -> Result<Team> {
    let rows =
        tx.query_typed(&format!("SELECT {COLUMNS} FROM teams t WHERE t.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(team).ok_or(StoreError::NotFound)
}

pub async fn rename(tx: &Tx<'_>, id: &TeamId, name: &str) -> Result<Team> {
    let rows = tx
        .query_typed(
            &format!("UPDATE teams t SET name = $2, updated_at = now() WHERE t.id = $1 RETURNING {COLUMNS}"),
            params![id.as_str() => TEXT, name => TEXT],
        )
        .await?;
    rows.first().map(team).ok_or(StoreError::NotFound)
}

/// The teams the user in scope is an approved member of, in id order.
pub async fn list_mine(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<MyTeam>> {
    let after = page.after.as_deref().unwrap_or("");
    let rows = tx
        .query_typed(
            &format!(
                "SELECT {COLUMNS}, m.role::text AS role FROM teams t
                   JOIN team_members m ON m.team_id = t.id AND m.user_id = app_user_id()
                  WHERE m.status = 'APPROVED' AND t.id > $1
                  ORDER BY t.id LIMIT $2"
            ),
            params![after => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MyTeam { team: team(r), role: r.get::<_, &str>("role").parse().unwrap_or(Role::Member) })
        .collect())
}
