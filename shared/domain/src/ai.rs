//! AI workers (DOMAIN.md C.8): digital SDRs that are configuration, not code. One engine
//! writes for every worker; a worker says who it is (persona, tone, goal, FAQs, sign-off),
//! when it may answer (active hours and days in the team's zone, a response delay, caps) and
//! what it may send without a person (its auto-send policy, versioned).
//!
//! Routing ([`route`]) picks the worker a reply goes to: the owner of the number the reply
//! came to, else the worker that wrote the last outbound message, else the team's rules
//! (scheduling intent → closer; at most `opener_max` messages exchanged → opener; at most
//! `nurture_max` → nurture; more → closer).

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc};
pub use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::inbox::Classification;
use crate::validation::FieldError;

crate::text_enum! {
    /// What a worker does.
    pub enum Role {
        /// Opens conversations (GIANNA).
        Opener = "opener",
        /// Follows up with a light touch every few days (CATHY).
        Nurture = "nurture",
        /// Closes and books meetings, always through a person unless its policy says otherwise (SABRINA).
        Closer = "closer",
        /// Researches a lead; advisory only, never writes to a lead (NEVA).
        Research = "research",
    }
}

crate::text_enum! {
    /// What a worker may send without a person.
    pub enum AutoSend {
        /// Every message waits for a person.
        Never = "never",
        /// Sent on its own when the reply's class is one of the policy's and the suggestion's
        /// confidence is at least the threshold; anything else waits for a person.
        Confident = "confident",
    }
}

crate::text_enum! {
    /// Why a reply went to a worker (`ai_routing_decisions.reason`).
    pub enum RouteReason {
        /// The worker owns the number the reply came to.
        NumberOwner = "number_owner",
        /// The worker wrote the last outbound message to the lead.
        LastSender = "last_sender",
        /// The reply asks for a time: the closer.
        SchedulingIntent = "scheduling_intent",
        /// By how many messages have been exchanged.
        Exchanged = "exchanged",
    }
}

/// One question and its answer, told to the worker so it answers as the team would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Faq {
    pub question: String,
    pub answer: String,
}

/// When a worker may answer: a daily window and the days of the week (ISO, 1 = Monday), in
/// the team's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHours {
    pub from: NaiveTime,
    pub until: NaiveTime,
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub days: Vec<u8>,
    pub zone: Tz,
}

impl ActiveHours {
    fn open_on(&self, local: &chrono::NaiveDateTime) -> bool {
        let day = local.weekday().number_from_monday() as u8;
        self.days.contains(&day) && local.time() >= self.from && local.time() < self.until
    }

    /// The first instant at or after `at` inside the window; `None` when the window is empty
    /// (no days, or `from` not before `until`).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.days.is_empty() || self.from >= self.until {
            return None;
        }
        let local = at.with_timezone(&self.zone).naive_local();
        if self.open_on(&local) {
            return Some(at);
        }
        for d in 0..8 {
            let date = local.date() + Duration::days(d);
            let start = date.and_time(self.from);
            if start < local || !self.open_on(&start) {
                continue;
            }
            // A start skipped by a clock change opens at the first valid instant after it.
            let mut candidate = start;
            for _ in 0..4 {
                if let Some(t) = self.zone.from_local_datetime(&candidate).earliest() {
                    return Some(t.with_timezone(&Utc).max(at));
                }
                candidate += Duration::minutes(30);
            }
        }
        None
    }

    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.open_on(&at.with_timezone(&self.zone).naive_local())
    }

    /// The team-zone date of `at` (caps count per local day).
    pub fn local_day(&self, at: DateTime<Utc>) -> chrono::NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// When the team-zone day of `at` began.
    pub fn day_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let d = self.local_day(at).and_hms_opt(0, 0, 0).unwrap_or_default();
        self.zone.from_local_datetime(&d).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or(at - Duration::days(1))
    }
}

