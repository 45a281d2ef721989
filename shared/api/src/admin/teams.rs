use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::TeamId;
use nextier_domain::team::{MemberStatus, Role, TeamName};
use nextier_http::{open_team, open_user, ApiError, Credential, Id, JsonBody, Page, PageQuery};
use nextier_store::teams::{MyTeam, Team};
use nextier_store::{members, scope, teams, Scope, StoreError};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{events, AppState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTeam {
    /// 1-100 characters.
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateTeam {
    name: String,
}

/// The teams the signed-in user belongs to.
#[utoipa::path(get, path = "/teams", tag = "admin", params(PageQuery),
    responses((status = 200, description = "The caller's teams", body = Page<MyTeam>)),
    security(("bearer" = [])))]
pub async fn list_teams(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
) -> Result<Json<Page<MyTeam>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_user(&mut conn, &cred).await?;
    let rows = teams::list_mine(&tx, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |t| t.team.id.to_string())))
}

/// Creates a team; the caller becomes its OWNER.
#[utoipa::path(post, path = "/teams", tag = "admin", request_body = CreateTeam,
    responses((status = 201, description = "Created", body = Team)),
    security(("bearer" = [])))]
pub async fn create_team(
    State(app): State<AppState>,
    cred: Credential,
    JsonBody(body): JsonBody<CreateTeam>,
) -> Result<(StatusCode, Json<Team>), ApiError> {
    let name = TeamName::parse("name", &body.name)?;
    let mut conn = app.db.conn().await?;
    let (tx, user) = open_user(&mut conn, &cred).await?;
    let id = TeamId::new();
    scope::apply(&tx, &Scope::team(id.clone()).with_user(Some(user.clone()))).await?;
    let suffix = hex::encode(rand::random::<[u8; 3]>());
    let team = teams::create(&tx, &id, name.as_str(), &name.slug(&suffix), &user).await?;
    members::add(&tx, &id, &user, Role::Owner, MemberStatus::Approved).await?;
    let event =
        events::stage(&tx, &id, "TeamCreated", json!({"teamId": id, "name": team.name, "ownerId": user})).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok((StatusCode::CREATED, Json(team)))
}

#[utoipa::path(get, path = "/teams/{teamId}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 200, description = "The team", body = Team)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_team(
    State(app): State<AppState>,
    cred: Credential,
    Id(team_id): Id<TeamId>,
) -> Result<Json<Team>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::TeamRead).await?;
    let team = teams::get(&tx, &team_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(team))
}

/// Renames a team (ADMIN or OWNER).
#[utoipa::path(patch, path = "/teams/{teamId}", tag = "admin", request_body = UpdateTeam,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 200, description = "The updated team", body = Team)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_team(
    State(app): State<AppState>,
    cred: Credential,
    Id(team_id): Id<TeamId>,
    JsonBody(body): JsonBody<UpdateTeam>,
) -> Result<Json<Team>, ApiError> {
    let name = TeamName::parse("name", &body.name)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::TeamManage).await?;
    let team = teams::rename(&tx, &team_id, name.as_str()).await?;
    let event = events::stage(
        &tx,
        &team_id,
        "TeamUpdated",
        json!({"teamId": team_id, "name": team.name, "by": access.actor.label()}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(Json(team))
}
