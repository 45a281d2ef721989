//! Property intelligence (issue 17): searches through RealEstateAPI kept as the team's
//! properties with their distress scores, details refreshed, and owners linked to the team's
//! contacts (one contact per person).
//!
//! Every provider call first takes a unit of the team's daily RealEstateAPI cap (the same
//! limiter and bucket as its skip traces: `enrichment` / `daily_cap_realestateapi`), and every
//! answer is cached for seven days per team, so a repeated search or detail costs nothing.
//! The team's own key (`enrichment` / `realestateapi_api_key`, secret) is used when it set one.

pub mod nightly;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nextier_domain::enrichment::Provider;
use nextier_domain::ids::{ContactId, PropertyId, TeamId};
use nextier_domain::property::{self as rules, Facts, Record};
use nextier_domain::rate::Take;
use nextier_domain::FieldError;
use nextier_platform::ports::clock::Clock;
use nextier_platform::ports::property::{PropertyData, ProviderError};
use nextier_platform::ports::RateLimiter;
use nextier_store::contacts::{self, NewAddress, NewContact};
use nextier_store::properties::{self as store, Property};
use nextier_store::{enrichment as cache, scope, settings, Db, Scope, StoreError, Tx};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Team settings: `weight.<signal>` for the distress score.
pub const SETTINGS_SCOPE: &str = "property";
/// How long an answer is kept.
pub const CACHE_DAYS: i64 = 7;
/// The most a search page holds (the provider's own limit).
pub const MAX_PAGE: i64 = 250;
const CACHE_SEARCH: &str = "realestateapi:property-search";
const CACHE_DETAIL: &str = "realestateapi:property-detail";

/// The search fields a team may use (the provider's own names).
pub const CRITERIA: &[&str] = &[
    "state",
    "city",
    "zip",
    "county",
    "property_type",
    "pre_foreclosure",
    "foreclosure",
    "vacant",
    "absentee_owner",
    "out_of_state_owner",
    "high_equity",
    "free_clear",
    "equity_percent",
    "equity_percent_operator",
    "value_min",
    "value_max",
    "years_owned_min",
    "years_owned_max",
    "tax_lien",
    "inherited",
    "corporate_owned",
    "auction",
    "reo",
    "year_built_min",
    "year_built_max",
];

#[derive(Clone)]
pub struct Properties {
    pub db: Db,
    pub data: Arc<dyn PropertyData>,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The team's daily RealEstateAPI cap is spent: try again after `until`.
    #[error("the daily RealEstateAPI cap of {cap} is reached; it refills at {until}")]
    Capped { cap: i64, until: DateTime<Utc> },
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What a search did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchOutcome {
    /// How many properties match in all (at the provider).
    pub total: i64,
    /// This page, as kept.
    pub properties: Vec<Property>,
    /// New to the team on this page.
    pub added: usize,
    /// The answer came from the team's cache (no provider call, no cap unit).
    pub cached: bool,
}

/// Checks search criteria: known fields, scalar values, a two-letter state. Each bad field is
/// named (`criteria.<field>`).
pub fn check_criteria(criteria: &Value) -> Result<Value, Vec<nextier_domain::FieldError>> {
    use nextier_domain::FieldError;
    let Some(map) = criteria.as_object() else {
        return Err(vec![FieldError::new("criteria", "an object of search fields")]);
    };
    let mut problems = Vec::new();
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        let field = format!("criteria.{k}");
        if !CRITERIA.contains(&k.as_str()) {
            problems.push(FieldError::new(field, format!("unknown search field; use one of {}", CRITERIA.join(", "))));
            continue;
        }
        match v {
            _ if k == "state" && !v.is_string() => problems.push(FieldError::new(field, "a two-letter state")),
            Value::String(s) if k == "state" => {
                let s = s.trim().to_ascii_uppercase();
                if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
                    out.insert(k.clone(), Value::String(s));
                } else {
                    problems.push(FieldError::new(field, "a two-letter state"));
                }
            }
            Value::String(s) if s.trim().is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) => {
                problems.push(FieldError::new(field, "1 to 100 characters"))
            }
            Value::String(s) => {
                out.insert(k.clone(), Value::String(s.trim().to_owned()));
            }
            Value::Bool(_) | Value::Number(_) => {
                out.insert(k.clone(), v.clone());
            }
            _ => problems.push(FieldError::new(field, "a string, a number or true/false")),
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push(FieldError::new("criteria", "give at least one search field (a state, a city, a zip...)"));
    }
    if problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(problems)
    }
}