/// A team's zone from its setting (`ai` / `time_zone`); New York when unset or unknown.
pub fn zone(setting: Option<&str>) -> Tz {
    setting.and_then(|z| z.trim().parse::<Tz>().ok()).unwrap_or(chrono_tz::America::New_York)
}

/// "HH:MM" to minutes after midnight (`24:00` is the end of the day).
pub fn parse_clock(field: &str, raw: &str) -> Result<u16, FieldError> {
    let bad = || FieldError::new(field, "a time of day as HH:MM (00:00 to 24:00)");
    let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) || raw.trim().len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Minutes after midnight as a time (24:00 is the last representable instant of the day).
pub fn clock_time(minutes: u16) -> NaiveTime {
    if minutes >= 24 * 60 {
        return NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap_or_default();
    }
    NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0).unwrap_or_default()
}

/// A worker's auto-send policy at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub mode: AutoSend,
    /// The least confidence (0-100) a suggestion needs to go out on its own.
    pub threshold: u8,
    /// The classes of reply (`positive`, `question`…, and `follow_up` for the nurture
    /// cadence's own messages) it may answer on its own.
    pub classes: Vec<String>,
    pub version: i32,
}

/// What the nurture cadence's own messages count as in a policy.
pub const FOLLOW_UP: &str = "follow_up";

/// The classes a policy may name.
pub fn policy_classes() -> Vec<String> {
    let mut v: Vec<String> =
        [Classification::Positive, Classification::Question, Classification::Neutral, Classification::Negative]
            .iter()
            .map(|c| c.key())
            .collect();
    v.push(FOLLOW_UP.into());
    v
}

/// Whether a policy lets a suggestion out without a person, and why (the reason is logged).
pub fn auto_decision(p: &Policy, class: &str, confidence: u8) -> Result<String, String> {
    match p.mode {
        AutoSend::Never => Err(format!("policy v{}: every message waits for a person", p.version)),
        AutoSend::Confident if !p.classes.iter().any(|c| c == class) => {
            Err(format!("policy v{}: {class} is not sent on its own", p.version))
        }
        AutoSend::Confident if confidence < p.threshold => {
            Err(format!("policy v{}: confidence {confidence} is below {}", p.version, p.threshold))
        }
        AutoSend::Confident => {
            Ok(format!("policy v{}: {class} at confidence {confidence} (at least {})", p.version, p.threshold))
        }
    }
}

/// The team's routing rules (settings `ai` / `route.opener_max`, `route.nurture_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingRules {
    /// Up to this many messages exchanged: the opener.
    pub opener_max: i64,
    /// Up to this many: nurture; more: the closer.
    pub nurture_max: i64,
}

impl Default for RoutingRules {
    fn default() -> Self {
        Self { opener_max: 2, nurture_max: 10 }
    }
}

impl RoutingRules {
    pub fn from_settings(s: &std::collections::HashMap<String, String>) -> Self {
        let d = Self::default();
        let n = |k: &str, dflt: i64| {
            s.get(k).and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| *v >= 0).unwrap_or(dflt)
        };
        let opener_max = n("route.opener_max", d.opener_max);
        let nurture_max = n("route.nurture_max", d.nurture_max).max(opener_max);
        Self { opener_max, nurture_max }
    }
}

/// What routing knows about a reply.
#[derive(Debug, Clone, Default)]
pub struct RouteFacts<W> {
    /// The worker owning the number the reply came to.
    pub number_owner: Option<W>,
    /// The worker that wrote the last outbound message.
    pub last_sender: Option<W>,
    /// That worker nurtures (it hands a lead asking for a time to the closer).
    pub last_sender_nurtures: bool,
    /// The reply asks for a time.
    pub scheduling: bool,
    /// Messages exchanged with the lead, both ways, this reply included.
    pub exchanged: i64,
}

/// Which worker (by role when the rules decide) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed<W> {
    Worker(W, RouteReason, String),
    Role(Role, RouteReason, String),
}

