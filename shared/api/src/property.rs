//! The property API group (its own function, `api-property`): searches through RealEstateAPI
//! kept as the team's properties with their distress scores, one property with its owners,
//! mortgage, valuation and signals, a refresh from the provider's detail, linking owners to
//! contacts, and the properties of a contact.
//!
//! Reading needs `contacts:read`; a search or a refresh is a paid call on the team's daily
//! RealEstateAPI cap (`enrichment:execute`, any member); linking owners writes contacts
//! (`contacts:write`).

use axum::extract::{Query, State};
use axum::Json;
use nextier_domain::access::Permission;
use nextier_domain::ids::{ContactId, PropertyId, PropertySearchId, TeamId};
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, OptionalJson};
use nextier_property::{check_criteria, OwnerOutcome, Properties, SearchOutcome};
use nextier_store::properties::{self as store, Filter, Property, SavedSearch};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_properties))
        .routes(routes!(list_properties))
        .routes(routes!(get_property))
        .routes(routes!(refresh_property))
        .routes(routes!(link_property_owners))
        .routes(routes!(skip_trace_owners))
        .routes(routes!(list_saved_searches, save_search))
        .routes(routes!(delete_saved_search))
}

fn service(app: &AppState) -> Properties {
    Properties {
        db: app.db.clone(),
        data: app.property_data.clone(),
        limiter: app.limiter.clone(),
        clock: app.clock.clone(),
    }
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("no such property".into()),
        other => other.into(),
    }
}

