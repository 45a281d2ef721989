//! Properties a team holds: what the provider says of each, its distress score with its
//! signals, and its owners linked to the team's contacts. Every function runs in a
//! tenant-scoped transaction.

use chrono::{DateTime, NaiveDate, Utc};
use nextier_domain::ids::{ContactId, PropertyId, TeamId};
use nextier_domain::property::{Distress, Record};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// The source every RealEstateAPI property is kept under.
pub const SOURCE: &str = "realestateapi";

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerName {
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub contact_id: ContactId,
    pub owner_number: i16,
    /// `name_and_address` (an existing contact), `created` (new, for review) or `person`.
    pub matched_by: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub id: PropertyId,
    pub source: String,
    pub external_id: String,
    pub address: Place,
    pub county: Option<String>,
    pub property_type: Option<String>,
    pub year_built: Option<i32>,
    pub estimated_value: Option<i64>,
    pub estimated_equity: Option<i64>,
    pub equity_percent: Option<f64>,
    pub mortgage_balance: Option<i64>,
    pub loan_maturity_date: Option<NaiveDate>,
    pub owner_occupied: Option<bool>,
    pub vacant: Option<bool>,
    pub pre_foreclosure: Option<bool>,
    pub owner_type: Option<String>,
    /// As the record names them, in order.
    pub owner_names: Vec<OwnerName>,
    pub mailing_address: Option<Place>,
    /// 0-100 with every signal looked at, its value and points.
    pub distress: Option<Distress>,
    /// The team's contacts linked as its owners.
    pub owners: Vec<Owner>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT p.id, p.source, p.external_id, p.line1, p.city, p.state::text AS state, p.zip, p.county,
        p.property_type, p.year_built, p.estimated_value, p.estimated_equity, p.equity_percent::float8 AS equity_percent,
        p.mortgage_balance, p.loan_maturity_date, p.owner_occupied, p.vacant, p.pre_foreclosure, p.owner_type,
        p.owner_names, p.mail_line1, p.mail_city, p.mail_state, p.mail_zip, p.refreshed_at, p.created_at,
        d.score AS distress_score, d.signals AS distress_signals,
        coalesce((SELECT json_agg(json_build_object('contactId', o.contact_id, 'ownerNumber', o.owner_number,
                  'matchedBy', o.matched_by, 'firstName', c.first_name, 'lastName', c.last_name) ORDER BY o.owner_number)
                  FROM property_owners o JOIN contacts c ON c.id = o.contact_id
                 WHERE o.property_id = p.id AND c.deleted_at IS NULL), '[]') AS owners
   FROM properties p LEFT JOIN property_distress_scores d ON d.property_id = p.id";

fn property(r: &Row) -> Property {
    let names: serde_json::Value = r.get("owner_names");
    let owner_names = names
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| OwnerName {
                    first: n.get("first").and_then(|v| v.as_str()).map(str::to_owned),
                    last: n.get("last").and_then(|v| v.as_str()).map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let owners: serde_json::Value = r.get("owners");
    let owners = owners
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| Owner {
                    contact_id: ContactId::from_trusted(o["contactId"].as_str().unwrap_or_default().to_owned()),
                    owner_number: o["ownerNumber"].as_i64().unwrap_or(1) as i16,
                    matched_by: o["matchedBy"].as_str().unwrap_or_default().to_owned(),
                    first_name: o["firstName"].as_str().map(str::to_owned),
                    last_name: o["lastName"].as_str().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let mail_line1: Option<String> = r.get("mail_line1");
    let mail_zip: Option<String> = r.get("mail_zip");
    let distress = r.get::<_, Option<i32>>("distress_score").map(|score| Distress {
        score,
        signals: serde_json::from_value(r.get::<_, serde_json::Value>("distress_signals")).unwrap_or_default(),
    });
    Property {
        id: PropertyId::from_trusted(r.get("id")),
        source: r.get("source"),
        external_id: r.get("external_id"),
        address: Place { line1: r.get("line1"), city: r.get("city"), state: r.get("state"), zip: r.get("zip") },
        county: r.get("county"),
        property_type: r.get("property_type"),
        year_built: r.get("year_built"),
        estimated_value: r.get("estimated_value"),
        estimated_equity: r.get("estimated_equity"),
        equity_percent: r.get("equity_percent"),
        mortgage_balance: r.get("mortgage_balance"),
        loan_maturity_date: r.get("loan_maturity_date"),
        owner_occupied: r.get("owner_occupied"),
        vacant: r.get("vacant"),
        pre_foreclosure: r.get("pre_foreclosure"),
        owner_type: r.get("owner_type"),
        owner_names,
        mailing_address: (mail_line1.is_some() || mail_zip.is_some()).then(|| Place {
            line1: mail_line1,
            city: r.get("mail_city"),
            state: r.get("mail_state"),
            zip: mail_zip,
        }),
        distress,
        owners,
        refreshed_at: r.get("refreshed_at"),
        created_at: r.get("created_at"),
    }
}

/// Keeps a provider record (new, or refreshing what the team has under its id); the row's id
/// and whether it was new.
pub async fn upsert(tx: &Tx<'_>, team: &TeamId, rec: &Record, now: DateTime<Utc>) -> Result<(PropertyId, bool)> {
    let id = PropertyId::new();
    let names: Vec<serde_json::Value> =
        rec.owners.iter().map(|(f, l)| serde_json::json!({"first": f, "last": l})).collect();
    let mail = rec.mail_address.clone().unwrap_or_default();
    let state = rec.address.state.clone().filter(|s| s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()));
    let rows = tx
        .query_typed(
            "INSERT INTO properties (id, team_id, source, external_id, line1, city, state, zip, county, property_type,
                    estimated_value, equity_percent, year_built, owner_names, owner_type, mail_line1, mail_city,
                    mail_state, mail_zip, owner_occupied, vacant, pre_foreclosure, estimated_equity, mortgage_balance,
                    loan_maturity_date, raw, refreshed_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::float8::numeric(5,2), $13, $14, $15, $16, $17,
                     $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $27)
             ON CONFLICT (team_id, source, external_id) DO UPDATE SET
                line1 = EXCLUDED.line1, city = EXCLUDED.city, state = EXCLUDED.state, zip = EXCLUDED.zip,
                county = EXCLUDED.county, property_type = EXCLUDED.property_type,
                estimated_value = EXCLUDED.estimated_value, equity_percent = EXCLUDED.equity_percent,
                year_built = EXCLUDED.year_built, owner_names = EXCLUDED.owner_names, owner_type = EXCLUDED.owner_type,
                mail_line1 = EXCLUDED.mail_line1, mail_city = EXCLUDED.mail_city, mail_state = EXCLUDED.mail_state,
                mail_zip = EXCLUDED.mail_zip, owner_occupied = EXCLUDED.owner_occupied, vacant = EXCLUDED.vacant,
                pre_foreclosure = EXCLUDED.pre_foreclosure, estimated_equity = EXCLUDED.estimated_equity,
                mortgage_balance = EXCLUDED.mortgage_balance, loan_maturity_date = EXCLUDED.loan_maturity_date,
                raw = EXCLUDED.raw, refreshed_at = EXCLUDED.refreshed_at, updated_at = EXCLUDED.updated_at
             RETURNING id, (xmax = 0) AS inserted",
            params![id.as_str() => TEXT, team.as_str() => TEXT, SOURCE => TEXT, rec.external_id => TEXT,
                    rec.address.street => TEXT, rec.address.city => TEXT, state => TEXT, rec.address.zip => TEXT,
                    rec.county => TEXT, rec.property_type => TEXT, rec.estimated_value => INT8,
                    rec.equity_percent.map(|e| e.clamp(-999.99, 999.99)) => FLOAT8, rec.year_built => INT4,
                    serde_json::Value::Array(names) => JSONB, rec.owner_type => TEXT, mail.street => TEXT,
                    mail.city => TEXT, mail.state => TEXT, mail.zip => TEXT, rec.owner_occupied => BOOL,
                    rec.vacant => BOOL, rec.pre_foreclosure => BOOL, rec.estimated_equity => INT8,
                    rec.mortgage_balance => INT8, rec.loan_maturity_date => DATE, rec.raw => JSONB, now => TIMESTAMPTZ],
        )
        .await?;
    let r = rows.first().ok_or(StoreError::NotFound)?;
    Ok((PropertyId::from_trusted(r.get(0)), r.get(1)))
}

/// Sets a property's distress score with its signals; whether it changed.
pub async fn set_distress(tx: &Tx<'_>, team: &TeamId, id: &PropertyId, d: &Distress) -> Result<bool> {
    let signals = serde_json::to_value(&d.signals).unwrap_or_default();
    let n = tx
        .execute_typed(
            "INSERT INTO property_distress_scores (team_id, property_id, score, signals) VALUES ($1, $2, $3, $4)
             ON CONFLICT (property_id) DO UPDATE SET score = EXCLUDED.score, signals = EXCLUDED.signals, updated_at = now()
              WHERE (property_distress_scores.score, property_distress_scores.signals)
                    IS DISTINCT FROM (EXCLUDED.score, EXCLUDED.signals)",
            params![team.as_str() => TEXT, id.as_str() => TEXT, d.score => INT4, signals => JSONB],
        )
        .await?;
    Ok(n > 0)
}

pub async fn get(tx: &Tx<'_>, id: &PropertyId) -> Result<Property> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE p.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(property).ok_or(StoreError::NotFound)
}

/// What a list of properties is narrowed by.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    pub min_distress: Option<i32>,
    pub contact: Option<ContactId>,
}

