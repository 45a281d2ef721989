//! Working a reply (DOMAIN.md C.5): from a [`Reading`] and the team's configuration to the
//! inbox's classification, labels, score, priority and bucket.
//!
//! The team tunes this with settings in scope `inbox` (all optional):
//! - `label.<class>`: comma-separated labels for a class, replacing the defaults
//!   (classes: positive, question, neutral, negative, wrong_number, profanity, dnc_request,
//!   help, opt_in);
//! - `score.<class>`: the score delta for a class (added to 50 for the item's priority score
//!   and to the contact's lead score), replacing the default;
//! - `score.email_captured`, `score.mobile_captured`: extra points for a reply that gives an
//!   email address or another mobile number;
//! - `review_below`: items whose confidence is below this need a person's review (default 80);
//! - `help_text`, `opt_out_text`, `opt_in_text`: the team's answers to HELP, to an opt-out
//!   (the one confirmation) and to START.

use std::collections::HashMap;

use serde::Serialize;

use crate::reply::{Intent, Reading};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Classification {
    Positive,
    Question,
    Neutral,
    Negative,
    WrongNumber,
    Profanity,
    DncRequest,
    Help,
    OptIn,
}

impl Classification {
    pub const ALL: [Classification; 9] = [
        Self::Positive,
        Self::Question,
        Self::Neutral,
        Self::Negative,
        Self::WrongNumber,
        Self::Profanity,
        Self::DncRequest,
        Self::Help,
        Self::OptIn,
    ];

    pub fn of(intent: Intent) -> Self {
        match intent {
            Intent::OptOut => Self::DncRequest,
            Intent::Help => Self::Help,
            Intent::OptIn => Self::OptIn,
            Intent::WrongNumber => Self::WrongNumber,
            Intent::Profanity => Self::Profanity,
            Intent::Positive => Self::Positive,
            Intent::Negative => Self::Negative,
            Intent::Question => Self::Question,
            Intent::Neutral => Self::Neutral,
        }
    }

