//! The AI workers (served by the inbox function): their configuration and the numbers they
//! own, the versioned prompts, the review queue, routing decisions, the intelligence log and
//! per-worker metrics; the nurture cadence, booked meetings and research briefs.
//!
//! Reading needs `inbox:read` (any member). Configuring workers and prompts needs `ai:manage`
//! (ADMIN), and a policy that sends on its own is switched on or widened by a person only,
//! never an API key: it is more power than approving one message, which a key cannot either.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use nextier_domain::access::Permission;
use nextier_domain::ai::{self as rules, AutoSend, Faq, Role};
use nextier_domain::ids::{ContactId, InboxItemId, NurtureId, OpenerId, TeamId, WorkerId};
use nextier_domain::phone::E164;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody};
use nextier_store::ai::{self as suggestions, Suggestion};
use nextier_store::nurtures::{self, Meeting, Nurture, Research};
use nextier_store::workers::{self, Delay, Fields, LogRow, Metrics, PolicyVersion, Prompt, RouteDecision, Worker};
use nextier_store::StoreError;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workers, create_worker))
        .routes(routes!(get_worker, update_worker, delete_worker))
        .routes(routes!(set_worker_numbers))
        .routes(routes!(worker_policies))
        .routes(routes!(worker_metrics))
        .routes(routes!(ai_log))
        .routes(routes!(review_queue))
        .routes(routes!(list_prompts, add_prompt))
        .routes(routes!(item_routing))
        .routes(routes!(start_nurture, list_nurtures))
        .routes(routes!(stop_nurture))
        .routes(routes!(book_meeting, list_meetings))
        .routes(routes!(get_research, refresh_research))
        .routes(routes!(list_openers, create_opener))
        .routes(routes!(update_opener, delete_opener))
}

fn not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}

/// A worker's settings; on create, what is absent takes the defaults, on update what is
/// absent stays as it is.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkerInput {
    /// Create only: a stable handle, lower case (`gianna`).
    key: Option<String>,
    name: Option<String>,
    /// opener, nurture, closer or research.
    role: Option<String>,
    persona: Option<String>,
    tone: Option<String>,
    goal: Option<String>,
    industry: Option<String>,
    faqs: Option<Vec<Faq>>,
    sign_off: Option<String>,
    /// "HH:MM" in the team's zone (`ai` / `time_zone`).
    active_from: Option<String>,
    active_until: Option<String>,
    /// ISO weekdays (1 = Monday).
    active_days: Option<Vec<i16>>,
    response_delay: Option<Delay>,
    daily_cap: Option<i32>,
    per_lead_cap: Option<i32>,
    /// never, or confident (sends on its own the named classes at or above the threshold).
    auto_send: Option<String>,
    auto_threshold: Option<i16>,
    /// positive, question, neutral, negative, follow_up.
    auto_classes: Option<Vec<String>>,
    active: Option<bool>,
}

fn text(p: &mut Problems, field: &str, v: &Option<String>, max: usize, into: &mut String) {
    if let Some(v) = v {
        // Persona and goal may run over lines; nothing else a person types is a control character.
        let checked = if v.trim().is_empty() {
            Ok(String::new())
        } else {
            nextier_domain::validation::message_text(field, v, max)
        };
        match checked {
            Ok(t) => *into = t,
            Err(e) => p.0.push(e),
        }
    }
}