/// The facts the distress score reads from a record.
pub fn facts(r: &Record) -> Facts {
    Facts {
        pre_foreclosure: r.pre_foreclosure,
        reverse_mortgage: r.reverse_mortgage,
        vacant: r.vacant,
        owner_occupied: r.owner_occupied,
        equity_percent: r.equity_percent,
        loan_maturity_date: r.loan_maturity_date,
        buildable_zoning: r.buildable_zoning,
    }
}

impl Properties {
    /// Takes a unit of the team's daily RealEstateAPI cap.
    async fn take_unit(&self, tx: &Tx<'_>, team: &TeamId, now: DateTime<Utc>) -> Result<(), Error> {
        let provider = Provider::RealEstateApi;
        let caps = settings::numbers_in(tx, "enrichment").await?;
        let cap =
            caps.get(&format!("daily_cap_{provider}")).copied().unwrap_or_else(|| provider.default_daily_cap()).max(0);
        let until = nextier_domain::enrichment::end_of_day(now);
        let bucket = nextier_domain::enrichment::cap_bucket(team.as_str(), provider, cap, now);
        match self.limiter.take(std::slice::from_ref(&bucket), 1, now).await.map_err(|e| anyhow::anyhow!(e))? {
            Take::Granted => Ok(()),
            Take::Refused { .. } => Err(Error::Capped { cap, until }),
        }
    }

    /// A failed provider call on the ledger (best effort: the caller reports the failure itself).
    async fn charge_failure(&self, team: &TeamId, now: DateTime<Utc>) {
        let charged = async {
            let mut conn = self.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let failed = cache::Cost { failures: 1, ..Default::default() };
            cache::charge_to(&tx, team, cache::PROPERTY_LEDGER, Provider::RealEstateApi, now, failed).await?;
            tx.commit().await.map_err(StoreError::from)
        };
        if let Err(e) = charged.await {
            tracing::warn!(error = %e, "a failed RealEstateAPI call was not recorded on the cost ledger");
        }
    }

