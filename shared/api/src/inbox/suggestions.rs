//! AI reply suggestions on inbox items: list, suggest now, approve (as written or edited)
//! or reject. Only a person approves; the decision and the message are recorded together.

use axum::extract::State;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{InboxItemId, TeamId};
use nextier_http::{open_team, ApiError, Credential, Ids};
use nextier_store::inbox;
use nextier_store::messages::{self, MessageView};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::not_found;
use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

use nextier_domain::ids::SuggestionId;
use nextier_inbound::suggest::{self as ai_suggest, SendError};
use nextier_store::ai::{self, Suggestion};

fn send_error(e: SendError) -> ApiError {
    match e {
        SendError::Store(e) => not_found_suggestion(e),
        SendError::Refused(r) | SendError::Stale(r) => {
            ApiError::Conflict(format!("not sent: {r}; the suggestion is still pending"))
        }
        SendError::Deferred { until, reason } => ApiError::Conflict(format!(
            "not sent: {reason}; allowed from {}; the suggestion is still pending",
            until.to_rfc3339()
        )),
        SendError::Provider(r) => ApiError::Unavailable(format!(
            "the provider did not take the message ({r}); approve again to retry the same message"
        )),
        SendError::Other(e) => ApiError::Internal(e),
    }
}

fn not_found_suggestion(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such suggestion".into()),
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/teams/{teamId}/inbox/items/{itemId}/suggestions", tag = "inbox",
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 200, description = "The item's suggestions, newest first, with their decisions", body = Vec<Suggestion>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_suggestions(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, InboxItemId)>,
) -> Result<Json<Vec<Suggestion>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    crate::parents::require(&tx, nextier_store::parents::Parent::InboxItem(&id)).await?;
    let rows = ai::for_item(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// Writes a reply suggestion for the item now, routed to its worker (one at a time: a second
/// request returns the waiting one, an answered item its answer). What a person asks for here
/// is never sent on its own: it waits for a person's approval.
#[utoipa::path(post, path = "/teams/{teamId}/inbox/items/{itemId}/suggestions", tag = "inbox",
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 201, description = "Suggested", body = Suggestion),
              (status = 200, description = "One was already waiting", body = Suggestion),
              (status = 409, description = "This item is not one to answer")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn suggest(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, InboxItemId)>,
) -> Result<(axum::http::StatusCode, Json<Suggestion>), ApiError> {
    {
        let mut conn = app.db.conn().await?;
        let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
        inbox::get(&tx, &id).await.map_err(not_found)?;
    }
    match nextier_ai::engine::suggest_for_item(&app.ai(), &team, &id, false).await {
        Ok(Some((s, true))) => Ok((axum::http::StatusCode::CREATED, Json(s))),
        Ok(Some((s, false))) => Ok((axum::http::StatusCode::OK, Json(s))),
        Ok(None) => Err(ApiError::Conflict("this item is not one to answer (opt-out, help, wrong number...)".into())),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "suggestion failed");
            Err(ApiError::Unavailable("the suggester did not answer; write the reply or try again".into()))
        }
    }
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approve {
    /// The text to send instead of the suggestion (recorded as `edited`).
    text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approved {
    pub suggestion: Suggestion,
    pub message: MessageView,
}

/// Sends the suggestion (or the edited text) through the outbound gate and records the
/// decision with it. If the gate refuses (quiet hours, opted out), nothing is recorded and
/// the suggestion stays pending.
#[utoipa::path(post, path = "/teams/{teamId}/inbox/suggestions/{suggestionId}/approve", tag = "inbox", request_body = Approve,
    params(("teamId" = String, Path), ("suggestionId" = String, Path, description = "sug_<ULID>")),
    responses((status = 200, description = "Sent, with the approval recorded", body = Approved)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn approve_suggestion(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, SuggestionId)>,
    body: nextier_http::OptionalJson<Approve>,
) -> Result<Json<Approved>, ApiError> {
    let text = match body.0.unwrap_or_default().text {
        Some(t) => Some(
            nextier_domain::validation::message_text("text", &t, 1600).map_err(|e| ApiError::Validation(vec![e]))?,
        ),
        None => None,
    };
    let actor = {
        let mut conn = app.db.conn().await?;
        let (tx, access) = open_team(&mut conn, &cred, &team, Permission::MessagesSend).await?;
        if access.actor.user().is_none() {
            return Err(ApiError::Forbidden("a person approves what an AI wrote; an API key cannot".into()));
        }
        ai::get(&tx, &id).await.map_err(not_found_suggestion)?;
        access.actor.label()
    };
    let (_, message) = ai_suggest::send(&app.db, &app.gate, &team, &id, text.as_deref(), None, &actor, app.clock.now())
        .await
        .map_err(send_error)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::MessagesRead).await?;
    let suggestion = ai::get(&tx, &id).await?;
    let message = messages::get(&tx, &message).await?;
    tx.commit().await?;
    Ok(Json(Approved { suggestion, message }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Reject {
    reason: Option<String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/inbox/suggestions/{suggestionId}/reject", tag = "inbox", request_body = Reject,
    params(("teamId" = String, Path), ("suggestionId" = String, Path)),
    responses((status = 200, description = "Rejected, with the decision recorded", body = Suggestion)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn reject_suggestion(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, SuggestionId)>,
    body: nextier_http::OptionalJson<Reject>,
) -> Result<Json<Suggestion>, ApiError> {
    let mut problems = Problems::default();
    let reason = opt_text(&mut problems, "reason", &body.0.unwrap_or_default().reason, 500);
    problems.finish()?;
    let actor = {
        let mut conn = app.db.conn().await?;
        let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
        ai::get(&tx, &id).await.map_err(not_found_suggestion)?;
        access.actor.label()
    };
    let s = ai_suggest::reject(&app.db, &team, &id, reason.as_deref(), &actor, app.clock.now())
        .await
        .map_err(send_error)?;
    Ok(Json(s))
}
