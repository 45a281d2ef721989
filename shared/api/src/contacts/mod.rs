//! The contacts API group: one contact per person per team.

pub(crate) mod input;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, TeamId};
use nextier_domain::lead_state::LeadState;
use nextier_domain::FieldError;
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::contacts::{self, BulkAction, Contact, MergeRecord, Selection, TimelineEntry};
use nextier_store::parents::Parent;
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{events, AppState};
use input::{CreateContact, Problems, UpdateContact};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(get_contact, update_contact, delete_contact))
        .routes(routes!(bulk))
        .routes(routes!(merge, list_merges))
        .routes(routes!(change_lead_state))
        .routes(routes!(timeline))
}

#[utoipa::path(post, path = "/teams/{teamId}/contacts", tag = "contacts", request_body = CreateContact,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Created", body = Contact),
              (status = 409, description = "A phone or email already belongs to another contact of the team")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_contact(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<CreateContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let new = body.validate()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let id = contacts::create(&tx, &team, &new, &access.actor.label()).await?;
    let contact = contacts::get(&tx, &id).await?;
    let mut staged = vec![events::stage(&tx, &team, "ContactCreated", json!({"contactId": id})).await?];
    for tag in &contact.tags {
        staged.push(events::stage(&tx, &team, "ContactTagged", json!({"contactId": id, "tag": tag})).await?);
    }
    tx.commit().await?;
    app.outbox.publish(&staged).await;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// Contacts in id order. Filters: `status`, `leadState`, `tag`, `minScore`, `maxScore`,
/// `hasMobile`, `state`, `zip`, `q` (name, company, email, or 4+ digits of a phone),
/// `businessId`, `sector`, `role` (a role in a business), `enrichmentStatus`.
#[utoipa::path(get, path = "/teams/{teamId}/contacts", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery,
           ("status" = Option<String>, Query), ("leadState" = Option<String>, Query), ("tag" = Option<String>, Query),
           ("minScore" = Option<i32>, Query), ("maxScore" = Option<i32>, Query), ("hasMobile" = Option<bool>, Query),
           ("state" = Option<String>, Query), ("zip" = Option<String>, Query), ("q" = Option<String>, Query),
           ("businessId" = Option<String>, Query), ("sector" = Option<String>, Query), ("role" = Option<String>, Query),
           ("enrichmentStatus" = Option<String>, Query)),
    responses((status = 200, description = "A page of contacts", body = Page<Contact>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_contacts(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    uri: axum::http::Uri,
) -> Result<Json<Page<Contact>>, ApiError> {
    let page = q.page()?;
    let filter = input::filter(&url_pairs(uri.query().unwrap_or("")))?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = contacts::list(&tx, &filter, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |c| c.id.to_string())))
}

#[utoipa::path(get, path = "/teams/{teamId}/contacts/{contactId}", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The contact with phones, emails and addresses", body = Contact)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_contact(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Contact>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let contact = contacts::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(contact))
}

