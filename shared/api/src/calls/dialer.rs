//! Power-dialer sessions: a list of contacts called in order, each handed out only when the
//! outbound rules allow a call now, each call's outcome recorded.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, DialerSessionId, TeamId};
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody};
use nextier_outbound::{may_call, CallCheck};
use nextier_store::calls::{self, Session};
use nextier_store::contacts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{apply_outcome, call_record, missing, parse_outcome, SESSION_LIMIT};
use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewSession {
    title: String,
    /// 1 to 500 contacts, called in this order.
    contact_ids: Vec<String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/dialer-sessions", tag = "calls", request_body = NewSession,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "The session", body = Session)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_session(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<NewSession>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let mut problems = Problems::default();
    let title = problems.take(nextier_domain::validation::text("title", &body.title, 1, 200)).unwrap_or_default();
    let ids = problems.ids("contactIds", &body.contact_ids, SESSION_LIMIT, ContactId::parse);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    for (i, id) in ids.iter().enumerate() {
        contacts::get(&tx, id)
            .await
            .map_err(|_| ApiError::NotFound(format!("contactIds[{i}]: no such contact; no session was created")))?;
    }
    let id = calls::create_session(&tx, &team, &title, &ids, &access.actor.label()).await?;
    let s = calls::session(&tx, &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(s)))
}

#[utoipa::path(get, path = "/teams/{teamId}/dialer-sessions/{sessionId}", tag = "calls",
    params(("teamId" = String, Path), ("sessionId" = String, Path, description = "dls_<ULID>")),
    responses((status = 200, description = "The session and its contacts", body = Session)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_session(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, DialerSessionId)>,
) -> Result<Json<Session>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CallsRead).await?;
    let s = calls::session(&tx, &id).await.map_err(missing("dialer session"))?;
    tx.commit().await?;
    Ok(Json(s))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextCall {
    pub contact_id: ContactId,
    pub phone: String,
    /// Contacts of the session skipped on the way (opted out, suppressed, no number).
    pub skipped: Vec<ContactId>,
}

/// The next contact of the session who may be called now, and the number to call: the first
/// of their numbers that is not marked do-not-call, not suppressed and in daytime where it
/// rings. Contacts none of whose numbers may ever be called are skipped (with the reason);
/// those whose numbers are all in their quiet hours stay for later.
#[utoipa::path(post, path = "/teams/{teamId}/dialer-sessions/{sessionId}/next", tag = "calls",
    params(("teamId" = String, Path), ("sessionId" = String, Path)),
    responses((status = 200, description = "Call this contact now", body = NextCall),
              (status = 404, description = "Nobody left to call now")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn next_in_session(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, DialerSessionId)>,
) -> Result<Json<NextCall>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    let session = calls::session(&tx, &id).await.map_err(missing("dialer session"))?;
    if session.status != "active" {
        return Err(ApiError::Conflict("the session is finished".into()));
    }
    let now = app.clock.now();
    let mut skipped = Vec::new();
    let mut waiting = 0;
    for contact_id in calls::pending_in_session(&tx, &id).await? {
        let contact = contacts::get(&tx, &contact_id).await?;
        match may_call(&tx, &team, &contact, now).await.map_err(ApiError::Internal)? {
            CallCheck::Call(phone) => {
                calls::hand_out(&tx, &id, &contact_id, &phone).await?;
                tx.commit().await?;
                return Ok(Json(NextCall { contact_id, phone, skipped }));
            }
            CallCheck::Never(reason) => {
                calls::set_session_contact(&tx, &id, &contact_id, "skipped", Some(&reason)).await?;
                skipped.push(contact_id);
            }
            CallCheck::Wait { .. } => waiting += 1,
        }
    }
    if waiting == 0 {
        calls::finish_session(&tx, &id, now).await?;
    }
    tx.commit().await?;
    Err(ApiError::NotFound(format!("nobody left to call now ({waiting} waiting for their quiet hours to end)")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SessionCall {
    contact_id: String,
    outcome: String,
    notes: Option<String>,
    duration_seconds: Option<i32>,
}

#[utoipa::path(post, path = "/teams/{teamId}/dialer-sessions/{sessionId}/calls", tag = "calls", request_body = SessionCall,
    params(("teamId" = String, Path), ("sessionId" = String, Path)),
    responses((status = 201, description = "Recorded", body = Session)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn record_in_session(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, DialerSessionId)>,
    JsonBody(body): JsonBody<SessionCall>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let mut problems = Problems::default();
    let contact_id = problems.take(ContactId::parse("contactId", &body.contact_id));
    let outcome = problems.take(parse_outcome(&body.outcome));
    let notes = opt_text(&mut problems, "notes", &body.notes, 2000);
    let record = call_record(&mut problems, &notes, body.duration_seconds);
    problems.finish()?;
    let (Some(contact_id), Some(outcome)) = (contact_id, outcome) else {
        return Err(ApiError::field("contactId", "is required"));
    };
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    let who = access.actor.label();
    let phone = match calls::session_contact_status(&tx, &id, &contact_id).await? {
        Some((s, Some(phone))) if s == "calling" => phone,
        Some((s, _)) => {
            return Err(ApiError::Conflict(format!("this contact is {s} in the session; ask for next first")))
        }
        None => return Err(ApiError::NotFound("the contact is not in this session".into())),
    };
    let now = app.clock.now();
    calls::record_call(&tx, &team, &contact_id, &phone, None, Some(&id), outcome, &record, &who, now).await?;
    calls::set_session_contact(&tx, &id, &contact_id, "called", None).await?;
    apply_outcome(&tx, &team, &contact_id, &phone, outcome, &who).await?;
    let s = calls::session(&tx, &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(s)))
}
