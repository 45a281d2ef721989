//! The team's sending numbers and which campaign sends from which.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{CampaignId, RowId, TeamId};
use nextier_domain::phone::E164;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::numbers::{self, NewNumber, SendingNumber};
use nextier_store::{campaigns, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::provisioning::{provision_err, team_subgroup};
use super::{not_found, NumberId};
use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_numbers, add_number))
        .routes(routes!(update_number))
        .routes(routes!(assign_numbers))
}

/// A number the provider lists in the team's subgroup (bought elsewhere, or ported).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddNumber {
    /// Any common US format; stored as E.164.
    number: String,
    brand_id: Option<String>,
    /// The provider's 10DLC campaign id.
    provider_campaign_id: Option<String>,
    /// AT&T class: A-F or T.
    att_class: Option<String>,
    /// T-Mobile brand tier: LOW, BASIC, STANDARD or HIGH.
    tmobile_tier: Option<String>,
}

#[utoipa::path(post, path = "/teams/{teamId}/sending-numbers", tag = "campaigns", request_body = AddNumber,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Registered", body = SendingNumber),
              (status = 200, description = "Registered before, now verified", body = SendingNumber),
              (status = 400, description = "SignalHouse does not list the number in the team's subgroup"),
              (status = 409, description = "Already registered to the team, or SignalHouse not connected")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_number(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<AddNumber>,
) -> Result<(StatusCode, Json<SendingNumber>), ApiError> {
    let mut problems = Problems::default();
    let e164 = problems.take(E164::parse_field("number", &body.number));
    if body.att_class.as_deref().is_some_and(|c| !["A", "B", "C", "D", "E", "F", "T"].contains(&c)) {
        problems.0.push(FieldError::new("attClass", "must be A, B, C, D, E, F or T"));
    }
    if body.tmobile_tier.as_deref().is_some_and(|c| !["LOW", "BASIC", "STANDARD", "HIGH"].contains(&c)) {
        problems.0.push(FieldError::new("tmobileTier", "must be LOW, BASIC, STANDARD or HIGH"));
    }
    problems.finish()?;
    let e164 = e164.expect("validated");
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    let subgroup = team_subgroup(&tx, &team).await?;
    let existing = numbers::find_live(&tx, e164.as_str()).await?;
    if existing.as_ref().is_some_and(|n| n.verified_at.is_some()) {
        return Err(ApiError::Conflict("this number is already registered to the team".into()));
    }
    tx.commit().await?;
    // Ours only when the provider lists it in our subgroup. The same answer whether the
    // provider does not know the number or another team holds it.
    if !app.numbers.owns(&subgroup, e164.as_str()).await.map_err(provision_err)? {
        return Err(not_listed());
    }
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    if let Some(n) = existing {
        // Registered before numbers were verified: the provider has now confirmed it.
        let row = numbers::verify(&tx, &n.id).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(row)));
    }
    let n = NewNumber {
        e164: e164.as_str(),
        brand_id: body.brand_id.as_deref(),
        provider_campaign_id: body.provider_campaign_id.as_deref(),
        att_class: body.att_class.as_deref(),
        tmobile_tier: body.tmobile_tier.as_deref(),
    };
    let row = match numbers::add(&tx, &team, &n, &access.actor.label()).await {
        // Another team's live registration (the provider moved the number): said as above.
        Err(StoreError::Conflict(_)) => return Err(not_listed()),
        r => r?,
    };
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)))
}

fn not_listed() -> ApiError {
    ApiError::field("number", "SignalHouse does not list this number in the team's subgroup")
}

#[utoipa::path(get, path = "/teams/{teamId}/sending-numbers", tag = "campaigns",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "Numbers with their status and health", body = Page<SendingNumber>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_numbers(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<SendingNumber>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = numbers::list(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |n| n.id.to_string())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateNumber {
    /// active (back into rotation, failures reset), paused or retired.
    status: String,
}

#[utoipa::path(patch, path = "/teams/{teamId}/sending-numbers/{numberId}", tag = "campaigns", request_body = UpdateNumber,
    params(("teamId" = String, Path), ("numberId" = String, Path, description = "row_<ULID>")),
    responses((status = 200, description = "The number", body = SendingNumber)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update_number(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, NumberId(id))): Ids<(TeamId, NumberId)>,
    JsonBody(body): JsonBody<UpdateNumber>,
) -> Result<Json<SendingNumber>, ApiError> {
    if !["active", "paused", "retired"].contains(&body.status.as_str()) {
        return Err(ApiError::field("status", "must be active, paused or retired"));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    let row = numbers::set_status(&tx, &id, &body.status).await?;
    tx.commit().await?;
    Ok(Json(row))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignNumbers {
    /// The numbers this campaign sends from (replaces the previous set; empty: the team's).
    number_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Assigned {
    assigned: u64,
}

#[utoipa::path(put, path = "/teams/{teamId}/campaigns/{campaignId}/numbers", tag = "campaigns", request_body = AssignNumbers,
    params(("teamId" = String, Path), ("campaignId" = String, Path)),
    responses((status = 200, description = "How many numbers the campaign now sends from", body = Assigned)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn assign_numbers(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, CampaignId)>,
    JsonBody(body): JsonBody<AssignNumbers>,
) -> Result<Json<Assigned>, ApiError> {
    let mut problems = Problems::default();
    if body.number_ids.len() > 500 {
        problems.0.push(FieldError::new("numberIds", "at most 500 numbers"));
    }
    let ids: Vec<RowId> = body
        .number_ids
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| problems.take(RowId::parse(&format!("numberIds[{i}]"), raw)))
        .collect();
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsWrite).await?;
    campaigns::lock(&tx, &id).await.map_err(not_found)?;
    let assigned = numbers::assign(&tx, &team, &id, &ids).await?;
    if assigned as usize != ids.len() {
        return Err(ApiError::field("numberIds", "name only this team's numbers that are not retired"));
    }
    tx.commit().await?;
    Ok(Json(Assigned { assigned }))
}