    /// The stored form (`POSITIVE`, `DNC_REQUEST`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "POSITIVE",
            Self::Question => "QUESTION",
            Self::Neutral => "NEUTRAL",
            Self::Negative => "NEGATIVE",
            Self::WrongNumber => "WRONG_NUMBER",
            Self::Profanity => "PROFANITY",
            Self::DncRequest => "DNC_REQUEST",
            Self::Help => "HELP",
            Self::OptIn => "OPT_IN",
        }
    }

    /// The settings key part (`positive`, `dnc_request`, ...).
    pub fn key(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    fn default_labels(self) -> &'static [&'static str] {
        match self {
            Self::Positive => &["interested", "responded"],
            Self::Question => &["question", "responded"],
            Self::Neutral => &["responded"],
            Self::Negative => &["not_interested", "responded"],
            Self::WrongNumber => &["wrong_number"],
            Self::Profanity => &["profanity"],
            Self::DncRequest => &["opted_out"],
            Self::Help => &["help_requested"],
            Self::OptIn => &["opted_in"],
        }
    }

    fn default_delta(self) -> i32 {
        match self {
            Self::Positive => 30,
            Self::Question => 20,
            Self::Neutral => 0,
            Self::Negative => -20,
            Self::WrongNumber => -40,
            Self::Profanity => -30,
            Self::DncRequest => -50,
            Self::Help => 0,
            Self::OptIn => 10,
        }
    }

    /// Where the item lands.
    pub fn bucket(self) -> Bucket {
        match self {
            Self::Positive | Self::Question => Bucket::PositiveResponses,
            Self::Neutral | Self::Help | Self::OptIn => Bucket::NeutralReview,
            Self::Negative => Bucket::UniversalInbox,
            Self::WrongNumber => Bucket::WrongNumber,
            Self::Profanity => Bucket::ProfanityReview,
            Self::DncRequest => Bucket::LegalDnc,
        }
    }

    /// Handled by the system (suppression and confirmation, the help text): nothing for a
    /// person to do, so the item is created processed.
    pub fn handled_automatically(self) -> bool {
        matches!(self, Self::DncRequest | Self::Help | Self::OptIn)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Bucket {
    UniversalInbox,
    PositiveResponses,
    NeutralReview,
    WrongNumber,
    ProfanityReview,
    Blacklist,
    LegalDnc,
    FollowUp,
}

impl Bucket {
    pub const ALL: [Bucket; 8] = [
        Self::UniversalInbox,
        Self::PositiveResponses,
        Self::NeutralReview,
        Self::WrongNumber,
        Self::ProfanityReview,
        Self::Blacklist,
        Self::LegalDnc,
        Self::FollowUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UniversalInbox => "UNIVERSAL_INBOX",
            Self::PositiveResponses => "POSITIVE_RESPONSES",
            Self::NeutralReview => "NEUTRAL_REVIEW",
            Self::WrongNumber => "WRONG_NUMBER",
            Self::ProfanityReview => "PROFANITY_REVIEW",
            Self::Blacklist => "BLACKLIST",
            Self::LegalDnc => "LEGAL_DNC",
            Self::FollowUp => "FOLLOW_UP",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// Moving an item here suppresses the contact's number, as this kind.
    pub fn suppresses(self) -> Option<&'static str> {
        match self {
            Self::Blacklist => Some("BLACKLIST"),
            Self::LegalDnc => Some("LEGAL_DNC"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Cold,
    Warm,
    Hot,
    Urgent,
}

impl Priority {
    /// Bands: 85 and over URGENT, 70 HOT, 40 WARM, else COLD.
    pub fn from_score(score: i32) -> Self {
        match score {
            s if s >= 85 => Self::Urgent,
            s if s >= 70 => Self::Hot,
            s if s >= 40 => Self::Warm,
            _ => Self::Cold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "URGENT",
            Self::Hot => "HOT",
            Self::Warm => "WARM",
            Self::Cold => "COLD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Urgent, Self::Hot, Self::Warm, Self::Cold].into_iter().find(|p| p.as_str() == s)
    }
}

pub const DEFAULT_HELP_TEXT: &str =
    "For help, reply to this message and a person will get back to you. Msg & data rates may apply. Reply STOP to opt out.";
pub const DEFAULT_OPT_OUT_TEXT: &str =
    "You are unsubscribed and will receive no more messages from us. Reply START to resubscribe.";
pub const DEFAULT_OPT_IN_TEXT: &str = "You are subscribed again. Reply HELP for help, STOP to opt out.";
const DEFAULT_REVIEW_BELOW: i32 = 80;
const DEFAULT_EMAIL_BONUS: i32 = 25;
const DEFAULT_MOBILE_BONUS: i32 = 15;

/// The team's inbox configuration (scope `inbox`), with the defaults filled in.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    labels: HashMap<Classification, Vec<String>>,
    deltas: HashMap<Classification, i32>,
    email_bonus: i32,
    mobile_bonus: i32,
    review_below: i32,
    pub help_text: String,
    pub opt_out_text: String,
    pub opt_in_text: String,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self::from_settings(&HashMap::new())
    }
}

impl InboxConfig {
    /// From the team's `inbox` settings (name → value). A value that does not parse is
    /// ignored in favour of the default.
    pub fn from_settings(s: &HashMap<String, String>) -> Self {
        let num = |k: &str, d: i32| {
            s.get(k).and_then(|v| v.trim().parse::<i32>().ok()).map(|v| v.clamp(-100, 100)).unwrap_or(d)
        };
        let text = |k: &str, d: &str| s.get(k).map(|v| v.trim()).filter(|v| !v.is_empty()).unwrap_or(d).to_owned();
        let mut labels = HashMap::new();
        let mut deltas = HashMap::new();
        for c in Classification::ALL {
            let ls = match s.get(&format!("label.{}", c.key())) {
                Some(v) => v.split(',').map(|l| l.trim().to_ascii_lowercase()).filter(|l| !l.is_empty()).collect(),
                None => c.default_labels().iter().map(|l| (*l).to_owned()).collect(),
            };
            labels.insert(c, ls);
            deltas.insert(c, num(&format!("score.{}", c.key()), c.default_delta()));
        }
        Self {
            labels,
            deltas,
            email_bonus: num("score.email_captured", DEFAULT_EMAIL_BONUS),
            mobile_bonus: num("score.mobile_captured", DEFAULT_MOBILE_BONUS),
            review_below: num("review_below", DEFAULT_REVIEW_BELOW),
            help_text: text("help_text", DEFAULT_HELP_TEXT),
            opt_out_text: text("opt_out_text", DEFAULT_OPT_OUT_TEXT),
            opt_in_text: text("opt_in_text", DEFAULT_OPT_IN_TEXT),
        }
    }

    /// Assesses a reading.
    pub fn assess(&self, r: &Reading) -> Assessment {
        let classification = Classification::of(r.intent);
        let mut labels = self.labels.get(&classification).cloned().unwrap_or_default();
        let mut delta = self.deltas.get(&classification).copied().unwrap_or(0);
        let capturing = !matches!(classification, Classification::DncRequest | Classification::WrongNumber);
        if capturing && r.email.is_some() {
            delta += self.email_bonus;
            labels.extend(["email_captured".to_owned(), "gold_label".to_owned()]);
        }
        if capturing && r.phone.is_some() {
            delta += self.mobile_bonus;
            labels.push("mobile_captured".to_owned());
        }
        labels.dedup();
        let score = (50 + delta).clamp(0, 100);
        let confidence = i32::from(r.confidence);
        Assessment {
            classification,
            confidence,
            labels,
            score_delta: delta,
            score,
            priority: Priority::from_score(score),
            bucket: classification.bucket(),
            requires_review: !classification.handled_automatically() && confidence < self.review_below,
            opt_out: classification == Classification::DncRequest,
        }
    }
}

/// What a reply is, for the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub classification: Classification,
    pub confidence: i32,
    pub labels: Vec<String>,
    /// Added to the contact's lead score.
    pub score_delta: i32,
    /// The item's priority score, 0-100.
    pub score: i32,
    pub priority: Priority,
    pub bucket: Bucket,
    pub requires_review: bool,
    pub opt_out: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::read;

    fn settings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_band_the_classes() {
        let c = InboxConfig::default();
        let a = c.assess(&read("Yes I am interested", false));
        assert_eq!(
            (a.classification, a.score, a.priority, a.bucket),
            (Classification::Positive, 80, Priority::Hot, Bucket::PositiveResponses)
        );
        assert!(a.labels.contains(&"interested".to_owned()));
        let a = c.assess(&read("Sure, email me at ana@example.com", false));
        assert_eq!((a.score, a.priority), (100, Priority::Urgent));
        assert!(a.labels.contains(&"gold_label".to_owned()) && a.labels.contains(&"email_captured".to_owned()));
        let a = c.assess(&read("STOP", false));
        assert!(a.opt_out);
        assert_eq!(
            (a.classification, a.bucket, a.priority, a.requires_review),
            (Classification::DncRequest, Bucket::LegalDnc, Priority::Cold, false)
        );
        let a = c.assess(&read("ok see you at the weekend", false));
        assert!(!a.opt_out);
        assert_eq!((a.classification, a.priority, a.requires_review), (Classification::Neutral, Priority::Warm, true));
        let a = c.assess(&read("wrong number", false));
        assert_eq!((a.bucket, a.priority), (Bucket::WrongNumber, Priority::Cold));
    }

    #[test]
    fn the_team_configures_labels_scores_and_review() {
        let c = InboxConfig::from_settings(&settings(&[
            ("label.positive", "Hot Lead, call_today"),
            ("score.positive", "45"),
            ("score.neutral", "banana"),
            ("review_below", "50"),
            ("help_text", "  Acme Realty: call 212-555-0100  "),
        ]));
        let a = c.assess(&read("yes", false));
        assert_eq!(a.labels, vec!["hot lead".to_owned(), "call_today".to_owned()]);
        assert_eq!((a.score, a.priority), (95, Priority::Urgent));
        let n = c.assess(&read("ok", false));
        assert_eq!(n.score, 50, "an unparsable delta falls back to the default");
        assert!(!n.requires_review, "60% confidence is above this team's review threshold");
        assert_eq!(c.help_text, "Acme Realty: call 212-555-0100");
        assert_eq!(c.opt_out_text, DEFAULT_OPT_OUT_TEXT);
    }

    #[test]
    fn wording_round_trips() {
        for b in Bucket::ALL {
            assert_eq!(Bucket::parse(b.as_str()), Some(b));
        }
        assert_eq!(Bucket::LegalDnc.suppresses(), Some("LEGAL_DNC"));
        assert_eq!(Bucket::FollowUp.suppresses(), None);
        for p in [Priority::Urgent, Priority::Hot, Priority::Warm, Priority::Cold] {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
        }
        assert_eq!(Priority::from_score(84), Priority::Hot);
        assert_eq!(Priority::from_score(39), Priority::Cold);
    }
}
