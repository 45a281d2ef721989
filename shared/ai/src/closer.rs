//! The closer (SABRINA): times to offer from the team's booking settings, and booking a
//! meeting. Team settings in scope `booking`: `link` (a booking page), or availability:
//! `days` (ISO weekdays, "1,2,3,4,5"), `from` / `until` ("10:00" / "16:00"), `slot_minutes`
//! (30), `notice_hours` (2: the soonest a slot may start), `offer` (2 times), all in the team's
//! zone (`ai` / `time_zone`).
//!
//! A booked meeting moves the lead to `appointment_booked` (where the state machine allows),
//! exits every sequence and ends the nurture cadence, puts the lead on the call queue at the
//! top, and publishes `MeetingBooked`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use nextier_domain::ai::{self, ActiveHours, Tz};
use nextier_domain::ids::{ContactId, OutboxId, TeamId, WorkerId};
use nextier_domain::lead_state::LeadState;
use nextier_store::campaigns as campaign_store;
use nextier_store::nurtures::{self, Meeting};
use nextier_store::outbox::{self, Destination};
use nextier_store::{calls, contacts, workers, StoreError, Tx};

pub const SETTINGS_SCOPE: &str = "booking";

/// The availability the settings describe (weekdays 10:00-16:00 by default).
pub fn availability(s: &HashMap<String, String>, zone: Tz) -> ActiveHours {
    let clock = |k: &str, d: u16| s.get(k).and_then(|v| ai::parse_clock(k, v).ok()).unwrap_or(d);
    let days: Vec<u8> = s
        .get("days")
        .map(|v| v.split(',').filter_map(|d| d.trim().parse::<u8>().ok()).filter(|d| (1..=7).contains(d)).collect())
        .unwrap_or_else(|| vec![1, 2, 3, 4, 5]);
    ActiveHours { from: ai::clock_time(clock("from", 600)), until: ai::clock_time(clock("until", 960)), days, zone }
}

fn number(s: &HashMap<String, String>, k: &str, d: i64, lo: i64, hi: i64) -> i64 {
    s.get(k).and_then(|v| v.trim().parse::<i64>().ok()).filter(|v| (lo..=hi).contains(v)).unwrap_or(d)
}

/// Times to offer (formatted in the team's zone, one a day) and the booking link.
pub fn offer(s: &HashMap<String, String>, zone: Tz, now: DateTime<Utc>) -> (Vec<String>, Option<String>) {
    let link =
        s.get("link").map(|l| l.trim().to_owned()).filter(|l| l.starts_with("https://") || l.starts_with("http://"));
    let hours = availability(s, zone);
    let slot = number(s, "slot_minutes", 30, 5, 240);
    let offer = number(s, "offer", 2, 0, 5) as usize;
    let mut at = now + Duration::hours(number(s, "notice_hours", 2, 0, 168));
    let mut out = Vec::new();
    // Bounded: a window shorter than a slot, or off the slot grid, has no slot at all.
    for _ in 0..500 {
        if out.len() >= offer {
            break;
        }
        let Some(start) = hours.next_open(at) else { break };
        // On the slot grid of the local hour.
        let local = start.with_timezone(&zone);
        let minutes = i64::from(local.minute());
        let rounded = (minutes + slot - 1) / slot * slot;
        let start = start + Duration::minutes(rounded - minutes) - Duration::seconds(i64::from(local.second()));
        if !hours.is_open(start) || !hours.is_open(start + Duration::minutes(slot) - Duration::seconds(1)) {
            at = start + Duration::minutes(1);
            continue;
        }
        out.push(start.with_timezone(&zone).format("%a %b %-d at %-I:%M %p").to_string());
        // The next offer on another day.
        let next_day = hours.day_start(start) + Duration::hours(26);
        at = hours.day_start(next_day);
    }
    (out, link)
}

/// The shortest walk of the lead-state machine from `from` to `to` (empty when there is none
/// or it is already there).
pub fn path(from: LeadState, to: LeadState) -> Vec<LeadState> {
    let mut prev: std::collections::HashMap<LeadState, LeadState> = Default::default();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(s) = queue.pop_front() {
        if s == to {
            let mut out = vec![];
            let mut at = s;
            while at != from {
                out.push(at);
                at = prev[&at];
            }
            out.reverse();
            return out;
        }
        for &n in s.next() {
            if n != from && !prev.contains_key(&n) {
                prev.insert(n, s);
                queue.push_back(n);
            }
        }
    }
    vec![]
}

/// A meeting to book.
#[derive(Debug, Clone)]
pub struct Booking<'a> {
    pub contact: &'a ContactId,
    pub worker: Option<&'a WorkerId>,
    pub starts_at: DateTime<Utc>,
    pub minutes: i64,
    pub notes: Option<&'a str>,
    pub actor: &'a str,
}

