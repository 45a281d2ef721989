//! Rate-limit math, shared by the DynamoDB and the Postgres limiters so both decide alike.
//!
//! A *rate* bucket is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! number): its state is the theoretical arrival time `tat` in microseconds; a request of
//! `cost` is allowed when `max(tat, now) + cost × interval − now ≤ burst × interval`, and then
//! `tat` moves there. Integer microseconds make it exact: 75 per minute is one every 800,000 µs,
//! and with a burst of 1 no 60-second window ever holds more than 75.
//!
//! A *quota* bucket counts within a fixed window (T-Mobile's daily segments per brand, reset
//! at midnight Pacific): its key names the window, its state is the count so far.
//!
//! A request takes every bucket it needs or none: the decision is made on all of them first.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// `interval_us` between units on average; up to `burst` units at once.
    Rate { interval_us: i64, burst: i64 },
    /// At most `limit` units until `window_end` (the key names the window).
    Quota { limit: i64, window_end: DateTime<Utc> },
}

impl Limit {
    /// `per_minute` units a minute with a burst of `burst`. The interval is rounded up, so
    /// with a burst of 1 no 60-second window ever fits one more.
    pub fn per_minute(per_minute: u32, burst: u32) -> Limit {
        let n = i64::from(per_minute.max(1));
        Limit::Rate { interval_us: (60_000_000 + n - 1) / n, burst: i64::from(burst.max(1)) }
    }

    /// `per_second` units a second (e.g. a team's API send rate).
    pub fn per_second(per_second: u32, burst: u32) -> Limit {
        Limit::Rate { interval_us: 1_000_000 / i64::from(per_second.max(1)), burst: i64::from(burst.max(1)) }
    }
}

/// A bucket: where its state lives, its limit, and what a request costs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub key: String,
    pub limit: Limit,
    /// Units this bucket is charged (`None`: the request's cost). A text is one message to a
    /// per-minute bucket but several segments to T-Mobile's daily segment quota.
    pub charge: Option<i64>,
}

impl Bucket {
    pub fn new(key: impl Into<String>, limit: Limit) -> Self {
        Self { key: key.into(), limit, charge: None }
    }

    pub fn charging(mut self, units: i64) -> Self {
        self.charge = Some(units);
        self
    }
}

/// The result of asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    Granted,
    /// Not now; asking again at `retry_at` can succeed. `bucket` is the one that refused.
    Refused {
        retry_at: DateTime<Utc>,
        bucket: String,
    },
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Decides a request over the buckets' current states (`None`: never used). Returns the new
/// states to write when granted. A grant is for `now`: [`schedule`] with no horizon.
pub fn decide(buckets: &[Bucket], states: &[Option<i64>], cost: i64, now: DateTime<Utc>) -> (Take, Vec<i64>) {
    match schedule(buckets, states, cost, now, chrono::Duration::zero()) {
        (Slot::At(_), next) => (Take::Granted, next),
        (Slot::Refused { retry_at, bucket }, next) => (Take::Refused { retry_at, bucket }, next),
    }
}

/// When a reserved unit may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// Reserved: it may go at `at` (between `now` and `now + horizon`), not before.
    At(DateTime<Utc>),
    /// Nothing reserved; asking again at `retry_at` can succeed. `bucket` is the one that refused.
    Refused { retry_at: DateTime<Utc>, bucket: String },
}

