//! Messages (served by the contacts function): a person's text to a contact from the
//! cockpit, through the same outbound gate as campaigns; the conversation thread; a message
//! with its status timeline.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, MessageId, TeamId};
use nextier_domain::message::MessageStatus;
use nextier_http::{open_team, ApiError, Credential, Ids, JsonBody, Page, PageQuery};
use nextier_outbound::{OutboundRequest, Prepared, Verdict};
use nextier_store::campaigns::Channel;
use nextier_store::messages::{self, MessageView};
use nextier_store::{contacts, scope, Scope, StoreError};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(thread, send)).routes(routes!(get_message))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SendMessage {
    /// The text (up to 1,600 characters: 10 GSM-7 segments).
    body: String,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().map_err(|_| ApiError::field("Idempotency-Key", "must be printable ASCII"))?.trim();
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::field("Idempotency-Key", "must be 1-200 printable characters without spaces"));
    }
    Ok(Some(key.to_owned()))
}

/// How long a request without an Idempotency-Key counts as a retry of an identical earlier one.
pub const DERIVED_KEY_WINDOW_SECS: i64 = 300;

/// The send keys a request without an Idempotency-Key may have been recorded under: the
/// caller, the contact and the text's SHA-256, in this 5-minute window and the one before
/// (a retry just after a window's end still finds the first attempt). The same person sending
/// the same text to the same contact again within that time gets the first message back.
pub fn derived_send_keys(actor: &str, contact: &ContactId, text: &str, now: chrono::DateTime<Utc>) -> [String; 2] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{actor}\n{contact}\n{text}").as_bytes());
    let hash = hex::encode(&digest[..16]);
    let window = now.timestamp().div_euclid(DERIVED_KEY_WINDOW_SECS);
    [format!("api:auto:{hash}:{window}"), format!("api:auto:{hash}:{}", window - 1)]
}