/// Properties in id order, after `after`.
pub async fn list(tx: &Tx<'_>, f: &Filter, after: Option<&str>, limit: i64) -> Result<Vec<Property>> {
    let rows = tx
        .query_typed(
            &format!(
                "{SELECT} WHERE p.id > $1 AND ($2::text IS NULL OR p.state = $2) AND ($3::text IS NULL OR lower(p.city) = lower($3))
                   AND ($4::text IS NULL OR p.zip = $4) AND ($5::int IS NULL OR d.score >= $5)
                   AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM property_owners o WHERE o.property_id = p.id AND o.contact_id = $6))
                 ORDER BY p.id LIMIT $7"
            ),
            params![after.unwrap_or_default() => TEXT, f.state => TEXT, f.city => TEXT, f.zip => TEXT,
                    f.min_distress => INT4, f.contact.as_ref().map(|c| c.as_str()) => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(property).collect())
}

/// Where an owner is looked for: the street line and the five-digit zip, or (with no zip)
/// the city and state.
#[derive(Debug, Clone, Default)]
pub struct OwnerPlace<'a> {
    pub street: Option<&'a str>,
    pub zip5: Option<&'a str>,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// The team's live contacts with this name (case-insensitive; with no first name, any) and an
/// address on this street in this zip (or, without a zip, this city and state): who an owner
/// already is.
pub async fn contacts_named_at(
    tx: &Tx<'_>,
    first: Option<&str>,
    last: &str,
    at: &OwnerPlace<'_>,
) -> Result<Vec<ContactId>> {
    named_at(tx, first, last, at, false).await
}