/// Applies the input onto `f`, checking every field (all problems at once).
fn apply(p: &mut Problems, b: &WorkerInput, f: &mut Fields) {
    if let Some(n) = &b.name {
        match nextier_domain::validation::text("name", n, 1, 60) {
            Ok(t) => f.name = t,
            Err(e) => p.0.push(e),
        }
    }
    if let Some(r) = &b.role {
        match Role::parse(r.trim()) {
            Some(r) => f.role = r,
            None => p.0.push(FieldError::new("role", "must be one of opener, nurture, closer, research")),
        }
    }
    text(p, "persona", &b.persona, 2000, &mut f.persona);
    text(p, "tone", &b.tone, 200, &mut f.tone);
    text(p, "goal", &b.goal, 500, &mut f.goal);
    text(p, "industry", &b.industry, 100, &mut f.industry);
    text(p, "signOff", &b.sign_off, 60, &mut f.sign_off);
    if let Some(faqs) = &b.faqs {
        if faqs.len() > 50 {
            p.0.push(FieldError::new("faqs", "at most 50"));
        }
        for (i, q) in faqs.iter().enumerate() {
            if let Err(e) = nextier_domain::validation::message_text(&format!("faqs[{i}].question"), &q.question, 500) {
                p.0.push(e);
            }
            if let Err(e) = nextier_domain::validation::message_text(&format!("faqs[{i}].answer"), &q.answer, 1000) {
                p.0.push(e);
            }
        }
        f.faqs =
            faqs.iter().map(|q| Faq { question: q.question.trim().into(), answer: q.answer.trim().into() }).collect();
    }
    for (field, v, into) in
        [("activeFrom", &b.active_from, &mut f.active_from), ("activeUntil", &b.active_until, &mut f.active_until)]
    {
        if let Some(v) = v {
            match rules::parse_clock(field, v) {
                Ok(m) => *into = rules::format_clock(m),
                Err(e) => p.0.push(e),
            }
        }
    }
    if let Some(days) = &b.active_days {
        if days.iter().any(|d| !(1..=7).contains(d)) {
            p.0.push(FieldError::new("activeDays", "ISO weekdays, 1 (Monday) to 7 (Sunday)"));
        } else {
            let mut d = days.clone();
            d.sort_unstable();
            d.dedup();
            f.active_days = d;
        }
    }
    if let Some(d) = b.response_delay {
        if !(0..=86_400).contains(&d.min_seconds) || !(d.min_seconds..=86_400).contains(&d.max_seconds) {
            p.0.push(FieldError::new("responseDelay", "0 <= minSeconds <= maxSeconds <= 86400"));
        } else {
            f.response_delay = d;
        }
    }
    for (field, v, max, into) in
        [("dailyCap", b.daily_cap, 100_000, &mut f.daily_cap), ("perLeadCap", b.per_lead_cap, 100, &mut f.per_lead_cap)]
    {
        if let Some(v) = v {
            if (0..=max).contains(&v) {
                *into = v;
            } else {
                p.0.push(FieldError::new(field, format!("0 to {max}")));
            }
        }
    }
    if let Some(m) = &b.auto_send {
        match AutoSend::parse(m.trim()) {
            Some(m) => f.auto_send = m,
            None => p.0.push(FieldError::new("autoSend", "must be never or confident")),
        }
    }
    if let Some(t) = b.auto_threshold {
        if (0..=100).contains(&t) {
            f.auto_threshold = t;
        } else {
            p.0.push(FieldError::new("autoThreshold", "0 to 100"));
        }
    }
    if let Some(classes) = &b.auto_classes {
        let allowed = rules::policy_classes();
        for (i, c) in classes.iter().enumerate() {
            if !allowed.contains(c) {
                p.0.push(FieldError::new(
                    format!("autoClasses[{i}]"),
                    format!("must be one of {}", allowed.join(", ")),
                ));
            }
        }
        let mut c = classes.clone();
        c.sort();
        c.dedup();
        f.auto_classes = c;
    }
    if let Some(a) = b.active {
        f.active = a;
    }
    if f.auto_send == AutoSend::Confident && matches!(f.role, Role::Closer | Role::Research) {
        p.0.push(FieldError::new(
            "autoSend",
            format!("a {} never sends on its own: it always goes through a person", f.role.as_str()),
        ));
    }
    if f.auto_send == AutoSend::Confident && f.auto_classes.is_empty() {
        p.0.push(FieldError::new("autoClasses", "name the classes it may answer on its own"));
    }
}

/// Whether `new` lets more out on its own than `old` (a person must make that change).
fn widens(old: &Fields, new: &Fields) -> bool {
    new.auto_send == AutoSend::Confident
        && (old.auto_send == AutoSend::Never
            || new.auto_threshold < old.auto_threshold
            || new.auto_classes.iter().any(|c| !old.auto_classes.contains(c)))
}

fn require_person(access: &nextier_http::TeamAccess) -> Result<(), ApiError> {
    if access.actor.user().is_none() {
        return Err(ApiError::Forbidden(
            "a person switches on or widens what a worker sends on its own; an API key cannot".into(),
        ));
    }
    Ok(())
}

