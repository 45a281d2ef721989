//! Enrichment rules (issue 15): when a traced and graded contact is ready to text, when it is
//! rejected and why, what each provider's call costs, and the normalised input a cached answer
//! is found by. Pure: the pipeline (`nextier-enrichment`) does the calls.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::Digest;

crate::text_enum! {
    /// Where a contact stands in enrichment (`contacts.enrichment_status`).
    pub enum Status {
        /// Not yet enriched.
        Raw = "raw",
        /// A skip trace ran (numbers and emails may have been added).
        Traced = "traced",
        /// Its numbers were graded, but the rules neither accept nor reject it (a person decides).
        Graded = "graded",
        /// A mobile number good enough to text.
        Ready = "ready",
        /// Not worth texting; `enrichmentReason` says why.
        Rejected = "rejected",
    }
}

crate::text_enum! {
    /// The providers enrichment calls, by the name their caps, costs and cache use.
    pub enum Provider {
        /// Skip trace, queue-based (submit, then poll).
        Tracerfy = "tracerfy",
        /// Skip trace, RealEstateAPI's single `/SkipTrace`.
        RealEstateApi = "realestateapi",
        /// Phone intelligence (line type, carrier, activity, grade).
        Trestle = "trestle",
        /// Organisation enrich and people search.
        Apollo = "apollo",
        /// The local runtime's stand-in.
        Sandbox = "sandbox",
    }
}

impl Provider {
    /// Credits one call costs (the original's: an enhanced trace is 15, a normal one 1).
    pub fn credits(self, enhanced: bool) -> i32 {
        match self {
            Provider::Tracerfy if enhanced => 15,
            Provider::Tracerfy | Provider::RealEstateApi | Provider::Trestle | Provider::Apollo => 1,
            Provider::Sandbox => 0,
        }
    }

    /// How long an answer is kept and reused (skip traces 30 days; what a number is changes
    /// faster).
    pub fn cache_days(self) -> i64 {
        match self {
            Provider::Tracerfy | Provider::RealEstateApi | Provider::Sandbox => 30,
            Provider::Trestle => 14,
            Provider::Apollo => 30,
        }
    }

    /// Calls a team may make in a UTC day unless its settings say otherwise.
    pub fn default_daily_cap(self) -> i64 {
        match self {
            Provider::Tracerfy | Provider::RealEstateApi => 2_000,
            Provider::Trestle => 5_000,
            Provider::Apollo => 500,
            Provider::Sandbox => 100_000,
        }
    }
}

/// A line type as providers report it.
pub fn line_type(raw: &str) -> &'static str {
    let t = raw.trim().to_ascii_lowercase();
    if t.contains("mobile") || t.contains("wireless") || t.contains("cell") {
        "mobile"
    } else if t.contains("nonfixed") || t.contains("non-fixed") || t.contains("non fixed") {
        "voip"
    } else if t.contains("land") || t.contains("fixed") {
        // A fixed VoIP line sits at an address like a landline: not textable.
        "landline"
    } else if t.contains("voip") {
        "voip"
    } else {
        "unknown"
    }
}

/// A contact grade A-F (anything else is no grade).
pub fn grade(raw: &str) -> Option<char> {
    let g = raw.trim().to_ascii_uppercase();
    match g.as_str() {
        "A" | "B" | "C" | "D" | "F" => g.chars().next(),
        _ => None,
    }
}

/// What is known of one number when the contact is qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneFacts {
    pub e164: String,
    /// The provider's line type when graded, else the type recorded with the number.
    pub line_type: String,
    pub grade: Option<char>,
    pub activity: Option<i32>,
    pub do_not_call: bool,
}

/// The team's qualification rules (settings scope `enrichment`): `ready_grades` (default
/// `AB`), `ready_min_activity` (70), `reject_grades` (`DF`), `reject_below_activity` (50).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rules {
    pub ready_grades: String,
    pub ready_min_activity: i32,
    pub reject_grades: String,
    pub reject_below_activity: i32,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            ready_grades: "AB".into(),
            ready_min_activity: 70,
            reject_grades: "DF".into(),
            reject_below_activity: 50,
        }
    }
}

