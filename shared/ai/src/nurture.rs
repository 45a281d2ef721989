//! The nurture cadence (CATHY): a follow-up every `nurture.min_days` to `nurture.max_days`
//! (3 to 7) days, through `nurture.stages` stages (3) to a final attempt. Any reply or opt-out
//! ends it (a reply asking for a time hands the lead to the closer: [`crate::engine::on_reply`]).
//! It is rows with a due time that the scheduler turns into jobs, never timers in memory; a
//! follow-up still waiting for a person holds the cadence back a day at a time.

use chrono::{DateTime, Duration, Utc};
use nextier_domain::ai::{Role, FOLLOW_UP};
use nextier_domain::ids::{ContactId, NurtureId, TeamId, WorkerId};
use nextier_domain::inbox::Classification;
use nextier_domain::lead_state::LeadState;
use nextier_platform::ports::suggester::Context;
use nextier_store::nurtures::{self, Nurture};
use nextier_store::workers::{self, Worker};
use nextier_store::{contacts, scope, settings, Scope, StoreError, Tx};

use crate::engine::{self, Target};
use crate::suggest::SETTINGS_SCOPE;
use crate::Ai;

/// The cadence's shape from the team's `ai` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub min_days: i64,
    pub max_days: i64,
    pub stages: i32,
}

impl Cadence {
    pub fn from_settings(s: &std::collections::HashMap<String, String>) -> Self {
        let n = |k: &str, d: i64, lo: i64, hi: i64| {
            s.get(k).and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| (lo..=hi).contains(v)).unwrap_or(d)
        };
        let min_days = n("nurture.min_days", 3, 1, 60);
        let max_days = n("nurture.max_days", 7, 1, 60).max(min_days);
        Self { min_days, max_days, stages: n("nurture.stages", 3, 1, 12) as i32 }
    }

    /// The next follow-up: a whole number of days in range (by `roll`), inside the worker's hours.
    pub fn next(&self, w: &Worker, zone: nextier_domain::ai::Tz, now: DateTime<Utc>, roll: f64) -> DateTime<Utc> {
        let days = self.min_days + ((self.max_days - self.min_days) as f64 * roll.clamp(0.0, 1.0)).round() as i64;
        let at = now + Duration::days(days);
        w.hours(zone).next_open(at).unwrap_or(at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The lead or the worker cannot be nurtured (opted out, closed, not a nurture worker).
    #[error("{0}")]
    Refused(String),
}

/// Starts a lead's cadence with a nurture worker (the team's when none is named). A lead
/// already in one keeps it (`false`).
pub async fn start(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    worker: Option<&WorkerId>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Nurture, bool), StartError> {
    workers::ensure_defaults(tx, team).await?;
    let c = contacts::get(tx, contact).await?;
    if matches!(c.lead_state, LeadState::Suppressed | LeadState::Closed) {
        return Err(StartError::Refused(format!("the lead is {}; nobody nurtures them", c.lead_state.as_str())));
    }
    let w = match worker {
        Some(id) => workers::get(tx, id).await.map_err(|e| match e {
            StoreError::NotFound => StartError::Refused("workerId: no such worker".into()),
            e => e.into(),
        })?,
        None => workers::by_role(tx, Role::Nurture)
            .await?
            .ok_or_else(|| StartError::Refused("the team has no active nurture worker".into()))?,
    };
    if w.fields.role != Role::Nurture || !w.fields.active {
        return Err(StartError::Refused(format!("workerId: {} is not an active nurture worker", w.key)));
    }
    let settings = settings::strings_in(tx, SETTINGS_SCOPE).await?;
    let zone = engine::zone(tx).await?;
    let first = Cadence::from_settings(&settings).next(&w, zone, now, rand::random());
    Ok(nurtures::start(tx, team, contact, &w.id, first, actor).await?)
}

/// What a tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    Wrote { suggestion: String, stage: i32, last: bool },
    Waiting(String),
    Ended(String),
    Nothing(String),
}

