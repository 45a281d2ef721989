//! The team's SignalHouse subgroup and buying numbers into it (DOMAIN.md B2). A number is the
//! team's only when the provider lists it in the team's subgroup: bought numbers become the
//! team's when the provider's NUMBER_PURCHASE_SUCCESSFUL event arrives (the inbound consumer).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::TeamId;
use nextier_domain::phone::E164;
use nextier_domain::FieldError;
use nextier_http::extract::url_pairs;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody};
use nextier_platform::ports::numbers::{AvailableNumber, ProvisionError, Search};
use nextier_store::number_orders::{self, Order};
use nextier_store::teams;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::NumberId;
use crate::contacts::input::Problems;
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect))
        .routes(routes!(available))
        .routes(routes!(purchase))
        .routes(routes!(health))
}

/// A provider fault as the caller sees it: never the caller's doing unless SignalHouse
/// refused the request itself.
pub(crate) fn provision_err(e: ProvisionError) -> ApiError {
    match e {
        ProvisionError::Unauthorized(detail) => {
            tracing::error!(detail, "SignalHouse refused the platform's credentials");
            ApiError::Unavailable("SignalHouse is misconfigured on the platform; try again later".into())
        }
        ProvisionError::Unavailable(detail) => {
            tracing::warn!(detail, "SignalHouse unavailable");
            ApiError::Unavailable("SignalHouse is unavailable; try again later".into())
        }
        ProvisionError::Refused(detail) => ApiError::Conflict(format!("SignalHouse refused: {detail}")),
    }
}

