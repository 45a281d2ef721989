//! The team's suppression list (served by the contacts function): numbers and addresses that
//! get nothing from any campaign of the team. The list only gets stronger: an opt-out or a
//! legal do-not-contact is the person's (every number and address they have), is never
//! replaced by a weaker kind nor given an expiry, and is lifted only by a person with ADMIN
//! who gives a reason. Every change is in the audit (`GET …/suppressions/audit`).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::email::Email;
use nextier_domain::ids::TeamId;
use nextier_domain::phone::E164;
use nextier_domain::suppression::Kind;
use nextier_domain::FieldError;
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery, PathParam};
use nextier_store::consent::{self, Revocation};
use nextier_store::suppressions::{self, AuditEntry, NewSuppression, Provenance, Suppression};
use nextier_store::{campaigns, contacts, StoreError, Tx};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::contacts::input::{opt_text, Problems};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_suppressions, add_suppression))
        .routes(routes!(suppression_audit))
        .routes(routes!(remove_suppression))
}

/// A phone number (any US format, stored as E.164) or an email address (lower-cased).
fn parse_address(field: &str, raw: &str) -> Result<String, FieldError> {
    if raw.contains('@') {
        Email::parse(field, raw).map(|e| e.as_str().to_owned())
    } else {
        E164::parse_field(field, raw).map(|p| p.as_str().to_owned())
    }
}

/// `{address}`: a suppressed number or email address, as [`parse_address`] reads it.
pub struct Address(String);

impl PathParam for Address {
    const NAME: &'static str = "address";

    fn parse_param(raw: &str) -> Result<Self, ApiError> {
        Ok(Address(parse_address(Self::NAME, raw)?))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddSuppression {
    /// A phone number or an email address.
    address: String,
    /// OPTED_OUT, LEGAL_DNC (permanent: the person's, on every number and address), BLACKLIST,
    /// WRONG_NUMBER or BOUNCED. An address already on the list keeps the stronger kind.
    kind: String,
    reason: Option<String>,
    /// When it lapses (absent: never; OPTED_OUT and LEGAL_DNC never do).
    expires_at: Option<DateTime<Utc>>,
}

/// Who holds `address` in the team, if anyone (deleted contacts included: an opt-out of
/// theirs still counts).
async fn holder(tx: &Tx<'_>, address: &str) -> Result<Option<nextier_domain::ids::ContactId>, ApiError> {
    Ok(if address.contains('@') {
        contacts::holder_of_email(tx, address).await?
    } else {
        let e164 = E164::parse(address).map_err(|_| ApiError::field("address", "is not a phone number"))?;
        contacts::holder_of_phone(tx, &e164).await?
    })
}

/// Ends the live enrolments of whoever holds `address`.
pub(crate) async fn exit_holder(tx: &Tx<'_>, address: &str, kind: Kind) -> Result<(), ApiError> {
    if let Some(contact) = holder(tx, address).await? {
        // Every kind stops campaigns; an opt-out is recorded as such for the stats.
        let reason = if kind == Kind::OptedOut { "opt_out".to_owned() } else { format!("suppressed: {kind}") };
        campaigns::exit_contact(tx, &contact, &reason).await?;
    }
    Ok(())
}

/// An opt-out of the whole contact (a person set it `suppressed`, or a merge kept one): every
/// number and address, every channel (see `consent::revoke`).
pub(crate) async fn suppress_contact(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &contacts::Contact,
    source: &str,
    actor: &str,
) -> Result<(), ApiError> {
    let r = Revocation { kind: Kind::OptedOut, reason: None, source, actor, message: None };
    consent::revoke(tx, team, &contact.id, None, &r).await?;
    Ok(())
}

#[utoipa::path(post, path = "/teams/{teamId}/suppressions", tag = "contacts", request_body = AddSuppression,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Suppressed (or strengthened; never weakened)", body = Suppression)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_suppression(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<AddSuppression>,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    let mut problems = Problems::default();
    let address = problems.take(parse_address("address", &body.address));
    let kind = Kind::parse(&body.kind);
    if kind.is_none() {
        problems.0.push(FieldError::new("kind", "must be OPTED_OUT, LEGAL_DNC, BLACKLIST, WRONG_NUMBER or BOUNCED"));
    }
    let reason = opt_text(&mut problems, "reason", &body.reason, 500);
    if body.expires_at.is_some_and(|e| e <= app.clock.now()) {
        problems.0.push(FieldError::new("expiresAt", "must be in the future"));
    }
    if body.expires_at.is_some() && kind.is_some_and(Kind::is_permanent) {
        problems.0.push(FieldError::new("expiresAt", "an OPTED_OUT or LEGAL_DNC suppression never expires"));
    }
    problems.finish()?;
    let (address, kind) = (address.unwrap_or_default(), kind.unwrap_or(Kind::Blacklist));
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let actor = access.actor.label();
    let mut events = vec![];
    let row = match (kind.is_permanent(), holder(&tx, &address).await?) {
        // A revocation is the person's: every number and address they have.
        (true, Some(contact)) => {
            let r = Revocation { kind, reason: reason.as_deref(), source: "api", actor: &actor, message: None };
            let revoked = consent::revoke(&tx, &team, &contact, Some(&address), &r).await?;
            events.extend(revoked.entries.iter().filter_map(|e| e.event.clone()));
            revoked.entry(&address).cloned().ok_or(StoreError::NotFound)?
        }
        _ => {
            let s = NewSuppression {
                address: &address,
                kind: kind.as_str(),
                reason: reason.as_deref(),
                source: "api",
                actor: &actor,
                expires_at: body.expires_at,
                source_message: None,
            };
            let row = suppressions::add(&tx, &team, &s).await?;
            events.extend(row.event.clone());
            exit_holder(&tx, &address, row.kind).await?;
            row
        }
    };
    tx.commit().await?;
    app.outbox.publish(&events).await;
    Ok((StatusCode::CREATED, Json(row)))
}

#[utoipa::path(get, path = "/teams/{teamId}/suppressions", tag = "contacts",
    params(("teamId" = String, Path), PageQuery),
    responses((status = 200, description = "A page of suppressions", body = Page<Suppression>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_suppressions(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Suppression>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = suppressions::list(&tx, &page).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |s| s.id.to_string())))
}