/// The scheduler's job for a due cadence: write the next follow-up (the model runs outside
/// any transaction), then advance the cadence. The suggestion follows the worker's policy
/// like any other: it waits for a person unless `follow_up` is among its auto-send classes.
pub async fn tick(ai: &Ai, team: &TeamId, id: &NurtureId) -> anyhow::Result<Tick> {
    let now = ai.clock.now();
    let mut conn = ai.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let n = nurtures::lock(&tx, id).await?;
    if n.status != "active" {
        return Ok(Tick::Nothing(format!("the cadence is {}", n.status)));
    }
    if n.next_at.is_none_or(|at| at > now) {
        return Ok(Tick::Nothing("not due".into()));
    }
    let contact = match contacts::get(&tx, &n.contact_id).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => {
            nurtures::end_for_contact(&tx, &n.contact_id, "stopped", "the lead was deleted").await?;
            tx.commit().await?;
            return Ok(Tick::Ended("the lead was deleted".into()));
        }
        Err(e) => return Err(e.into()),
    };
    if matches!(contact.lead_state, LeadState::Suppressed | LeadState::Closed) {
        let reason = format!("the lead is {}", contact.lead_state.as_str());
        nurtures::end_for_contact(&tx, &n.contact_id, "stopped", &reason).await?;
        tx.commit().await?;
        return Ok(Tick::Ended(reason));
    }
    let w = workers::get(&tx, &n.worker_id).await?;
    let zone = engine::zone(&tx).await?;
    let pending = nextier_store::ai::pending_for_nurture(&tx, id).await?;
    if pending {
        let next = w.hours(zone).next_open(now + Duration::days(1)).unwrap_or(now + Duration::days(1));
        nurtures::postpone(&tx, id, next, "a follow-up still waits for a person").await?;
        tx.commit().await?;
        return Ok(Tick::Waiting("a follow-up still waits for a person".into()));
    }
    if !w.fields.active {
        let next = now + Duration::days(1);
        nurtures::postpone(&tx, id, next, &format!("{} is paused", w.fields.name)).await?;
        tx.commit().await?;
        return Ok(Tick::Waiting(format!("{} is paused", w.fields.name)));
    }
    let settings = settings::strings_in(&tx, SETTINGS_SCOPE).await?;
    let cadence = Cadence::from_settings(&settings);
    let stage = n.stage + 1;
    let last = stage >= cadence.stages;
    let ctx = Context {
        first_name: contact.first_name.clone(),
        classification: Classification::Neutral,
        classification_confidence: 100,
        text: String::new(),
        conversation: engine::conversation(&tx, &n.contact_id).await?,
        settings,
        worker: Some(engine::persona(&w)),
        prompt: engine::prompt(&tx, "follow_up", "follow_up").await?,
        follow_up: Some((stage, last)),
        proposals: vec![],
        booking_link: None,
    };
    tx.commit().await?;
    drop(conn);
    let Some(written) = ai.suggester.suggest(&ctx).await? else {
        return Ok(Tick::Nothing("the suggester wrote nothing".into()));
    };
    let next = (!last).then(|| cadence.next(&w, zone, now, rand::random()));
    let target = Target::FollowUp { nurture: id, contact: &n.contact_id, stage, next };
    let Some((s, created)) = engine::store_written(ai, team, &written, target, Some(&w), FOLLOW_UP, true, now).await?
    else {
        return Ok(Tick::Nothing("the cadence ended or moved on while the follow-up was written".into()));
    };
    // A policy that sends it at once: now, not a scheduler run later.
    if created && s.send_after.is_some_and(|at| at <= ai.clock.now()) {
        let due = engine::send_due(ai, team, &s.id).await?;
        tracing::info!(suggestion = %s.id, outcome = ?due, "follow-up due at once");
    }
    Ok(Tick::Wrote { suggestion: s.id.to_string(), stage, last })
}