/// The team's subgroup, or why it cannot buy or register numbers yet.
pub(crate) async fn team_subgroup(tx: &nextier_store::Tx<'_>, team: &TeamId) -> Result<String, ApiError> {
    number_orders::subgroup(tx, team).await?.ok_or_else(|| {
        ApiError::Conflict(format!("the team has not connected SignalHouse (POST /teams/{team}/signalhouse/connect)"))
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The team's own SignalHouse subgroup.
    subgroup_id: String,
    subgroup_name: Option<String>,
}

/// Gives the team its own SignalHouse subgroup (once; calling again answers the same one).
#[utoipa::path(post, path = "/teams/{teamId}/signalhouse/connect", tag = "campaigns",
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Subgroup created", body = Connection),
              (status = 200, description = "Already connected", body = Connection),
              (status = 503, description = "SignalHouse unavailable or misconfigured")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn connect(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<(StatusCode, Json<Connection>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    let existing = number_orders::subgroup(&tx, &team).await?;
    let name = teams::get(&tx, &team).await?.name;
    tx.commit().await?;
    if let Some(id) = existing {
        let found = app.numbers.subgroup(&id).await.map_err(provision_err)?;
        let Some(s) = found else {
            return Err(ApiError::Conflict(format!("SignalHouse no longer knows the team's subgroup {id}")));
        };
        return Ok((StatusCode::OK, Json(Connection { subgroup_id: s.id, subgroup_name: s.name })));
    }
    // The key makes a concurrent or retried connect replay the provider's first answer.
    let s = app.numbers.create_subgroup(&format!("{name} ({team})"), &format!("subgroup-{team}")).await;
    let s = s.map_err(provision_err)?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    let id = number_orders::set_subgroup(&tx, &team, &s.id).await?;
    tx.commit().await?;
    let status = if id == s.id { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Connection { subgroup_id: id, subgroup_name: s.name })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AvailableQuery {
    /// Two-letter state code (e.g. NY).
    state: Option<String>,
    /// Area code (e.g. 212).
    npa: Option<String>,
    /// 1-100, default 20.
    limit: Option<String>,
}

fn search_from(uri: &Uri) -> Result<Search, ApiError> {
    let mut search = Search { limit: 20, ..Search::default() };
    let mut problems = Problems::default();
    for (k, v) in url_pairs(uri.query().unwrap_or("")) {
        match k.as_str() {
            "state" if v.len() == 2 && v.chars().all(|c| c.is_ascii_alphabetic()) => {
                search.state = Some(v.to_ascii_uppercase())
            }
            "state" => problems.0.push(FieldError::new("state", "must be a two-letter state code")),
            "npa" if v.len() == 3 && v.chars().all(|c| c.is_ascii_digit()) && !v.starts_with(['0', '1']) => {
                search.npa = Some(v)
            }
            "npa" => problems.0.push(FieldError::new("npa", "must be a three-digit area code")),
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => search.limit = n,
                _ => problems.0.push(FieldError::new("limit", "must be 1-100")),
            },
            _ => {}
        }
    }
    problems.finish()?;
    Ok(search)
}

#[derive(Serialize, ToSchema)]
pub struct Available {
    items: Vec<AvailableNumber>,
}

/// Numbers SignalHouse offers for sale (SMS-enabled), by state and area code.
#[utoipa::path(get, path = "/teams/{teamId}/sending-numbers/available", tag = "campaigns",
    params(("teamId" = String, Path), AvailableQuery),
    responses((status = 200, description = "Numbers for sale", body = Available)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn available(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    uri: Uri,
) -> Result<Json<Available>, ApiError> {
    let search = search_from(&uri)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    tx.commit().await?;
    let items = app.numbers.available(&search).await.map_err(provision_err)?;
    Ok(Json(Available { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Purchase {
    /// 1-10 numbers, in any common US format.
    numbers: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Ordered {
    /// One pending order per number; each completes or fails on its own.
    items: Vec<Order>,
}

/// Buys numbers into the team's subgroup. Each becomes the team's active sending number when
/// SignalHouse reports its purchase complete.
#[utoipa::path(post, path = "/teams/{teamId}/sending-numbers/purchase", tag = "campaigns", request_body = Purchase,
    params(("teamId" = String, Path)),
    responses((status = 202, description = "Ordered; completion arrives by webhook", body = Ordered),
              (status = 409, description = "The team has not connected SignalHouse, or SignalHouse refused")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn purchase(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<Purchase>,
) -> Result<(StatusCode, Json<Ordered>), ApiError> {
    let mut problems = Problems::default();
    if body.numbers.is_empty() || body.numbers.len() > 10 {
        problems.0.push(FieldError::new("numbers", "1-10 numbers"));
    }
    let numbers: Vec<E164> = body
        .numbers
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| problems.take(E164::parse_field(&format!("numbers[{i}]"), raw)))
        .collect();
    problems.finish()?;
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
    let subgroup = team_subgroup(&tx, &team).await?;
    let mut items = Vec::with_capacity(numbers.len());
    for n in &numbers {
        items.push(number_orders::order(&tx, &team, &subgroup, n.as_str(), &access.actor.label()).await?);
    }
    // Recorded before the provider is asked, so the completion event always finds its order.
    tx.commit().await?;
    let list: Vec<String> = numbers.iter().map(|n| n.to_string()).collect();
    let key = format!("purchase-{}-{}", items[0].id, items.len());
    match app.numbers.purchase(&subgroup, &list, &key).await {
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(Ordered { items }))),
        // Perhaps taken: the orders wait for their events (or the reconcile of notifications).
        Err(e @ ProvisionError::Unavailable(_)) => Err(provision_err(e)),
        Err(e) => {
            let (tx, _) = open_team(&mut conn, &cred, &team, Permission::SettingsManage).await?;
            for n in &numbers {
                number_orders::settle(&tx, &team, n.as_str(), Some(&subgroup), false, Some(&e.to_string())).await?;
            }
            tx.commit().await?;
            Err(provision_err(e))
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    number: String,
    /// SignalHouse's live 1-10 score (delivery and opt-out rates); null when not scored yet.
    score: Option<f64>,
}

/// The number's live health at SignalHouse (`GET /number/health`).
#[utoipa::path(get, path = "/teams/{teamId}/sending-numbers/{numberId}/health", tag = "campaigns", operation_id = "sendingNumberHealth",
    params(("teamId" = String, Path), ("numberId" = String, Path, description = "row_<ULID>")),
    responses((status = 200, description = "The provider's score", body = Health)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn health(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, NumberId(id))): Ids<(TeamId, NumberId)>,
) -> Result<Json<Health>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let n = nextier_store::numbers::get(&tx, &id).await.map_err(|e| match e {
        nextier_store::StoreError::NotFound => ApiError::NotFound("no such sending number".into()),
        other => other.into(),
    })?;
    tx.commit().await?;
    let score = app.numbers.health(&n.e164).await.map_err(provision_err)?;
    Ok(Json(Health { number: n.e164, score }))
}
