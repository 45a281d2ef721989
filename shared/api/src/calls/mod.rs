//! Calls (its own function, `api-calls`): the call queue (push by the eligibility rules,
//! list by priority, claim, complete with an outcome), call history, and power-dialer
//! sessions over a list of contacts. Before a number is handed to a person, the outbound
//! rules are asked (`may_call`): opted-out and suppressed contacts are never handed out, and
//! nobody is called outside their quiet hours.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Duration;
use nextier_domain::calls::{self as rules, CallConfig, Candidate, Eligibility, Outcome};
use nextier_domain::ids::{CallId, ContactId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_domain::FieldError;
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_outbound::{may_call_number, CallCheck};
use nextier_store::calls::{self, Call, CallRecord, Entry, Push};
use nextier_store::suppressions::{self, NewSuppression};
use nextier_store::{campaigns, contacts, settings, StoreError, Tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

mod dialer;

/// How long a claim holds an entry.
pub const CLAIM_LEASE_MINUTES: i64 = 15;
pub const SESSION_LIMIT: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queue, push))
        .routes(routes!(claim))
        .routes(routes!(complete))
        .routes(routes!(history))
        .routes(routes!(dialer::create_session))
        .routes(routes!(dialer::get_session))
        .routes(routes!(dialer::next_in_session))
        .routes(routes!(dialer::record_in_session))
}

pub(super) fn missing(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}

