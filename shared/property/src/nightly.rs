//! The nightly match (EventBridge Scheduler, hourly): each team's saved searches run once a
//! day, in the team's night (from `MATCH_HOUR` in its zone, `ai` / `time_zone`). A run pages
//! through its search (the seven-day cache answers a repeated page), keeps new and changed
//! properties with their scores, links their owners to the team's contacts (one contact per
//! person, by name and mailing address) and tags the owners `property-match`. Where it is is
//! kept after every page, so a run cut short (a deadline, a crash, the daily cap) resumes
//! where it stopped; running a page again changes nothing. It never leaves the team.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use nextier_domain::ids::{PropertySearchId, TeamId};
use nextier_store::properties as store;
use nextier_store::{scope, Scope, StoreError};
use serde::Serialize;

use crate::{link_owners, Error, Properties, MAX_PAGE};

/// The local hour from which a team's night begins.
pub const MATCH_HOUR: u32 = 2;
/// The tag the owners of matched properties get.
pub const TAG: &str = "property-match";
pub const SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "property-match", every_secs: 3600 };

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub searches: usize,
    pub pages: usize,
    pub cached_pages: usize,
    pub properties: usize,
    pub added: usize,
    pub owners_linked: usize,
    pub owners_created: usize,
    pub finished: usize,
    pub stopped: Vec<String>,
}

/// Whether a search runs now: not yet today in the team's night, or today's run unfinished.
pub fn due(
    zone: Option<&str>,
    run_day: Option<NaiveDate>,
    status: Option<&str>,
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let tz = nextier_domain::ai::zone(zone);
    let local = now.with_timezone(&tz);
    let day = local.date_naive();
    match (run_day, status) {
        (Some(d), Some("running")) if d == day => Some(day),
        (Some(d), _) if d == day => None,
        _ if local.hour() >= MATCH_HOUR => Some(day),
        _ => None,
    }
}

/// How long a run is held by the invocation walking it (the function's longest life).
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Pages one search walks per invocation before the next search's turn (the rest resumes on
/// the next hourly run), so one team's large search never starves the others.
pub const PAGES_PER_TURN: usize = 20;
/// Failed attempts (not the daily cap) after which a run stops for the night as `failed`.
pub const MAX_ATTEMPTS: i32 = 3;

pub async fn run(p: &Properties, now: DateTime<Utc>) -> anyhow::Result<Summary> {
    let all = {
        let mut conn = p.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        store::all_searches(&tx).await?
    };
    let mut summary = Summary::default();
    for s in all {
        let Some(day) = due(s.zone.as_deref(), s.run_day, s.run_status.as_deref(), now) else { continue };
        if nextier_runtime::deadline::remaining().is_some_and(|left| left < std::time::Duration::from_secs(5)) {
            summary.stopped.push(format!("{}: the invocation's time ran out; the next run resumes", s.id));
            break;
        }
        let id = PropertySearchId::from_trusted(s.id);
        if let Err(e) = run_one(p, &s.team, &id, day, now, &mut summary).await {
            tracing::warn!(search = %id, error = %format!("{e:#}"), "property match stopped");
            summary.stopped.push(format!("{id}: {e}"));
        }
    }
    Ok(summary)
}

