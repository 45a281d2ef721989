//! Rows most tests need, written as the superuser (row-level security does not apply), and
//! a phone number that may be texted now whatever the hour (on the daytime clock).

use nextier_domain::ids::{RowId, TeamId, UserId};

use crate::TestDb;

/// A team (with the user who created it; no members), and its id. The team's inbox buckets
/// are seeded by the database.
pub async fn team(t: &TestDb, name: &str) -> TeamId {
    let su = t.superuser().await;
    let (team, user) = (TeamId::new(), UserId::new());
    su.execute("INSERT INTO users (id, subject) VALUES ($1, $2)", &[&user.as_str(), &user.as_str()])
        .await
        .expect("insert user");
    su.execute(
        "INSERT INTO teams (id, name, slug, created_by) VALUES ($1::text, $2, $1::text, $3)",
        &[&team.as_str(), &name, &user.as_str()],
    )
    .await
    .expect("insert team");
    team
}

/// The team's postal address (team setting `email/postal_address`), which campaign email
/// must carry.
pub async fn postal_address(t: &TestDb, team: &TeamId) {
    t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'email', 'postal_address', $2)
             ON CONFLICT (team_id, scope, name) DO UPDATE SET value = excluded.value",
            &[&team.as_str(), &"Acme Realty, 1 Main St, Springfield, IL 62701"],
        )
        .await
        .expect("insert postal address");
}

/// A sending (and receiving) number of the team, as if the provider had listed it in the
/// team's subgroup (verified).
pub async fn sending_number(t: &TestDb, team: &TeamId, e164: &str) {
    t.superuser()
        .await
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at) VALUES ($1, $2, $3, 'test', now())",
            &[&RowId::new().as_str(), &team.as_str(), &e164],
        )
        .await
        .expect("insert sending number");
}

/// Area codes in four zones (New York, Honolulu, Guam, Puerto Rico) that between them are
/// inside the 8:00–21:00 sending window at every hour but one.
const DAYTIME_AREAS: [&str; 4] = ["212", "808", "671", "787"];

/// How long a test that sends on a running clock needs its number to stay in its window.
const DAYTIME_SPAN_MINUTES: i64 = 30;

fn in_window(area: &str, from: chrono::DateTime<chrono::Utc>) -> bool {
    let loc = nextier_domain::quiet_hours::locate(&format!("+1{area}7363100"), None);
    (0..=DAYTIME_SPAN_MINUTES)
        .step_by(5)
        .all(|m| nextier_domain::quiet_hours::allowed(from + chrono::Duration::minutes(m), &loc))
}

/// How far ahead of the system clock a test that sends on a running clock stands, so that
/// one of the four zones stays inside its window for the next half hour. Zero at most hours;
/// from about 10:30 to 12:00 UTC, when no North American zone is inside 8:00–21:00, as far
/// as Puerto Rico's morning. Fixed for the process (nextest runs each test in its own), so
/// every part given `OffsetClock(daytime_shift())` agrees. `NEXTIER_TEST_CLOCK_SHIFT_MINUTES`
/// asks for at least that shift, to rehearse the shifted path at any hour.
pub fn daytime_shift() -> chrono::Duration {
    static SHIFT: std::sync::OnceLock<chrono::Duration> = std::sync::OnceLock::new();
    *SHIFT.get_or_init(|| {
        let least: i64 =
            std::env::var("NEXTIER_TEST_CLOCK_SHIFT_MINUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        let now = chrono::Utc::now();
        (least.max(0)..least.max(0) + 24 * 60)
            .step_by(5)
            .map(chrono::Duration::minutes)
            .find(|shift| DAYTIME_AREAS.iter().any(|a| in_window(a, now + *shift)))
            .expect("some zone opens within a day")
    })
}

/// The time on the tests' daytime clock: the system's, [`daytime_shift`] ahead.
pub fn daytime_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + daytime_shift()
}

/// An area code whose next half hour, on the daytime clock, is inside its sending window:
/// tests that send on a running clock text it and give the parts that check quiet hours
/// `OffsetClock(daytime_shift())`, so they do not depend on the hour they run at.
pub fn daytime_area() -> &'static str {
    let now = daytime_now();
    DAYTIME_AREAS.into_iter().find(|a| in_window(a, now)).expect("the shift puts one zone in its window")
}