/// Reserves a unit's slot: the earliest time every bucket conforms, if it is within
/// `horizon` of `now` (GCRA as a scheduler). The caller must not send before the slot;
/// each rate bucket is charged as if the unit arrived at its slot, so units sent at their
/// slots are `interval` apart on every bucket they share, and with a burst of 1 no 60-second
/// window holds more than the rate, however the reservations interleave.
pub fn schedule(
    buckets: &[Bucket],
    states: &[Option<i64>],
    cost: i64,
    now: DateTime<Utc>,
    horizon: chrono::Duration,
) -> (Slot, Vec<i64>) {
    let now_us = micros(now);
    let horizon_us = horizon.num_microseconds().unwrap_or(0).max(0);
    // The earliest time each rate bucket conforms; a spent quota refuses until its window ends.
    let mut at = now_us;
    let mut by: Option<&str> = None;
    let mut spent: Option<(i64, &str)> = None;
    for (b, state) in buckets.iter().zip(states) {
        let cost = b.charge.unwrap_or(cost);
        match &b.limit {
            Limit::Rate { interval_us, burst } => {
                let earliest = state.unwrap_or(now_us) + (cost - burst) * interval_us;
                if earliest > at {
                    at = earliest;
                    by = Some(&b.key);
                }
            }
            Limit::Quota { limit, window_end } => {
                if state.unwrap_or(0) + cost > *limit && spent.is_none_or(|(e, _)| micros(*window_end) > e) {
                    spent = Some((micros(*window_end), &b.key));
                }
            }
        }
    }
    if let Some((end, key)) = spent {
        return (Slot::Refused { retry_at: from_micros(end.max(at - horizon_us)), bucket: key.to_owned() }, vec![]);
    }
    if at > now_us.saturating_add(horizon_us) {
        let bucket = by.unwrap_or_default().to_owned();
        return (Slot::Refused { retry_at: from_micros(at - horizon_us), bucket }, vec![]);
    }
    let next = buckets
        .iter()
        .zip(states)
        .map(|(b, state)| {
            let cost = b.charge.unwrap_or(cost);
            match &b.limit {
                Limit::Rate { interval_us, .. } => state.unwrap_or(at).max(at) + cost * interval_us,
                Limit::Quota { .. } => state.unwrap_or(0) + cost,
            }
        })
        .collect();
    (Slot::At(from_micros(at)), next)
}

/// One request of a batch: the buckets it takes and its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub buckets: Vec<Bucket>,
    pub cost: i64,
}

