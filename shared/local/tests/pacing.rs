//! Campaigns send at their rate, through the path a deployed system runs: the campaign-tick
//! schedule and the campaign-sequence consumer as the local runtime registers them, the
//! local queue (SQS semantics, whole-second delays), the outbound gate with the Postgres
//! token buckets, and the sandbox provider; the sends read back from `messages`.
//!
//! The clock is simulated so ten minutes take seconds, but nothing is retried "at the exact
//! time": the tick runs once a minute, a deferred step comes back only through the queue
//! (whole-second delays, as SQS), and up to ten consumer invocations run at once (the
//! template's MaximumConcurrency), each waiting on the clock for its rate-limit slots.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nextier_campaigns::lifecycle::{self, Who};
use nextier_campaigns::SEQUENCE_QUEUE;
use nextier_domain::campaign::{CampaignStatus, Delay};
use nextier_domain::ids::{CampaignId, TeamId, UserId};
use nextier_local::registry::{Consumer, Registry, Schedule};
use nextier_platform::local::{FolderBlobStore, PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::Queue;
use nextier_store::campaigns::{self, Channel, Settings, StepContent};
use nextier_store::{scope, Scope};
use nextier_testkit::TestDb;
use tokio::task::JoinSet;

/// Noon in New York on a weekday: every recipient (212) is inside the quiet-hours window.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 17, 0, 0).unwrap()
}

/// The template's MaximumConcurrency for the campaign-sequence consumer.
const CONCURRENCY: usize = 25;

struct Team {
    id: TeamId,
    admins: (UserId, UserId),
}

async fn team(t: &TestDb, sms_per_minute: u32) -> Team {
    let su = t.superuser().await;
    let id = nextier_testkit::fixtures::team(t, "pacing").await;
    let admins = (UserId::new(), UserId::new());
    for u in [&admins.0, &admins.1] {
        su.execute("INSERT INTO users (id, subject) VALUES ($1, $2)", &[&u.as_str(), &u.as_str()]).await.unwrap();
        su.execute(
            "INSERT INTO team_members (team_id, user_id, role, status) VALUES ($1, $2, 'ADMIN', 'APPROVED')",
            &[&id.as_str(), &u.as_str()],
        )
        .await
        .unwrap();
    }
    // The team's own limit, and the limit for numbers whose carrier is unknown (all of them here).
    for name in ["sms_per_minute", "unknown_carrier_per_minute"] {
        su.execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'sending', $2, $3)",
            &[&id.as_str(), &name, &sms_per_minute.to_string()],
        )
        .await
        .unwrap();
    }
    Team { id, admins }
}

/// A running one-step SMS campaign at `per_minute` with `audience` contacts (New York mobiles).
async fn campaign(t: &TestDb, team: &Team, per_minute: i32, audience: usize, first: usize) -> CampaignId {
    let su = t.superuser().await;
    let ids: Vec<String> = su
        .query(
            "WITH made AS (
                 INSERT INTO contacts (id, team_id, first_name, score)
                 SELECT 'con_' || lpad(($3::bigint + g)::text, 26, '0'), $1, 'P', 50 FROM generate_series(1, $2::int) g
                 RETURNING id),
             phones AS (
                 INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
                 SELECT 'row_' || substr(id, 5), $1, id,
                        '+1212' || (736 + (substr(id, 5)::bigint / 10000))::text
                                || lpad((substr(id, 5)::bigint % 10000)::text, 4, '0'),
                        'mobile', true
                   FROM made)
             SELECT id FROM made",
            &[&team.id.as_str(), &(audience as i32), &(first as i64)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(team.id.clone())).await.unwrap();
    let settings = Settings {
        name: format!("{per_minute} a minute"),
        description: None,
        starts_at: None,
        ends_at: None,
        sends_per_minute: per_minute,
        exit_on_reply: true,
        exit_on_meeting: true,
        auto_enrol: None,
    };
    let author = &team.admins.0;
    let id = campaigns::create(&tx, &team.id, &settings, Some(author), author.as_str()).await.unwrap();
    let step = StepContent {
        channel: Channel::Sms,
        delay: Delay::Minutes(0),
        subject: None,
        body: "Hi {{firstName}}, still selling?".into(),
        template_id: None,
        opener_category: None,
        variants: vec![],
    };
    campaigns::insert_step(&tx, &team.id, &id, None, &step).await.unwrap();
    tx.commit().await.unwrap();
    // The audience, enrolled in one statement (what `enrol` writes, without its checks).
    let n = su
        .execute(
            "INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, exclusive, enrolled_by)
             SELECT 'enr_' || substr(c, 5), $1, $2, c, true, 'test' FROM unnest($3::text[]) c",
            &[&team.id.as_str(), &id.as_str(), &ids],
        )
        .await
        .unwrap();
    assert_eq!(n as usize, audience);
    for (to, who) in [
        (CampaignStatus::Staged, &team.admins.0),
        (CampaignStatus::Approved, &team.admins.1),
        (CampaignStatus::Running, &team.admins.1),
    ] {
        let mut conn = t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(team.id.clone())).await.unwrap();
        let who = Who { label: who.as_str(), user: Some(who), admin: true };
        lifecycle::apply(&tx, &team.id, &id, to, who, None, t0() - Duration::minutes(1)).await.unwrap();
        tx.commit().await.unwrap();
    }
    id
}

