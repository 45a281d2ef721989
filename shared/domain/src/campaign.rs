//! The campaign lifecycle (issue 4): DRAFT → STAGED → APPROVED → RUNNING ⇄ PAUSED →
//! COMPLETED, and CANCELLED from any state that is not terminal. Every other move is refused,
//! naming from and to. (The original flipped SCHEDULED/ACTIVE/PAUSED and let its cron start
//! campaigns nobody approved; DOMAIN.md C.3.)

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CampaignStatus {
    Draft,
    Staged,
    Approved,
    Running,
    Paused,
    Completed,
    Cancelled,
}

use CampaignStatus::*;

/// Where a contact stands in a campaign (`campaign_enrolments.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnrolmentStatus {
    /// Still in the sequence.
    Active,
    /// Every step done.
    Completed,
    /// Left by a rule (an opt-out, a meeting, a suppression, a deleted contact).
    Exited,
    /// A step could not be sent and will not be.
    Failed,
    /// Taken out by a person (or merged into another enrolment).
    Removed,
}

impl EnrolmentStatus {
    pub const ALL: [EnrolmentStatus; 5] = [
        EnrolmentStatus::Active,
        EnrolmentStatus::Completed,
        EnrolmentStatus::Exited,
        EnrolmentStatus::Failed,
        EnrolmentStatus::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EnrolmentStatus::Active => "active",
            EnrolmentStatus::Completed => "completed",
            EnrolmentStatus::Exited => "exited",
            EnrolmentStatus::Failed => "failed",
            EnrolmentStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

pub const ALL: [CampaignStatus; 7] = [Draft, Staged, Approved, Running, Paused, Completed, Cancelled];

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Draft => "DRAFT",
            Staged => "STAGED",
            Approved => "APPROVED",
            Running => "RUNNING",
            Paused => "PAUSED",
            Completed => "COMPLETED",
            Cancelled => "CANCELLED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Completed | Cancelled)
    }

    /// Whether a campaign in this state may move to `to`.
    pub fn can_move_to(self, to: CampaignStatus) -> bool {
        if to == Cancelled {
            return !self.is_terminal();
        }
        matches!(
            (self, to),
            (Draft, Staged)
                | (Staged, Draft)       // back to editing
                | (Staged, Approved)
                | (Approved, Staged)    // steps or audience changed after approval
                | (Approved, Running)
                | (Running, Paused)
                | (Paused, Running)
                | (Paused, Staged)      // changed while paused: approve again
                | (Running, Completed)
                | (Paused, Completed)
        )
    }

    /// Checks a move, with the refusal a person can read.
    pub fn check_move(self, to: CampaignStatus) -> Result<(), TransitionRefused> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(TransitionRefused { from: self, to })
        }
    }

    /// Sending is allowed only while running.
    pub fn sends(self) -> bool {
        self == Running
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a campaign cannot move from {from} to {to}")]
pub struct TransitionRefused {
    pub from: CampaignStatus,
    pub to: CampaignStatus,
}

impl FromStr for CampaignStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ALL.iter().copied().find(|st| st.as_str() == s).ok_or(())
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an edit to something an approver signed off (steps, audience, sending rate, exit
/// rules, schedule) does in each state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovedEdit {
    /// Not approved yet (DRAFT, STAGED): edit freely (a STAGED campaign must stay stageable).
    Free,
    /// APPROVED or PAUSED: the edit sends the campaign back to STAGED for a new approval.
    Restage,
    /// RUNNING, changed by an ADMIN or OWNER person: allowed, stays running, audited.
    AuditedOverride,
    /// Refused, with the reason a person can read.
    Refused(String),
}

/// Decides [`ApprovedEdit`]. `admin_person` is an ADMIN or OWNER acting as themself (never an
/// API key); `override_allowed` is false for edits that always need a pause (steps,
/// enrolling contacts).
pub fn approved_edit(status: CampaignStatus, what: &str, admin_person: bool, override_allowed: bool) -> ApprovedEdit {
    match status {
        Draft | Staged => ApprovedEdit::Free,
        Approved | Paused => ApprovedEdit::Restage,
        Running if admin_person && override_allowed => ApprovedEdit::AuditedOverride,
        Running if override_allowed => ApprovedEdit::Refused(format!(
            "pause the campaign before changing its {what} (or have an ADMIN or OWNER make the change)"
        )),
        Running => ApprovedEdit::Refused(format!("pause the campaign before changing its {what}")),
        Completed | Cancelled => ApprovedEdit::Refused(format!("a {status} campaign cannot be changed")),
    }
}

/// Who may approve: ADMIN or OWNER, and someone other than the author unless the team
/// allows self-approval.
pub fn may_approve(approver_is_admin: bool, approver_is_author: bool, team_allows_self_approval: bool) -> bool {
    approver_is_admin && (!approver_is_author || team_allows_self_approval)
}

/// Why a lead-state change ends a contact's enrolments, if it does: an opt-out always; a
/// reply or a booked meeting where the campaign's exit rules say so.
pub fn exit_reason_for(state: crate::lead_state::LeadState) -> Option<&'static str> {
    use crate::lead_state::LeadState as L;
    match state {
        L::Suppressed => Some("opt_out"),
        L::Responded | L::SoftInterest | L::EmailCaptured | L::HighIntent => Some("reply"),
        L::AppointmentBooked => Some("meeting_booked"),
        _ => None,
    }
}

