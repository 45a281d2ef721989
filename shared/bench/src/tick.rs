//! `nextier-bench tick [enrolments]`: seeds that many due enrolments of running campaigns and
//! times the campaign tick claiming them and queueing one message each (Postgres queue, ten
//! to a batch). In the same run: the claims alone, and the queue sends alone, as baselines.
//! Prints enrolments per second and database round trips per claimed enrolment.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use futures::stream::{self, StreamExt};
use nextier_campaigns::tick::{tick, TickConfig};
use nextier_campaigns::SEQUENCE_QUEUE;
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::{PgQueue, QueueSpec};
use nextier_platform::{OutgoingMessage, Queue};
use nextier_store::{campaigns, Db};
use nextier_testkit::pg::connect;

const CAMPAIGNS: usize = 25;

/// Seeds `n` contacts (with distinct New York mobile numbers) due in `campaigns` running
/// campaigns of one SMS step each.
pub async fn seed(
    admin: &tokio_postgres::Client,
    team: &str,
    n: usize,
    campaigns: usize,
    per_minute: u32,
) -> anyhow::Result<()> {
    let per = n.div_ceil(campaigns);
    admin
        .batch_execute(&format!(
            "INSERT INTO contacts (id, team_id, first_name, score)
               SELECT format('con_%s', lpad(i::text, 26, '0')), '{team}', 'First' || i, 50 FROM generate_series(1, {n}) i;
             INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
               SELECT format('row_%s', lpad(i::text, 26, '0')), '{team}', format('con_%s', lpad(i::text, 26, '0')),
                      format('+1212%s%s', 200 + i / 10000, lpad((i % 10000)::text, 4, '0')), 'mobile', true
                 FROM generate_series(1, {n}) i;
             INSERT INTO campaigns (id, team_id, name, created_by, sends_per_minute)
               SELECT format('cmp_%s', lpad(i::text, 26, '0')), '{team}', 'bench ' || i, 'bench', {per_minute}
                 FROM generate_series(1, {campaigns}) i;
             INSERT INTO campaign_steps (id, team_id, campaign_id, position, channel, delay_unit, delay_amount, body)
               SELECT format('stp_%s', lpad(i::text, 26, '0')), '{team}', format('cmp_%s', lpad(i::text, 26, '0')),
                      1, 'SMS', 'minutes', 0, 'Hi {{{{firstName}}}}, a note from Acme. Reply STOP to opt out.'
                 FROM generate_series(1, {campaigns}) i;
             UPDATE campaigns SET status = 'STAGED';
             UPDATE campaigns SET status = 'APPROVED', approved_by = 'bench', approved_at = now();
             UPDATE campaigns SET status = 'RUNNING';
             INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, enrolled_by, next_run_at)
               SELECT format('enr_%s', lpad(i::text, 26, '0')), '{team}',
                      format('cmp_%s', lpad((1 + (i - 1) / {per})::text, 26, '0')),
                      format('con_%s', lpad(i::text, 26, '0')), 'bench', now() - interval '1 minute'
                 FROM generate_series(1, {n}) i;
             ANALYZE;"
        ))
        .await?;
    Ok(())
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/tick");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = seed_demo(&database.admin_url).await?;
    let admin = connect(&database.admin_url).await?;
    let started = Instant::now();
    seed(&admin, &team, n, CAMPAIGNS, 4500).await?;
    println!("seeded {n} due enrolments in {CAMPAIGNS} running campaigns in {:.1} s", started.elapsed().as_secs_f64());

    let db = Db::connect(&database.worker_url, 8)?;
    let queue = PgQueue::new(db.clone());
    queue.declare(&QueueSpec::with_dlq(SEQUENCE_QUEUE, StdDuration::from_secs(180), 5)).await?;
    queue.declare(&QueueSpec::with_dlq("bench-baseline", StdDuration::from_secs(180), 5)).await?;
    let budget = i32::try_from(n)?;
    let cfg = TickConfig { budget, ..TickConfig::from_env() };
    println!("chunk {} per claim round trip, {} queue batches in flight", cfg.chunk, cfg.concurrency);
    let now = Utc::now();

    // Baseline 1: the claims alone (same function, same chunks), then give them back.
    let conn = db.conn().await?;
    let started = Instant::now();
    let (mut claimed, mut trips) = (0usize, 0usize);
    loop {
        let got = campaigns::claim_due(&conn, now, budget, cfg.chunk, cfg.lease.as_secs_f64()).await?;
        trips += 1;
        claimed += got.len();
        if (got.len() as i32) < cfg.chunk {
            break;
        }
    }
    let claim_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(claimed == n, "claimed {claimed} of {n}");
    admin.batch_execute("UPDATE campaign_enrolments SET claimed_until = NULL").await?;
    admin.batch_execute("VACUUM ANALYZE campaign_enrolments").await?;

    // Baseline 2: the queue sends alone, same batches and concurrency.
    let body = r#"{"teamId":"team_01JD8Z6Q3M4N5P6R7S8T9V0W1X","campaignId":"cmp_00000000000000000000000001","enrolmentId":"enr_00000000000000000000000001","step":1}"#;
    let q: Arc<dyn Queue> = Arc::new(queue.clone());
    let started = Instant::now();
    let batches: Vec<Vec<OutgoingMessage>> = (0..n.div_ceil(10))
        .map(|b| {
            (0..10.min(n - b * 10))
                .map(|_| OutgoingMessage {
                    body: body.into(),
                    correlation_id: "bench".into(),
                    team_id: Some(team.clone()),
                    ..Default::default()
                })
                .collect()
        })
        .collect();
    let sent: usize = stream::iter(batches)
        .map(|b| {
            let q = q.clone();
            async move { q.send_batch("bench-baseline", b).await.map(|r| r.len()).unwrap_or(0) }
        })
        .buffer_unordered(cfg.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    let queue_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(sent == n, "queued {sent} of {n}");

    // The tick itself: claim and queue.
    let started = Instant::now();
    let summary = tick(&db, &queue, now, &cfg).await?;
    let tick_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(summary.enqueued as usize == n, "tick queued {} of {n}", summary.enqueued);
    anyhow::ensure!(queue.depth(SEQUENCE_QUEUE).await? as usize == n, "queue depth differs");

    println!(
        "campaign tick, {n} due enrolments: {:.0} enrolments/s claimed and queued ({tick_secs:.2} s); \
         {} claim round trips = {:.4} per enrolment, {} SendMessageBatch calls = 0.1 per enrolment",
        n as f64 / tick_secs,
        summary.claim_round_trips,
        summary.claim_round_trips as f64 / n as f64,
        n.div_ceil(10)
    );
    println!(
        "  baselines in the same run: claims alone {:.0}/s ({trips} round trips), queue sends alone {:.0}/s; \
         tick / queue-alone ratio {:.2}",
        n as f64 / claim_secs,
        n as f64 / queue_secs,
        queue_secs / tick_secs
    );

    // What a production tick does: the default budget out of the same 100,000 due.
    admin.batch_execute("UPDATE campaign_enrolments SET claimed_until = NULL").await?;
    admin.batch_execute("VACUUM ANALYZE campaign_enrolments").await?;
    let one = TickConfig::from_env();
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let s = tick(&db, &queue, now, &one).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(s.enqueued as i32 == one.budget, "a budget tick queued {}", s.enqueued);
        admin
            .batch_execute("UPDATE campaign_enrolments SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
            .await?;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  one tick at the default budget ({} of {n} due): median {:.0} ms, min {:.0} ms (5 runs)",
        one.budget, times[2], times[0]
    );
    database.stop();
    Ok(())
}
