//! The call queue's rules (DOMAIN.md C.6): who may be pushed, at what priority, and what a
//! call's outcome does to the entry.
//!
//! Team settings in scope `calls` (a value of `off` skips that rule):
//! `gold_priority` (default 100), `green_priority` (75), `priority_threshold` (score, 50),
//! `max_attempts` (3), `retry_minutes` (60).

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallConfig {
    pub gold_priority: Option<i32>,
    pub green_priority: Option<i32>,
    pub priority_threshold: Option<i32>,
    pub max_attempts: i32,
    pub retry_minutes: i64,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self::from_settings(&HashMap::new())
    }
}

impl CallConfig {
    pub fn from_settings(s: &HashMap<String, String>) -> Self {
        let opt = |k: &str, d: i32, max: i32| match s.get(k).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "off" || v == "null" => None,
            Some(v) => Some(v.parse::<i32>().map(|n| n.clamp(0, max)).unwrap_or(d)),
            None => Some(d),
        };
        Self {
            gold_priority: opt("gold_priority", 100, 1000),
            green_priority: opt("green_priority", 75, 1000),
            priority_threshold: opt("priority_threshold", 50, 100),
            max_attempts: opt("max_attempts", 3, 20).unwrap_or(3).max(1),
            retry_minutes: i64::from(opt("retry_minutes", 60, 10_080).unwrap_or(60).max(1)),
        }
    }
}

/// What the queue knows of a contact when deciding.
#[derive(Debug, Clone, Default)]
pub struct Candidate<'a> {
    /// Tags and reply labels together.
    pub labels: &'a [String],
    pub score: i32,
    pub opted_out: bool,
    pub do_not_contact: bool,
    /// A callable number (E.164), if any.
    pub phone: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "eligible")]
pub enum Eligibility {
    #[serde(rename = "true")]
    Eligible { priority: i32, reason: &'static str },
    #[serde(rename = "false")]
    NotEligible { reason: &'static str },
}

fn has(labels: &[String], any: &[&str]) -> bool {
    labels.iter().any(|l| any.contains(&l.as_str()))
}

/// C.6, in order: opted out or do-not-contact, no number, gold label or verified, wants a
/// call, a green tag, the score threshold; otherwise no qualifying signal.
pub fn evaluate(c: &Candidate<'_>, cfg: &CallConfig) -> Eligibility {
    use Eligibility::*;
    if c.opted_out || c.do_not_contact {
        return NotEligible { reason: "opted_out" };
    }
    if c.phone.is_none() {
        return NotEligible { reason: "no_mobile" };
    }
    if let Some(p) = cfg.gold_priority {
        if has(c.labels, &["gold_label", "contact_verified"]) {
            return Eligible { priority: p, reason: "gold_label" };
        }
        if has(c.labels, &["wants_call"]) {
            return Eligible { priority: p, reason: "wants_call" };
        }
    }
    if let Some(p) = cfg.green_priority {
        if has(c.labels, &["high_intent", "responded", "needs_follow_up", "interested"]) {
            return Eligible { priority: p, reason: "green_tag" };
        }
        if cfg.priority_threshold.is_some_and(|t| c.score >= t) {
            return Eligible { priority: p, reason: "score_threshold" };
        }
    }
    NotEligible { reason: "no_qualifying_signal" }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Connected,
    NoAnswer,
    Busy,
    Voicemail,
    WrongNumber,
    NotInterested,
    Callback,
    AppointmentBooked,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Self::Connected,
        Self::NoAnswer,
        Self::Busy,
        Self::Voicemail,
        Self::WrongNumber,
        Self::NotInterested,
        Self::Callback,
        Self::AppointmentBooked,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::Voicemail => "voicemail",
            Self::WrongNumber => "wrong_number",
            Self::NotInterested => "not_interested",
            Self::Callback => "callback",
            Self::AppointmentBooked => "appointment_booked",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Worth another attempt later (while attempts remain).
    pub fn retry(self) -> bool {
        matches!(self, Self::NoAnswer | Self::Busy | Self::Voicemail | Self::Failed | Self::Callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ls: &[&str]) -> Vec<String> {
        ls.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn the_rules_apply_in_order() {
        let cfg = CallConfig::default();
        let phone = Some("+13126181234");
        let gold = labels(&["gold_label", "responded"]);
        let c = Candidate { labels: &gold, score: 10, phone, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::Eligible { priority: 100, reason: "gold_label" });
        let c = Candidate { labels: &gold, score: 10, phone, opted_out: true, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::NotEligible { reason: "opted_out" });
        let c = Candidate { labels: &gold, phone: None, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::NotEligible { reason: "no_mobile" });
        let green = labels(&["responded"]);
        let c = Candidate { labels: &green, phone, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::Eligible { priority: 75, reason: "green_tag" });
        let none = labels(&[]);
        let c = Candidate { labels: &none, score: 50, phone, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::Eligible { priority: 75, reason: "score_threshold" });
        let c = Candidate { labels: &none, score: 49, phone, ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::NotEligible { reason: "no_qualifying_signal" });
    }

    #[test]
    fn the_team_tunes_or_switches_off_rules() {
        let s: HashMap<String, String> =
            [("gold_priority", "off"), ("green_priority", "60"), ("priority_threshold", "80"), ("max_attempts", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let cfg = CallConfig::from_settings(&s);
        assert_eq!(
            (cfg.gold_priority, cfg.green_priority, cfg.priority_threshold, cfg.max_attempts),
            (None, Some(60), Some(80), 3)
        );
        let gold = labels(&["gold_label"]);
        let c = Candidate { labels: &gold, score: 85, phone: Some("+13126181234"), ..Default::default() };
        assert_eq!(evaluate(&c, &cfg), Eligibility::Eligible { priority: 60, reason: "score_threshold" });
        assert!(Outcome::NoAnswer.retry() && !Outcome::AppointmentBooked.retry());
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}
