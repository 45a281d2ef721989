//! The team's library: message templates (copied into steps) and saved audiences.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{FilterId, TeamId, TemplateId};
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::campaigns::{self, Channel, MessageTemplate, SavedFilter};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::enrolments::filter_from;
use super::steps::check_content;
use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(list_filters, create_filter))
        .routes(routes!(delete_filter))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateInput {
    name: String,
    #[schema(value_type = String)]
    channel: Channel,
    subject: Option<String>,
    body: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplatePatch {
    name: Option<String>,
    subject: Option<String>,
    body: Option<String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/message-templates", tag = "campaigns", request_body = TemplateInput,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Created", body = MessageTemplate), (status = 409, description = "Name taken")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_template(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<TemplateInput>,
) -> Result<(StatusCode, Json<MessageTemplate>), ApiError> {
    let mut problems = Problems::default();
    let name = problems.take(nextier_domain::validation::text("name", &body.name, 1, 200));
    check_content(&mut problems, body.channel, body.subject.as_deref(), &body.body);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let t = campaigns::create_template(
        &tx,
        &team,
        &name.unwrap_or_default(),
        body.channel,
        body.subject.as_deref(),
        &body.body,
        &access.actor.label(),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(t)))
}

#[utoipa::path(get, path = "/teams/{teamId}/message-templates", tag = "campaigns",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "A page of templates", body = Page<MessageTemplate>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_templates(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<MessageTemplate>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = campaigns::list_templates(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |t| t.id.to_string())))
}

#[utoipa::path(get, path = "/teams/{teamId}/message-templates/{templateId}", tag = "campaigns",
    params(("teamId" = String, Path), ("templateId" = String, Path, description = "tpl_<ULID>")),
    responses((status = 200, description = "The template", body = MessageTemplate)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_template(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, TemplateId)>,
) -> Result<Json<MessageTemplate>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let t = campaigns::get_template(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(t))
}

/// Changes a template. Steps copied from it keep their copy: a running campaign never
/// changes under its approval.
#[utoipa::path(patch, path = "/teams/{teamId}/message-templates/{templateId}", tag = "campaigns", request_body = TemplatePatch,
    params(("teamId" = String, Path), ("templateId" = String, Path)),
    responses((status = 200, description = "The template", body = MessageTemplate)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_template(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, TemplateId)>,
    JsonBody(body): JsonBody<TemplatePatch>,
) -> Result<Json<MessageTemplate>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let cur = campaigns::get_template(&tx, &id).await?;
    let mut problems = Problems::default();
    let name = match &body.name {
        Some(n) => problems.take(nextier_domain::validation::text("name", n, 1, 200)).unwrap_or_default(),
        None => cur.name.clone(),
    };
    let subject = body.subject.clone().or(cur.subject.clone());
    let text = body.body.clone().unwrap_or(cur.body.clone());
    check_content(&mut problems, cur.channel, subject.as_deref(), &text);
    problems.finish()?;
    let t = campaigns::update_template(&tx, &id, &name, subject.as_deref(), &text).await?;
    tx.commit().await?;
    Ok(Json(t))
}

#[utoipa::path(delete, path = "/teams/{teamId}/message-templates/{templateId}", tag = "campaigns",
    params(("teamId" = String, Path), ("templateId" = String, Path)),
    responses((status = 204, description = "Deleted (steps keep their copies)")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_template(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, TemplateId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    campaigns::delete_template(&tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterInput {
    name: String,
    /// The contact list filters as an object, e.g. `{"tag": "florida", "minScore": "50"}`.
    #[schema(value_type = Object)]
    filter: std::collections::BTreeMap<String, String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/saved-filters", tag = "campaigns", request_body = FilterInput,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Saved", body = SavedFilter)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_filter(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<FilterInput>,
) -> Result<(StatusCode, Json<SavedFilter>), ApiError> {
    let mut problems = Problems::default();
    let name = problems.take(nextier_domain::validation::text("name", &body.name, 1, 200));
    if body.filter.is_empty() {
        problems.0.push(FieldError::new("filter", "name at least one filter"));
    }
    filter_from(&mut problems, "filter", &body.filter);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    let value = serde_json::to_value(&body.filter).unwrap_or_default();
    let f = campaigns::create_filter(&tx, &team, &name.unwrap_or_default(), &value, &access.actor.label()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(f)))
}

#[utoipa::path(get, path = "/teams/{teamId}/saved-filters", tag = "campaigns",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "A page of saved filters", body = Page<SavedFilter>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_filters(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<SavedFilter>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = campaigns::list_filters(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |f| f.id.to_string())))
}

#[utoipa::path(delete, path = "/teams/{teamId}/saved-filters/{filterId}", tag = "campaigns",
    params(("teamId" = String, Path), ("filterId" = String, Path, description = "flt_<ULID>")),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_filter(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, FilterId)>,
) -> Result<StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    campaigns::delete_filter(&tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