/// Reserves a batch over shared state: `states` holds every key's state and is updated with
/// what is reserved. The asks are served earliest slot first (each answer stays at its
/// ask's index), so that asks sharing a bucket (a team's, under two campaigns' own) fill its
/// slots alternately rather than leaving gaps behind a run of one campaign. A refused ask
/// leaves the real state alone, but a shadow of it moves on, so the asks refused after it
/// are told later retry times (each its own place in line) rather than all the same instant.
pub fn schedule_all(
    asks: &[Ask],
    states: &mut std::collections::HashMap<String, Option<i64>>,
    now: DateTime<Utc>,
    horizon: chrono::Duration,
) -> Vec<Slot> {
    let far = chrono::Duration::days(36_500);
    let state_of = |states: &std::collections::HashMap<String, Option<i64>>, ask: &Ask| -> Vec<Option<i64>> {
        ask.buckets.iter().map(|b| states.get(&b.key).copied().flatten()).collect()
    };
    let mut shadow = states.clone();
    let mut out: Vec<Option<Slot>> = vec![None; asks.len()];
    let mut left: Vec<usize> = (0..asks.len()).collect();
    while !left.is_empty() {
        // The ask that could go first.
        let pick = left
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| {
                match schedule(&asks[**i].buckets, &state_of(states, &asks[**i]), asks[**i].cost, now, far) {
                    (Slot::At(at), _) => micros(at),
                    (Slot::Refused { retry_at, .. }, _) => micros(retry_at).saturating_add(micros(now + far)),
                }
            })
            .map(|(pos, _)| pos)
            .unwrap_or(0);
        let i = left.remove(pick);
        let ask = &asks[i];
        match schedule(&ask.buckets, &state_of(states, ask), ask.cost, now, horizon) {
            (Slot::At(at), next) => {
                for (b, v) in ask.buckets.iter().zip(next) {
                    states.insert(b.key.clone(), Some(v));
                    let s = shadow.entry(b.key.clone()).or_insert(None);
                    *s = Some(s.unwrap_or(v).max(v));
                }
                out[i] = Some(Slot::At(at));
            }
            (Slot::Refused { bucket, .. }, _) => {
                // Its place in line: where it would go behind everything refused before it.
                let (slot, next) = schedule(&ask.buckets, &state_of(&shadow, ask), ask.cost, now, far);
                let retry_at = match slot {
                    Slot::At(at) => at - horizon,
                    Slot::Refused { retry_at, .. } => retry_at,
                };
                for (b, v) in ask.buckets.iter().zip(next) {
                    shadow.insert(b.key.clone(), Some(v));
                }
                out[i] = Some(Slot::Refused { retry_at: retry_at.max(now), bucket });
            }
        }
    }
    out.into_iter().map(|s| s.unwrap_or(Slot::Refused { retry_at: now, bucket: String::new() })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_burst_is_granted_then_the_next_unit_waits_one_interval() {
        let b = [Bucket::new("k", Limit::per_minute(60, 3))];
        let mut state = vec![None];
        for _ in 0..3 {
            let (take, next) = decide(&b, &state, 1, t0());
            assert_eq!(take, Take::Granted);
            state = next.into_iter().map(Some).collect();
        }
        let (take, _) = decide(&b, &state, 1, t0());
        assert_eq!(take, Take::Refused { retry_at: t0() + Duration::seconds(1), bucket: "k".into() });
        assert_eq!(decide(&b, &state, 1, t0() + Duration::seconds(1)).0, Take::Granted);
    }

    #[test]
    fn every_bucket_or_none_and_the_latest_refusal_wins() {
        let roomy = Bucket::new("team", Limit::per_minute(600, 10));
        let tight = Bucket::new("campaign", Limit::per_minute(75, 1));
        let b = [roomy, tight];
        let (take, next) = decide(&b, &[None, None], 1, t0());
        assert_eq!(take, Take::Granted);
        let state: Vec<Option<i64>> = next.into_iter().map(Some).collect();
        let (take, next) = decide(&b, &state, 1, t0());
        assert_eq!(take, Take::Refused { retry_at: t0() + Duration::milliseconds(800), bucket: "campaign".into() });
        assert!(next.is_empty(), "nothing is written for a refusal");
    }

    #[test]
    fn quotas_count_within_their_window() {
        let end = t0() + Duration::hours(3);
        let b = [Bucket::new("tmo:brand:2026-11-28", Limit::Quota { limit: 5, window_end: end })];
        let (take, next) = decide(&b, &[Some(3)], 2, t0());
        assert_eq!((take, next), (Take::Granted, vec![5]));
        let (take, _) = decide(&b, &[Some(5)], 1, t0());
        assert_eq!(take, Take::Refused { retry_at: end, bucket: "tmo:brand:2026-11-28".into() });
    }

    #[test]
    fn seventy_five_a_minute_with_no_burst_never_exceeds_75_in_any_minute() {
        let b = [Bucket::new("k", Limit::per_minute(75, 1))];
        let mut state = vec![None];
        let mut now = t0();
        let mut grants = Vec::new();
        while now < t0() + Duration::minutes(10) {
            match decide(&b, &state, 1, now) {
                (Take::Granted, next) => {
                    grants.push(now);
                    state = next.into_iter().map(Some).collect();
                }
                (Take::Refused { retry_at, .. }, _) => now = retry_at,
            }
        }
        assert_eq!(grants.len(), 750, "full utilisation");
        for w in grants.windows(76) {
            assert!(w[75] - w[0] >= Duration::seconds(60), "76 grants within a minute");
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    /// Work arrives in whole seconds (as SQS delays deliver it), more than the limit allows,
    /// and reserves up to a second ahead: no 60-second window holds more than `n` slots, and
    /// ten minutes hold within 2% of `10 n`.
    #[test]
    fn slots_never_overfill_a_minute_and_fill_it_within_two_percent() {
        for n in [1u32, 2, 59, 60, 61, 75, 240, 600, 2400, 4500, 6000] {
            let b = vec![Bucket::new("k", Limit::per_minute(n, 1))];
            let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
            let mut states = std::collections::HashMap::new();
            let mut slots = Vec::new();
            let offered = (n as usize).div_ceil(60) + 2;
            for s in 0..600 {
                let asks = vec![Ask { buckets: b.clone(), cost: 1 }; offered];
                for slot in schedule_all(&asks, &mut states, t0 + Duration::seconds(s), Duration::seconds(1)) {
                    if let Slot::At(at) = slot {
                        slots.push(at);
                    }
                }
            }
            slots.retain(|at| *at < t0 + Duration::seconds(600));
            assert!(slots.windows(2).all(|w| w[1] - w[0] >= Duration::microseconds(60_000_000 / i64::from(n))));
            // Slots are in order: the most in a minute is the widest run shorter than 60 s.
            let (mut j, mut max_in_window) = (0, 0);
            for i in 0..slots.len() {
                while slots[i] - slots[j] >= Duration::seconds(60) {
                    j += 1;
                }
                max_in_window = max_in_window.max(i - j + 1);
            }
            assert!(max_in_window <= n as usize, "{n}/min: {max_in_window} in one minute");
            assert!(slots.len() as f64 >= 0.98 * 10.0 * f64::from(n), "{n}/min: {} in 10 minutes", slots.len());
        }
    }

    #[test]
    fn a_slot_waits_for_every_bucket_and_refusals_queue_in_line() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let team = Bucket::new("team", Limit::per_minute(60, 1));
        let campaign = Bucket::new("campaign", Limit::per_minute(120, 1));
        let asks = vec![Ask { buckets: vec![team.clone(), campaign.clone()], cost: 1 }; 4];
        let mut states = std::collections::HashMap::new();
        let slots = schedule_all(&asks, &mut states, t0, Duration::milliseconds(1500));
        assert_eq!(slots[0], Slot::At(t0));
        assert_eq!(slots[1], Slot::At(t0 + Duration::seconds(1)), "the team's second, not the campaign's half");
        // The third would go at +2 s: refused, retry when +2 s is within the horizon; the
        // fourth is told its own place, a second later.
        assert_eq!(slots[2], Slot::Refused { retry_at: t0 + Duration::milliseconds(500), bucket: "team".into() });
        assert_eq!(slots[3], Slot::Refused { retry_at: t0 + Duration::milliseconds(1500), bucket: "team".into() });
        assert_eq!(states["team"], Some(micros(t0) + 2_000_000));
        assert_eq!(states["campaign"], Some(micros(t0) + 1_500_000), "charged at the slot it went in");
    }
}

#[cfg(test)]
mod charge_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn each_bucket_is_charged_its_own_units() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let end = now + chrono::Duration::hours(1);
        let b = [
            Bucket::new("att", Limit::per_minute(60, 5)),
            Bucket::new("tmo", Limit::Quota { limit: 10, window_end: end }).charging(3),
        ];
        let (take, next) = decide(&b, &[None, Some(6)], 1, now);
        assert_eq!(take, Take::Granted);
        assert_eq!(next[1], 9, "three segments");
        let (take, _) = decide(&b, &[None, Some(8)], 1, now);
        assert_eq!(take, Take::Refused { retry_at: end, bucket: "tmo".into() });
    }
}

