//! Businesses (B2B lists and Apollo) and the people in them: owners, executives, managers,
//! and who decides. Every function runs in a tenant-scoped transaction.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{BusinessId, ContactId, RowId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    pub sector: Option<String>,
    pub sic_code: Option<String>,
    pub naics_code: Option<String>,
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub employee_count: Option<i32>,
    pub annual_revenue: Option<i64>,
    pub website: Option<String>,
    /// requested, enriched, not_found or failed (absent until Apollo was asked).
    pub apollo_status: Option<String>,
    pub apollo_reason: Option<String>,
    pub enriched_at: Option<DateTime<Utc>>,
    /// Which fields a provider filled: `{"employeeCount": "apollo"}`.
    #[schema(value_type = Object)]
    pub field_sources: serde_json::Value,
    /// People with a role in it, and how many of them decide.
    pub people: i64,
    pub decision_makers: i64,
    pub created_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT b.id, b.name, b.sector, b.sic_code, b.naics_code, b.line1, b.city, b.state::text AS state,
        b.zip, b.employee_count, b.annual_revenue, b.website, b.apollo_status, b.apollo_reason, b.enriched_at,
        b.field_sources, b.created_at,
        (SELECT count(*) FROM business_owners o JOIN contacts c ON c.id = o.contact_id
          WHERE o.business_id = b.id AND c.deleted_at IS NULL) AS people,
        (SELECT count(*) FROM business_owners o JOIN contacts c ON c.id = o.contact_id
          WHERE o.business_id = b.id AND c.deleted_at IS NULL AND o.is_decision_maker) AS decision_makers
   FROM businesses b";

fn business(r: &Row) -> Business {
    Business {
        id: BusinessId::from_trusted(r.get("id")),
        name: r.get("name"),
        sector: r.get("sector"),
        sic_code: r.get("sic_code"),
        naics_code: r.get("naics_code"),
        line1: r.get("line1"),
        city: r.get("city"),
        state: r.get("state"),
        zip: r.get("zip"),
        employee_count: r.get("employee_count"),
        annual_revenue: r.get("annual_revenue"),
        website: r.get("website"),
        apollo_status: r.get("apollo_status"),
        apollo_reason: r.get("apollo_reason"),
        enriched_at: r.get("enriched_at"),
        field_sources: r.get("field_sources"),
        people: r.get("people"),
        decision_makers: r.get("decision_makers"),
        created_at: r.get("created_at"),
    }
}

/// Businesses in id order, by name (`q`, a substring) and sector (exact, case-insensitive).
pub async fn list(tx: &Tx<'_>, q: Option<&str>, sector: Option<&str>, page: &PageRequest) -> Result<Vec<Business>> {
    let q = q.map(|q| format!("%{}%", q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let rows = tx
        .query_typed(
            &format!(
                "{SELECT} WHERE b.id > $1 AND ($2::text IS NULL OR b.normalized_name LIKE $2 OR lower(b.name) LIKE $2)
                   AND ($3::text IS NULL OR lower(b.sector) = lower($3)) ORDER BY b.id LIMIT $4"
            ),
            params![page.after.clone().unwrap_or_default() => TEXT, q => TEXT, sector => TEXT,
                    page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(business).collect())
}

pub async fn get(tx: &Tx<'_>, id: &BusinessId) -> Result<Business> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE b.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(business).ok_or(StoreError::NotFound)
}

/// Someone with a role in a business.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub contact_id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub role: String,
    pub is_decision_maker: bool,
    pub score: i32,
    pub enrichment_status: String,
}

/// The business's people: decision makers first, then by role value.
pub async fn people(tx: &Tx<'_>, id: &BusinessId) -> Result<Vec<Member>> {
    let rows = tx
        .query_typed(
            "SELECT c.id, c.first_name, c.last_name, c.title, o.role, o.is_decision_maker, c.score, c.enrichment_status
               FROM business_owners o JOIN contacts c ON c.id = o.contact_id
              WHERE o.business_id = $1 AND c.deleted_at IS NULL
              ORDER BY o.is_decision_maker DESC, c.score DESC, c.id",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Member {
            contact_id: ContactId::from_trusted(r.get(0)),
            first_name: r.get(1),
            last_name: r.get(2),
            title: r.get(3),
            role: r.get(4),
            is_decision_maker: r.get(5),
            score: r.get(6),
            enrichment_status: r.get(7),
        })
        .collect())
}

