use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::api_key::hash;
use nextier_domain::email::Email;
use nextier_domain::ids::{InvitationId, TeamId};
use nextier_domain::team::{MemberStatus, Role};
use nextier_http::{open_team, open_user, Actor, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::invitations::{self, Invitation, NewInvitation};
use nextier_store::{members, scope, Scope, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::{events, AppState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Invite {
    email: String,
    /// ADMIN or MEMBER (owners are promoted after joining).
    role: String,
}

/// The invitation and its token. The token is shown once, here; only its hash is stored.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitation {
    invitation: Invitation,
    token: String,
}

#[utoipa::path(post, path = "/teams/{teamId}/invitations", tag = "admin", request_body = Invite,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Invited; send the token to the invitee", body = CreatedInvitation),
              (status = 409, description = "The address already has an open invitation")),
    security(("bearer" = [])))]
pub async fn invite(
    State(app): State<AppState>,
    cred: Credential,
    Id(team_id): Id<TeamId>,
    JsonBody(body): JsonBody<Invite>,
) -> Result<(StatusCode, Json<CreatedInvitation>), ApiError> {
    let email = Email::parse("email", &body.email)?;
    let role = Role::parse("role", &body.role)?;
    if role == Role::Owner {
        return Err(ApiError::field("role", "invitations are for ADMIN or MEMBER; promote to OWNER after joining"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team_id, Permission::MembersManage).await?;
    let Actor::User(inviter) = &access.actor else {
        return Err(ApiError::Forbidden("invitations are sent by people, not API keys".into()));
    };
    let token = format!("nxi_{}", hex::encode(rand::random::<[u8; 32]>()));
    let invitation = invitations::create(
        &tx,
        &NewInvitation {
            team: &team_id,
            email: email.as_str(),
            role,
            token_hash: &hash(&token),
            invited_by: inviter,
            expires_at: app.clock.now() + app.config.invitation_ttl,
        },
    )
    .await?;
    // The event names the invitee but never carries the token.
    let event = events::stage(
        &tx,
        &team_id,
        "MemberInvited",
        json!({"teamId": team_id, "invitationId": invitation.id, "email": invitation.email, "role": role, "by": inviter}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok((StatusCode::CREATED, Json(CreatedInvitation { invitation, token })))
}

#[utoipa::path(get, path = "/teams/{teamId}/invitations", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery),
    responses((status = 200, description = "Open invitations", body = Page<Invitation>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_invitations(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team_id): Id<TeamId>,
) -> Result<Json<Page<Invitation>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::MembersRead).await?;
    let rows = invitations::list_open(&tx, &team_id, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |i| i.id.to_string())))
}

#[utoipa::path(delete, path = "/teams/{teamId}/invitations/{invitationId}", tag = "admin",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("invitationId" = String, Path, description = "inv_<ULID>")),
    responses((status = 204, description = "Revoked")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn revoke_invitation(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team_id, id)): Ids<(TeamId, InvitationId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team_id, Permission::MembersManage).await?;
    invitations::revoke(&tx, &team_id, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Accept {
    token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    team_id: TeamId,
    role: Role,
}

/// Joins a team with an invitation token. The signed-in user's email must be the invited one,
/// and verified: a token whose `email_verified` claim is not `true` cannot claim an
/// invitation (403), since anyone can sign up with someone else's address unverified.
#[utoipa::path(post, path = "/invitations/accept", tag = "admin", request_body = Accept,
    responses((status = 200, description = "Joined", body = Accepted),
              (status = 409, description = "Already a member, or the invitation was already used"),
              (status = 410, description = "The invitation expired or was revoked")),
    security(("bearer" = [])))]
pub async fn accept_invitation(
    State(app): State<AppState>,
    cred: Credential,
    JsonBody(body): JsonBody<Accept>,
) -> Result<Json<Accepted>, ApiError> {
    let token = body.token.trim();
    if !token.starts_with("nxi_") || token.len() != 68 {
        return Err(ApiError::field("token", "is not an invitation token"));
    }
    let Credential::User(claims) = &cred else {
        return Err(ApiError::Forbidden("invitations are accepted by people, not API keys".into()));
    };
    if !claims.email_trusted() {
        return Err(ApiError::Forbidden(
            "verify your email address with your identity provider before accepting an invitation".into(),
        ));
    }
    let mut conn = app.db.conn().await?;
    let (tx, user) = open_user(&mut conn, &cred).await?;
    let inv = invitations::find_by_token(&tx, &hash(token)).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such invitation".into()),
        other => other.into(),
    })?;
    if inv.revoked || inv.expires_at <= app.clock.now() {
        return Err(ApiError::Gone("this invitation has expired or was revoked; ask for a new one".into()));
    }
    if inv.accepted {
        return Err(ApiError::Conflict("this invitation was already used".into()));
    }
    let invited = Email::parse("email", &inv.email)?;
    let caller = claims.email.as_deref().map(|e| Email::parse("email", e)).transpose().ok().flatten();
    if caller.as_ref().map(|e| e.as_str().to_lowercase()) != Some(invited.as_str().to_lowercase()) {
        return Err(ApiError::Forbidden("this invitation was sent to another email address".into()));
    }
    scope::apply(&tx, &Scope::team(inv.team.clone()).with_user(Some(user.clone()))).await?;
    invitations::mark_accepted(&tx, &inv.id, &user).await?;
    members::add(&tx, &inv.team, &user, inv.role, MemberStatus::Approved).await?;
    let event = events::stage(
        &tx,
        &inv.team,
        "MemberJoined",
        json!({"teamId": inv.team, "userId": user, "role": inv.role, "invitationId": inv.id}),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.outbox.publish(&[event]).await;
    Ok(Json(Accepted { team_id: inv.team, role: inv.role }))
}
