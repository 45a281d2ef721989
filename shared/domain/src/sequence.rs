//! What a campaign step does when its turn comes, decided from facts alone (no I/O): the
//! sequence consumer gathers the facts (the enrolment as locked, the campaign, the contact)
//! and acts on the decision. Two stages, because the contact is read only for enrolments
//! that may still send.

use crate::campaign::CampaignStatus;
use crate::lead_state::LeadState;

/// The enrolment as locked, against the job that asked for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolmentFacts {
    /// The enrolment is still `active`.
    pub active: bool,
    /// It is still in the job's campaign, at the job's step.
    pub at_the_jobs_step: bool,
    /// An earlier job of the same batch already asked for this step (a redelivery).
    pub repeated: bool,
    pub campaign: CampaignStatus,
    /// The campaign still has the step (steps can be removed while it runs).
    pub step_exists: bool,
}

/// What the enrolment alone decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentDecision {
    /// Moved on, ended or repeated since the job was queued: nothing to do.
    Stale,
    /// The campaign is not running (paused, say): let go of the claim, keep the place.
    Release,
    /// The step is gone: the sequence is over.
    Complete,
    /// It may send; read the contact.
    ReadContact,
}

pub fn decide_enrolment(f: &EnrolmentFacts) -> EnrolmentDecision {
    if !f.active || !f.at_the_jobs_step || f.repeated {
        EnrolmentDecision::Stale
    } else if f.campaign != CampaignStatus::Running {
        EnrolmentDecision::Release
    } else if !f.step_exists {
        EnrolmentDecision::Complete
    } else {
        EnrolmentDecision::ReadContact
    }
}

/// What the contact decides, for an enrolment that may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactDecision {
    /// End the enrolment (`exited`) for this reason; the step is skipped.
    Exit(&'static str),
    /// Render the step and put it to the gate.
    Send,
}

/// `contact`: the contact's lead state, or `None` when the contact was deleted.
/// `exit_on_meeting`: the campaign ends a person's sequence once a meeting is booked.
pub fn decide_contact(contact: Option<LeadState>, exit_on_meeting: bool) -> ContactDecision {
    match contact {
        None => ContactDecision::Exit("contact_deleted"),
        Some(LeadState::Suppressed) => ContactDecision::Exit("opt_out"),
        Some(LeadState::AppointmentBooked) if exit_on_meeting => ContactDecision::Exit("meeting_booked"),
        Some(_) => ContactDecision::Send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> EnrolmentFacts {
        EnrolmentFacts {
            active: true,
            at_the_jobs_step: true,
            repeated: false,
            campaign: CampaignStatus::Running,
            step_exists: true,
        }
    }

    #[test]
    fn a_live_enrolment_at_its_step_of_a_running_campaign_reads_its_contact() {
        assert_eq!(decide_enrolment(&facts()), EnrolmentDecision::ReadContact);
    }

    #[test]
    fn an_enrolment_that_moved_on_ended_or_was_asked_twice_is_stale() {
        for f in [
            EnrolmentFacts { active: false, ..facts() },
            EnrolmentFacts { at_the_jobs_step: false, ..facts() },
            EnrolmentFacts { repeated: true, ..facts() },
            // Stale wins over everything else: a paused campaign does not release a stale job.
            EnrolmentFacts { active: false, campaign: CampaignStatus::Paused, ..facts() },
        ] {
            assert_eq!(decide_enrolment(&f), EnrolmentDecision::Stale, "{f:?}");
        }
    }

    #[test]
    fn a_campaign_that_is_not_running_releases_before_a_missing_step_completes() {
        for status in [CampaignStatus::Paused, CampaignStatus::Completed, CampaignStatus::Draft] {
            let f = EnrolmentFacts { campaign: status, step_exists: false, ..facts() };
            assert_eq!(decide_enrolment(&f), EnrolmentDecision::Release, "{status:?}");
        }
        assert_eq!(decide_enrolment(&EnrolmentFacts { step_exists: false, ..facts() }), EnrolmentDecision::Complete);
    }

    #[test]
    fn a_deleted_or_opted_out_contact_ends_the_sequence_and_a_meeting_only_when_the_campaign_says() {
        assert_eq!(decide_contact(None, false), ContactDecision::Exit("contact_deleted"));
        assert_eq!(decide_contact(Some(LeadState::Suppressed), false), ContactDecision::Exit("opt_out"));
        assert_eq!(decide_contact(Some(LeadState::AppointmentBooked), true), ContactDecision::Exit("meeting_booked"));
        assert_eq!(decide_contact(Some(LeadState::AppointmentBooked), false), ContactDecision::Send);
        for s in [LeadState::New, LeadState::Responded, LeadState::Closed, LeadState::HighIntent] {
            assert_eq!(decide_contact(Some(s), true), ContactDecision::Send, "{s:?}");
        }
    }
}