pub async fn config(tx: &Tx<'_>) -> Result<CallConfig, StoreError> {
    Ok(CallConfig::from_settings(&settings::strings_in(tx, "calls").await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PushCall {
    contact_id: String,
    /// Set to queue the contact by hand at this priority (0-1000), whatever the rules say
    /// (an opted-out contact still cannot be queued).
    priority: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pushed {
    pub entry: Entry,
    /// False when the contact was already waiting (its priority is raised if this is higher).
    pub created: bool,
}

/// Queues a contact for a call when the team's eligibility rules (or a person's priority)
/// allow it; 409 names the rule that refused.
#[utoipa::path(post, path = "/teams/{teamId}/call-queue", tag = "calls", request_body = PushCall,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Queued", body = Pushed), (status = 200, description = "Already queued", body = Pushed)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn push(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<PushCall>,
) -> Result<(StatusCode, Json<Pushed>), ApiError> {
    let contact_id = ContactId::parse("contactId", &body.contact_id)?;
    if body.priority.is_some_and(|p| !(0..=1000).contains(&p)) {
        return Err(ApiError::field("priority", "must be 0 to 1000"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    let contact = contacts::get(&tx, &contact_id).await.map_err(missing("contact"))?;
    let cfg = config(&tx).await?;
    let now = app.clock.now();
    let (phone, suppressed) =
        match nextier_outbound::number_to_queue(&tx, &team, &contact, now).await.map_err(ApiError::Internal)? {
            Ok(number) => (Some(number), false),
            Err(reason) => (None, reason == "opt_out" || reason.starts_with("suppressed")),
        };
    let candidate = Candidate {
        labels: &contact.tags,
        score: contact.score,
        opted_out: contact.lead_state == LeadState::Suppressed || suppressed,
        do_not_contact: false,
        phone: phone.as_deref(),
    };
    let (priority, reason) = match (rules::evaluate(&candidate, &cfg), body.priority) {
        (Eligibility::NotEligible { reason }, _) if reason == "opted_out" || reason == "no_mobile" => {
            return Err(ApiError::Conflict(format!("not queued: {reason}")))
        }
        (_, Some(p)) => (p, "manual"),
        (Eligibility::Eligible { priority, reason }, None) => (priority, reason),
        (Eligibility::NotEligible { reason }, None) => {
            return Err(ApiError::Conflict(format!("not queued: {reason} (give a priority to queue by hand)")))
        }
    };
    let source = access.actor.label();
    let (entry, created) = calls::push(
        &tx,
        &team,
        &Push {
            contact: &contact_id,
            phone: phone.as_deref().unwrap_or_default(),
            priority,
            reason,
            source: &source,
            max_attempts: cfg.max_attempts,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(Pushed { entry, created })))
}

use nextier_domain::access::Permission;

/// The number to queue for a contact: the first of theirs that may be called, now or after
/// its quiet hours; else why none may (the first number's reason).
/// Entries by priority (highest first); `status` pending (default), claimed, completed or
/// cancelled.
#[utoipa::path(get, path = "/teams/{teamId}/call-queue", tag = "calls",
    params(("teamId" = String, Path), PageQuery, ("status" = Option<String>, Query)),
    responses((status = 200, description = "A page of the queue", body = Page<Entry>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_queue(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<Entry>>, ApiError> {
    let page = q.page()?;
    let status = url_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "pending".into());
    if !["pending", "claimed", "completed", "cancelled"].contains(&status.as_str()) {
        return Err(ApiError::field("status", "must be pending, claimed, completed or cancelled"));
    }
    if let Some(a) = page.after.as_deref() {
        if a.split_once('|').is_none_or(|(p, _)| p.parse::<i32>().is_err()) {
            return Err(ApiError::field("cursor", "is not a cursor of this listing"));
        }
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CallsRead).await?;
    let rows = calls::list(&tx, &status, page.after.as_deref(), page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| format!("{}|{}", e.priority, e.id))))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimCall {
    /// A particular entry; absent: the next one.
    call_id: Option<String>,
}

/// Claims the next entry (or the given one) for 15 minutes. The entry's own number is
/// checked: an entry whose number may no longer be called (contact opted out, number
/// suppressed or marked do-not-call) is cancelled; one in its number's quiet hours waits until
/// they end.
#[utoipa::path(post, path = "/teams/{teamId}/call-queue/claim", tag = "calls", request_body = ClaimCall,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Claimed: call this number", body = Entry),
              (status = 404, description = "Nothing to call now")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn claim(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    body: nextier_http::OptionalJson<ClaimCall>,
) -> Result<Json<Entry>, ApiError> {
    let body = body.0.unwrap_or_default();
    let wanted = body.call_id.as_deref().map(|c| CallId::parse("callId", c)).transpose()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    let who = access.actor.label();
    let now = app.clock.now();
    for _ in 0..20 {
        let Some(e) = calls::claim(&tx, wanted.as_ref(), &who, now, Duration::minutes(CLAIM_LEASE_MINUTES)).await?
        else {
            break;
        };
        // The entry's own number is checked, not whichever of the contact's numbers comes first.
        let contact = contacts::get(&tx, &e.contact_id).await?;
        match may_call_number(&tx, &team, &contact, &e.phone, now).await.map_err(ApiError::Internal)? {
            CallCheck::Call(_) => {
                tx.commit().await?;
                return Ok(Json(e));
            }
            CallCheck::Never(reason) => calls::cancel_entry(&tx, &e.id, &reason).await?,
            CallCheck::Wait { until, .. } => calls::defer_entry(&tx, &e.id, until).await?,
        }
        if wanted.is_some() {
            break;
        }
    }
    tx.commit().await?;
    Err(ApiError::NotFound("nothing to call now".into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CompleteCall {
    /// connected, no_answer, busy, voicemail, wrong_number, not_interested, callback,
    /// appointment_booked or failed.
    outcome: String,
    notes: Option<String>,
    duration_seconds: Option<i32>,
}

pub(super) fn parse_outcome(raw: &str) -> Result<Outcome, FieldError> {
    Outcome::parse(raw).ok_or_else(|| {
        let all: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        FieldError::new("outcome", format!("must be one of {}", all.join(", ")))
    })
}

pub(super) fn call_record<'a>(
    problems: &mut Problems,
    notes: &'a Option<String>,
    duration: Option<i32>,
) -> CallRecord<'a> {
    if duration.is_some_and(|d| !(0..=86_400).contains(&d)) {
        problems.0.push(FieldError::new("durationSeconds", "must be 0 to 86400"));
    }
    if notes.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        problems.0.push(FieldError::new("notes", "must be at most 2000 characters"));
    }
    CallRecord { duration_seconds: duration, notes: notes.as_deref(), provider_call_id: None }
}

/// What an outcome does beyond the queue: a wrong number is suppressed, a booked meeting ends
/// the sequences that exit on one.
pub(super) async fn apply_outcome(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    phone: &str,
    outcome: Outcome,
    actor: &str,
) -> Result<(), ApiError> {
    match outcome {
        Outcome::WrongNumber => {
            let s = NewSuppression {
                address: phone,
                kind: "WRONG_NUMBER",
                reason: Some("wrong number on a call"),
                source: "call",
                actor,
                expires_at: None,
                source_message: None,
            };
            suppressions::add(tx, team, &s).await?;
            campaigns::exit_contact(tx, contact, "suppressed:WRONG_NUMBER").await?;
        }
        Outcome::AppointmentBooked => {
            campaigns::exit_contact(tx, contact, "meeting_booked").await?;
            let c = contacts::get(tx, contact).await?;
            if c.lead_state.can_move_to(LeadState::AppointmentBooked) {
                contacts::transition(tx, team, contact, LeadState::AppointmentBooked, Some("booked on a call"), actor)
                    .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[utoipa::path(post, path = "/teams/{teamId}/call-queue/{callId}/complete", tag = "calls", request_body = CompleteCall,
    params(("teamId" = String, Path), ("callId" = String, Path, description = "cal_<ULID>")),
    responses((status = 200, description = "Recorded; a retryable outcome with attempts left returns the entry to pending", body = Entry)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn complete(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CallId)>,
    JsonBody(body): JsonBody<CompleteCall>,
) -> Result<Json<Entry>, ApiError> {
    let mut problems = Problems::default();
    let outcome = problems.take(parse_outcome(&body.outcome));
    let notes = opt_text(&mut problems, "notes", &body.notes, 2000);
    let record = call_record(&mut problems, &notes, body.duration_seconds);
    problems.finish()?;
    let outcome = outcome.ok_or_else(|| ApiError::field("outcome", "is required"))?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CallsWrite).await?;
    let who = access.actor.label();
    let cfg = config(&tx).await?;
    let now = app.clock.now();
    let e = calls::complete(&tx, &team, &id, &who, outcome, &record, now, Duration::minutes(cfg.retry_minutes))
        .await
        .map_err(missing("call-queue entry"))?;
    apply_outcome(&tx, &team, &e.contact_id, &e.phone, outcome, &who).await?;
    tx.commit().await?;
    Ok(Json(e))
}

/// The last 200 calls, newest first; `contactId` narrows to one contact.
#[utoipa::path(get, path = "/teams/{teamId}/call-history", tag = "calls", operation_id = "callHistory",
    params(("teamId" = String, Path), ("contactId" = Option<String>, Query)),
    responses((status = 200, description = "Calls", body = Vec<Call>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn history(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Vec<Call>>, ApiError> {
    let contact = url_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "contactId")
        .map(|(_, v)| ContactId::parse("contactId", &v))
        .transpose()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CallsRead).await?;
    if let Some(c) = &contact {
        crate::parents::require(&tx, nextier_store::parents::Parent::Contact(c)).await?;
    }
    let rows = calls::history(&tx, contact.as_ref(), 200).await?;
    tx.commit().await?;
    Ok(Json(rows))
}
