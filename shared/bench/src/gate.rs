//! `nextier-bench gate [messages]`: campaign steps through the campaign-sequence consumer's
//! path (lock the enrolment, exit rules, render, the outbound gate: suppression with its
//! lock, quiet hours, record the message, the sandbox transport, the status timeline,
//! execution row, advance) on one consumer, with no rate limits: one message per call (the
//! baseline: how it was handled before batches) and SQS batches of ten (as deployed), in the
//! same run; then batches on four consumers at once; then ten simulated minutes against a
//! 75-a-minute bucket on the Postgres limiter, with the count for each minute.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use nextier_campaigns::gate::{Gate, SandboxTransport};
use nextier_campaigns::sequence::{SequenceJob, Sequencer};
use nextier_domain::ids::{CampaignId, EnrolmentId, TeamId};
use nextier_domain::rate::{Bucket, Limit, Take};
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::PgRateLimiter;
use nextier_platform::ports::clock::ManualClock;
use nextier_platform::RateLimiter;
use nextier_store::Db;
use nextier_testkit::pg::connect;

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/gate");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = seed_demo(&database.admin_url).await?;
    let admin = connect(&database.admin_url).await?;
    crate::tick::seed(&admin, &team, 2 * n, 1, 4500).await?;
    let jobs: Vec<SequenceJob> = admin
        .query("SELECT id, campaign_id FROM campaign_enrolments ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| SequenceJob {
            team_id: TeamId::from_trusted(team.clone()),
            campaign_id: CampaignId::from_trusted(r.get(1)),
            enrolment_id: EnrolmentId::from_trusted(r.get(0)),
            step: 1,
            slot: None,
        })
        .collect();
    let db = Db::connect(&database.app_url, 12)?;
    // Wednesday 2 December 2026, 10:00 in New York: inside quiet hours for every number.
    let clock = ManualClock::at(Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap());
    let transport = Arc::new(SandboxTransport::new());
    let seq = Arc::new(Sequencer {
        db: db.clone(),
        gate: Arc::new(Gate::sandbox(transport.clone())),
        clock: Arc::new(clock),
        queue: None,
    });
    let (first, second) = jobs.split_at(n);
    let half = n / 2;
    // Baseline: one message per call, as the consumer handled a batch before.
    let started = Instant::now();
    for job in &first[..half] {
        seq.process(job).await?;
    }
    let single = started.elapsed().as_secs_f64();
    // Batches of ten, as SQS hands them over: one transaction, pipelined, delivered concurrently.
    let started = Instant::now();
    for batch in first[half..].chunks(10) {
        for r in seq.process_all(batch).await {
            r?;
        }
    }
    let batched = started.elapsed().as_secs_f64();
    anyhow::ensure!(transport.sent().len() == n, "sent {} of {n}", transport.sent().len());
    let (single_rate, batch_rate) = (half as f64 / single, (n - half) as f64 / batched);
    println!(
        "one consumer, sandbox transport, no limits: one message per call {single_rate:.0} messages/s ({:.2} ms each); \
         batches of ten {batch_rate:.0} messages/s ({:.2} ms each): {:.1}x",
        single * 1000.0 / half as f64,
        batched * 1000.0 / (n - half) as f64,
        batch_rate / single_rate
    );
    // Batches of ten, four consumers at once (as Lambda runs several), on the same two
    // cores as Postgres.
    let limited = seq.clone();
    let started = Instant::now();
    let tasks: Vec<_> = second
        .chunks(n.div_ceil(4))
        .map(|part| {
            let (seq, part) = (limited.clone(), part.to_vec());
            tokio::spawn(async move {
                for batch in part.chunks(10) {
                    for r in seq.process_all(batch).await {
                        r?;
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let secs4 = started.elapsed().as_secs_f64();
    let recorded: i64 = admin.query_one("SELECT count(*) FROM messages WHERE status = 'sent'", &[]).await?.get(0);
    anyhow::ensure!(recorded as usize == 2 * n, "recorded {recorded} of {}", 2 * n);
    anyhow::ensure!(transport.sent().len() == 2 * n, "sent {} of {}", transport.sent().len(), 2 * n);
    println!("  batches of ten, four consumers: {:.0} messages/s ({n} in {secs4:.2} s)", n as f64 / secs4);

    // Ten simulated minutes against 75 a minute (burst 1), always a message waiting.
    let limiter = PgRateLimiter::new(db.clone());
    let b = [Bucket::new("att:bench-campaign", Limit::per_minute(75, 1))];
    let t0 = Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap();
    let mut now = t0;
    let mut per_minute = [0u32; 10];
    let mut refusals = 0;
    while now < t0 + Duration::minutes(10) {
        match limiter.take(&b, 1, now).await? {
            Take::Granted => per_minute[((now - t0).num_seconds() / 60) as usize] += 1,
            Take::Refused { retry_at, .. } => {
                refusals += 1;
                now = retry_at;
            }
        }
    }
    let total: u32 = per_minute.iter().sum();
    println!(
        "75/minute bucket, 10 simulated minutes: per minute {per_minute:?}, max {}, utilisation {:.1}% ({total} of 750), {refusals} refusals answered with a retry time",
        per_minute.iter().max().unwrap_or(&0),
        f64::from(total) / 7.5
    );
    database.stop();
    Ok(())
}