    async fn team_key(tx: &Tx<'_>, team: &TeamId) -> Result<Option<String>, StoreError> {
        match settings::get(tx, team, "enrichment", "realestateapi_api_key", true).await {
            Ok(s) => Ok(Some(s.value).filter(|v| !v.trim().is_empty())),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Keeps records as the team's properties with their scores, in one transaction.
    pub async fn keep(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        records: &[Record],
    ) -> Result<(Vec<PropertyId>, usize), Error> {
        let now = self.clock.now();
        let weights = rules::weights(&settings::strings_in(tx, SETTINGS_SCOPE).await?);
        let mut ids = Vec::with_capacity(records.len());
        let mut added = 0;
        for r in records {
            let (id, new) = store::upsert(tx, team, r, now).await?;
            store::set_distress(tx, team, &id, &rules::score(&facts(r), &weights, now.date_naive())).await?;
            added += usize::from(new);
            ids.push(id);
        }
        Ok((ids, added))
    }

    /// One page of a search (the criteria checked by [`check_criteria`]), kept as the team's
    /// properties. The provider is called outside any transaction.
    pub async fn search(&self, team: &TeamId, criteria: &Value, index: i64, size: i64) -> Result<SearchOutcome, Error> {
        let now = self.clock.now();
        let size = size.clamp(1, MAX_PAGE);
        let index = index.max(0);
        // The criteria exactly as given (object keys are sorted): "SFR" and "sfr" are not one search.
        let key = {
            use sha2::Digest;
            let raw = format!("{criteria}|{index}|{size}");
            sha2::Sha256::digest(raw.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let (hit, team_key) = {
            let mut conn = self.db.conn().await.map_err(Error::Store)?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let hit = cache::cached(&tx, CACHE_SEARCH, &key, now).await?;
            let team_key = if hit.is_none() {
                self.take_unit(&tx, team, now).await?;
                Self::team_key(&tx, team).await?
            } else {
                None
            };
            tx.commit().await.map_err(StoreError::from)?;
            (hit, team_key)
        };
        let (total, records, cached) = match hit {
            Some(v) => {
                let total = v.get("total").and_then(Value::as_i64).unwrap_or(0);
                let records: Vec<Record> =
                    serde_json::from_value(v.get("records").cloned().unwrap_or_default()).unwrap_or_default();
                (total, records, true)
            }
            None => match self.data.search(team_key.as_deref(), criteria, index, size).await {
                Ok(page) => (page.total, page.records, false),
                Err(e) => {
                    self.charge_failure(team, now).await;
                    return Err(e.into());
                }
            },
        };
        let mut conn = self.db.conn().await.map_err(Error::Store)?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        if !cached {
            let answer = serde_json::json!({"total": total, "records": records});
            cache::cache_until(&tx, team, CACHE_SEARCH, &key, &answer, now, now + Duration::days(CACHE_DAYS)).await?;
        }
        let cost = if cached {
            cache::Cost { cache_hits: 1, ..Default::default() }
        } else {
            cache::Cost { calls: 1, credits: records.len() as i32, ..Default::default() }
        };
        cache::charge_to(&tx, team, cache::PROPERTY_LEDGER, Provider::RealEstateApi, now, cost).await?;
        let (ids, added) = self.keep(&tx, team, &records).await?;
        let mut properties = Vec::with_capacity(ids.len());
        for id in &ids {
            properties.push(store::get(&tx, id).await?);
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(SearchOutcome { total, properties, added, cached })
    }

    /// Refreshes one property from the provider's detail (cached seven days).
    pub async fn refresh(&self, team: &TeamId, id: &PropertyId) -> Result<Property, Error> {
        let now = self.clock.now();
        let (external, hit, team_key) = {
            let mut conn = self.db.conn().await.map_err(Error::Store)?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let p = store::get(&tx, id).await?;
            let hit = cache::cached(&tx, CACHE_DETAIL, &p.external_id, now).await?;
            let team_key = if hit.is_none() {
                self.take_unit(&tx, team, now).await?;
                Self::team_key(&tx, team).await?
            } else {
                None
            };
            tx.commit().await.map_err(StoreError::from)?;
            (p.external_id, hit, team_key)
        };
        let cached = hit.is_some();
        let record: Option<Record> = match hit {
            Some(v) => serde_json::from_value(v).ok(),
            None => match self.data.detail(team_key.as_deref(), &external).await {
                Ok(r) => r,
                Err(e) => {
                    self.charge_failure(team, now).await;
                    return Err(e.into());
                }
            },
        };
        let mut conn = self.db.conn().await.map_err(Error::Store)?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let cost = if cached {
            cache::Cost { cache_hits: 1, ..Default::default() }
        } else {
            cache::Cost { calls: 1, credits: i32::from(record.is_some()), ..Default::default() }
        };
        cache::charge_to(&tx, team, cache::PROPERTY_LEDGER, Provider::RealEstateApi, now, cost).await?;
        if let Some(r) = &record {
            // The provider answered for this property (never another's record under its id).
            if r.external_id == external {
                let answer = serde_json::to_value(r).unwrap_or_default();
                cache::cache_until(&tx, team, CACHE_DETAIL, &external, &answer, now, now + Duration::days(CACHE_DAYS))
                    .await?;
                self.keep(&tx, team, std::slice::from_ref(r)).await?;
            }
        }
        let p = store::get(&tx, id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(p)
    }
}

/// What linking one owner did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerOutcome {
    pub owner_number: i16,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `linked` (an existing contact with this name at this address, or the one a person chose),
    /// `created` (a new contact, marked for review), `ambiguous` (several contacts match: a
    /// person decides), `dismissed` (a person deleted the contact made for this owner: not made
    /// again), `no_name` (the record names no last name), `no_address` (no street with a zip or
    /// a city and state to look at).
    pub outcome: String,
    pub contact_id: Option<ContactId>,
    pub detail: String,
}

/// The five-digit zip a zip starts with (`33101-1234` → `33101`), if it does.
fn zip5(zip: Option<&str>) -> Option<String> {
    let z = zip?.trim();
    let head: String = z.chars().take(5).collect();
    (head.len() == 5
        && head.chars().all(|c| c.is_ascii_digit())
        && z.chars().nth(5).is_none_or(|c| !c.is_ascii_digit()))
    .then_some(head)
}

/// Links a property's owners to the team's contacts: an owner is the contact with the same
/// first and last name (in that order) at the owner's mailing address (else the property's);
/// none: a new contact for review; several: nothing, a person decides. Never another team's.
/// Concurrent links of properties with one owner make one contact: each owner's match and
/// create run under a lock on who they are and where.
pub async fn link_owners(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &PropertyId,
    actor: &str,
) -> Result<Vec<OwnerOutcome>, StoreError> {
    let p = store::get(tx, id).await?;
    let links = store::owner_links(tx, id).await?;
    let place = p.mailing_address.clone().filter(|m| m.line1.is_some()).unwrap_or_else(|| p.address.clone());
    let street = place.line1.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let zip = zip5(place.zip.as_deref());
    let state = place
        .state
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()));
    let city = place.city.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let at = store::OwnerPlace { street, zip5: zip.as_deref(), city, state: state.as_deref() };
    let locatable = street.is_some() && (zip.is_some() || (city.is_some() && state.is_some()));
    // One owner, one contact, even when links of their properties run at once: each owner's
    // match-or-create runs under a lock on who they are and where, all taken first and in
    // order (co-owners named in another order on another property never deadlock).
    let mut keys: Vec<String> = p
        .owner_names
        .iter()
        .filter_map(|n| {
            let last = n.last.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
            let first = n.first.as_deref().map(str::trim).unwrap_or("");
            Some(format!(
                "property-owner:{team}:{}:{}:{}:{}",
                first.to_lowercase(),
                last.to_lowercase(),
                street.unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(),
                zip.clone().unwrap_or_else(|| format!(
                    "{}/{}",
                    city.unwrap_or("").to_lowercase(),
                    state.as_deref().unwrap_or("")
                )),
            ))
        })
        .collect();
    keys.sort();
    keys.dedup();
    if locatable {
        for key in &keys {
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[key]).await?;
        }
    }
    let mut out = Vec::new();
    for (i, n) in p.owner_names.iter().enumerate() {
        let number = (i + 1) as i16;
        let first = n.first.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let last = n.last.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let base = |outcome: &str, contact: Option<ContactId>, detail: String| OwnerOutcome {
            owner_number: number,
            first_name: first.map(str::to_owned),
            last_name: last.map(str::to_owned),
            outcome: outcome.into(),
            contact_id: contact,
            detail,
        };
        let mine: Vec<&(i16, ContactId, bool)> = links.iter().filter(|(o, _, _)| *o == number).collect();
        if let Some((_, c, _)) = mine.iter().find(|(_, _, deleted)| !deleted) {
            out.push(base("linked", Some(c.clone()), "already linked".into()));
            continue;
        }
        if !mine.is_empty() {
            out.push(base(
                "dismissed",
                None,
                "a person deleted the contact linked to this owner; it is not made again (link one by hand)".into(),
            ));
            continue;
        }
        let Some(last) = last else {
            out.push(base("no_name", None, "the record names no last name for this owner".into()));
            continue;
        };
        if !locatable {
            out.push(base(
                "no_address",
                None,
                "the record has no street with a zip, or a city and state, to match this owner at".into(),
            ));
            continue;
        }
        let found = store::contacts_named_at(tx, first, last, &at).await?;
        match found.as_slice() {
            [one] => {
                if store::link_owner(tx, team, id, one, number, "name_and_address").await? {
                    out.push(base("linked", Some(one.clone()), "same name at the owner's mailing address".into()));
                } else {
                    out.push(base(
                        "ambiguous",
                        None,
                        "matches the contact already linked as another owner of this property; link one by hand".into(),
                    ));
                }
            }
            [] if store::dismissed_named_at(tx, first, last, &at).await? => out.push(base(
                "dismissed",
                None,
                "a person deleted this owner's contact (made for another property); it is not made again".into(),
            )),
            [] => {
                let new = NewContact {
                    fields: contacts::Fields {
                        first_name: first.map(str::to_owned),
                        last_name: Some(last.to_owned()),
                        source: Some("property".into()),
                        tags: vec!["property-owner".into()],
                        status: "active".into(),
                        pipeline_status: "raw".into(),
                        custom_fields: serde_json::json!({}),
                        ..contacts::Fields::default()
                    },
                    needs_review: true,
                    address: Some(NewAddress {
                        line1: street.map(str::to_owned),
                        city: city.map(str::to_owned),
                        state: state.clone(),
                        zip: zip.clone(),
                    }),
                    ..NewContact::default()
                };
                let c = contacts::create(tx, team, &new, actor).await?;
                store::link_owner(tx, team, id, &c, number, "created").await?;
                out.push(base(
                    "created",
                    Some(c),
                    "no contact with this name at this address: created for review".into(),
                ));
            }
            many => out.push(base(
                "ambiguous",
                None,
                format!("{} contacts have this name at this address; link one by hand", many.len()),
            )),
        }
    }
    Ok(out)
}

/// Links the contact a person chose as a property's owner (the answer to `ambiguous`,
/// `dismissed` or a wrong match): replaces whatever that owner was linked to. The contact must
/// be a live contact of the team (row-level security hides every other); the inner error
/// names the field that is wrong.
pub async fn link_by_hand(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &PropertyId,
    number: i16,
    contact: &ContactId,
) -> Result<Result<OwnerOutcome, FieldError>, StoreError> {
    let p = store::get(tx, id).await?;
    let Some(name) = usize::try_from(number).ok().and_then(|n| n.checked_sub(1)).and_then(|i| p.owner_names.get(i))
    else {
        return Ok(Err(FieldError::new(
            "ownerNumber",
            format!("the property names {} owner(s), numbered from 1", p.owner_names.len()),
        )));
    };
    match contacts::get(tx, contact).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Ok(Err(FieldError::new("contactId", "no such contact in this team"))),
        Err(e) => return Err(e),
    }
    let links = store::owner_links(tx, id).await?;
    if let Some((other, _, _)) = links.iter().find(|(o, c, _)| c == contact && *o != number) {
        return Ok(Err(FieldError::new("contactId", format!("this contact is already owner {other} of the property"))));
    }
    store::unlink_owner(tx, id, number).await?;
    store::link_owner(tx, team, id, contact, number, "person").await?;
    Ok(Ok(OwnerOutcome {
        owner_number: number,
        first_name: name.first.clone(),
        last_name: name.last.clone(),
        outcome: "linked".into(),
        contact_id: Some(contact.clone()),
        detail: "linked by a person".into(),
    }))
}
