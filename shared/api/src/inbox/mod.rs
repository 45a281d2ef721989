//! The inbox (its own function, `api-inbox`): replies as items in buckets with SLAs, worked
//! by people. Every move is recorded; moving to BLACKLIST or LEGAL_DNC suppresses the number
//! and ends the contact's live enrolments. `POST /inbox/classify` shows what the team's
//! configuration would make of a text, storing nothing.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, InboxItemId, TeamId};
use nextier_domain::inbox::{Bucket, InboxConfig, Priority};
use nextier_domain::page::PageRequest;
use nextier_domain::{reply, FieldError};
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery, PathParam};
use nextier_store::inbox::{self, BucketView, Filter, ItemView, Movement, Order, Stats};
use nextier_store::messages::{self, MessageView};
use nextier_store::suppressions::{self, NewSuppression};
use nextier_store::{campaigns, settings, StoreError, Tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

mod suggestions;

/// The most items one bulk move takes.
pub const BULK_LIMIT: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items))
        .routes(routes!(get_item))
        .routes(routes!(move_item))
        .routes(routes!(bulk_move))
        .routes(routes!(process_item))
        .routes(routes!(escalate_item))
        .routes(routes!(list_buckets))
        .routes(routes!(update_bucket))
        .routes(routes!(stats))
        .routes(routes!(classify))
        .routes(routes!(suggestions::list_suggestions, suggestions::suggest))
        .routes(routes!(suggestions::approve_suggestion))
        .routes(routes!(suggestions::reject_suggestion))
}

pub(super) fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such inbox item".into()),
        other => other.into(),
    }
}

fn parse_bucket(field: &str, raw: &str) -> Result<Bucket, FieldError> {
    Bucket::parse(raw.trim()).ok_or_else(|| {
        let all: Vec<&str> = Bucket::ALL.iter().map(|b| b.as_str()).collect();
        FieldError::new(field, format!("must be one of {}", all.join(", ")))
    })
}

/// `{bucket}`: one of the inbox's buckets, documented as their enum.
pub struct InboxBucket(Bucket);

impl PathParam for InboxBucket {
    const NAME: &'static str = "bucket";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        Ok(InboxBucket(parse_bucket(Self::NAME, raw)?))
    }
}

impl utoipa::PartialSchema for InboxBucket {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Bucket::ALL.map(Bucket::as_str)))
            .into()
    }
}

impl ToSchema for InboxBucket {}

fn filter(pairs: &[(String, String)]) -> Result<Filter, ApiError> {
    let mut f = Filter::default();
    let mut problems = Problems::default();
    for (k, v) in pairs {
        match k.as_str() {
            "bucket" => f.bucket = problems.take(parse_bucket("bucket", v)),
            "priority" => match Priority::parse(v.trim()) {
                Some(p) => f.priority = Some(p),
                None => problems.0.push(FieldError::new("priority", "must be URGENT, HOT, WARM or COLD")),
            },
            "order" => match v.as_str() {
                "priority" => f.order = Order::Priority,
                "due" => f.order = Order::Due,
                "newest" => f.order = Order::Newest,
                _ => problems.0.push(FieldError::new("order", "must be priority, due or newest")),
            },
            "processed" | "requiresReview" => match v.as_str() {
                "true" | "false" => {
                    let b = v == "true";
                    if k == "processed" {
                        f.processed = b
                    } else {
                        f.requires_review = Some(b)
                    }
                }
                _ => problems.0.push(FieldError::new(k, "must be true or false")),
            },
            "contactId" => f.contact = problems.take(ContactId::parse("contactId", v)),
            _ => {}
        }
    }
    problems.finish()?;
    Ok(f)
}

