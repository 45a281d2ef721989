use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{TeamId, UserId};
use nextier_domain::team::{check_removal, check_role_change, Role};
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::members::{self, Member};
use nextier_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{events, AppState};

#[utoipa::path(get, path = "/teams/{teamId}/members", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery),
    responses((status = 200, description = "Members in user-id order", body = Page<Member>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_members(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team_id): Id<TeamId>,
) -> Result<Json<Page<Member>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::MembersRead).await?;
    let rows = members::list(&tx, &team_id, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |m| m.user_id.to_string())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeRole {
    /// OWNER, ADMIN or MEMBER.
    role: String,
}

/// Changes a member's role. Only an OWNER grants or removes OWNER; the last OWNER stays.
/// Promoting to ADMIN or OWNER needs a person: an API key is refused (403).
#[utoipa::path(patch, path = "/teams/{teamId}/members/{userId}", tag = "admin", request_body = ChangeRole,
    params(("teamId" = String, Path, description = "team_<ULID>"), ("userId" = String, Path, description = "usr_<ULID>")),
    responses((status = 200, description = "The member with the new role", body = Member),
              (status = 409, description = "Would leave the team without an OWNER")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn change_role(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, user_id)): Ids<(TeamId, UserId)>,
    JsonBody(body): JsonBody<ChangeRole>,
) -> Result<Json<Member>, ApiError> {
    let role = Role::parse("role", &body.role)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::MembersManage).await?;
    access.authority.check_role_grant(role).map_err(ApiError::Forbidden)?;
    let (member, owners) = members::lock_for_change(&tx, &team_id, &user_id).await?;
    check_role_change(access.role(), member.role, role, owners)?;
    members::set_role(&tx, &team_id, &user_id, role).await?;
    let event = events::stage(
        &tx,
        &team_id,
        "MemberRoleChanged",
        json!({"teamId": team_id, "userId": user_id, "from": member.role, "to": role, "by": access.actor.label()}),
    )
    .await?;
    let updated = members::get(&tx, &team_id, &user_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(Json(updated))
}

/// Removes a member. Any member may remove themself (leave); removing others needs ADMIN.
#[utoipa::path(delete, path = "/teams/{teamId}/members/{userId}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("userId" = String, Path, description = "usr_<ULID>")),
    responses((status = 204, description = "Removed"), (status = 409, description = "Would leave the team without an OWNER")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn remove_member(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, user_id)): Ids<(TeamId, UserId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::MembersRead).await?;
    let leaving = access.actor.user() == Some(&user_id);
    if !leaving {
        access.require(Permission::MembersManage)?;
    }
    let (member, owners) = members::lock_for_change(&tx, &team_id, &user_id).await?;
    // Leaving yourself needs no power over your own role, only the last-owner rule.
    let actor_role = if leaving { Role::Owner } else { access.role() };
    check_removal(actor_role, member.role, owners)?;
    members::remove(&tx, &team_id, &user_id).await?;
    let event = events::stage(
        &tx,
        &team_id,
        "MemberRemoved",
        json!({"teamId": team_id, "userId": user_id, "role": member.role, "by": access.actor.label()}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(StatusCode::NO_CONTENT)
}