/// Sends a text to the contact through the outbound gate (consent, suppression, quiet hours,
/// the team's rate). With an `Idempotency-Key` header a retried request returns the first
/// answer instead of sending again; the same key with a different request is 409. Without
/// one, the key is derived from the caller, the contact and the text within a 5-minute window
/// (and the one before), so a client's retry after a timeout does not send twice either. A
/// refused or held text is recorded with its reason and answered 409; a provider outage or
/// configuration fault is 503 (retry with the same key).
#[utoipa::path(post, path = "/teams/{teamId}/contacts/{contactId}/messages", tag = "messages", request_body = SendMessage,
    params(("teamId" = String, Path), ("contactId" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe")),
    responses((status = 201, description = "Sent", body = MessageView),
              (status = 200, description = "A replay of an earlier request with the same key", body = MessageView),
              (status = 409, description = "Refused or held by the gate (the reason is recorded), or a reused key"),
              (status = 503, description = "The provider is unavailable; retry with the same key")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn send(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, contact_id)): Ids<(TeamId, ContactId)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SendMessage>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let key = idempotency_key(&headers)?;
    let mut problems = Problems::default();
    let text = problems.take(nextier_domain::validation::message_text("body", &body.body, 1600)).unwrap_or_default();
    problems.finish()?;

    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::MessagesSend).await?;
    let actor = access.actor.label();
    let now = app.clock.now();
    let send_key = match &key {
        Some(k) => format!("api:{k}"),
        None => {
            let [current, previous] = derived_send_keys(&actor, &contact_id, &text, now);
            match messages::by_send_key(&tx, &previous).await? {
                Some(_) => previous,
                None => current,
            }
        }
    };
    if let Some((prev, prev_contact)) = messages::by_send_key(&tx, &send_key).await? {
        if prev_contact.as_ref() != Some(&contact_id) || prev.body != text {
            return Err(ApiError::Conflict("this Idempotency-Key was used for a different request".into()));
        }
        if prev.status != MessageStatus::Queued {
            tx.commit().await?;
            return Ok((StatusCode::OK, Json(prev)));
        }
        // Queued: the provider failed last time; the gate retries with the same message id.
    }
    let contact = contacts::get(&tx, &contact_id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such contact".into()),
        other => other.into(),
    })?;
    let req = OutboundRequest {
        team: &team,
        contact: &contact,
        channel: Channel::Sms,
        subject: None,
        body: text.clone(),
        send_key: send_key.clone(),
        campaign: None,
        sent_by: &actor,
        purpose: nextier_outbound::Purpose::Outreach,
        to: None,
        now,
    };
    // `delivered`: the provider was asked, and the gate's settle recorded its answer under the
    // key (a refusal after delivery is that message's `failed`, not a second record).
    let (tx, verdict, delivered) = match app.gate.prepare(&tx, &req).await.map_err(ApiError::Internal)? {
        Prepared::Decided(v) => (tx, v, false),
        Prepared::Ready(dispatch) => {
            // Recorded as queued under the key: commit before the provider is called, so a
            // retry after any failure delivers the same message (the provider replays it).
            tx.commit().await?;
            let outcome = app.gate.deliver(&dispatch).await;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let v = app.gate.settle(&tx, &dispatch, outcome, now).await.map_err(ApiError::Internal)?;
            if let Verdict::Deferred { reason, .. } = &v {
                // Held after the provider was asked (a configuration fault): the message stays
                // queued under the key, and a retry with the key sends it once.
                tx.commit().await?;
                return Err(ApiError::Unavailable(format!("not sent now ({reason}); retry with the same key")));
            }
            (tx, v, true)
        }
    };
    let refused = |reason: String| async {
        let to = nextier_outbound::address(&contact, Channel::Sms).unwrap_or_default();
        messages::record_blocked(&tx, &team, &contact_id, Channel::Sms, &to, &text, &send_key, &reason, &actor, now)
            .await
            .map(|_| reason)
    };
    match verdict {
        Verdict::Sent { message } => {
            let m = messages::get(&tx, &message).await?;
            tx.commit().await?;
            Ok((StatusCode::CREATED, Json(m)))
        }
        Verdict::Blocked { reason } if delivered => {
            // The provider refused it (an opt-out it knows of, say): settled as failed, with
            // the opt-out recorded; a retry with the key answers with that message.
            tx.commit().await?;
            Err(ApiError::Conflict(format!("not sent: {reason}")))
        }
        Verdict::Blocked { reason } => {
            let reason = refused(format!("not sent: {reason}")).await?;
            tx.commit().await?;
            Err(ApiError::Conflict(reason))
        }
        Verdict::Deferred { until, reason } => {
            let reason = refused(format!("not sent now: {reason}; allowed from {}", until.to_rfc3339())).await?;
            tx.commit().await?;
            Err(ApiError::Conflict(reason))
        }
        Verdict::Failed { reason } => {
            // The message stays queued under this key; a retry with the key resends it once.
            tx.commit().await?;
            Err(ApiError::Unavailable(format!(
                "the provider did not take the message ({reason}); retry with the same Idempotency-Key"
            )))
        }
    }
}

/// The conversation with a contact, newest first.
#[utoipa::path(get, path = "/teams/{teamId}/contacts/{contactId}/messages", tag = "messages",
    params(("teamId" = String, Path), ("contactId" = String, Path), PageQuery),
    responses((status = 200, description = "Messages with their status timelines", body = Page<MessageView>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn thread(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Ids((team, contact_id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::MessagesRead).await?;
    crate::parents::require(&tx, nextier_store::parents::Parent::Contact(&contact_id)).await?;
    let rows = messages::thread(&tx, &contact_id, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |m| m.id.to_string())))
}

#[utoipa::path(get, path = "/teams/{teamId}/messages/{messageId}", tag = "messages",
    params(("teamId" = String, Path), ("messageId" = String, Path, description = "msg_<ULID>")),
    responses((status = 200, description = "The message and its status timeline", body = MessageView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_message(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, MessageId)>,
) -> Result<Json<MessageView>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::MessagesRead).await?;
    let m = messages::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(m))
}