impl Rules {
    /// The rules from the team's settings; a value that does not parse keeps the default.
    pub fn from_settings(s: &HashMap<String, String>) -> Rules {
        let d = Rules::default();
        let grades = |name: &str, default: String| {
            s.get(name)
                .map(|v| v.chars().filter_map(|c| grade(&c.to_string())).collect::<String>())
                .filter(|g| !g.is_empty())
                .unwrap_or(default)
        };
        let number = |name: &str, default: i32| {
            s.get(name).and_then(|v| v.trim().parse::<i32>().ok()).filter(|n| (0..=100).contains(n)).unwrap_or(default)
        };
        Rules {
            ready_grades: grades("ready_grades", d.ready_grades),
            ready_min_activity: number("ready_min_activity", d.ready_min_activity),
            reject_grades: grades("reject_grades", d.reject_grades),
            reject_below_activity: number("reject_below_activity", d.reject_below_activity),
        }
    }
}

/// The verdict on a contact: its status and, unless ready, the reason (ready names the number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: String,
}

/// Ready: some mobile number (not do-not-contact) graded in `ready_grades` with activity at
/// least `ready_min_activity`. Rejected: no textable number at all, or every textable one
/// graded in `reject_grades` or below `reject_below_activity`. Otherwise graded: a person
/// decides.
pub fn qualify(phones: &[PhoneFacts], rules: &Rules) -> Verdict {
    let textable: Vec<&PhoneFacts> = phones.iter().filter(|p| !p.do_not_call && p.line_type == "mobile").collect();
    if let Some(p) = textable.iter().find(|p| {
        p.grade.is_some_and(|g| rules.ready_grades.contains(g)) && p.activity.unwrap_or(0) >= rules.ready_min_activity
    }) {
        return Verdict {
            status: Status::Ready,
            reason: format!("{} is a mobile graded {}", p.e164, p.grade.unwrap_or('?')),
        };
    }
    if textable.is_empty() {
        let reason = if phones.is_empty() {
            "no phone".to_owned()
        } else if phones.iter().all(|p| p.do_not_call) {
            "every number is do-not-contact".to_owned()
        } else if phones.iter().any(|p| p.line_type == "landline") {
            "no mobile number (landline only)".to_owned()
        } else {
            "no mobile number".to_owned()
        };
        return Verdict { status: Status::Rejected, reason };
    }
    let rejected = |p: &&&PhoneFacts| {
        p.grade.is_some_and(|g| rules.reject_grades.contains(g))
            || p.activity.is_some_and(|a| a < rules.reject_below_activity)
    };
    if textable.iter().all(|p| rejected(&p)) {
        let best = textable[0];
        let why = match (best.grade, best.activity) {
            (Some(g), _) if rules.reject_grades.contains(g) => format!("graded {g}"),
            (_, Some(a)) => format!("activity {a} is below {}", rules.reject_below_activity),
            _ => "poor grade".to_owned(),
        };
        return Verdict { status: Status::Rejected, reason: format!("best mobile {} {why}", best.e164) };
    }
    Verdict { status: Status::Graded, reason: "graded between the team's ready and reject rules".into() }
}

/// The key a provider's answer is cached under: the SHA-256 of the input's fields, trimmed,
/// lower-cased, with inner whitespace collapsed and phone numbers reduced to their digits, so
/// "Ana  Ruiz" and "ana ruiz" are one person and one payment.
pub fn input_key(fields: &[(&str, Option<&str>)]) -> String {
    let mut h = sha2::Sha256::new();
    for (name, value) in fields {
        let v = value.unwrap_or_default();
        let norm = if name.contains("phone") {
            v.chars().filter(char::is_ascii_digit).collect::<String>()
        } else {
            v.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
        };
        h.update(name.as_bytes());
        h.update([0x1f]);
        h.update(norm.as_bytes());
        h.update([0x1e]);
    }
    hex::encode(h.finalize())
}

/// When `now`'s UTC day ends (a provider's daily cap refills then).
pub fn end_of_day(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let next = now.date_naive() + chrono::Duration::days(1);
    next.and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(now + chrono::Duration::days(1))
}

