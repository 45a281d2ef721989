//! The canonical lead state (DOMAIN.md C.2) and the transitions allowed between states.
//! `closed` and `suppressed` are terminal: a suppressed person is never worked again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeadState {
    New,
    Touched,
    Retargeting,
    Responded,
    SoftInterest,
    EmailCaptured,
    ContentNurture,
    HighIntent,
    AppointmentBooked,
    InCallQueue,
    Closed,
    Suppressed,
}

use LeadState::*;

pub const ALL: [LeadState; 12] = [
    New,
    Touched,
    Retargeting,
    Responded,
    SoftInterest,
    EmailCaptured,
    ContentNurture,
    HighIntent,
    AppointmentBooked,
    InCallQueue,
    Closed,
    Suppressed,
];

impl LeadState {
    pub fn as_str(self) -> &'static str {
        match self {
            New => "new",
            Touched => "touched",
            Retargeting => "retargeting",
            Responded => "responded",
            SoftInterest => "soft_interest",
            EmailCaptured => "email_captured",
            ContentNurture => "content_nurture",
            HighIntent => "high_intent",
            AppointmentBooked => "appointment_booked",
            InCallQueue => "in_call_queue",
            Closed => "closed",
            Suppressed => "suppressed",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Closed | Suppressed)
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [LeadState] {
        match self {
            New => &[Touched, Responded, InCallQueue, Closed, Suppressed],
            Touched => &[Retargeting, Responded, ContentNurture, InCallQueue, Closed, Suppressed],
            Retargeting => &[Responded, ContentNurture, InCallQueue, Closed, Suppressed],
            Responded => &[SoftInterest, EmailCaptured, HighIntent, ContentNurture, InCallQueue, Closed, Suppressed],
            SoftInterest => &[EmailCaptured, HighIntent, ContentNurture, InCallQueue, Closed, Suppressed],
            EmailCaptured => &[HighIntent, ContentNurture, InCallQueue, AppointmentBooked, Closed, Suppressed],
            ContentNurture => &[Responded, SoftInterest, HighIntent, InCallQueue, Closed, Suppressed],
            HighIntent => &[AppointmentBooked, InCallQueue, Closed, Suppressed],
            InCallQueue => &[AppointmentBooked, HighIntent, ContentNurture, Closed, Suppressed],
            AppointmentBooked => &[Closed, InCallQueue, Suppressed],
            Closed | Suppressed => &[],
        }
    }

    pub fn can_move_to(self, to: LeadState) -> bool {
        self.next().contains(&to)
    }
}

impl FromStr for LeadState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ALL.iter().copied().find(|st| st.as_str() == s).ok_or(())
    }
}

impl fmt::Display for LeadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_lead_nowhere_and_every_other_state_can_be_suppressed() {
        for s in ALL {
            if s.is_terminal() {
                assert!(s.next().is_empty(), "{s}");
            } else {
                assert!(s.can_move_to(Suppressed), "{s} must be suppressible");
                assert!(!s.can_move_to(s), "{s} -> itself is not a transition");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(s.as_str().parse::<LeadState>(), Ok(s));
        }
        assert!("SUPPRESSED".parse::<LeadState>().is_err());
    }

    #[test]
    fn a_new_lead_cannot_jump_to_booked() {
        assert!(!New.can_move_to(AppointmentBooked));
        assert!(HighIntent.can_move_to(AppointmentBooked));
    }
}