/// What AI workers write, once any of them sends on its own (prompts, the `ai` and `booking`
/// settings), is changed by a person only: for an API key it would be sending without one.
/// The one place this rule lives (the settings API calls it too).
pub async fn guard_what_workers_write(
    tx: &nextier_store::Tx<'_>,
    access: &nextier_http::TeamAccess,
) -> Result<(), ApiError> {
    if access.actor.user().is_none() && workers::any_auto_sending(tx).await? {
        return Err(ApiError::Forbidden(
            "a worker of this team sends on its own: a person changes what the workers write, not an API key".into(),
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/workers", tag = "ai",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The team's workers (the four defaults are created on first use)", body = Vec<Worker>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_workers(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<Worker>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    workers::ensure_defaults(&tx, &team).await?;
    let all = workers::list(&tx).await?;
    tx.commit().await?;
    Ok(Json(all))
}

#[utoipa::path(post, path = "/teams/{teamId}/ai/workers", tag = "ai", request_body = WorkerInput,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Created", body = Worker),
              (status = 400, description = "A field is wrong (each is named)"),
              (status = 409, description = "The key is taken")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_worker(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<WorkerInput>,
) -> Result<(StatusCode, Json<Worker>), ApiError> {
    let mut p = Problems::default();
    let key = match body.key.as_deref().map(str::trim) {
        Some(k)
            if !k.is_empty()
                && k.len() <= 40
                && k.starts_with(|c: char| c.is_ascii_lowercase())
                && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') =>
        {
            k.to_owned()
        }
        _ => {
            p.0.push(FieldError::new("key", "1 to 40 characters: a-z first, then a-z, 0-9, _ or -"));
            String::new()
        }
    };
    if body.name.is_none() {
        p.0.push(FieldError::new("name", "is required"));
    }
    if body.role.is_none() {
        p.0.push(FieldError::new("role", "is required"));
    }
    let mut f = workers::defaults().remove(0).1;
    f.persona.clear();
    f.goal.clear();
    apply(&mut p, &body, &mut f);
    p.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::AiManage).await?;
    if f.auto_send == AutoSend::Confident {
        require_person(&access)?;
    }
    workers::ensure_defaults(&tx, &team).await?;
    let w = workers::insert(&tx, &team, &key, &f, &access.actor.label(), false).await?.ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(w)))
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/workers/{workerId}", tag = "ai",
    params(("teamId" = String, Path), ("workerId" = String, Path, description = "wrk_<ULID>")),
    responses((status = 200, description = "The worker", body = Worker)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_worker(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
) -> Result<Json<Worker>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let w = workers::get(&tx, &id).await.map_err(not_found("worker"))?;
    tx.commit().await?;
    Ok(Json(w))
}

/// Changes a worker. A change to its auto-send policy makes a new policy version (kept in
/// `…/policies`); switching auto-send on, lowering its threshold or adding a class needs a
/// person.
#[utoipa::path(patch, path = "/teams/{teamId}/ai/workers/{workerId}", tag = "ai", request_body = WorkerInput,
    params(("teamId" = String, Path), ("workerId" = String, Path)),
    responses((status = 200, description = "Changed", body = Worker),
              (status = 403, description = "An API key widened an auto-send policy")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_worker(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
    JsonBody(body): JsonBody<WorkerInput>,
) -> Result<Json<Worker>, ApiError> {
    if body.key.is_some() {
        return Err(ApiError::field("key", "a worker's key does not change"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::AiManage).await?;
    let current = workers::lock(&tx, &id).await.map_err(not_found("worker"))?;
    let mut f = current.fields.clone();
    let mut p = Problems::default();
    apply(&mut p, &body, &mut f);
    p.finish()?;
    // Widening a policy, or changing anything about a worker that sends on its own (its
    // persona, hours, caps, whether it is active), is a person's decision.
    if widens(&current.fields, &f)
        || (f != current.fields
            && (current.fields.auto_send == AutoSend::Confident || f.auto_send == AutoSend::Confident))
    {
        require_person(&access)?;
    }
    let w = workers::update(&tx, &id, &f, &access.actor.label()).await?;
    tx.commit().await?;
    Ok(Json(w))
}

#[utoipa::path(delete, path = "/teams/{teamId}/ai/workers/{workerId}", tag = "ai",
    params(("teamId" = String, Path), ("workerId" = String, Path)),
    responses((status = 204, description = "Deleted (its numbers route by the rules again)"),
              (status = 409, description = "A default worker: pause it (active false) instead")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_worker(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::AiManage).await?;
    let w = workers::lock(&tx, &id).await.map_err(not_found("worker"))?;
    if workers::defaults().iter().any(|(k, _)| *k == w.key) {
        return Err(ApiError::Conflict(format!("{} is a default worker; pause it with active: false", w.key)));
    }
    workers::delete(&tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Numbers {
    /// The team's sending numbers this worker owns (E.164); replaces what it had.
    numbers: Vec<String>,
}

#[utoipa::path(put, path = "/teams/{teamId}/ai/workers/{workerId}/numbers", tag = "ai", request_body = Numbers,
    params(("teamId" = String, Path), ("workerId" = String, Path)),
    responses((status = 200, description = "The worker with its numbers", body = Worker),
              (status = 400, description = "Not a number, or not one of the team's sending numbers"),
              (status = 409, description = "Another worker owns one of them")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn set_worker_numbers(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
    JsonBody(body): JsonBody<Numbers>,
) -> Result<Json<Worker>, ApiError> {
    let mut p = Problems::default();
    if body.numbers.len() > 100 {
        p.0.push(FieldError::new("numbers", "at most 100"));
    }
    let mut numbers = Vec::new();
    for (i, n) in body.numbers.iter().enumerate() {
        match E164::parse(n) {
            Ok(e) => numbers.push(e.as_str().to_owned()),
            Err(_) => p.0.push(FieldError::new(format!("numbers[{i}]"), "not a valid phone number")),
        }
    }
    p.finish()?;
    numbers.sort();
    numbers.dedup();
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::AiManage).await?;
    let w = workers::lock(&tx, &id).await.map_err(not_found("worker"))?;
    if w.fields.auto_send == AutoSend::Confident {
        require_person(&access)?;
    }
    if w.fields.role == Role::Research && !numbers.is_empty() {
        return Err(ApiError::field("numbers", "a research worker never texts, so it owns no numbers"));
    }
    let foreign = workers::not_sending_numbers(&tx, &numbers).await?;
    let mut p = Problems::default();
    for (i, n) in numbers.iter().enumerate() {
        if foreign.contains(n) {
            p.0.push(FieldError::new(format!("numbers[{i}]"), format!("{n} is not one of the team's sending numbers")));
        }
    }
    p.finish()?;
    workers::set_numbers(&tx, &team, &id, &numbers).await?;
    let w = workers::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(w))
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/workers/{workerId}/policies", tag = "ai",
    params(("teamId" = String, Path), ("workerId" = String, Path)),
    responses((status = 200, description = "Every version of its auto-send policy, newest first, with who changed it", body = Vec<PolicyVersion>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn worker_policies(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
) -> Result<Json<Vec<PolicyVersion>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    workers::get(&tx, &id).await.map_err(not_found("worker"))?;
    let v = workers::policies(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(v))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct Since {
    /// From when (RFC 3339); the last 30 days when absent.
    since: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/workers/{workerId}/metrics", tag = "ai",
    params(("teamId" = String, Path), ("workerId" = String, Path), Since),
    responses((status = 200, description = "Suggestions, approval rate, edit distance, reply rate, meetings booked", body = Metrics)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn worker_metrics(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, WorkerId)>,
    Query(q): Query<Since>,
) -> Result<Json<Metrics>, ApiError> {
    let since = match &q.since {
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| ApiError::field("since", "an RFC 3339 time"))?,
        None => app.clock.now() - Duration::days(30),
    };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    workers::get(&tx, &id).await.map_err(not_found("worker"))?;
    let m = workers::metrics(&tx, &id, since).await?;
    tx.commit().await?;
    Ok(Json(m))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ByWorker {
    /// One worker's (wrk_…); every worker's when absent.
    worker_id: Option<String>,
    /// At most this many (1 to 500, 100 by default).
    limit: Option<String>,
}

fn by_worker(q: &ByWorker) -> Result<(Option<WorkerId>, i64), ApiError> {
    let w = q
        .worker_id
        .as_deref()
        .map(|w| WorkerId::parse("workerId", w))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(l) => l
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::field("limit", "1 to 500"))?,
    };
    Ok((w, limit))
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/log", tag = "ai",
    params(("teamId" = String, Path), ByWorker),
    responses((status = 200, description = "The intelligence log, newest first: suggested, sent, fallback, held, replied, opted_out, handed_over, meeting_booked, researched", body = Vec<LogRow>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn ai_log(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<ByWorker>,
) -> Result<Json<Vec<LogRow>>, ApiError> {
    let (w, limit) = by_worker(&q)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = workers::log(&tx, w.as_ref(), limit).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// A suggestion waiting for a person, with NEVA's brief on the lead beside it when there is a
/// fresh one.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewItem {
    #[serde(flatten)]
    pub suggestion: Suggestion,
    pub research: Option<Research>,
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/suggestions", tag = "ai",
    params(("teamId" = String, Path), ByWorker),
    responses((status = 200, description = "Suggestions waiting for a person, oldest first (replies and follow-ups), with why each waits and the lead's research brief when fresh", body = Vec<ReviewItem>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn review_queue(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<ByWorker>,
) -> Result<Json<Vec<ReviewItem>>, ApiError> {
    let (w, limit) = by_worker(&q)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = suggestions::pending(&tx, w.as_ref(), limit).await?;
    let contacts: Vec<String> = rows.iter().map(|s| s.contact_id.to_string()).collect();
    let briefs = nurtures::research_for(&tx, &contacts, app.clock.now()).await?;
    tx.commit().await?;
    let out = rows
        .into_iter()
        .map(|s| {
            let research = briefs.iter().find(|b| b.contact_id == s.contact_id).cloned();
            ReviewItem { suggestion: s, research }
        })
        .collect();
    Ok(Json(out))
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/prompts", tag = "ai",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Every version of every prompt (newest first per key)", body = Vec<Prompt>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_prompts(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<Prompt>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = workers::prompts(&tx).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewPrompt {
    /// `reply` (every reply), `reply.<role>` (one role's replies) or `follow_up`.
    key: String,
    /// `{{workerName}}`, `{{persona}}`, `{{tone}}`, `{{goal}}`, `{{industry}}`, `{{faqs}}`, `{{signOff}}`.
    system_template: String,
    /// `{{conversation}}`, `{{reply}}`, `{{classification}}`, `{{firstName}}`, `{{times}}`, `{{link}}`, `{{stage}}`, `{{task}}`.
    user_template: String,
    model: Option<String>,
    /// 0 to 2 (0.3 by default).
    temperature: Option<f32>,
}

const PROMPT_KEYS: &[&str] = &["reply", "reply.opener", "reply.nurture", "reply.closer", "follow_up"];

/// Adds the next version of a prompt; the newest is used from the next message on, and every
/// suggestion records the version that wrote it.
#[utoipa::path(post, path = "/teams/{teamId}/ai/prompts", tag = "ai", request_body = NewPrompt,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "The new version", body = Prompt)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_prompt(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<NewPrompt>,
) -> Result<(StatusCode, Json<Prompt>), ApiError> {
    let mut p = Problems::default();
    if !PROMPT_KEYS.contains(&body.key.as_str()) {
        p.0.push(FieldError::new("key", format!("must be one of {}", PROMPT_KEYS.join(", "))));
    }
    for (field, v) in [("systemTemplate", &body.system_template), ("userTemplate", &body.user_template)] {
        if let Err(e) = nextier_domain::validation::message_text(field, v, 8000) {
            p.0.push(e);
        }
    }
    let model = body.model.as_deref().map(str::trim).filter(|m| !m.is_empty());
    if model.is_some_and(|m| m.len() > 100 || !m.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))) {
        p.0.push(FieldError::new("model", "a model name (letters, digits, - _ . : /)"));
    }
    let temperature = body.temperature.unwrap_or(0.3);
    if !(0.0..=2.0).contains(&temperature) || temperature.is_nan() {
        p.0.push(FieldError::new("temperature", "0 to 2"));
    }
    p.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::AiManage).await?;
    guard_what_workers_write(&tx, &access).await?;
    let out = workers::add_prompt(
        &tx,
        &team,
        &body.key,
        &body.system_template,
        &body.user_template,
        model,
        temperature,
        &access.actor.label(),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(get, path = "/teams/{teamId}/inbox/items/{itemId}/routing", tag = "ai",
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 200, description = "Which worker the reply went to, and why", body = Vec<RouteDecision>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn item_routing(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, InboxItemId)>,
) -> Result<Json<Vec<RouteDecision>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    nextier_store::inbox::get(&tx, &id).await.map_err(not_found("inbox item"))?;
    let rows = workers::routes_for_item(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartNurture {
    contact_id: String,
    /// A nurture worker (the team's CATHY when absent).
    worker_id: Option<String>,
}

/// Starts a lead's nurture cadence (a lead already in one gets it back, 200). The first
/// follow-up comes after `nurture.min_days`–`nurture.max_days`; each waits for a person
/// unless the worker's policy names `follow_up`.
#[utoipa::path(post, path = "/teams/{teamId}/ai/nurtures", tag = "ai", request_body = StartNurture,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Started", body = Nurture), (status = 200, description = "Already nurtured", body = Nurture),
              (status = 409, description = "The lead opted out or is closed, or the worker is not an active nurture worker")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn start_nurture(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<StartNurture>,
) -> Result<(StatusCode, Json<Nurture>), ApiError> {
    let mut p = Problems::default();
    let contact = p.take(ContactId::parse("contactId", &body.contact_id));
    let worker = body.worker_id.as_deref().and_then(|w| p.take(WorkerId::parse("workerId", w)));
    p.finish()?;
    let contact = contact.ok_or(StoreError::NotFound)?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
    let (n, created) =
        nextier_ai::nurture::start(&tx, &team, &contact, worker.as_ref(), &access.actor.label(), app.clock.now())
            .await
            .map_err(|e| match e {
                nextier_ai::nurture::StartError::Store(StoreError::NotFound) => {
                    ApiError::NotFound("contactId: no such contact".into())
                }
                nextier_ai::nurture::StartError::Store(e) => e.into(),
                nextier_ai::nurture::StartError::Refused(m) => ApiError::Conflict(m),
            })?;
    tx.commit().await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(n)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ByContact {
    /// The lead (required).
    contact_id: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/nurtures", tag = "ai",
    params(("teamId" = String, Path), ByContact),
    responses((status = 200, description = "A lead's cadences, newest first", body = Vec<Nurture>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_nurtures(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<ByContact>,
) -> Result<Json<Vec<Nurture>>, ApiError> {
    let raw = q.contact_id.as_deref().ok_or_else(|| ApiError::field("contactId", "is required"))?;
    let contact = ContactId::parse("contactId", raw).map_err(|e| ApiError::Validation(vec![e]))?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = nurtures::for_contact(&tx, &contact).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

#[utoipa::path(post, path = "/teams/{teamId}/ai/nurtures/{nurtureId}/stop", tag = "ai",
    params(("teamId" = String, Path), ("nurtureId" = String, Path)),
    responses((status = 200, description = "Stopped (its waiting follow-up is held)", body = Nurture),
              (status = 409, description = "Already ended")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn stop_nurture(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, NurtureId)>,
) -> Result<Json<Nurture>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
    let n = nurtures::stop(&tx, &id, &format!("stopped by {}", access.actor.label()))
        .await
        .map_err(not_found("nurture cadence"))?;
    tx.commit().await?;
    Ok(Json(n))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BookMeeting {
    contact_id: String,
    /// RFC 3339, in the future.
    starts_at: String,
    /// 5 to 480 (30 by default).
    duration_minutes: Option<i64>,
    worker_id: Option<String>,
    notes: Option<String>,
}

/// Books a meeting: the lead moves to `appointment_booked`, leaves every sequence and its
/// nurture cadence, joins the call queue at the top, and `MeetingBooked` is published.
#[utoipa::path(post, path = "/teams/{teamId}/ai/meetings", tag = "ai", request_body = BookMeeting,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Booked", body = Meeting),
              (status = 409, description = "The lead opted out, or already has a meeting then")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn book_meeting(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<BookMeeting>,
) -> Result<(StatusCode, Json<Meeting>), ApiError> {
    let now = app.clock.now();
    let mut p = Problems::default();
    let contact = p.take(ContactId::parse("contactId", &body.contact_id));
    let worker = body.worker_id.as_deref().and_then(|w| p.take(WorkerId::parse("workerId", w)));
    let starts_at = match DateTime::parse_from_rfc3339(body.starts_at.trim()) {
        Ok(d) if d.with_timezone(&Utc) > now && d.with_timezone(&Utc) < now + Duration::days(366) => {
            Some(d.with_timezone(&Utc))
        }
        Ok(_) => {
            p.0.push(FieldError::new("startsAt", "must be in the future (within a year)"));
            None
        }
        Err(_) => {
            p.0.push(FieldError::new("startsAt", "an RFC 3339 time"));
            None
        }
    };
    let minutes = body.duration_minutes.unwrap_or(30);
    if !(5..=480).contains(&minutes) {
        p.0.push(FieldError::new("durationMinutes", "5 to 480"));
    }
    let notes = crate::contacts::input::opt_text(&mut p, "notes", &body.notes, 2000);
    p.finish()?;
    let (contact, starts_at) = (contact.ok_or(StoreError::NotFound)?, starts_at.ok_or(StoreError::NotFound)?);
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
    let actor = access.actor.label();
    let b = nextier_ai::closer::Booking {
        contact: &contact,
        worker: worker.as_ref(),
        starts_at,
        minutes,
        notes: notes.as_deref(),
        actor: &actor,
    };
    let (m, staged) = nextier_ai::closer::book(&tx, &team, &b).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such contact or worker".into()),
        other => other.into(),
    })?;
    tx.commit().await?;
    app.outbox.publish(&[staged]).await;
    Ok((StatusCode::CREATED, Json(m)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct MeetingsQuery {
    contact_id: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/meetings", tag = "ai",
    params(("teamId" = String, Path), MeetingsQuery),
    responses((status = 200, description = "Meetings not yet over, soonest first", body = Vec<Meeting>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_meetings(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<MeetingsQuery>,
) -> Result<Json<Vec<Meeting>>, ApiError> {
    let contact = q
        .contact_id
        .as_deref()
        .map(|c| ContactId::parse("contactId", c))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = nurtures::meetings(&tx, contact.as_ref(), app.clock.now(), 500).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

async fn research(
    app: &AppState,
    cred: &Credential,
    team: &TeamId,
    contact: &ContactId,
    refresh: bool,
) -> Result<Research, ApiError> {
    {
        let mut conn = app.db.conn().await?;
        let perm = if refresh { Permission::InboxWrite } else { Permission::InboxRead };
        let (tx, _) = open_team(&mut conn, cred, team, perm).await?;
        nextier_store::contacts::get(&tx, contact).await.map_err(not_found("contact"))?;
        // Reading never pays for a model: a brief is made by POST (inbox:write).
        if !refresh {
            return nurtures::research(&tx, contact, app.clock.now())
                .await?
                .ok_or_else(|| ApiError::NotFound("no fresh brief for this lead; POST to research them".into()));
        }
    }
    nextier_ai::research::brief(&app.db, app.researcher.as_ref(), team, contact, false, app.clock.now()).await.map_err(
        |e| match e.downcast::<StoreError>() {
            Ok(StoreError::NotFound) => ApiError::NotFound("no such contact".into()),
            Ok(other) => other.into(),
            Err(e) => ApiError::Internal(e),
        },
    )
}

/// NEVA's brief on a lead while it is fresh (a day): company, role, property and recent
/// signals with citations. Advisory only: it never changes the contact. 404 when there is none.
#[utoipa::path(get, path = "/teams/{teamId}/ai/research/{contactId}", tag = "ai",
    params(("teamId" = String, Path), ("contactId" = String, Path)),
    responses((status = 200, description = "The brief", body = Research)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_research(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, contact)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Research>, ApiError> {
    Ok(Json(research(&app, &cred, &team, &contact, false).await?))
}

#[utoipa::path(post, path = "/teams/{teamId}/ai/research/{contactId}", tag = "ai",
    params(("teamId" = String, Path), ("contactId" = String, Path)),
    responses((status = 200, description = "The brief (a fresh one is researched when the last is a day old)", body = Research)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn refresh_research(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, contact)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Research>, ApiError> {
    Ok(Json(research(&app, &cred, &team, &contact, true).await?))
}

// The opener library ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenerInput {
    /// Lower case (`cold`, `probate`, `follow-up`).
    category: Option<String>,
    /// `friendly` by default.
    tone: Option<String>,
    /// The A/B label, unique in its category (`A`, `B`, `short`).
    variant: Option<String>,
    /// The SMS, with merge fields like `{{firstName|there}}`.
    body: Option<String>,
    /// 0 to 1,000 (1 by default); 0 pauses it.
    weight: Option<i32>,
    active: Option<bool>,
}

fn opener_content(p: &mut Problems, b: &OpenerInput, c: &mut nextier_store::openers::Content) {
    if let Some(cat) = &b.category {
        let cat = cat.trim();
        if cat.is_empty()
            || cat.len() > 40
            || !cat.starts_with(|c: char| c.is_ascii_lowercase())
            || !cat.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            p.0.push(FieldError::new("category", "1 to 40 characters: a-z first, then a-z, 0-9, _ or -"));
        } else {
            c.category = cat.to_owned();
        }
    }
    if let Some(t) = &b.tone {
        match nextier_domain::validation::text("tone", t, 1, 40) {
            Ok(t) => c.tone = t,
            Err(e) => p.0.push(e),
        }
    }
    if let Some(v) = &b.variant {
        match nextier_domain::validation::text("variant", v, 1, 20) {
            Ok(v) => c.variant = v,
            Err(e) => p.0.push(e),
        }
    }
    if let Some(body) = &b.body {
        let mut q = Problems::default();
        crate::campaigns::steps::check_content(&mut q, nextier_store::campaigns::Channel::Sms, None, body);
        if q.0.is_empty() {
            c.body = body.clone();
        }
        p.0.extend(q.0);
    }
    if let Some(w) = b.weight {
        if (0..=1000).contains(&w) {
            c.weight = w;
        } else {
            p.0.push(FieldError::new("weight", "0 to 1,000"));
        }
    }
    if let Some(a) = b.active {
        c.active = a;
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ByCategory {
    category: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/ai/openers", tag = "ai",
    params(("teamId" = String, Path), ByCategory),
    responses((status = 200, description = "The library with each variant's counters and rates", body = Vec<nextier_store::openers::Opener>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_openers(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<ByCategory>,
) -> Result<Json<Vec<nextier_store::openers::Opener>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = nextier_store::openers::list(&tx, q.category.as_deref().map(str::trim)).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// Adds a variant to the library. A campaign step drawing from its category
/// (`openerCategory`) keeps the variants as they were when the step was written.
#[utoipa::path(post, path = "/teams/{teamId}/ai/openers", tag = "ai", request_body = OpenerInput,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Added", body = nextier_store::openers::Opener),
              (status = 409, description = "The category already has this variant label")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_opener(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<OpenerInput>,
) -> Result<(StatusCode, Json<nextier_store::openers::Opener>), ApiError> {
    let mut p = Problems::default();
    for (field, given) in
        [("category", body.category.is_some()), ("variant", body.variant.is_some()), ("body", body.body.is_some())]
    {
        if !given {
            p.0.push(FieldError::new(field, "is required"));
        }
    }
    let mut c = nextier_store::openers::Content {
        category: String::new(),
        tone: "friendly".into(),
        variant: String::new(),
        body: String::new(),
        weight: 1,
        active: true,
    };
    opener_content(&mut p, &body, &mut c);
    p.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let o = nextier_store::openers::create(&tx, &team, &c).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(o)))
}

#[utoipa::path(patch, path = "/teams/{teamId}/ai/openers/{openerId}", tag = "ai", request_body = OpenerInput,
    params(("teamId" = String, Path), ("openerId" = String, Path, description = "opn_<ULID>")),
    responses((status = 200, description = "Changed (steps already written keep what they had)", body = nextier_store::openers::Opener)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_opener(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, OpenerId)>,
    JsonBody(body): JsonBody<OpenerInput>,
) -> Result<Json<nextier_store::openers::Opener>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let o = nextier_store::openers::get(&tx, &id).await.map_err(not_found("opener"))?;
    let mut c = nextier_store::openers::Content {
        category: o.category,
        tone: o.tone,
        variant: o.variant,
        body: o.body,
        weight: o.weight,
        active: o.active,
    };
    let mut p = Problems::default();
    opener_content(&mut p, &body, &mut c);
    p.finish()?;
    let o = nextier_store::openers::update(&tx, &id, &c).await?;
    tx.commit().await?;
    Ok(Json(o))
}

#[utoipa::path(delete, path = "/teams/{teamId}/ai/openers/{openerId}", tag = "ai",
    params(("teamId" = String, Path), ("openerId" = String, Path)),
    responses((status = 204, description = "Deleted (steps already written keep their copy)")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_opener(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, OpenerId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    nextier_store::openers::delete(&tx, &id).await.map_err(not_found("opener"))?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