/// Changes the given fields (`null` clears a text field); `addPhones` / `addEmails` attach more.
#[utoipa::path(patch, path = "/teams/{teamId}/contacts/{contactId}", tag = "contacts", request_body = UpdateContact,
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The updated contact", body = Contact),
              (status = 409, description = "An added phone or email belongs to another contact")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_contact(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
    JsonBody(body): JsonBody<UpdateContact>,
) -> Result<Json<Contact>, ApiError> {
    let mut problems = Problems::default();
    let text_patch = |pr: &mut Problems, field: &str, v: &Option<Option<String>>, max: usize| match v {
        None => None,
        Some(None) => Some(None),
        Some(s) => Some(input::opt_text(pr, field, s, max)),
    };
    let first_name = text_patch(&mut problems, "firstName", &body.first_name, 100);
    let last_name = text_patch(&mut problems, "lastName", &body.last_name, 100);
    let company = text_patch(&mut problems, "company", &body.company, 200);
    let title = text_patch(&mut problems, "title", &body.title, 100);
    let source = text_patch(&mut problems, "source", &body.source, 100);
    let status = input::one_of(&mut problems, "status", &body.status, &["active", "archived"]);
    let pipeline = input::one_of(&mut problems, "pipelineStatus", &body.pipeline_status, &input::PIPELINE);
    let score = input::score(&mut problems, "score", body.score);
    let tags = body.tags.as_ref().map(|t| input::tags(&mut problems, "tags", t));
    let custom = input::custom(&mut problems, "customFields", &body.custom_fields);
    let add_phones = input::phones(&mut problems, "addPhones", &body.add_phones);
    let add_emails = input::emails(&mut problems, "addEmails", &body.add_emails);
    problems.finish()?;

    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let current = contacts::lock(&tx, &id).await?;
    let mut f = contacts::Fields {
        first_name: first_name.unwrap_or(current.first_name),
        last_name: last_name.unwrap_or(current.last_name),
        company: company.unwrap_or(current.company),
        title: title.unwrap_or(current.title),
        source: source.unwrap_or(current.source),
        status: status.unwrap_or(current.status),
        pipeline_status: pipeline.unwrap_or(current.pipeline_status),
        score: score.unwrap_or(current.score),
        tags: tags.unwrap_or_else(|| current.tags.clone()),
        custom_fields: custom.unwrap_or(current.custom_fields),
    };
    f.tags.sort();
    // Each tag this edit adds is an event (workflows start on it).
    let mut staged = Vec::new();
    for tag in f.tags.iter().filter(|t| !current.tags.iter().any(|c| c.eq_ignore_ascii_case(t))) {
        staged.push(events::stage(&tx, &team, "ContactTagged", json!({"contactId": id, "tag": tag})).await?);
    }
    let changed = contacts::update(&tx, &id, &f).await?;
    let has_primary = !current.phones.is_empty();
    for (i, mut ph) in add_phones.into_iter().enumerate() {
        ph.is_primary = ph.is_primary && !has_primary;
        contacts::add_phone(&tx, &team, &id, &ph).await.map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::Conflict(format!("addPhones[{i}]: {m}")),
            other => other.into(),
        })?;
    }
    for (i, email) in add_emails.iter().enumerate() {
        contacts::add_email(&tx, &team, &id, email, current.emails.is_empty() && i == 0).await.map_err(
            |e| match e {
                StoreError::Conflict(m) => ApiError::Conflict(format!("addEmails[{i}]: {m}")),
                other => other.into(),
            },
        )?;
    }
    if changed || !body.add_phones.is_empty() || !body.add_emails.is_empty() {
        contacts::record(&tx, &team, &id, "updated", json!({}), &access.actor.label()).await?;
    }
    // A computed score follows its inputs (a score a person sets stands until the next
    // enrichment or rescore).
    let mut new_score = f.score;
    let edited = changed || !body.add_phones.is_empty() || !body.add_emails.is_empty();
    if body.score.is_some() {
        nextier_store::scoring::set_by_person(&tx, &id).await?;
    } else if edited && nextier_store::scoring::breakdown(&tx, &id).await?.is_some() {
        new_score = nextier_store::scoring::rescore(&tx, &id, app.clock.now()).await?.1.total;
    }
    // A new score may put the contact in a running campaign's auto-enrol band.
    if new_score != current.score {
        let body = json!({"teamId": team, "contactId": id});
        staged.push(events::stage_queue(&tx, &team, nextier_campaigns::SYNC_QUEUE, body).await?);
    }
    let contact = contacts::get(&tx, &id).await?;
    tx.commit().await?;
    app.outbox.publish(&staged).await;
    Ok(Json(contact))
}