/// Items, open ones by default: `order=priority` (default: URGENT first, then by score),
/// `due` (soonest SLA first) or `newest`; filters `bucket`, `priority`, `requiresReview`,
/// `contactId`, and `processed=true` to include processed items.
#[utoipa::path(get, path = "/teams/{teamId}/inbox/items", tag = "inbox",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery,
           ("bucket" = Option<String>, Query), ("priority" = Option<String>, Query),
           ("order" = Option<String>, Query, description = "priority (default), due or newest"),
           ("processed" = Option<bool>, Query), ("requiresReview" = Option<bool>, Query),
           ("contactId" = Option<String>, Query)),
    responses((status = 200, description = "A page of inbox items", body = Page<ItemView>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_items(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<ItemView>>, ApiError> {
    let page: PageRequest = q.page()?;
    let f = filter(&url_pairs(uri.query().unwrap_or("")))?;
    if !inbox::cursor_ok(f.order, page.after.as_deref().unwrap_or("")) {
        return Err(ApiError::field("cursor", "is not a cursor of this listing (was the order changed?)"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = inbox::list(&tx, &f, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |i| inbox::cursor(f.order, i))))
}

/// An item with its conversation (newest first) and its moves.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemDetail {
    pub item: ItemView,
    pub conversation: Vec<MessageView>,
    pub movements: Vec<Movement>,
}

#[utoipa::path(get, path = "/teams/{teamId}/inbox/items/{itemId}", tag = "inbox",
    params(("teamId" = String, Path), ("itemId" = String, Path, description = "inb_<ULID>")),
    responses((status = 200, description = "The item, the last 50 messages with the contact, and its moves", body = ItemDetail)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_item(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, InboxItemId)>,
) -> Result<Json<ItemDetail>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let item = inbox::get(&tx, &id).await.map_err(not_found)?;
    let page = PageRequest { after: None, limit: 50 };
    let mut conversation = messages::thread(&tx, &item.contact_id, &page).await?;
    conversation.truncate(50);
    let movements = inbox::movements(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(ItemDetail { item, conversation, movements }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MoveItem {
    /// The bucket to move to (UNIVERSAL_INBOX, POSITIVE_RESPONSES, NEUTRAL_REVIEW,
    /// WRONG_NUMBER, PROFANITY_REVIEW, BLACKLIST, LEGAL_DNC, FOLLOW_UP).
    bucket: String,
    reason: Option<String>,
}

/// Moves one item (in the caller's transaction), suppressing the number when the bucket
/// says so.
async fn move_one(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &InboxItemId,
    to: Bucket,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let before = inbox::move_to(tx, team, id, to, actor, reason, now).await.map_err(not_found)?;
    if let Some(kind) = to.suppresses() {
        let s = NewSuppression {
            address: &before.phone,
            kind,
            reason,
            source: "inbox",
            actor,
            expires_at: None,
            source_message: None,
        };
        suppressions::add(tx, team, &s).await?;
        campaigns::exit_contact(tx, &before.contact_id, &format!("suppressed:{kind}")).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/teams/{teamId}/inbox/items/{itemId}/move", tag = "inbox", request_body = MoveItem,
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 200, description = "Moved; BLACKLIST and LEGAL_DNC also suppress the number", body = ItemView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn move_item(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, InboxItemId)>,
    JsonBody(body): JsonBody<MoveItem>,
) -> Result<Json<ItemView>, ApiError> {
    let mut problems = Problems::default();
    let to = problems.take(parse_bucket("bucket", &body.bucket));
    let reason = opt_text(&mut problems, "reason", &body.reason, 500);
    problems.finish()?;
    let to = to.ok_or_else(|| ApiError::field("bucket", "is required"))?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
    move_one(&tx, &team, &id, to, &access.actor.label(), reason.as_deref(), app.clock.now()).await?;
    let item = inbox::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(item))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkMove {
    /// 1 to 500 item ids.
    item_ids: Vec<String>,
    bucket: String,
    reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkMoved {
    pub moved: usize,
}

/// All or nothing: an unknown id fails the whole request and moves none.
#[utoipa::path(post, path = "/teams/{teamId}/inbox/items/move", tag = "inbox", request_body = BulkMove,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Every item moved", body = BulkMoved)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn bulk_move(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<BulkMove>,
) -> Result<Json<BulkMoved>, ApiError> {
    let mut problems = Problems::default();
    let to = problems.take(parse_bucket("bucket", &body.bucket));
    let reason = opt_text(&mut problems, "reason", &body.reason, 500);
    let item_ids = problems.ids("itemIds", &body.item_ids, BULK_LIMIT, InboxItemId::parse);
    problems.finish()?;
    let to = to.ok_or_else(|| ApiError::field("bucket", "is required"))?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::InboxWrite).await?;
    let actor = access.actor.label();
    for (i, id) in item_ids.iter().enumerate() {
        move_one(&tx, &team, id, to, &actor, reason.as_deref(), app.clock.now()).await.map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound(format!("itemIds[{i}]: no such inbox item; nothing was moved")),
            other => other,
        })?;
    }
    tx.commit().await?;
    Ok(Json(BulkMoved { moved: item_ids.len() }))
}

/// Runs `change` on an item in the caller's team (with the actor and the time) and answers
/// with the item after it.
async fn change_item<F>(
    app: &AppState,
    cred: &Credential,
    (team, id): (TeamId, InboxItemId),
    change: F,
) -> Result<Json<ItemView>, ApiError>
where
    F: for<'t> FnOnce(
        &'t Tx<'t>,
        &'t InboxItemId,
        String,
        DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 't>>,
{
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, cred, &team, Permission::InboxWrite).await?;
    change(&tx, &id, access.actor.label(), app.clock.now()).await.map_err(not_found)?;
    let item = inbox::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(item))
}

#[utoipa::path(post, path = "/teams/{teamId}/inbox/items/{itemId}/processed", tag = "inbox",
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 200, description = "Processed (the first marking stands)", body = ItemView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn process_item(
    State(app): State<AppState>,
    cred: Credential,
    Ids(ids): Ids<(TeamId, InboxItemId)>,
) -> Result<Json<ItemView>, ApiError> {
    change_item(&app, &cred, ids, |tx, id, actor, now| {
        Box::pin(async move { inbox::mark_processed(tx, id, &actor, now).await })
    })
    .await
}

#[utoipa::path(post, path = "/teams/{teamId}/inbox/items/{itemId}/escalate", tag = "inbox",
    params(("teamId" = String, Path), ("itemId" = String, Path)),
    responses((status = 200, description = "Escalated one level (at most 3)", body = ItemView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn escalate_item(
    State(app): State<AppState>,
    cred: Credential,
    Ids(ids): Ids<(TeamId, InboxItemId)>,
) -> Result<Json<ItemView>, ApiError> {
    change_item(&app, &cred, ids, |tx, id, _, now| {
        Box::pin(async move { inbox::escalate(tx, id, now).await.map(|_| ()) })
    })
    .await
}

#[utoipa::path(get, path = "/teams/{teamId}/inbox/buckets", tag = "inbox",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The team's buckets with their SLAs and open and overdue counts", body = Vec<BucketView>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_buckets(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<BucketView>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let b = inbox::buckets(&tx, app.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(b))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateBucket {
    /// 1 to 80 characters.
    name: Option<String>,
    /// 1 to 10080 minutes, or null for no SLA; absent leaves it as it is.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    sla_minutes: Option<Option<i32>>,
}

/// `Some(None)` for an explicit null, `None` when the field is absent.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

/// Renames a bucket or changes its SLA (ADMIN). Items already waiting keep their due time.
#[utoipa::path(patch, path = "/teams/{teamId}/inbox/buckets/{bucket}", tag = "inbox", request_body = UpdateBucket,
    params(("teamId" = String, Path), ("bucket" = inline(InboxBucket), Path, description = "UNIVERSAL_INBOX, POSITIVE_RESPONSES, ...")),
    responses((status = 200, description = "The team's buckets", body = Vec<BucketView>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_bucket(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, InboxBucket(bucket))): Ids<(TeamId, InboxBucket)>,
    JsonBody(body): JsonBody<UpdateBucket>,
) -> Result<Json<Vec<BucketView>>, ApiError> {
    let mut problems = Problems::default();
    let name = match body.name.as_deref() {
        Some(n) => problems.take(nextier_domain::validation::text("name", n, 1, 80)),
        None => None,
    };
    if let Some(Some(m)) = body.sla_minutes {
        if !(1..=10_080).contains(&m) {
            problems.0.push(FieldError::new("slaMinutes", "must be 1 to 10080, or null for no SLA"));
        }
    }
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    inbox::update_bucket(&tx, bucket, name.as_deref(), body.sla_minutes).await?;
    let b = inbox::buckets(&tx, app.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(b))
}

#[utoipa::path(get, path = "/teams/{teamId}/inbox/stats", tag = "inbox", operation_id = "inboxStats",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "Open, overdue, in review, escalated; by priority, class and bucket", body = Stats)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn stats(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Stats>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let s = inbox::stats(&tx, app.clock.now()).await?;
    tx.commit().await?;
    Ok(Json(s))
}

/// The longest text the preview reads, in characters: well beyond the longest reply a
/// carrier delivers (1,600 characters of a concatenated message, more once emoji sequences
/// are counted character by character).
pub const PREVIEW_MAX_CHARS: usize = 10_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClassifyText {
    /// The reply to classify, as a reply can be: emoji, any script, tabs and line breaks,
    /// Windows-1252 characters that arrived as C1 controls (read as meant). NUL is dropped.
    /// Not blank; at most 10,000 characters.
    text: String,
    /// Read it as if the sender were opted out (then YES opts back in).
    #[serde(default)]
    opted_out: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Classified {
    /// The text as it was read: C1 controls as their Windows-1252 characters, NUL dropped.
    pub text: String,
    pub classification: String,
    pub confidence: i32,
    pub labels: Vec<String>,
    pub priority: String,
    pub score: i32,
    pub score_delta: i32,
    pub bucket: String,
    pub requires_review: bool,
    pub opt_out: bool,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// What the team's configuration makes of a text. Stores nothing.
#[utoipa::path(post, path = "/teams/{teamId}/inbox/classify", tag = "inbox", request_body = ClassifyText,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The classification the inbox would give", body = Classified)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn classify(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<ClassifyText>,
) -> Result<Json<Classified>, ApiError> {
    // Any real reply is previewed as the inbox would read it; only a blank or absurdly long
    // text is refused.
    let text = nextier_domain::text::as_written(&body.text).into_owned();
    if text.trim().is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new("text", "must not be blank")]));
    }
    if text.chars().count() > PREVIEW_MAX_CHARS {
        let why = format!("must be at most {PREVIEW_MAX_CHARS} characters");
        return Err(ApiError::Validation(vec![FieldError::new("text", why)]));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let config = InboxConfig::from_settings(&settings::strings_in(&tx, "inbox").await?);
    // Read-only: roll back rather than commit.
    drop(tx);
    let r = reply::read(&text, body.opted_out);
    let a = config.assess(&r);
    Ok(Json(Classified {
        text,
        classification: a.classification.as_str().into(),
        confidence: a.confidence,
        labels: a.labels,
        priority: a.priority.as_str().into(),
        score: a.score,
        score_delta: a.score_delta,
        bucket: a.bucket.as_str().into(),
        requires_review: a.requires_review,
        opt_out: a.opt_out,
        email: r.email,
        phone: r.phone,
    }))
}