/// The limiter bucket of a team's daily cap for a provider: one per team, provider and UTC
/// day, shared by every use of that provider (enrichment steps, property searches).
pub fn cap_bucket(team: &str, provider: Provider, cap: i64, now: chrono::DateTime<chrono::Utc>) -> crate::rate::Bucket {
    crate::rate::Bucket::new(
        format!("enrich:{team}:{provider}:{}", now.date_naive()),
        crate::rate::Limit::Quota { limit: cap, window_end: end_of_day(now) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(t: &str, g: Option<char>, a: Option<i32>) -> PhoneFacts {
        PhoneFacts { e164: "+13125550199".into(), line_type: t.into(), grade: g, activity: a, do_not_call: false }
    }

    #[test]
    fn the_originals_rules_are_the_default() {
        let r = Rules::default();
        assert_eq!(qualify(&[phone("mobile", Some('A'), Some(90))], &r).status, Status::Ready);
        assert_eq!(qualify(&[phone("mobile", Some('B'), Some(70))], &r).status, Status::Ready);
        assert_eq!(qualify(&[phone("mobile", Some('B'), Some(69))], &r).status, Status::Graded);
        assert_eq!(qualify(&[phone("mobile", Some('C'), Some(80))], &r).status, Status::Graded);
        let d = qualify(&[phone("mobile", Some('D'), Some(95))], &r);
        assert_eq!((d.status, d.reason.contains("graded D")), (Status::Rejected, true));
        let low = qualify(&[phone("mobile", Some('A'), Some(40))], &r);
        assert_eq!((low.status, low.reason.contains("activity 40")), (Status::Rejected, true));
        assert_eq!(qualify(&[], &r), Verdict { status: Status::Rejected, reason: "no phone".into() });
        let land = qualify(&[phone("landline", Some('A'), Some(99))], &r);
        assert_eq!((land.status, land.reason.as_str()), (Status::Rejected, "no mobile number (landline only)"));
        // One good mobile among poor ones is enough.
        let mixed = [phone("mobile", Some('F'), Some(10)), phone("mobile", Some('A'), Some(88))];
        assert_eq!(qualify(&mixed, &r).status, Status::Ready);
        let mut dnc = phone("mobile", Some('A'), Some(99));
        dnc.do_not_call = true;
        assert_eq!(qualify(&[dnc], &r).status, Status::Rejected);
    }

    #[test]
    fn rules_come_from_settings_and_bad_values_keep_the_default() {
        let s: HashMap<String, String> = [
            ("ready_grades", "abc"),
            ("ready_min_activity", "60"),
            ("reject_grades", "zz"),
            ("reject_below_activity", "500"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = Rules::from_settings(&s);
        assert_eq!(r, Rules { ready_grades: "ABC".into(), ready_min_activity: 60, ..Rules::default() });
        assert_eq!(qualify(&[phone("mobile", Some('C'), Some(60))], &r).status, Status::Ready);
    }

    #[test]
    fn cache_keys_ignore_case_spacing_and_phone_punctuation() {
        let a =
            input_key(&[("first_name", Some(" Ana ")), ("last_name", Some("RUIZ")), ("phone", Some("(312) 555-0199"))]);
        let b = input_key(&[("first_name", Some("ana")), ("last_name", Some("ruiz")), ("phone", Some("3125550199"))]);
        let c = input_key(&[("first_name", Some("ana")), ("last_name", Some("ruis")), ("phone", Some("3125550199"))]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Fields do not run into each other.
        assert_ne!(input_key(&[("a", Some("xy")), ("b", Some(""))]), input_key(&[("a", Some("x")), ("b", Some("y"))]));
    }

    #[test]
    fn line_types_and_grades_parse_as_providers_write_them() {
        assert_eq!(line_type("Mobile"), "mobile");
        assert_eq!(line_type("Landline"), "landline");
        assert_eq!(line_type("FixedVOIP"), "landline");
        assert_eq!(line_type("NonFixedVOIP"), "voip");
        assert_eq!(grade(" b "), Some('B'));
        assert_eq!(grade("E"), None);
        assert_eq!(Provider::Tracerfy.credits(true), 15);
    }
}