/// A step's delay after the previous step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "unit", content = "amount", rename_all = "snake_case")]
pub enum Delay {
    Minutes(u32),
    Hours(u32),
    Days(u32),
    /// Counts Monday-Friday only; a weekend start moves to the next business day first.
    BusinessDays(u32),
}

impl Delay {
    /// When a step delayed by `self` after `from` becomes due (UTC; the outbound gate later
    /// holds it for the recipient's quiet hours).
    pub fn after(self, from: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Delay::Minutes(n) => from + Duration::minutes(i64::from(n)),
            Delay::Hours(n) => from + Duration::hours(i64::from(n)),
            Delay::Days(n) => from + Duration::days(i64::from(n)),
            Delay::BusinessDays(n) => {
                let mut t = from;
                while is_weekend(t) {
                    t += Duration::days(1);
                }
                let mut left = n;
                while left > 0 {
                    t += Duration::days(1);
                    if !is_weekend(t) {
                        left -= 1;
                    }
                }
                t
            }
        }
    }
}

fn is_weekend(t: DateTime<Utc>) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn approved_settings_change_restages_and_running_needs_an_admin_person() {
        assert_eq!(approved_edit(Draft, "x", false, true), ApprovedEdit::Free);
        assert_eq!(approved_edit(Staged, "x", false, true), ApprovedEdit::Free);
        assert_eq!(approved_edit(Approved, "x", true, true), ApprovedEdit::Restage);
        assert_eq!(approved_edit(Paused, "x", false, true), ApprovedEdit::Restage);
        assert_eq!(approved_edit(Running, "x", true, true), ApprovedEdit::AuditedOverride);
        assert!(matches!(approved_edit(Running, "x", false, true), ApprovedEdit::Refused(_)));
        assert!(matches!(approved_edit(Running, "steps", true, false), ApprovedEdit::Refused(_)));
        assert!(matches!(approved_edit(Completed, "x", true, true), ApprovedEdit::Refused(_)));
    }

    /// The whole table, every pair: exactly these moves are allowed.
    #[test]
    fn the_transition_table_allows_exactly_the_documented_moves() {
        let allowed: &[(CampaignStatus, CampaignStatus)] = &[
            (Draft, Staged),
            (Staged, Draft),
            (Staged, Approved),
            (Approved, Staged),
            (Approved, Running),
            (Running, Paused),
            (Paused, Running),
            (Paused, Staged),
            (Running, Completed),
            (Paused, Completed),
            (Draft, Cancelled),
            (Staged, Cancelled),
            (Approved, Cancelled),
            (Running, Cancelled),
            (Paused, Cancelled),
        ];
        for from in ALL {
            for to in ALL {
                let expect = allowed.contains(&(from, to));
                assert_eq!(from.can_move_to(to), expect, "{from} -> {to}");
                if !expect {
                    assert_eq!(
                        from.check_move(to).unwrap_err().to_string(),
                        format!("a campaign cannot move from {from} to {to}")
                    );
                }
            }
        }
    }

    #[test]
    fn nothing_unapproved_can_run_and_terminal_states_stay() {
        for from in [Draft, Staged] {
            assert!(!from.can_move_to(Running), "{from} must be approved first");
        }
        for t in [Completed, Cancelled] {
            assert!(ALL.iter().all(|to| !t.can_move_to(*to)));
        }
        assert!(Running.sends() && !Paused.sends() && !Approved.sends());
    }

    #[test]
    fn approval_needs_an_admin_who_is_not_the_author_unless_allowed() {
        assert!(may_approve(true, false, false));
        assert!(!may_approve(true, true, false));
        assert!(may_approve(true, true, true));
        assert!(!may_approve(false, false, true));
    }

    #[test]
    fn delays_add_up_and_business_days_skip_weekends() {
        let fri = Utc.with_ymd_and_hms(2026, 11, 27, 15, 0, 0).unwrap(); // a Friday
        assert_eq!(Delay::Minutes(90).after(fri), fri + Duration::minutes(90));
        assert_eq!(Delay::Hours(2).after(fri), fri + Duration::hours(2));
        assert_eq!(Delay::Days(2).after(fri).weekday(), Weekday::Sun);
        let b1 = Delay::BusinessDays(1).after(fri);
        assert_eq!((b1.weekday(), b1.hour_min()), (Weekday::Mon, (15, 0)));
        assert_eq!(Delay::BusinessDays(5).after(fri).weekday(), Weekday::Fri);
        let sat = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        assert_eq!(Delay::BusinessDays(1).after(sat).weekday(), Weekday::Tue, "a weekend start counts from Monday");
        assert_eq!(Delay::BusinessDays(0).after(sat).weekday(), Weekday::Mon);
    }

    trait HourMin {
        fn hour_min(&self) -> (u32, u32);
    }

    impl HourMin for DateTime<Utc> {
        fn hour_min(&self) -> (u32, u32) {
            use chrono::Timelike;
            (self.hour(), self.minute())
        }
    }
}
