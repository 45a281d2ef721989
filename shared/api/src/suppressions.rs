//! The team's suppression list (served by the contacts function): numbers and addresses that
//! get nothing from any campaign of the team. Adding one ends the holder's live enrolments.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::email::Email;
use nextier_domain::ids::TeamId;
use nextier_domain::phone::E164;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, JsonBody, Page, PageQuery, PathParams};
use nextier_store::suppressions::{self, NewSuppression, Suppression, KINDS};
use nextier_store::{campaigns, contacts, StoreError, Tx};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_suppressions, add_suppression)).routes(routes!(remove_suppression))
}

fn commit_err(e: tokio_postgres::Error) -> ApiError {
    StoreError::from(e).into()
}

/// A phone number (any US format, stored as E.164) or an email address (lower-cased).
fn parse_address(field: &str, raw: &str) -> Result<String, FieldError> {
    if raw.contains('@') {
        Email::parse(field, raw).map(|e| e.as_str().to_owned())
    } else {
        E164::parse_field(field, raw).map(|p| p.as_str().to_owned())
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddSuppression {
    /// A phone number or an email address.
    address: String,
    /// OPTED_OUT, BLACKLIST, LEGAL_DNC or WRONG_NUMBER.
    kind: String,
    reason: Option<String>,
    /// When it lapses (absent: never).
    expires_at: Option<DateTime<Utc>>,
}

/// Ends the live enrolments of whoever holds `address`.
pub(crate) async fn exit_holder(tx: &Tx<'_>, address: &str, kind: &str) -> Result<(), ApiError> {
    let holder = if address.contains('@') {
        contacts::holder_of_email(tx, address).await?
    } else {
        let e164 = E164::parse(address).map_err(|_| ApiError::field("address", "is not a phone number"))?;
        contacts::holder_of_phone(tx, &e164).await?
    };
    if let Some(contact) = holder {
        // Every kind stops campaigns; an opt-out is recorded as such for the stats.
        let reason = if kind == "OPTED_OUT" { "opt_out".to_owned() } else { format!("suppressed: {kind}") };
        campaigns::exit_contact(tx, &contact, &reason).await?;
    }
    Ok(())
}

/// Puts every number and address of an opted-out contact on the list (an opt-out is the
/// person's, on every channel).
pub(crate) async fn suppress_contact(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &contacts::Contact,
    source: &str,
    actor: &str,
) -> Result<(), ApiError> {
    let addresses = contact.phones.iter().map(|p| p.e164.clone()).chain(contact.emails.iter().map(|e| e.email.clone()));
    for address in addresses {
        let s = NewSuppression { address: &address, kind: "OPTED_OUT", reason: None, source, actor, expires_at: None };
        suppressions::add(tx, team, &s).await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/teams/{teamId}/suppressions", tag = "contacts", request_body = AddSuppression,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Suppressed (or renewed)", body = Suppression)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_suppression(
    State(app): State<AppState>,
    cred: Credential,
    p: PathParams,
    JsonBody(body): JsonBody<AddSuppression>,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    let team = TeamId::parse("teamId", p.get("teamId"))?;
    let mut problems = Problems::default();
    let address = problems.take(parse_address("address", &body.address));
    if !KINDS.contains(&body.kind.as_str()) {
        problems.0.push(FieldError::new("kind", "must be OPTED_OUT, BLACKLIST, LEGAL_DNC or WRONG_NUMBER"));
    }
    let reason = opt_text(&mut problems, "reason", &body.reason, 500);
    if body.expires_at.is_some_and(|e| e <= Utc::now()) {
        problems.0.push(FieldError::new("expiresAt", "must be in the future"));
    }
    problems.finish()?;
    let address = address.unwrap_or_default();
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let actor = access.actor.label();
    let s = NewSuppression {
        address: &address,
        kind: &body.kind,
        reason: reason.as_deref(),
        source: "api",
        actor: &actor,
        expires_at: body.expires_at,
    };
    let row = suppressions::add(&tx, &team, &s).await?;
    exit_holder(&tx, &address, &body.kind).await?;
    tx.commit().await.map_err(commit_err)?;
    Ok((StatusCode::CREATED, Json(row)))
}

#[utoipa::path(get, path = "/teams/{teamId}/suppressions", tag = "contacts",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "A page of suppressions", body = Page<Suppression>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_suppressions(
    State(app): State<AppState>,
    cred: Credential,
    p: PathParams,
    q: PageQuery,
) -> Result<Json<Page<Suppression>>, ApiError> {
    let team = TeamId::parse("teamId", p.get("teamId"))?;
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = suppressions::list(&tx, &page).await?;
    tx.commit().await.map_err(commit_err)?;
    Ok(Json(Page::from_rows(&page, rows, |s| s.id.to_string())))
}

/// Lifts a suppression. Opting a number back in is a decision about consent: it needs ADMIN.
#[utoipa::path(delete, path = "/teams/{teamId}/suppressions/{address}", tag = "contacts",
    params(("teamId" = String, Path), ("address" = String, Path, description = "E.164 number or email")),
    responses((status = 204, description = "Lifted")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn remove_suppression(
    State(app): State<AppState>,
    cred: Credential,
    p: PathParams,
) -> Result<StatusCode, ApiError> {
    let team = TeamId::parse("teamId", p.get("teamId"))?;
    let address = parse_address("address", p.get("address"))?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsManage).await?;
    suppressions::remove(&tx, &team, &address).await?;
    tx.commit().await.map_err(commit_err)?;
    Ok(StatusCode::NO_CONTENT)
}
