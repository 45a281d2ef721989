//! The contact score: its inputs gathered in one query, the breakdown saved beside the number
//! (`nextier_domain::score` computes it).

use chrono::{DateTime, Utc};
use nextier_domain::ids::ContactId;
use nextier_domain::score::{self, Breakdown, Inputs, Weights};

use crate::error::{Result, StoreError};
use crate::Tx;

/// The settings scope of the weights and target sectors.
pub const SCOPE: &str = "scoring";

pub async fn inputs(tx: &Tx<'_>, contact: &ContactId) -> Result<Inputs> {
    let rows = tx
        .query_typed(
            "SELECT (c.first_name IS NOT NULL AND c.last_name IS NOT NULL),
                    EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = c.id AND NOT e.unsubscribed),
                    EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id
                             AND a.line1 IS NOT NULL AND a.zip IS NOT NULL),
                    (c.company IS NOT NULL OR c.title IS NOT NULL),
                    coalesce((SELECT json_agg(json_build_array(CASE WHEN p.type = 'landline' OR p.line_type = 'landline'
                                  THEN 'landline' ELSE coalesce(nullif(p.line_type, 'unknown'), p.type)::text END, p.line_grade,
                                  p.activity_score))
                                FROM contact_phones p WHERE p.contact_id = c.id AND NOT p.do_not_call), '[]'),
                    coalesce((SELECT json_agg(json_build_array(o.role, o.is_decision_maker))
                                FROM business_owners o WHERE o.contact_id = c.id), '[]'),
                    (SELECT max(d.score) FROM property_owners po
                       JOIN property_distress_scores d ON d.property_id = po.property_id
                      WHERE po.contact_id = c.id),
                    coalesce((SELECT json_agg(json_build_array(b.sector, b.employee_count, b.annual_revenue))
                                FROM business_owners o JOIN businesses b ON b.id = o.business_id
                               WHERE o.contact_id = c.id), '[]')
               FROM contacts c WHERE c.id = $1 AND c.deleted_at IS NULL",
            params![contact.as_str() => TEXT],
        )
        .await?;
    let r = rows.first().ok_or(StoreError::NotFound)?;
    let phones: Vec<(String, Option<String>, Option<i32>)> = serde_json::from_value(r.get(4)).unwrap_or_default();
    let roles: Vec<(String, bool)> = serde_json::from_value(r.get(5)).unwrap_or_default();
    let businesses: Vec<(Option<String>, Option<i32>, Option<i64>)> =
        serde_json::from_value(r.get(7)).unwrap_or_default();
    Ok(Inputs {
        has_name: r.get(0),
        has_email: r.get(1),
        has_address: r.get(2),
        has_company_or_title: r.get(3),
        phones: phones.into_iter().map(|(t, g, a)| (t, g.and_then(|g| g.chars().next()), a)).collect(),
        roles,
        property_distress: r.get(6),
        businesses,
    })
}

/// Scores the contact with the team's weights and targets and saves the breakdown; the score
/// before and after.
pub async fn rescore(tx: &Tx<'_>, contact: &ContactId, now: DateTime<Utc>) -> Result<(i32, Breakdown)> {
    let weights = Weights::from_settings(&crate::settings::numbers_in(tx, SCOPE).await?);
    let targets: Vec<String> = crate::settings::strings_in(tx, SCOPE)
        .await?
        .get("target_sectors")
        .map(|s| s.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default();
    let b = score::score(&inputs(tx, contact).await?, &weights, &targets);
    let rows = tx
        .query_typed(
            "UPDATE contacts n SET score = $2, score_breakdown = $3, scored_at = $4
               FROM contacts o WHERE n.id = o.id AND n.id = $1 RETURNING o.score",
            params![contact.as_str() => TEXT, b.total => INT4, serde_json::to_value(&b).unwrap_or_default() => JSONB,
                    now => TIMESTAMPTZ],
        )
        .await?;
    let before = rows.first().map(|r| r.get(0)).ok_or(StoreError::NotFound)?;
    Ok((before, b))
}

/// A person set the score: it is theirs until the next enrichment or rescore.
pub async fn set_by_person(tx: &Tx<'_>, contact: &ContactId) -> Result<()> {
    tx.execute_typed(
        "UPDATE contacts SET score_breakdown = NULL, scored_at = NULL WHERE id = $1",
        params![contact.as_str() => TEXT],
    )
    .await?;
    Ok(())
}

/// The saved breakdown (`None` until the contact was scored).
pub async fn breakdown(tx: &Tx<'_>, contact: &ContactId) -> Result<Option<(Breakdown, DateTime<Utc>)>> {
    let rows = tx
        .query_typed(
            "SELECT score_breakdown, scored_at FROM contacts WHERE id = $1 AND deleted_at IS NULL",
            params![contact.as_str() => TEXT],
        )
        .await?;
    let r = rows.first().ok_or(StoreError::NotFound)?;
    let b: Option<serde_json::Value> = r.get(0);
    let at: Option<DateTime<Utc>> = r.get(1);
    Ok(match (b.and_then(|b| serde_json::from_value(b).ok()), at) {
        (Some(b), Some(at)) => Some((b, at)),
        _ => None,
    })
}