fn failed(e: nextier_property::Error) -> ApiError {
    use nextier_platform::ports::property::ProviderError;
    match e {
        nextier_property::Error::Store(e) => not_found(e),
        nextier_property::Error::Capped { cap, until } => ApiError::TooManyRequests {
            detail: format!(
                "the team's daily RealEstateAPI cap of {cap} is spent; it refills at {}",
                until.to_rfc3339()
            ),
            retry_after_secs: (until - chrono::Utc::now()).num_seconds().max(1) as u64,
        },
        nextier_property::Error::Provider(ProviderError::RateLimited(_) | ProviderError::Unavailable(_)) => {
            ApiError::Unavailable("RealEstateAPI is not answering now; try again shortly".into())
        }
        nextier_property::Error::Provider(ProviderError::Unauthorized(_)) => ApiError::Unavailable(
            "RealEstateAPI refused the key (the team's enrichment/realestateapi_api_key, or the platform's)".into(),
        ),
        nextier_property::Error::Provider(ProviderError::Malformed(m)) => ApiError::Unavailable(format!(
            "RealEstateAPI's answer was unusable: {}",
            m.chars().take(200).collect::<String>()
        )),
        nextier_property::Error::Other(e) => ApiError::Internal(e),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchInput {
    /// RealEstateAPI's search fields: `state`, `city`, `zip`, `county`, `property_type`,
    /// `pre_foreclosure`, `vacant`, `absentee_owner`, `high_equity`, `equity_percent` with
    /// `equity_percent_operator`, `value_min`/`value_max`, `years_owned_min`/`max`...
    #[schema(value_type = Object)]
    criteria: serde_json::Value,
    /// The first result (paging), 0 by default.
    index: Option<i64>,
    /// 1 to 250 (50 by default).
    size: Option<i64>,
}

/// Searches RealEstateAPI and keeps the page as the team's properties, each with its distress
/// score. The same search within seven days answers from the team's cache (no call, no cap).
#[utoipa::path(post, path = "/teams/{teamId}/properties/search", tag = "property", request_body = SearchInput,
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The page, kept", body = SearchOutcome),
              (status = 400, description = "A criterion is wrong (each is named)"),
              (status = 429, description = "The team's daily RealEstateAPI cap is spent"),
              (status = 503, description = "RealEstateAPI did not answer")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn search_properties(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<SearchInput>,
) -> Result<Json<SearchOutcome>, ApiError> {
    let mut problems = Vec::new();
    let criteria = match check_criteria(&body.criteria) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.extend(p);
            None
        }
    };
    let index = body.index.unwrap_or(0);
    if !(0..=100_000).contains(&index) {
        problems.push(FieldError::new("index", "0 to 100,000"));
    }
    let size = body.size.unwrap_or(50);
    if !(1..=nextier_property::MAX_PAGE).contains(&size) {
        problems.push(FieldError::new("size", "1 to 250"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    {
        let mut conn = app.db.conn().await?;
        open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    }
    let criteria = criteria.unwrap_or_default();
    let out = service(&app).search(&team, &criteria, index, size).await.map_err(failed)?;
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    state: Option<String>,
    city: Option<String>,
    zip: Option<String>,
    /// Only properties scoring at least this (0-100).
    min_distress: Option<String>,
    /// Only this contact's properties.
    contact_id: Option<String>,
    after: Option<String>,
    /// 1 to 200 (50 by default).
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropertyPage {
    pub items: Vec<Property>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/teams/{teamId}/properties", tag = "property",
    params(("teamId" = String, Path), ListQuery),
    responses((status = 200, description = "The team's properties in id order", body = PropertyPage)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_properties(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<ListQuery>,
) -> Result<Json<PropertyPage>, ApiError> {
    let mut problems = Vec::new();
    let min_distress = match q.min_distress.as_deref().map(|v| v.trim().parse::<i32>()) {
        None => None,
        Some(Ok(v)) if (0..=100).contains(&v) => Some(v),
        Some(_) => {
            problems.push(FieldError::new("minDistress", "0 to 100"));
            None
        }
    };
    let limit = match q.limit.as_deref().map(|v| v.trim().parse::<i64>()) {
        None => 50,
        Some(Ok(v)) if (1..=200).contains(&v) => v,
        Some(_) => {
            problems.push(FieldError::new("limit", "1 to 200"));
            50
        }
    };
    let contact = match q.contact_id.as_deref().map(|c| ContactId::parse("contactId", c)) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
    };
    for (field, v) in [("city", &q.city), ("zip", &q.zip), ("after", &q.after)] {
        if v.as_deref().is_some_and(|v| v.chars().count() > 100 || v.chars().any(char::is_control)) {
            problems.push(FieldError::new(field, "at most 100 printable characters"));
        }
    }
    let state = q.state.as_deref().map(|s| s.trim().to_ascii_uppercase());
    if state.as_deref().is_some_and(|s| s.len() != 2 || !s.chars().all(|c| c.is_ascii_uppercase())) {
        problems.push(FieldError::new("state", "a two-letter state"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let f = Filter { state, city: q.city.clone(), zip: q.zip.clone(), min_distress, contact };
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let mut items = store::list(&tx, &f, q.after.as_deref(), limit + 1).await?;
    tx.commit().await?;
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|p| p.id.to_string()).unwrap_or_default()
    });
    Ok(Json(PropertyPage { items, next }))
}

#[utoipa::path(get, path = "/teams/{teamId}/properties/{propertyId}", tag = "property",
    params(("teamId" = String, Path), ("propertyId" = String, Path, description = "prp_<ULID>")),
    responses((status = 200, description = "The property with its owners, mortgage, valuation and distress signals", body = Property)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_property(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, PropertyId)>,
) -> Result<Json<Property>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let p = store::get(&tx, &id).await.map_err(not_found)?;
    tx.commit().await?;
    Ok(Json(p))
}

/// Refreshes the property from RealEstateAPI's detail (cached seven days), re-scoring it.
#[utoipa::path(post, path = "/teams/{teamId}/properties/{propertyId}/refresh", tag = "property",
    params(("teamId" = String, Path), ("propertyId" = String, Path)),
    responses((status = 200, description = "The property as it is now", body = Property)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn refresh_property(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, PropertyId)>,
) -> Result<Json<Property>, ApiError> {
    {
        let mut conn = app.db.conn().await?;
        let (tx, _) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
        store::get(&tx, &id).await.map_err(not_found)?;
    }
    Ok(Json(service(&app).refresh(&team, &id).await.map_err(failed)?))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    pub outcomes: Vec<OwnerOutcome>,
    pub property: Property,
}

/// A person's choice for one owner.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinkByHand {
    /// Which owner, as the record numbers them (from 1).
    owner_number: i64,
    /// The team's contact who is that owner.
    contact_id: String,
}

/// Links the property's owners to the team's contacts: the contact with the same first and
/// last name at the owner's mailing address; none: a new contact marked for review; several:
/// nothing (a person decides). Linking again changes nothing, and a contact a person deleted
/// is not made again. With a body (`ownerNumber`, `contactId`) a person links that owner to
/// the contact they chose instead.
#[utoipa::path(post, path = "/teams/{teamId}/properties/{propertyId}/link-owners", tag = "property",
    params(("teamId" = String, Path), ("propertyId" = String, Path)),
    request_body(content = Option<LinkByHand>, description = "Optional: one owner linked by hand"),
    responses((status = 200, description = "What happened to each owner", body = Linked),
              (status = 400, description = "The owner number or the contact is not one of this property's or team's")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn link_property_owners(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, PropertyId)>,
    OptionalJson(body): OptionalJson<LinkByHand>,
) -> Result<Json<Linked>, ApiError> {
    let chosen = match &body {
        None => None,
        Some(b) => {
            let contact = ContactId::parse("contactId", &b.contact_id).map_err(|e| ApiError::Validation(vec![e]))?;
            let number = i16::try_from(b.owner_number).ok().filter(|n| (1..=4).contains(n)).ok_or_else(|| {
                ApiError::Validation(vec![FieldError::new("ownerNumber", "must be an owner number from 1 to 4")])
            })?;
            Some((number, contact))
        }
    };
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    store::get(&tx, &id).await.map_err(not_found)?;
    // Concurrent links of one property make one contact per owner.
    tx.execute("SELECT 1 FROM properties WHERE id = $1 FOR UPDATE", &[&id.as_str()]).await.map_err(StoreError::from)?;
    let outcomes = match chosen {
        Some((number, contact)) => {
            vec![nextier_property::link_by_hand(&tx, &team, &id, number, &contact)
                .await?
                .map_err(|e| ApiError::Validation(vec![e]))?]
        }
        None => nextier_property::link_owners(&tx, &team, &id, &access.actor.label()).await?,
    };
    let property = store::get(&tx, &id).await?;
    tx.commit().await?;
    Ok(Json(Linked { outcomes, property }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SaveSearch {
    /// 1 to 100 characters, unique in the team.
    name: String,
    /// The search fields, as `POST …/properties/search` takes them.
    #[schema(value_type = Object)]
    criteria: serde_json::Value,
}

#[utoipa::path(get, path = "/teams/{teamId}/properties/saved-searches", tag = "property",
    params(("teamId" = String, Path)),
    responses((status = 200, description = "The team's saved searches with their nightly runs", body = Vec<SavedSearch>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_saved_searches(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Vec<SavedSearch>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = store::searches(&tx).await?;
    tx.commit().await?;
    Ok(Json(rows))
}

/// Saves a search the nightly match runs in the team's night (new properties kept, owners
/// linked and tagged `property-match`).
#[utoipa::path(post, path = "/teams/{teamId}/properties/saved-searches", tag = "property", request_body = SaveSearch,
    params(("teamId" = String, Path)),
    responses((status = 201, description = "Saved", body = SavedSearch), (status = 409, description = "The name is taken")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn save_search(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<SaveSearch>,
) -> Result<(axum::http::StatusCode, Json<SavedSearch>), ApiError> {
    let mut problems = Vec::new();
    let name = match nextier_domain::validation::text("name", &body.name, 1, 100) {
        Ok(n) => Some(n),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let criteria = match check_criteria(&body.criteria) {
        Ok(c) => Some(c),
        Err(p) => {
            problems.extend(p);
            None
        }
    };
    let (Some(name), Some(criteria)) = (name, criteria) else { return Err(ApiError::Validation(problems)) };
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    // Its nightly run creates and tags contacts.
    access.require(Permission::ContactsWrite)?;
    let saved = store::save_search(&tx, &team, &name, &criteria, &access.actor.label()).await?;
    tx.commit().await?;
    Ok((axum::http::StatusCode::CREATED, Json(saved)))
}

#[utoipa::path(delete, path = "/teams/{teamId}/properties/saved-searches/{searchId}", tag = "property",
    params(("teamId" = String, Path), ("searchId" = String, Path, description = "psr_<ULID>")),
    responses((status = 204, description = "Deleted (the properties it found stay)")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_saved_search(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, PropertySearchId)>,
) -> Result<axum::http::StatusCode, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    store::delete_search(&tx, &id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound("no such saved search".into()),
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceStarted {
    pub outcomes: Vec<OwnerOutcome>,
    /// The enrichment job tracing the owners (`GET …/enrichment-jobs/{id}` follows it).
    pub job: nextier_store::enrichment::Job,
}

/// Skip-traces a property's owners in one action: links them to contacts (as `link-owners`),
/// then starts an enrichment job over those contacts (traced when they have no textable
/// number, graded, decided; on the team's daily caps).
#[utoipa::path(post, path = "/teams/{teamId}/properties/{propertyId}/skip-trace", tag = "property",
    params(("teamId" = String, Path), ("propertyId" = String, Path)),
    responses((status = 202, description = "The owners' enrichment job", body = TraceStarted),
              (status = 409, description = "No owner could be linked, or every owner is already being enriched")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn skip_trace_owners(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, PropertyId)>,
) -> Result<(axum::http::StatusCode, Json<TraceStarted>), ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::EnrichmentRun).await?;
    // Linking the owners writes contacts.
    access.require(Permission::ContactsWrite)?;
    store::get(&tx, &id).await.map_err(not_found)?;
    tx.execute("SELECT 1 FROM properties WHERE id = $1 FOR UPDATE", &[&id.as_str()]).await.map_err(StoreError::from)?;
    let actor = access.actor.label();
    let outcomes = nextier_property::link_owners(&tx, &team, &id, &actor).await?;
    let contacts: Vec<ContactId> = outcomes.iter().filter_map(|o| o.contact_id.clone()).collect();
    if contacts.is_empty() {
        return Err(ApiError::Conflict(
            "no owner of this property could be linked to a contact; link one by hand".into(),
        ));
    }
    let source = serde_json::json!({"propertyId": id});
    let started = nextier_enrichment::start(
        &tx,
        &team,
        nextier_store::enrichment::SourceKind::Contacts,
        &source,
        &contacts,
        &actor,
    )
    .await?;
    let (job, staged) = match started {
        nextier_enrichment::Started::Job { job, first, .. } => (job, first),
        _ => return Err(ApiError::Conflict("every owner is already being enriched by a running job".into())),
    };
    let job = nextier_store::enrichment::get(&tx, &job).await?;
    tx.commit().await?;
    app.outbox.publish(&[staged]).await;
    Ok((axum::http::StatusCode::ACCEPTED, Json(TraceStarted { outcomes, job })))
}
