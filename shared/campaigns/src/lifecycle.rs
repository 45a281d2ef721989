//! Moving a campaign through its lifecycle, with everything a move implies: the approval
//! rule, staging checks, scheduling enrolments on start, closing them on the end, the state
//! history row and the `CampaignStateChanged` event. The API and the starter both call
//! [`apply`], so a scheduled start obeys exactly the rules a person's start does.

use chrono::{DateTime, Utc};
use nextier_domain::campaign::{approved_edit, may_approve, ApprovedEdit, CampaignStatus, TransitionRefused};
use nextier_domain::ids::{CampaignId, OutboxId, TeamId, UserId};
use nextier_domain::FieldError;
use nextier_store::campaigns::{self, Campaign, Move};
use nextier_store::outbox::{self, Destination};
use nextier_store::{settings, StoreError, Tx};
use serde_json::json;

use crate::{staging, team_rules};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] TransitionRefused),
    #[error("{0}")]
    Forbidden(String),
    #[error("the campaign is not ready")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => LifecycleError::NotFound,
            StoreError::Conflict(m) => LifecycleError::Conflict(m),
            other => LifecycleError::Store(other),
        }
    }
}

/// Who asks for a move.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// As recorded in the history (`usr_…`, `key_…`, `system:scheduler`).
    pub label: &'a str,
    /// The person, when it is one (approval needs a person).
    pub user: Option<&'a UserId>,
    /// ADMIN or OWNER (or, for a key, the `campaigns:manage` scope).
    pub admin: bool,
}

impl Who<'static> {
    pub const SCHEDULER: Who<'static> = Who { label: "system:scheduler", user: None, admin: true };
}

#[derive(Debug, Clone)]
pub struct Moved {
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    /// The staged `CampaignStateChanged` event; publish it after commit.
    pub event: OutboxId,
}

/// Moves the campaign to `to`. Locks the campaign first, so concurrent requests queue and
/// each sees the state the previous one left: of N concurrent approvals exactly one wins and
/// the rest are refused (APPROVED → APPROVED is not a move).
pub async fn apply(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &CampaignId,
    to: CampaignStatus,
    who: Who<'_>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Moved, LifecycleError> {
    let c = campaigns::lock(tx, id).await?;
    c.status.check_move(to)?;
    if to == CampaignStatus::Staged && c.status == CampaignStatus::Draft {
        let problems = staging::problems(tx, &c).await?;
        if !problems.is_empty() {
            return Err(LifecycleError::Invalid(problems));
        }
    }
    if to == CampaignStatus::Approved {
        let Some(user) = who.user else {
            return Err(LifecycleError::Forbidden(
                "approval needs a person (an ADMIN or OWNER), not an API key".into(),
            ));
        };
        let is_author = c.author_user_id.as_ref() == Some(user);
        let allow_self = settings::flag(tx, team_rules::SCOPE, team_rules::ALLOW_SELF_APPROVAL).await?;
        if !may_approve(who.admin, is_author, allow_self) {
            return Err(LifecycleError::Forbidden(if !who.admin {
                "approving a campaign needs ADMIN or OWNER".into()
            } else {
                "the author cannot approve their own campaign; ask another ADMIN or OWNER (or allow self-approval \
                 in the team's campaigns settings)"
                    .into()
            }));
        }
    }
    moved(tx, team, &c, to, who, reason, now).await
}

async fn moved(
    tx: &Tx<'_>,
    team: &TeamId,
    c: &Campaign,
    to: CampaignStatus,
    who: Who<'_>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Moved, LifecycleError> {
    let from = c.status;
    let m = Move { from, to, actor: who.label, reason, approver: who.user };
    if !campaigns::apply_move(tx, team, &c.id, &m).await? {
        // Unreachable while we hold the row lock; kept as the database's word on it.
        return Err(LifecycleError::Conflict(format!("the campaign is no longer {from}")));
    }
    match (from, to) {
        (CampaignStatus::Approved, CampaignStatus::Running) => {
            let steps = campaigns::steps(tx, &c.id).await?;
            let first = steps.first().map(|s| s.delay.after(now)).unwrap_or(now);
            campaigns::schedule_unscheduled(tx, &c.id, first).await?;
        }
        (_, CampaignStatus::Completed) => {
            campaigns::close_enrolments(tx, &c.id, "completed", "campaign completed").await?;
        }
        (_, CampaignStatus::Cancelled) => {
            campaigns::close_enrolments(tx, &c.id, "removed", "campaign cancelled").await?;
        }
        _ => {}
    }
    let event = stage_event(
        tx,
        team,
        "CampaignStateChanged",
        json!({"campaignId": c.id, "from": from, "to": to, "actor": who.label, "reason": reason}),
    )
    .await?;
    Ok(Moved { from, to, event })
}

/// Called after a change to steps or audience, inside the same transaction, with the
/// campaign locked. DRAFT: nothing. STAGED: the change must keep it stageable. APPROVED or
/// PAUSED: it must be stageable and goes back to STAGED for a new approval. RUNNING: refused
/// (pause first). Finished: refused.
pub async fn after_edit(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &CampaignId,
    what: &str,
    who: Who<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Moved>, LifecycleError> {
    let c = campaigns::get(tx, id).await?;
    editable(&c, what)?;
    if c.status == CampaignStatus::Draft {
        return Ok(None);
    }
    let problems = staging::problems(tx, &c).await?;
    if !problems.is_empty() {
        return Err(LifecycleError::Invalid(problems));
    }
    if c.status == CampaignStatus::Staged {
        return Ok(None);
    }
    let reason = format!("{what} changed after approval");
    Ok(Some(moved(tx, team, &c, CampaignStatus::Staged, who, Some(&reason), now).await?))
}

/// Checks, before an edit of steps or enrolments, that the campaign may be edited at all (so
/// nothing is written for a campaign that will refuse it). These always need a pause while
/// RUNNING.
pub fn editable(c: &Campaign, what: &str) -> Result<(), LifecycleError> {
    match approved_edit(c.status, what, false, false) {
        ApprovedEdit::Refused(why) => Err(LifecycleError::Conflict(why)),
        _ => Ok(()),
    }
}

/// Stages a domain event in the caller's transaction.
pub async fn stage_event(
    tx: &Tx<'_>,
    team: &TeamId,
    detail_type: &str,
    data: serde_json::Value,
) -> Result<OutboxId, StoreError> {
    let correlation_id = nextier_runtime::correlation::current().unwrap_or_default().to_string();
    outbox::stage_for_team(tx, team, Destination::Event(detail_type.to_owned()), data, correlation_id).await
}