/// Books a meeting and does what a booking means, in the caller's transaction; returns the
/// meeting and the staged `MeetingBooked` event (publish it after commit).
pub async fn book(tx: &Tx<'_>, team: &TeamId, b: &Booking<'_>) -> Result<(Meeting, OutboxId), StoreError> {
    let contact = contacts::lock(tx, b.contact).await?;
    if matches!(contact.lead_state, LeadState::Suppressed) {
        return Err(StoreError::Conflict("the lead opted out; no meeting is booked with them".into()));
    }
    let ends_at = b.starts_at + Duration::minutes(b.minutes);
    if let Some(m) = nurtures::overlapping(tx, b.contact, b.starts_at, ends_at).await? {
        return Err(StoreError::Conflict(format!("the lead already has meeting {} at that time", m.id)));
    }
    if let Some(w) = b.worker {
        workers::get(tx, w).await?;
    }
    let meeting = nurtures::book(tx, team, b.contact, b.worker, b.starts_at, ends_at, b.notes, b.actor).await?;
    // To appointment_booked by the state machine's own steps (the shortest way there).
    for to in path(contact.lead_state, LeadState::AppointmentBooked) {
        contacts::transition(tx, team, b.contact, to, Some("meeting booked"), b.actor).await?;
    }
    campaign_store::exit_contact(tx, b.contact, "meeting_booked").await?;
    nurtures::end_for_contact(tx, b.contact, "stopped", "a meeting was booked").await?;
    // The call to hold the meeting, at the top of the queue, to the lead's best number.
    let phone = contact
        .phones
        .iter()
        .find(|p| p.is_primary && !p.do_not_call)
        .or_else(|| contact.phones.iter().find(|p| !p.do_not_call))
        .map(|p| p.e164.clone());
    if let Some(phone) = phone {
        let reason = format!("meeting {} at {}", meeting.id, b.starts_at.to_rfc3339());
        let push = calls::Push {
            contact: b.contact,
            phone: &phone,
            priority: 100,
            reason: &reason,
            source: "meeting",
            max_attempts: 3,
        };
        let (call, _) = calls::push(tx, team, &push).await?;
        nurtures::set_call(tx, &meeting.id, call.id.as_str()).await?;
    }
    let worker = b.worker.map(|w| w.as_str());
    workers::log_event(
        tx,
        team,
        worker,
        Some(b.contact),
        None,
        "meeting_booked",
        "positive",
        Some(meeting.id.as_str()),
    )
    .await?;
    let meeting = nurtures::meeting_get(tx, &meeting.id).await?;
    let event = serde_json::json!({"meetingId": meeting.id, "contactId": meeting.contact_id, "workerId": meeting.worker_id,
        "startsAt": meeting.starts_at, "endsAt": meeting.ends_at, "bookedBy": meeting.booked_by, "callId": meeting.call_id});
    let correlation = nextier_runtime::correlation::current().unwrap_or_default().as_str().to_owned();
    let staged =
        outbox::stage_for_team(tx, team, Destination::Event("MeetingBooked".into()), event, correlation).await?;
    Ok((meeting, staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_booking_walks_the_state_machine() {
        let p = path(LeadState::New, LeadState::AppointmentBooked);
        assert_eq!(p.last(), Some(&LeadState::AppointmentBooked));
        for w in std::iter::once(LeadState::New).chain(p.iter().copied()).collect::<Vec<_>>().windows(2) {
            assert!(w[0].can_move_to(w[1]), "{w:?}");
        }
        assert!(path(LeadState::Suppressed, LeadState::AppointmentBooked).is_empty());
        assert!(path(LeadState::AppointmentBooked, LeadState::AppointmentBooked).is_empty());
    }

    #[test]
    fn offers_are_on_the_grid_inside_availability_one_a_day() {
        let s: HashMap<String, String> = [("from", "10:00"), ("until", "16:00"), ("slot_minutes", "30")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let zone = ai::zone(None);
        // Wednesday 2026-12-02 15:07 UTC = 10:07 local; 2 h notice: 12:07, on the grid 12:30.
        let now: DateTime<Utc> = "2026-12-02T15:07:00Z".parse().unwrap();
        let (times, link) = offer(&s, zone, now);
        assert_eq!(times, vec!["Wed Dec 2 at 12:30 PM", "Thu Dec 3 at 10:00 AM"]);
        assert_eq!(link, None);
        // Friday afternoon: the rest of Friday, then Monday.
        let fri: DateTime<Utc> = "2026-12-04T17:00:00Z".parse().unwrap();
        let (times, _) = offer(&s, zone, fri);
        assert_eq!(times, vec!["Fri Dec 4 at 2:00 PM", "Mon Dec 7 at 10:00 AM"]);
        // Too late in the day for the notice: the next days.
        let late: DateTime<Utc> = "2026-12-04T19:30:00Z".parse().unwrap();
        assert_eq!(offer(&s, zone, late).0, vec!["Mon Dec 7 at 10:00 AM", "Tue Dec 8 at 10:00 AM"]);
        let mut l = s.clone();
        l.insert("link".into(), "https://cal.example.com/acme".into());
        l.insert("offer".into(), "0".into());
        assert_eq!(offer(&l, zone, now), (vec![], Some("https://cal.example.com/acme".to_owned())));
        l.insert("link".into(), "javascript:alert(1)".into());
        assert_eq!(offer(&l, zone, now).1, None, "only web links are offered");
        // A window with no room for a slot offers nothing, and returns.
        let tight: HashMap<String, String> = [("from", "10:00"), ("until", "10:15"), ("slot_minutes", "30")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(offer(&tight, zone, now), (vec![], None));
    }
}