/// Soft-deletes a contact. Its numbers stay attached, so their opt-out history is kept.
#[utoipa::path(delete, path = "/teams/{teamId}/contacts/{contactId}", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_contact(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    contacts::soft_delete(&tx, &id).await?;
    contacts::record(&tx, &team, &id, "deleted", json!({}), &access.actor.label()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bulk {
    /// tag, untag or delete (delete needs ADMIN).
    action: String,
    #[serde(default)]
    tags: Vec<String>,
    /// Up to 10,000 contact ids; or give `filter` instead.
    ids: Option<Vec<String>>,
    /// The list filters as an object, e.g. `{"tag": "florida", "minScore": "50"}`.
    #[schema(value_type = Option<Object>)]
    filter: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct BulkResult {
    affected: u64,
}

#[utoipa::path(post, path = "/teams/{teamId}/contacts/bulk", tag = "contacts", request_body = Bulk,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 200, description = "How many contacts changed", body = BulkResult)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn bulk(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<Bulk>,
) -> Result<Json<BulkResult>, ApiError> {
    let mut problems = Problems::default();
    let action = match body.action.as_str() {
        "tag" => Some(BulkAction::Tag),
        "untag" => Some(BulkAction::Untag),
        "delete" => Some(BulkAction::Delete),
        _ => {
            problems.0.push(FieldError::new("action", "must be tag, untag or delete"));
            None
        }
    };
    let tags = input::tags(&mut problems, "tags", &body.tags);
    if matches!(action, Some(BulkAction::Tag | BulkAction::Untag)) && tags.is_empty() && problems.0.is_empty() {
        problems.0.push(FieldError::new("tags", "name at least one tag"));
    }
    let ids: Option<Vec<ContactId>> = body.ids.as_ref().map(|ids| {
        if ids.len() > 10_000 {
            problems.0.push(FieldError::new("ids", "at most 10,000 ids; use a filter for more"));
        }
        ids.iter()
            .enumerate()
            .filter_map(|(i, raw)| problems.take(ContactId::parse(&format!("ids[{i}]"), raw)))
            .collect()
    });
    let filter = match &body.filter {
        Some(f) => {
            let pairs: Vec<(String, String)> = f.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            match input::filter(&pairs) {
                Ok(f) => Some(f),
                Err(ApiError::Validation(errs)) => {
                    problems.0.extend(errs.into_iter().map(|e| e.clone().at(format!("filter.{}", e.field))));
                    None
                }
                Err(other) => return Err(other),
            }
        }
        None => None,
    };
    if body.ids.is_some() == body.filter.is_some() {
        problems.0.push(FieldError::new("ids", "give either ids or filter, not both and not neither"));
    }
    problems.finish()?;
    let action = action.expect("validated");
    let selection = match (&ids, &filter) {
        (Some(ids), _) => Selection::Ids(ids),
        (_, Some(f)) => Selection::Filter(f),
        _ => unreachable!("validated above"),
    };
    let needed = if action == BulkAction::Delete { Permission::ContactsManage } else { Permission::ContactsWrite };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, needed).await?;
    if let Selection::Ids(ids) = &selection {
        crate::parents::require_contacts(&tx, "ids", ids).await?;
    }
    let affected = contacts::bulk(&tx, selection, action, &tags).await?;
    tx.commit().await?;
    Ok(Json(BulkResult { affected }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Merge {
    /// The contact folded into this one (it is deleted, its history kept).
    merge_id: String,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    contact: Contact,
    merge: MergeRecord,
}

#[utoipa::path(post, path = "/teams/{teamId}/contacts/{contactId}/merge", tag = "contacts", request_body = Merge,
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>, the survivor")),
    responses((status = 200, description = "The survivor and the merge record", body = Merged)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn merge(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, survivor)): Ids<(TeamId, ContactId)>,
    JsonBody(body): JsonBody<Merge>,
) -> Result<Json<Merged>, ApiError> {
    let merged = ContactId::parse("mergeId", &body.merge_id)?;
    let mut problems = Problems::default();
    let reason = input::opt_text(&mut problems, "reason", &body.reason, 500);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let record = nextier_campaigns::merge::merge_contacts(
        &tx,
        &team,
        &survivor,
        &merged,
        reason.as_deref(),
        &access.actor.label(),
    )
    .await?;
    let event =
        events::stage(&tx, &team, "ContactsMerged", json!({"survivorId": survivor, "mergedId": merged})).await?;
    let contact = contacts::get(&tx, &survivor).await?;
    if contact.lead_state == LeadState::Suppressed {
        // An opt-out of either side is an opt-out of the person.
        nextier_store::campaigns::exit_contact(&tx, &survivor, "opt_out").await?;
        crate::suppressions::suppress_contact(&tx, &team, &contact, "merge", &access.actor.label()).await?;
    }
    tx.commit().await?;
    app.outbox.publish(&[event]).await;
    Ok(Json(Merged { contact, merge: record }))
}

#[utoipa::path(get, path = "/teams/{teamId}/contacts/{contactId}/merges", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The merges this contact survived, with snapshots", body = Page<MergeRecord>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_merges(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Page<MergeRecord>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    crate::parents::require(&tx, Parent::Contact(&id)).await?;
    let items = contacts::merges(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(Page { items, next_cursor: None }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeLeadState {
    /// The target state, e.g. `responded`.
    to: String,
    reason: Option<String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/contacts/{contactId}/lead-state", tag = "contacts", request_body = ChangeLeadState,
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>")),
    responses((status = 200, description = "The contact in its new state", body = Contact),
              (status = 409, description = "The transition table does not allow this move")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn change_lead_state(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
    JsonBody(body): JsonBody<ChangeLeadState>,
) -> Result<Json<Contact>, ApiError> {
    let to: LeadState = body.to.parse().map_err(|_| ApiError::field("to", "is not a lead state"))?;
    let mut problems = Problems::default();
    let reason = input::opt_text(&mut problems, "reason", &body.reason, 500);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let (from, to) = contacts::transition(&tx, &team, &id, to, reason.as_deref(), &access.actor.label()).await?;
    // A reply, an opt-out or a booked meeting ends the contact's campaign enrolments (an
    // opt-out always; the others where the campaign's exit rules say so).
    if let Some(exit) = nextier_domain::campaign::exit_reason_for(to) {
        nextier_store::campaigns::exit_contact(&tx, &id, exit).await?;
    }
    if to == LeadState::Suppressed {
        let contact = contacts::get(&tx, &id).await?;
        crate::suppressions::suppress_contact(&tx, &team, &contact, "lead_state", &access.actor.label()).await?;
    }
    let event =
        events::stage(&tx, &team, "ContactLeadStateChanged", json!({"contactId": id, "from": from, "to": to})).await?;
    let contact = contacts::get(&tx, &id).await?;
    tx.commit().await?;
    app.outbox.publish(&[event]).await;
    Ok(Json(contact))
}

/// The contact's history, newest first (later capabilities add messages, inbox items,
/// enrolments and calls).
#[utoipa::path(get, path = "/teams/{teamId}/contacts/{contactId}/timeline", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("contactId" = String, Path, description = "con_<ULID>"), PageQuery),
    responses((status = 200, description = "Timeline entries", body = Page<TimelineEntry>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn timeline(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Ids((team, id)): Ids<(TeamId, ContactId)>,
) -> Result<Json<Page<TimelineEntry>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    crate::parents::require(&tx, Parent::Contact(&id)).await?;
    let rows = contacts::timeline(&tx, &id, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| e.id.to_string())))
}