/// Lifts a suppression. Opting a number back in is a decision about consent: it needs a
/// person (not an API key) with ADMIN, and a reason, which the audit keeps.
#[utoipa::path(delete, path = "/teams/{teamId}/suppressions/{address}", tag = "contacts",
    params(("teamId" = String, Path), ("address" = String, Path, description = "E.164 number or email"),
           ("reason" = String, Query, description = "Why consent is back (kept in the audit)")),
    responses((status = 204, description = "Lifted")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn remove_suppression(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, Address(address))): Ids<(TeamId, Address)>,
    uri: Uri,
) -> Result<StatusCode, ApiError> {
    let reason = url_pairs(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::field("reason", "is required: say why consent is back"))?;
    let mut problems = Problems::default();
    let reason = opt_text(&mut problems, "reason", &Some(reason), 500);
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsManage).await?;
    if access.actor.user().is_none() {
        return Err(ApiError::Forbidden("lifting a suppression needs a person with ADMIN, not an API key".into()));
    }
    let actor = access.actor.label();
    let p = Provenance { actor: &actor, reason: reason.as_deref(), source: "api", message: None };
    suppressions::lift(&tx, &team, &address, &p).await?;
    if let Some(contact) = holder(&tx, &address).await? {
        consent::after_lift(&tx, &team, &contact, reason.as_deref().unwrap_or_default(), &actor).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every change to the list (add, strengthen, repeat, lift), oldest first: who, when, why,
/// from where, and the message that asked.
#[utoipa::path(get, path = "/teams/{teamId}/suppressions/audit", tag = "contacts",
    params(("teamId" = String, Path), ("address" = Option<String>, Query, description = "Only this number or email"),
           PageQuery),
    responses((status = 200, description = "A page of audit entries", body = Page<AuditEntry>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn suppression_audit(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
    uri: Uri,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let page = q.page()?;
    let address = match url_pairs(uri.query().unwrap_or("")).into_iter().find(|(k, _)| k == "address") {
        Some((_, v)) => Some(parse_address("address", &v)?),
        None => None,
    };
    let after = match page.after.as_deref() {
        None => 0,
        Some(c) => c.parse::<i64>().map_err(|_| ApiError::field("cursor", "is not a cursor from this list"))?,
    };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = suppressions::audit(&tx, address.as_deref(), after, page.fetch_limit()).await?;
    tx.commit().await?;
    Ok(Json(Page::from_rows(&page, rows, |e| e.id.to_string())))
}