pub fn route<W>(f: RouteFacts<W>, rules: RoutingRules) -> Routed<W> {
    if let Some(w) = f.number_owner {
        return Routed::Worker(w, RouteReason::NumberOwner, "owns the number the reply came to".into());
    }
    if let Some(w) = f.last_sender {
        if f.last_sender_nurtures && f.scheduling {
            return Routed::Role(
                Role::Closer,
                RouteReason::SchedulingIntent,
                "the reply asks for a time: the nurture worker hands over to the closer".into(),
            );
        }
        return Routed::Worker(w, RouteReason::LastSender, "wrote the last message to the lead".into());
    }
    if f.scheduling {
        return Routed::Role(Role::Closer, RouteReason::SchedulingIntent, "the reply asks for a time".into());
    }
    let n = f.exchanged;
    let (role, detail) = if n <= rules.opener_max {
        (Role::Opener, format!("{n} messages exchanged (at most {})", rules.opener_max))
    } else if n <= rules.nurture_max {
        (Role::Nurture, format!("{n} messages exchanged (at most {})", rules.nurture_max))
    } else {
        (Role::Closer, format!("{n} messages exchanged (more than {})", rules.nurture_max))
    };
    Routed::Role(role, RouteReason::Exchanged, detail)
}

/// Whether a reply asks for a time: a day, an hour or words of meeting.
pub fn scheduling_intent(text: &str) -> bool {
    let t = text.to_lowercase();
    let words: Vec<&str> = t.split(|c: char| !c.is_alphanumeric() && c != ':').filter(|w| !w.is_empty()).collect();
    const PHRASES: &[&str] = &[
        "call me",
        "give me a call",
        "what time",
        "when can",
        "when are you",
        "set up a call",
        "schedule",
        "book a",
        "meet",
        "appointment",
        "available",
        "free at",
        "free on",
        "works for me",
    ];
    const DAYS: &[&str] = &[
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "tomorrow",
        "tonight",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thurs",
        "fri",
        "sat",
        "sun",
    ];
    // A time refused is not a time asked for.
    const NOT: &[&str] =
        &["not available", "unavailable", "don't call", "dont call", "do not call", "not free", "no time"];
    if NOT.iter().any(|p| t.contains(p)) {
        return false;
    }
    if PHRASES.iter().any(|p| t.contains(p)) {
        return true;
    }
    let time = words.iter().any(|w| {
        let w = w.trim_end_matches("am").trim_end_matches("pm");
        w.contains(':') && w.split(':').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    }) || t.contains(" am") && words.iter().any(|w| w.chars().all(|c| c.is_ascii_digit()))
        || words.iter().any(|w| {
            (w.ends_with("am") || w.ends_with("pm"))
                && w.len() <= 4
                && w[..w.len() - 2].chars().all(|c| c.is_ascii_digit())
                && w.len() > 2
        });
    time || words.iter().any(|w| DAYS.contains(w))
}

/// The edit distance between what was suggested and what was sent (characters, Levenshtein),
/// capped at 2,000 so a long rewrite costs bounded time.
pub fn edit_distance(a: &str, b: &str) -> i32 {
    let a: Vec<char> = a.chars().take(2000).collect();
    let b: Vec<char> = b.chars().take(2000).collect();
    if a == b {
        return 0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] as i32
}

/// Picks one of weighted variants with `roll` in [0, 1): variant i wins with weight_i / total.
/// `None` when every weight is 0.
pub fn pick_weighted(weights: &[u32], roll: f64) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let target = (roll.clamp(0.0, 0.999_999_999) * total as f64) as u64;
    let mut acc = 0u64;
    for (i, w) in weights.iter().enumerate() {
        acc += u64::from(*w);
        if target < acc {
            return Some(i);
        }
    }
    weights.iter().rposition(|w| *w > 0)
}

/// When an auto-sent message may go: after the worker's response delay (a point in
/// `[min, max]` seconds chosen by `roll`), inside its active hours.
pub fn send_after(now: DateTime<Utc>, hours: &ActiveHours, delay: (u32, u32), roll: f64) -> Option<DateTime<Utc>> {
    let (lo, hi) = (delay.0.min(delay.1), delay.0.max(delay.1));
    let secs = lo + ((f64::from(hi - lo)) * roll.clamp(0.0, 1.0)).round() as u32;
    hours.next_open(now + Duration::seconds(i64::from(secs)))
}