/// Marks the business as asked of Apollo; false when it already is (a concurrent request waits
/// for the first and then finds it asked). A request unanswered for an hour (its step ended in
/// the dead-letter queue) may be made again.
pub async fn request_apollo(tx: &Tx<'_>, id: &BusinessId, now: DateTime<Utc>) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE businesses SET apollo_status = 'requested', apollo_reason = NULL, updated_at = $2
              WHERE id = $1 AND (apollo_status IS DISTINCT FROM 'requested' OR updated_at < $2 - interval '1 hour')",
            params![id.as_str() => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(n == 1)
}

/// Records Apollo's outcome for the business.
pub async fn set_apollo(
    tx: &Tx<'_>,
    id: &BusinessId,
    status: &str,
    reason: Option<&str>,
    org_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE businesses SET apollo_status = $2, apollo_reason = $3, apollo_org_id = coalesce($4, apollo_org_id),
                enriched_at = CASE WHEN $2 = 'enriched' THEN $5 ELSE enriched_at END, updated_at = $5
          WHERE id = $1",
        params![id.as_str() => TEXT, status => TEXT, reason => TEXT, org_id => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// What Apollo knows of the organisation, on the fields nobody filled.
pub async fn fill_from_provider(
    tx: &Tx<'_>,
    id: &BusinessId,
    sector: Option<&str>,
    employees: Option<i32>,
    revenue: Option<i64>,
    website: Option<&str>,
    source: &str,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE businesses SET
             field_sources = field_sources
                 || CASE WHEN sector IS NULL AND $2::text IS NOT NULL THEN jsonb_build_object('sector', $6::text) ELSE '{}' END
                 || CASE WHEN employee_count IS NULL AND $3::int4 IS NOT NULL THEN jsonb_build_object('employeeCount', $6::text) ELSE '{}' END
                 || CASE WHEN annual_revenue IS NULL AND $4::int8 IS NOT NULL THEN jsonb_build_object('annualRevenue', $6::text) ELSE '{}' END
                 || CASE WHEN website IS NULL AND $5::text IS NOT NULL THEN jsonb_build_object('website', $6::text) ELSE '{}' END,
             sector = coalesce(sector, $2), employee_count = coalesce(employee_count, $3),
             annual_revenue = coalesce(annual_revenue, $4), website = coalesce(website, $5)
          WHERE id = $1",
        params![id.as_str() => TEXT, sector => TEXT, employees => INT4, revenue => INT8, website => TEXT,
                source => TEXT],
    )
    .await?;
    Ok(())
}

/// A person a provider found in a business: linked to the team's contact that already has
/// their email, else a new contact with the provider as its source (their number joins it
/// unless another contact has it); their role is added (an existing role is kept). The
/// contact, and whether it is new.
#[allow(clippy::too_many_arguments)]
pub async fn add_person(
    tx: &Tx<'_>,
    team: &TeamId,
    business: &BusinessId,
    first_name: Option<&str>,
    last_name: Option<&str>,
    title: Option<&str>,
    email: Option<&str>,
    e164: Option<&str>,
    role: &str,
    decision_maker: bool,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(ContactId, bool)> {
    // The same person only by their own email (an office number is shared by many people);
    // never a deleted or merged contact.
    let existing = tx
        .query_typed(
            "SELECT e.contact_id FROM contact_emails e JOIN contacts c ON c.id = e.contact_id
              WHERE e.email = $1 AND c.deleted_at IS NULL AND c.merged_into IS NULL LIMIT 1",
            params![email => TEXT],
        )
        .await?;
    let (contact, new) = match existing.first() {
        Some(r) => (ContactId::from_trusted(r.get(0)), false),
        None => {
            let id = ContactId::new();
            tx.execute_typed(
                "INSERT INTO contacts (id, team_id, first_name, last_name, title, source, field_sources)
                 VALUES ($1, $2, $3, $4, $5, $6, jsonb_build_object('firstName', $6::text, 'lastName', $6::text, 'title', $6::text))",
                params![id.as_str() => TEXT, team.as_str() => TEXT, first_name => TEXT, last_name => TEXT,
                        title => TEXT, source => TEXT],
            )
            .await?;
            if let Some(e) = email {
                tx.execute_typed(
                    "INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary, source, sourced_at)
                     VALUES ($1, $2, $3, $4, true, $5, $6) ON CONFLICT (team_id, email) DO NOTHING",
                    params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, id.as_str() => TEXT, e => TEXT,
                            source => TEXT, now => TIMESTAMPTZ],
                )
                .await?;
            }
            if let Some(p) = e164 {
                tx.execute_typed(
                    "INSERT INTO contact_phones (id, team_id, contact_id, e164, is_primary, source, sourced_at)
                     VALUES ($1, $2, $3, $4, true, $5, $6) ON CONFLICT (team_id, e164) DO NOTHING",
                    params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, id.as_str() => TEXT, p => TEXT,
                            source => TEXT, now => TIMESTAMPTZ],
                )
                .await?;
            }
            (id, true)
        }
    };
    tx.execute_typed(
        "INSERT INTO business_owners (team_id, business_id, contact_id, role, is_decision_maker)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (business_id, contact_id) DO NOTHING",
        params![team.as_str() => TEXT, business.as_str() => TEXT, contact.as_str() => TEXT, role => TEXT,
                decision_maker => BOOL],
    )
    .await?;
    Ok((contact, new))
}