/// Whether a person deleted a contact with this name at this place that was linked as an
/// owner of any property: that owner was dismissed, and is not made again.
pub async fn dismissed_named_at(tx: &Tx<'_>, first: Option<&str>, last: &str, at: &OwnerPlace<'_>) -> Result<bool> {
    Ok(!named_at(tx, first, last, at, true).await?.is_empty())
}

async fn named_at(
    tx: &Tx<'_>,
    first: Option<&str>,
    last: &str,
    at: &OwnerPlace<'_>,
    deleted_owners: bool,
) -> Result<Vec<ContactId>> {
    let rows = tx
        .query_typed(
            "SELECT DISTINCT c.id FROM contacts c JOIN contact_addresses a ON a.contact_id = c.id
              WHERE CASE WHEN $7 THEN c.deleted_at IS NOT NULL
                                      AND EXISTS (SELECT 1 FROM property_owners o WHERE o.contact_id = c.id)
                         ELSE c.deleted_at IS NULL END
                AND lower(c.last_name) = lower($2)
                AND ($1::text IS NULL OR lower(c.first_name) = lower($1))
                AND lower(regexp_replace(btrim(coalesce(a.line1, '')), '\\s+', ' ', 'g'))
                  = lower(regexp_replace(btrim(coalesce($3, '')), '\\s+', ' ', 'g'))
                AND CASE WHEN $4::text IS NOT NULL THEN left(a.zip, 5) = $4
                         ELSE lower(a.city) = lower($5) AND upper(a.state) = upper($6) END
              ORDER BY c.id LIMIT 5",
            params![first => TEXT, last => TEXT, at.street => TEXT, at.zip5 => TEXT, at.city => TEXT,
                    at.state => TEXT, deleted_owners => BOOL],
        )
        .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}