/// Runs the tick and the consumer on the simulated clock from `t0()` for `minutes`.
async fn simulate(t: &TestDb, minutes: i64) {
    let clock = ManualClock::driven(t0());
    // Each invocation holds a connection and its limiter call takes another, as each Lambda
    // has its own pool: room for all of them at once.
    let app = nextier_store::Db::connect(&t.app_url(), 2 * CONCURRENCY + 4).unwrap();
    let worker = nextier_store::Db::connect(&t.worker_url(), 2 * CONCURRENCY + 4).unwrap();
    let queue = PgQueue::new(worker.clone()).with_clock(Arc::new(clock.clone()));
    let publisher = OutboxPublisher::new(
        worker.clone(),
        Arc::new(queue.clone()),
        Arc::new(PgEventBus::new(worker.clone(), "default")),
    );
    let blobs = Arc::new(FolderBlobStore::new(
        nextier_testkit::state_dir("pacing").join(&t.name),
        "http://localhost",
        b"pacing-secret",
    ));
    let registry = Registry::standard_at(app, worker, blobs, publisher, Arc::new(clock.clone()), queue.clone());
    let consumer: Consumer = registry.consumers.iter().find(|c| c.queue == SEQUENCE_QUEUE).cloned().unwrap();
    let tick: Schedule = registry.schedules.iter().find(|s| s.name == "campaign-tick").cloned().unwrap();
    queue.declare(&consumer.specs).await.unwrap();

    let end = t0() + Duration::minutes(minutes);
    let mut next_tick = t0();
    let mut running: JoinSet<()> = JoinSet::new();
    let su = t.superuser().await;
    let started = std::time::Instant::now();
    loop {
        let now = clock.now();
        if now >= end {
            break;
        }
        if std::env::var("PACING_TRACE").is_ok() {
            eprintln!(
                "{} running {} sleeping {} real {:?}",
                now.format("%M:%S%.3f"),
                running.len(),
                clock.sleeping(),
                started.elapsed()
            );
        }
        if now >= next_tick {
            (tick.handler)().await.unwrap();
            next_tick += Duration::minutes(1);
        }
        // Hand visible messages to consumer invocations, ten at most at once.
        while running.len() < CONCURRENCY {
            let batch = queue.receive(SEQUENCE_QUEUE, consumer.batch_size).await.unwrap();
            if batch.is_empty() {
                break;
            }
            let (handler, queue) = (consumer.handler.clone(), queue.clone());
            running.spawn(async move {
                let event = nextier_local::runner::sqs_event(SEQUENCE_QUEUE, &batch);
                let resp = handler(event).await;
                let failed: Vec<String> = resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
                assert!(failed.is_empty(), "no step fails: {failed:?}");
                for m in &batch {
                    queue.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
                }
            });
        }
        // Until every invocation has finished or waits on the clock.
        loop {
            while let Some(done) = running.try_join_next() {
                done.unwrap();
            }
            if running.len() <= clock.sleeping() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // On to the next thing that happens: a tick, a slot, a message becoming visible.
        let visible: Option<DateTime<Utc>> = su
            .query_one("SELECT min(visible_at) FROM local_queue_messages WHERE queue = $1", &[&SEQUENCE_QUEUE])
            .await
            .unwrap()
            .get(0);
        let visible = visible.filter(|v| *v > now || running.len() < CONCURRENCY);
        // Time moves in steps of at least 250 ms (a poller's pace); a text still goes at its
        // slot, which is when it is recorded as sent.
        let next = [Some(next_tick), clock.next_wake(), visible].into_iter().flatten().min().unwrap_or(end);
        clock.set(next.max(now + Duration::milliseconds(250)).min(next_tick).min(end));
    }
    // Let the invocations that hold slots in the window finish.
    clock.set(end + Duration::seconds(5));
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
}

/// When each of a campaign's texts went (its slot) in the first `minutes`, in order.
async fn sends(t: &TestDb, campaign: &CampaignId, minutes: i64) -> Vec<DateTime<Utc>> {
    t.superuser()
        .await
        .query(
            "SELECT sent_at FROM messages WHERE campaign_id = $1 AND status = 'sent' AND sent_at < $2 ORDER BY sent_at",
            &[&campaign.as_str(), &(t0() + Duration::minutes(minutes))],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The most sends in any 60-second window.
fn busiest_minute(at: &[DateTime<Utc>]) -> usize {
    let (mut j, mut most) = (0, 0);
    for i in 0..at.len() {
        while at[i] - at[j] >= Duration::seconds(60) {
            j += 1;
        }
        most = most.max(i - j + 1);
    }
    most
}

/// A campaign alone in its team sent `rate` a minute for `minutes`: within 2%, never more
/// in any minute, never two closer than its interval.
async fn at_its_rate(t: &TestDb, rate: i32, id: &CampaignId, minutes: i64) -> usize {
    let at = sends(t, id, minutes).await;
    let want = minutes as usize * rate as usize;
    assert!(at.len() as f64 >= 0.98 * want as f64, "{rate}/min: {} sent in {minutes} minutes, want {want}", at.len());
    assert!(at.len() <= want, "{rate}/min: {} sent in {minutes} minutes, more than {want}", at.len());
    assert!(busiest_minute(&at) <= rate as usize, "{rate}/min: {} in one minute", busiest_minute(&at));
    let interval = Duration::microseconds(60_000_000 / i64::from(rate));
    assert!(at.windows(2).all(|w| w[1] - w[0] >= interval), "{rate}/min: two texts closer than {interval}");
    at.len()
}

async fn setup() -> TestDb {
    if std::env::var("PACING_TRACE").is_ok() {
        nextier_runtime::telemetry::init("pacing");
    }
    TestDb::new().await
}

#[tokio::test]
async fn campaigns_send_at_their_rate_evenly_and_never_over_a_limit_for_ten_minutes() {
    let t = setup().await;
    // One team per rate (its own limit well above it), and a team whose limit of 100 a minute
    // two campaigns at 75 share.
    let mut alone = Vec::new();
    let mut first = 0;
    for rate in [1, 75, 600] {
        let team = team(&t, 6000).await;
        let audience = rate as usize * 11;
        alone.push((rate, campaign(&t, &team, rate, audience, first).await));
        first += audience;
    }
    let shared = team(&t, 100).await;
    let a = campaign(&t, &shared, 75, 1000, first).await;
    let b = campaign(&t, &shared, 75, 1000, first + 1000).await;
    t.superuser().await.batch_execute("ANALYZE").await.unwrap();

    simulate(&t, 10).await;

    let mut report = Vec::new();
    for (rate, id) in &alone {
        report.push((*rate, at_its_rate(&t, *rate, id, 10).await));
    }
    let (sa, sb) = (sends(&t, &a, 10).await, sends(&t, &b, 10).await);
    let mut both: Vec<DateTime<Utc>> = sa.iter().chain(&sb).copied().collect();
    both.sort();
    // Two campaigns' steps reserve the team's slots in whatever order their batches reach the
    // limiter; served earliest-first within a batch they fill it alternately, but a run of one
    // campaign across batches leaves a team slot unused now and then (measured: 95-97% on an
    // idle machine, 92.8% once with the cores busy with a build; 90% is asserted).
    assert!(both.len() >= 900, "the shared team limit is used: {} of 1000", both.len());
    assert!(busiest_minute(&both) <= 100, "the team's limit: {} in one minute", busiest_minute(&both));
    assert!(busiest_minute(&sa) <= 75 && busiest_minute(&sb) <= 75, "each campaign's own limit");
    assert!(sa.len() >= 400 && sb.len() >= 400, "the campaigns share the team: {} and {}", sa.len(), sb.len());
    eprintln!("sent in 10 simulated minutes: {report:?}; shared team {} + {}", sa.len(), sb.len());
}

/// 4,500 a minute (AT&T's class A/B) is 45,000 texts in ten minutes: the suite runs two
/// (`infra/dev.sh bench pacing` runs ten, optimised).
#[tokio::test]
async fn a_campaign_at_4500_a_minute_sends_4500_a_minute() {
    let t = setup().await;
    let minutes = std::env::var("PACING_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(2);
    let team = team(&t, 6000).await;
    let id = campaign(&t, &team, 4500, 4500 * (minutes as usize + 1), 0).await;
    t.superuser().await.batch_execute("ANALYZE").await.unwrap();
    simulate(&t, minutes).await;
    let sent = at_its_rate(&t, 4500, &id, minutes).await;
    eprintln!("4500/min: sent {sent} in {minutes} simulated minutes");
}