/// Minutes since midnight for a time (for storage).
pub fn minutes_of(t: NaiveTime) -> u16 {
    (t.hour() * 60 + t.minute()) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays_9_to_6() -> ActiveHours {
        ActiveHours {
            from: clock_time(9 * 60),
            until: clock_time(18 * 60),
            days: vec![1, 2, 3, 4, 5],
            zone: chrono_tz::America::New_York,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn active_hours_wait_for_the_next_window_in_the_teams_zone() {
        let h = weekdays_9_to_6();
        // Wednesday 2026-12-02 15:00 UTC is 10:00 in New York: open.
        assert_eq!(h.next_open(utc("2026-12-02T15:00:00Z")), Some(utc("2026-12-02T15:00:00Z")));
        // 23:30 UTC is 18:30 local: the next morning at 9:00 local (14:00 UTC).
        assert_eq!(h.next_open(utc("2026-12-02T23:30:00Z")), Some(utc("2026-12-03T14:00:00Z")));
        // Friday evening: Monday 9:00.
        assert_eq!(h.next_open(utc("2026-12-04T23:30:00Z")), Some(utc("2026-12-07T14:00:00Z")));
        // Early Saturday morning UTC is still Friday night locally: Monday.
        assert_eq!(h.next_open(utc("2026-12-05T03:00:00Z")), Some(utc("2026-12-07T14:00:00Z")));
        let closed = ActiveHours { days: vec![], ..weekdays_9_to_6() };
        assert_eq!(closed.next_open(utc("2026-12-02T15:00:00Z")), None);
        let inverted = ActiveHours { from: clock_time(18 * 60), until: clock_time(9 * 60), ..weekdays_9_to_6() };
        assert_eq!(inverted.next_open(utc("2026-12-02T15:00:00Z")), None);
    }

    #[test]
    fn the_delay_is_inside_its_range_and_then_inside_the_window() {
        let h = weekdays_9_to_6();
        let now = utc("2026-12-02T15:00:00Z");
        assert_eq!(send_after(now, &h, (60, 300), 0.0), Some(now + Duration::seconds(60)));
        assert_eq!(send_after(now, &h, (60, 300), 1.0), Some(now + Duration::seconds(300)));
        // A delay that crosses the window's end waits for the next morning.
        let late = utc("2026-12-02T22:58:00Z");
        assert_eq!(send_after(late, &h, (300, 300), 0.5), Some(utc("2026-12-03T14:00:00Z")));
    }

    #[test]
    fn clocks_parse_strictly() {
        assert_eq!(parse_clock("f", "09:30").unwrap(), 570);
        assert_eq!(parse_clock("f", "24:00").unwrap(), 1440);
        for bad in ["9:30", "24:01", "12:60", "noon", "", "-1:00"] {
            assert!(parse_clock("f", bad).is_err(), "{bad}");
        }
        assert_eq!(format_clock(570), "09:30");
    }

    fn policy(mode: AutoSend) -> Policy {
        Policy { mode, threshold: 85, classes: vec!["positive".into(), FOLLOW_UP.into()], version: 3 }
    }

    #[test]
    fn a_policy_sends_only_its_classes_above_its_threshold_and_says_why() {
        assert!(auto_decision(&policy(AutoSend::Never), "positive", 100).unwrap_err().contains("v3"));
        assert!(auto_decision(&policy(AutoSend::Confident), "question", 99).is_err());
        assert!(auto_decision(&policy(AutoSend::Confident), "positive", 84).unwrap_err().contains("below 85"));
        let ok = auto_decision(&policy(AutoSend::Confident), "positive", 85).unwrap();
        assert!(ok.contains("policy v3"), "{ok}");
        assert!(auto_decision(&policy(AutoSend::Confident), FOLLOW_UP, 90).is_ok());
    }

    #[test]
    fn routing_prefers_the_number_then_the_last_sender_then_the_rules() {
        let rules = RoutingRules::default();
        let f = |owner: Option<&str>, last: Option<&str>, scheduling, exchanged| RouteFacts {
            number_owner: owner.map(str::to_owned),
            last_sender: last.map(str::to_owned),
            last_sender_nurtures: false,
            scheduling,
            exchanged,
        };
        assert!(
            matches!(route(f(Some("a"), Some("b"), true, 20), rules), Routed::Worker(w, RouteReason::NumberOwner, _) if w == "a")
        );
        assert!(
            matches!(route(f(None, Some("b"), true, 20), rules), Routed::Worker(w, RouteReason::LastSender, _) if w == "b")
        );
        assert!(matches!(
            route(f(None, None, true, 1), rules),
            Routed::Role(Role::Closer, RouteReason::SchedulingIntent, _)
        ));
        let handover = RouteFacts { last_sender_nurtures: true, ..f(None, Some("cathy"), true, 6) };
        assert!(matches!(route(handover, rules), Routed::Role(Role::Closer, RouteReason::SchedulingIntent, _)));
        let staying = RouteFacts { last_sender_nurtures: true, ..f(None, Some("cathy"), false, 6) };
        assert!(matches!(route(staying, rules), Routed::Worker(w, RouteReason::LastSender, _) if w == "cathy"));
        assert!(matches!(route(f(None, None, false, 2), rules), Routed::Role(Role::Opener, RouteReason::Exchanged, _)));
        assert!(matches!(route(f(None, None, false, 3), rules), Routed::Role(Role::Nurture, _, _)));
        assert!(matches!(route(f(None, None, false, 10), rules), Routed::Role(Role::Nurture, _, _)));
        assert!(matches!(route(f(None, None, false, 11), rules), Routed::Role(Role::Closer, _, _)));
        let custom = RoutingRules::from_settings(
            &[("route.opener_max".to_owned(), "4".to_owned()), ("route.nurture_max".to_owned(), "1".to_owned())]
                .into_iter()
                .collect(),
        );
        assert_eq!(custom, RoutingRules { opener_max: 4, nurture_max: 4 }, "nurture_max is never below opener_max");
        assert!(matches!(route(f(None, None, false, 4), custom), Routed::Role(Role::Opener, _, _)));
    }

    #[test]
    fn scheduling_intent_is_a_time_a_day_or_meeting_words() {
        for yes in [
            "Can you call me tomorrow?",
            "how about 3pm",
            "Tuesday works",
            "10:30 is good",
            "I'm available after lunch",
            "let's schedule something",
            "call me at 4 pm",
        ] {
            assert!(scheduling_intent(yes), "{yes}");
        }
        for no in [
            "yes I'm interested",
            "how much?",
            "who is this",
            "not interested",
            "maybe 🙂",
            "don't call me",
            "I'm not available",
        ] {
            assert!(!scheduling_intent(no), "{no}");
        }
    }

    #[test]
    fn edit_distance_counts_characters_not_bytes() {
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("hi 🙂", "hi 🙃"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn weighted_picks_follow_the_weights() {
        assert_eq!(pick_weighted(&[0, 0], 0.5), None);
        assert_eq!(pick_weighted(&[1, 3], 0.0), Some(0));
        assert_eq!(pick_weighted(&[1, 3], 0.24), Some(0));
        assert_eq!(pick_weighted(&[1, 3], 0.26), Some(1));
        assert_eq!(pick_weighted(&[1, 3], 0.9999), Some(1));
        assert_eq!(pick_weighted(&[0, 5, 0], 0.1), Some(1));
        let mut counts = [0; 2];
        for i in 0..1000 {
            counts[pick_weighted(&[1, 3], i as f64 / 1000.0).unwrap()] += 1;
        }
        assert_eq!(counts, [250, 750]);
    }
}