/// Every owner link of a property, with whether a person has since deleted its contact.
pub async fn owner_links(tx: &Tx<'_>, property: &PropertyId) -> Result<Vec<(i16, ContactId, bool)>> {
    let rows = tx
        .query_typed(
            "SELECT o.owner_number, o.contact_id, c.deleted_at IS NOT NULL
               FROM property_owners o JOIN contacts c ON c.id = o.contact_id
              WHERE o.property_id = $1 ORDER BY o.owner_number, o.linked_at",
            params![property.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), ContactId::from_trusted(r.get(1)), r.get(2))).collect())
}

/// Removes whatever contact an owner of a property is linked to.
pub async fn unlink_owner(tx: &Tx<'_>, property: &PropertyId, number: i16) -> Result<u64> {
    Ok(tx
        .execute_typed(
            "DELETE FROM property_owners WHERE property_id = $1 AND owner_number = $2",
            params![property.as_str() => TEXT, number => INT2],
        )
        .await?)
}

/// Links a contact as a property's owner (once).
pub async fn link_owner(
    tx: &Tx<'_>,
    team: &TeamId,
    property: &PropertyId,
    contact: &ContactId,
    number: i16,
    matched_by: &str,
) -> Result<bool> {
    let n = tx
        .execute_typed(
            "INSERT INTO property_owners (team_id, property_id, contact_id, owner_number, matched_by, ownership_type)
             VALUES ($1, $2, $3, $4, $5, 'individual') ON CONFLICT (property_id, contact_id) DO NOTHING",
            params![team.as_str() => TEXT, property.as_str() => TEXT, contact.as_str() => TEXT, number => INT2,
                    matched_by => TEXT],
        )
        .await?;
    Ok(n > 0)
}

// Saved searches ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedSearch {
    pub id: nextier_domain::ids::PropertySearchId,
    pub name: String,
    #[schema(value_type = Object)]
    pub criteria: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The team-zone day of the current (or last) nightly run, where it is, and how it went.
    pub run_day: Option<NaiveDate>,
    pub run_index: i32,
    pub run_status: Option<String>,
    pub run_note: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
}

const SEARCH: &str = "SELECT id, name, criteria, created_by, created_at, run_day, run_index, run_status, run_note,
    last_run_at FROM property_searches";

