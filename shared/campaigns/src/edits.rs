//! Changing a campaign's settings after approval. The sending rate, the exit rules, the
//! schedule and the auto-enrol audience are part of what an approver signed off: changing
//! them on an APPROVED or PAUSED campaign sends it back to STAGED (through the lifecycle, so
//! the move is in the state history); on a RUNNING one only an ADMIN or OWNER person may
//! change them, and the change is audited. Name and description are free at any time.

use chrono::{DateTime, Utc};
use nextier_domain::campaign::{approved_edit, ApprovedEdit};
use nextier_domain::ids::TeamId;
use nextier_store::campaign_changes::{self, NewChange};
use nextier_store::campaigns::{self, Campaign, Settings};
use nextier_store::Tx;
use serde_json::{json, Map, Value};

use crate::lifecycle::{self, stage_event, LifecycleError, Moved, Who};

/// The approval-relevant fields that differ, each as `{"from": …, "to": …}`.
pub fn approved_changes(before: &Campaign, after: &Settings) -> Map<String, Value> {
    let mut changes = Map::new();
    let mut diff = |field: &str, from: Value, to: Value| {
        if from != to {
            changes.insert(field.to_owned(), json!({"from": from, "to": to}));
        }
    };
    diff("startsAt", json!(before.starts_at), json!(after.starts_at));
    diff("endsAt", json!(before.ends_at), json!(after.ends_at));
    diff("sendsPerMinute", json!(before.sends_per_minute), json!(after.sends_per_minute));
    diff("exitOnReply", json!(before.exit_on_reply), json!(after.exit_on_reply));
    diff("exitOnMeeting", json!(before.exit_on_meeting), json!(after.exit_on_meeting));
    diff("autoEnrol", json!(before.auto_enrol), json!(after.auto_enrol));
    changes
}

/// What an accepted change did, for the caller to publish after commit.
#[derive(Debug, Default)]
pub struct Changed {
    pub events: Vec<nextier_domain::ids::OutboxId>,
    pub restaged: bool,
}

/// Writes `s` over the locked campaign `current`. `admin_person` is an ADMIN or OWNER
/// acting as themself (an API key never is).
pub async fn change_settings(
    tx: &Tx<'_>,
    team: &TeamId,
    current: &Campaign,
    s: &Settings,
    who: Who<'_>,
    admin_person: bool,
    now: DateTime<Utc>,
) -> Result<Changed, LifecycleError> {
    let changes = approved_changes(current, s);
    if changes.is_empty() {
        if current.status.is_terminal() {
            return Err(LifecycleError::Conflict(format!("a {} campaign cannot be changed", current.status)));
        }
        campaigns::update(tx, &current.id, s).await?;
        return Ok(Changed::default());
    }
    let what = changes.keys().cloned().collect::<Vec<_>>().join(", ");
    let decision = approved_edit(current.status, &what, admin_person, true);
    if let ApprovedEdit::Refused(why) = decision {
        return Err(LifecycleError::Conflict(why));
    }
    campaigns::update(tx, &current.id, s).await?;
    let moved: Option<Moved> = match decision {
        ApprovedEdit::AuditedOverride => None,
        _ => lifecycle::after_edit(tx, team, &current.id, &what, who, now).await?,
    };
    let mut out = Changed { restaged: moved.is_some(), events: moved.into_iter().map(|m| m.event).collect() };
    if decision != ApprovedEdit::Free {
        let changes = Value::Object(changes);
        let audit = NewChange {
            campaign: &current.id,
            actor: who.label,
            status: current.status,
            changes: &changes,
            restaged: out.restaged,
        };
        campaign_changes::record(tx, team, &audit).await?;
        let data = json!({"campaignId": current.id, "status": current.status, "changes": changes,
                          "restaged": out.restaged, "actor": who.label});
        out.events.push(stage_event(tx, team, "CampaignSettingsChanged", data).await?);
    }
    Ok(out)
}