/// The carriers whose limits differ (DOMAIN.md A), from a phone's carrier name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Att,
    TMobile,
    Verizon,
    Unknown,
}

pub fn carrier(name: Option<&str>) -> Carrier {
    let n = name.unwrap_or("").to_ascii_lowercase().replace(['-', '&', ' ', '.'], "");
    if n.contains("att") || n.contains("cingular") {
        Carrier::Att
    } else if n.contains("tmobile") || n.contains("sprint") || n.contains("metropcs") {
        Carrier::TMobile
    } else if n.contains("verizon") {
        Carrier::Verizon
    } else {
        Carrier::Unknown
    }
}

/// AT&T messages a minute per 10DLC campaign, by class.
pub fn att_per_minute(class: &str) -> Option<u32> {
    match class {
        "A" | "B" => Some(4500),
        "C" | "D" => Some(2400),
        "E" | "F" => Some(240),
        "T" => Some(75),
        _ => None,
    }
}

/// T-Mobile daily segments per brand, by trust tier (scores 76-100, 51-75, 26-50, 1-25).
pub fn tmobile_daily(tier: &str) -> Option<i64> {
    match tier {
        "HIGH" => Some(200_000),
        "STANDARD" => Some(40_000),
        "BASIC" => Some(10_000),
        "LOW" => Some(2_000),
        _ => None,
    }
}

/// Verizon's messages a minute per long code (about 6,000).
pub const VERIZON_PER_MINUTE: u32 = 6_000;

/// T-Mobile's day, which resets at midnight US Pacific: its date and when it ends.
pub fn pacific_day(now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    use chrono::TimeZone;
    let tz = chrono_tz::America::Los_Angeles;
    let local = now.with_timezone(&tz).date_naive();
    let next = local + chrono::Duration::days(1);
    let end = tz
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now + chrono::Duration::days(1));
    (local.to_string(), end)
}

#[cfg(test)]
mod carrier_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn carriers_classes_and_the_pacific_day() {
        assert_eq!(carrier(Some("AT&T Mobility")), Carrier::Att);
        assert_eq!(carrier(Some("T-Mobile USA, Inc.")), Carrier::TMobile);
        assert_eq!(carrier(Some("Verizon Wireless")), Carrier::Verizon);
        assert_eq!(carrier(None), Carrier::Unknown);
        assert_eq!(att_per_minute("T"), Some(75));
        assert_eq!(tmobile_daily("STANDARD"), Some(40_000));
        // 2026-11-28 07:30 UTC is still the 27th in California; its day ends at 08:00 UTC.
        let (day, end) = pacific_day(Utc.with_ymd_and_hms(2026, 11, 28, 7, 30, 0).unwrap());
        assert_eq!(day, "2026-11-27");
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 11, 28, 8, 0, 0).unwrap());
    }
}