fn saved(r: &Row) -> SavedSearch {
    SavedSearch {
        id: nextier_domain::ids::PropertySearchId::from_trusted(r.get("id")),
        name: r.get("name"),
        criteria: r.get("criteria"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        run_day: r.get("run_day"),
        run_index: r.get("run_index"),
        run_status: r.get("run_status"),
        run_note: r.get("run_note"),
        last_run_at: r.get("last_run_at"),
    }
}

pub async fn save_search(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    criteria: &serde_json::Value,
    actor: &str,
) -> Result<SavedSearch> {
    let id = nextier_domain::ids::PropertySearchId::new();
    tx.execute_typed(
        "INSERT INTO property_searches (id, team_id, name, criteria, created_by) VALUES ($1, $2, $3, $4, $5)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, name => TEXT, criteria => JSONB, actor => TEXT],
    )
    .await
    .map_err(|e| {
        StoreError::unique(e, "property_searches_team_id_name_key", &format!("a search named {name:?} exists"))
    })?;
    search_get(tx, &id).await
}

pub async fn search_get(tx: &Tx<'_>, id: &nextier_domain::ids::PropertySearchId) -> Result<SavedSearch> {
    let rows = tx.query_typed(&format!("{SEARCH} WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(saved).ok_or(StoreError::NotFound)
}

pub async fn search_lock(tx: &Tx<'_>, id: &nextier_domain::ids::PropertySearchId) -> Result<SavedSearch> {
    let rows = tx.query_typed(&format!("{SEARCH} WHERE id = $1 FOR UPDATE"), params![id.as_str() => TEXT]).await?;
    rows.first().map(saved).ok_or(StoreError::NotFound)
}

pub async fn searches(tx: &Tx<'_>) -> Result<Vec<SavedSearch>> {
    let rows = tx.query_typed(&format!("{SEARCH} ORDER BY name LIMIT 500"), &[]).await?;
    Ok(rows.iter().map(saved).collect())
}

pub async fn delete_search(tx: &Tx<'_>, id: &nextier_domain::ids::PropertySearchId) -> Result<()> {
    let n = tx.execute_typed("DELETE FROM property_searches WHERE id = $1", params![id.as_str() => TEXT]).await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Claims a search's run for `day` until `lease_until`: its criteria, the page index to go on
/// from (0 on a new day) and the attempts so far. `None` when another invocation holds it or
/// the day's run is done or failed (so two invocations never walk one search at once).
pub async fn claim_run(
    tx: &Tx<'_>,
    id: &nextier_domain::ids::PropertySearchId,
    day: NaiveDate,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<(serde_json::Value, i32, i32)>> {
    let rows = tx
        .query_typed(
            "UPDATE property_searches SET
                 run_index = CASE WHEN run_day = $2 THEN run_index ELSE 0 END,
                 run_attempts = CASE WHEN run_day = $2 THEN run_attempts ELSE 0 END,
                 run_day = $2, run_status = 'running', run_lease_until = $4, last_run_at = $3
              WHERE id = $1 AND (run_lease_until IS NULL OR run_lease_until <= $3)
                AND NOT (run_day IS NOT DISTINCT FROM $2 AND run_status IN ('done', 'failed'))
              RETURNING criteria, run_index, run_attempts",
            params![id.as_str() => TEXT, day => DATE, now => TIMESTAMPTZ, lease_until => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1), r.get(2))))
}

/// Records where a held run is: the next page's index, its status (`running` or `done`) and
/// note, and how long it is still held (`None`: released).
pub async fn set_run(
    tx: &Tx<'_>,
    id: &nextier_domain::ids::PropertySearchId,
    index: i32,
    status: &str,
    note: Option<&str>,
    lease_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE property_searches SET run_index = $2, run_status = $3, run_note = $4, run_lease_until = $5,
                last_run_at = $6
          WHERE id = $1",
        params![id.as_str() => TEXT, index => INT4, status => TEXT, note => TEXT, lease_until => TIMESTAMPTZ,
                now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Records a failed attempt of a held run and releases it: after `max_attempts` in one day the
/// run stops as `failed` until the next night. Returns the status it is left in.
pub async fn fail_run(
    tx: &Tx<'_>,
    id: &nextier_domain::ids::PropertySearchId,
    note: &str,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> Result<String> {
    let rows = tx
        .query_typed(
            "UPDATE property_searches SET run_attempts = run_attempts + 1,
                 run_status = CASE WHEN run_attempts + 1 >= $3 THEN 'failed' ELSE 'running' END,
                 run_note = $2, run_lease_until = NULL, last_run_at = $4
              WHERE id = $1 RETURNING run_status",
            params![id.as_str() => TEXT, note => TEXT, max_attempts => INT4, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
}

/// A saved search as the nightly match sees it (the worker's, across teams).
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub id: String,
    pub team: TeamId,
    pub zone: Option<String>,
    pub run_day: Option<NaiveDate>,
    pub run_status: Option<String>,
}

/// Every team's saved searches with the team's zone setting, the longest-waiting first.
pub async fn all_searches(tx: &Tx<'_>) -> Result<Vec<Scheduled>> {
    let rows =
        tx.query_typed("SELECT id, team_id, zone, run_day, run_status FROM property_searches_all()", &[]).await?;
    Ok(rows
        .iter()
        .map(|r| Scheduled {
            id: r.get(0),
            team: TeamId::from_trusted(r.get(1)),
            zone: r.get(2),
            run_day: r.get(3),
            run_status: r.get(4),
        })
        .collect())
}

/// Tags the contacts owning these properties (once).
pub async fn tag_owners(tx: &Tx<'_>, properties: &[String], tag: &str) -> Result<u64> {
    Ok(tx
        .execute_typed(
            "UPDATE contacts c SET tags = array_append(c.tags, $2), updated_at = now()
              WHERE c.id IN (SELECT o.contact_id FROM property_owners o WHERE o.property_id = ANY($1))
                AND NOT ($2 = ANY(c.tags))",
            params![properties => TEXT_ARRAY, tag => TEXT],
        )
        .await?)
}