async fn run_one(
    p: &Properties,
    team: &TeamId,
    id: &PropertySearchId,
    day: NaiveDate,
    now: DateTime<Utc>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let lease = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let claimed = {
        let mut conn = p.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let claimed = store::claim_run(&tx, id, day, now, lease).await?;
        tx.commit().await?;
        claimed
    };
    // Another invocation holds it, or today's run just finished.
    let Some((criteria, mut index, _attempts)) = claimed else { return Ok(()) };
    summary.searches += 1;
    for _ in 0..PAGES_PER_TURN {
        if nextier_runtime::deadline::remaining().is_some_and(|left| left < std::time::Duration::from_secs(5)) {
            break;
        }
        let page = match p.search(team, &criteria, i64::from(index), MAX_PAGE).await {
            Ok(page) => page,
            Err(e) => {
                let mut conn = p.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                match &e {
                    // No call was made: the run waits, held by nobody, for the cap to refill.
                    Error::Capped { .. } => {
                        let note = format!("{e}; the run resumes when it refills");
                        store::set_run(&tx, id, index, "running", Some(&note), None, now).await?;
                    }
                    other => {
                        let note = format!("stopped: {other}");
                        let status = store::fail_run(&tx, id, &note, MAX_ATTEMPTS, now).await?;
                        if status == "failed" {
                            tracing::error!(search = %id, "property match failed {MAX_ATTEMPTS} times tonight; it runs again tomorrow night");
                        }
                    }
                }
                tx.commit().await?;
                return Err(e.into());
            }
        };
        summary.pages += 1;
        summary.cached_pages += usize::from(page.cached);
        summary.properties += page.properties.len();
        summary.added += page.added;
        let next = index + page.properties.len() as i32;
        let done = page.properties.is_empty() || i64::from(next) >= page.total;
        // Each property's owners in their own transaction (a property row lock, then its owners'
        // locks in order: never a cycle with a link through the API); then the page's place.
        let kept = async {
            for prop in &page.properties {
                let mut conn = p.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                tx.execute("SELECT 1 FROM properties WHERE id = $1 FOR UPDATE", &[&prop.id.as_str()])
                    .await
                    .map_err(StoreError::from)?;
                for o in link_owners(&tx, team, &prop.id, "property-match").await? {
                    match o.outcome.as_str() {
                        "created" => summary.owners_created += 1,
                        "linked" if !o.detail.starts_with("already") => summary.owners_linked += 1,
                        _ => {}
                    }
                }
                store::tag_owners(&tx, &[prop.id.to_string()], TAG).await?;
                tx.commit().await?;
            }
            let mut conn = p.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let (status, lease) = if done { ("done", None) } else { ("running", Some(lease)) };
            store::set_run(&tx, id, next, status, None, lease, now).await?;
            tx.commit().await?;
            anyhow::Ok(())
        };
        if let Err(e) = kept.await {
            // Counted like a provider failure: a page that cannot be kept stops for the night
            // after three tries instead of holding the search every hour.
            let mut conn = p.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            store::fail_run(&tx, id, &format!("stopped keeping a page: {e:#}"), MAX_ATTEMPTS, now).await?;
            tx.commit().await?;
            return Err(e);
        }
        index = next;
        if done {
            summary.finished += 1;
            return Ok(());
        }
    }
    // Its turn is over (or the invocation's time): released, the next hourly run goes on.
    let mut conn = p.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    store::set_run(&tx, id, index, "running", None, None, now).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_due_once_a_night_in_the_teams_zone_and_until_finished() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        // 06:30 UTC is 01:30 in New York: not yet night enough; 07:30 UTC is 02:30.
        assert_eq!(due(None, None, None, at("2026-12-03T06:30:00Z")), None);
        assert_eq!(due(None, None, None, at("2026-12-03T07:30:00Z")), Some(day("2026-12-03")));
        // Done today: not again; unfinished today: again.
        assert_eq!(due(None, Some(day("2026-12-03")), Some("done"), at("2026-12-03T09:00:00Z")), None);
        assert_eq!(
            due(None, Some(day("2026-12-03")), Some("running"), at("2026-12-03T09:00:00Z")),
            Some(day("2026-12-03"))
        );
        // Yesterday's run: today's night runs anew. Another zone: its own night.
        assert_eq!(
            due(None, Some(day("2026-12-02")), Some("done"), at("2026-12-03T08:00:00Z")),
            Some(day("2026-12-03"))
        );
        assert_eq!(due(Some("America/Los_Angeles"), None, None, at("2026-12-03T08:00:00Z")), None);
        assert_eq!(due(Some("not/a zone"), None, None, at("2026-12-03T08:00:00Z")), Some(day("2026-12-03")));
    }
}
