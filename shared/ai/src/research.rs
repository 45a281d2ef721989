//! Research (NEVA): a brief per lead (company, role, property, recent signals) from a
//! search-capable model where one is configured, else from our own records. Cached a day with
//! its citations; shown beside suggestions; it never changes the contact. The researcher is
//! told business facts only, never the person's name, number or email.

use chrono::{DateTime, Duration, Utc};
use nextier_domain::ids::{ContactId, TeamId};
use nextier_platform::ports::suggester::{records_brief, ResearchSubject, Researcher};
use nextier_store::nurtures::{self, Research};
use nextier_store::{contacts, scope, workers, Db, Scope, StoreError, Tx};

/// How long a brief stays fresh.
pub const TTL_HOURS: i64 = 24;

/// What the researcher is told about a lead.
pub async fn subject(tx: &Tx<'_>, contact: &ContactId) -> Result<ResearchSubject, StoreError> {
    let c = contacts::get(tx, contact).await?;
    let address = c.addresses.first();
    let props = tx
        .query_typed(
            "SELECT concat_ws(', ', p.line1, p.city, p.state::text) FROM property_owners o
               JOIN properties p ON p.id = o.property_id WHERE o.contact_id = $1 ORDER BY p.id LIMIT 10",
            &[(&contact.as_str(), tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    let signals = tx
        .query_typed(
            "SELECT kind || CASE WHEN data ? 'classification' THEN ' (' || (data->>'classification') || ')' ELSE '' END
                    || ' on ' || to_char(created_at, 'YYYY-MM-DD')
               FROM contact_events WHERE contact_id = $1 AND kind NOT IN ('created', 'updated')
              ORDER BY created_at DESC LIMIT 5",
            &[(&contact.as_str(), tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    Ok(ResearchSubject {
        company: c.company.clone(),
        title: c.title.clone(),
        city: address.and_then(|a| a.city.clone()),
        state: address.and_then(|a| a.state.clone()),
        properties: props.iter().map(|r| r.get(0)).collect(),
        signals: signals.iter().map(|r| r.get(0)).collect(),
    })
}

/// The lead's brief: the cached one while fresh (unless `refresh`), else a new one (the
/// records' brief when the researcher fails, with the reason).
pub async fn brief(
    db: &Db,
    researcher: &dyn Researcher,
    team: &TeamId,
    contact: &ContactId,
    refresh: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Research> {
    let subject = {
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        if !refresh {
            if let Some(r) = nurtures::research(&tx, contact, now).await? {
                return Ok(r);
            }
        }
        subject(&tx, contact).await?
    };
    let b = match researcher.brief(&subject).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "research failed; the records' brief stands in");
            let mut b = records_brief(&subject);
            b.source = "records (the research model failed)".into();
            b
        }
    };
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    // The contact may have gone meanwhile.
    contacts::get(&tx, contact).await?;
    let r = nurtures::save_research(
        &tx,
        team,
        contact,
        &b.text,
        &b.citations,
        &b.source,
        now,
        now + Duration::hours(TTL_HOURS),
    )
    .await?;
    let neva = workers::by_role(&tx, nextier_domain::ai::Role::Research).await?;
    workers::log_event(
        &tx,
        team,
        neva.as_ref().map(|w| w.id.as_str()),
        Some(contact),
        None,
        "researched",
        "neutral",
        Some(&b.source),
    )
    .await?;
    tx.commit().await?;
    Ok(r)
}
