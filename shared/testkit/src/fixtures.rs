//! Rows most tests need, written as the superuser (row-level security does not apply), and
//! a phone number that may be texted now whatever the hour.

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

/// An area code (New York, Honolulu, Guam or Puerto Rico) where the next ten minutes are
/// inside the quiet-hours window: tests that send on the wall clock use it, so they do not
/// depend on when they run. Between 11:00 and 12:00 UTC no NANP number is in its window.
pub fn daytime_area() -> &'static str {
    let now = chrono::Utc::now();
    ["212", "808", "671", "787"]
        .into_iter()
        .find(|a| {
            let loc = nextier_domain::quiet_hours::locate(&format!("+1{a}7363100"), None);
            nextier_domain::quiet_hours::allowed(now, &loc)
                && nextier_domain::quiet_hours::allowed(now + chrono::Duration::minutes(10), &loc)
        })
        .expect("one of four zones is in its window (none is between 11:00 and 12:00 UTC)")
}
