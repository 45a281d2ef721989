//! `nextier-bench integrations [contacts]` (default 1,000,000):
//!
//! 1. A contacts export of every contact through the real task handler (keyset pages, CSV,
//!    a multipart upload into the folder blob store): rows per second and the process's peak
//!    memory above what it held before, against a raw `COPY (SELECT ...) TO STDOUT` of the
//!    same rows in the same run and database.
//! 2. Contacts pushed per minute to the fake Zoho with its per-minute call limit and the team's
//!    CRM call rate set to the same figure, through the real push task (100 records an
//!    upsert): the rate reached against the limit's ceiling (calls × 100 a minute), and how
//!    many calls the fake refused with 429 (none expected: we stay within its limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use nextier_domain::ids::TeamId;
use nextier_integrations::Worker;
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::{FolderBlobStore, PgQueue, PgRateLimiter};
use nextier_store::{exports, integrations, scope, Db, Scope};
use nextier_testkit::fake_zoho::FakeZoho;
use nextier_testkit::pg::connect;
use serde_json::json;

fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Resets the peak-RSS mark (Linux: writing 5 to clear_refs), so the next peak is the export's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/integrations");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = TeamId::parse("team", &seed_demo(&database.admin_url).await?)?;
    let admin = connect(&database.admin_url).await?;
    let started = Instant::now();
    admin
        .execute(
            // The last 12,000 changed half an hour ago, the rest two hours ago: the push (its
            // cursor an hour back) takes the 12,000 (over a minute's worth at the limit).
            "INSERT INTO contacts (id, team_id, first_name, last_name, company, tags, score, source, updated_at)
             SELECT 'con_' || lpad(upper(to_hex(g)), 26, '0'), $1, 'First' || g, 'Last' || g,
                    CASE WHEN g % 7 = 0 THEN '=SUM(A1)' ELSE 'Company ' || (g % 1000) END,
                    ARRAY['lead', 'fl'], g % 101, 'bench',
                    CASE WHEN g > $2::bigint - 12000 THEN now() - interval '30 minutes' ELSE now() - interval '2 hours' END
               FROM generate_series(1, $2::bigint) g",
            &[&team.as_str(), &(n as i64)],
        )
        .await?;
    admin
        .execute(
            "INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
             SELECT 'row_' || lpad(upper(to_hex(g)), 26, '0'), $1, 'con_' || lpad(upper(to_hex(g)), 26, '0'),
                    '+1312' || (200 + (g / 10000) % 700) || lpad((g % 10000)::text, 4, '0'), 'mobile', true
               FROM generate_series(1, $2::bigint) g",
            &[&team.as_str(), &(n as i64)],
        )
        .await?;
    admin.batch_execute("ANALYZE contacts; ANALYZE contact_phones").await?;
    println!("seeded {n} contacts with phones in {:.1} s", started.elapsed().as_secs_f64());

    let db = Db::connect(&database.worker_url, 4)?;
    let queue = PgQueue::new(db.clone());
    queue
        .declare(&nextier_platform::local::QueueSpec::with_dlq(
            nextier_integrations::TASK_QUEUE,
            Duration::from_secs(60),
            5,
        ))
        .await?;
    let zoho = FakeZoho::start().await;
    let crm = Arc::new(nextier_providers::zoho::Zoho::new(nextier_providers::zoho::Config {
        client_id: nextier_testkit::fake_zoho::CLIENT_ID.into(),
        client_secret: nextier_testkit::fake_zoho::CLIENT_SECRET.into(),
        scopes: "ZohoCRM.modules.ALL".into(),
        timeout: Duration::from_secs(10),
        retry: Default::default(),
    }));
    let worker = Worker {
        db: db.clone(),
        queue: Arc::new(queue.clone()),
        blobs: Arc::new(FolderBlobStore::new(root.join("blobs"), "http://127.0.0.1:9", b"bench")),
        limiter: Arc::new(PgRateLimiter::new(db.clone())),
        crm,
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        crm_hosts: vec![zoho.accounts(), zoho.api()],
        export_part_bytes: nextier_platform::ports::MIN_PART * 2,
        publisher: None,
    };

    // 1. The export.
    let export = {
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let e = exports::create(&tx, &team, "contacts", &json!({}), "bench").await?;
        tx.commit().await?;
        e
    };
    let rss_before = rss_mib("VmRSS:");
    reset_peak();
    let started = Instant::now();
    let out = nextier_integrations::exports::run(&worker, &team, &export.id).await?;
    let export_secs = started.elapsed().as_secs_f64();
    let peak = rss_mib("VmHWM:");
    anyhow::ensure!(out.rows == n as i64, "exported {} of {n}", out.rows);

    // Baseline: the same rows as CSV straight out of Postgres, read and dropped.
    let started = Instant::now();
    let stream = admin
        .copy_out(
            "COPY (SELECT c.id, c.first_name, c.last_name, c.company, p.e164, c.score FROM contacts c
                     LEFT JOIN contact_phones p ON p.contact_id = c.id ORDER BY c.id) TO STDOUT (FORMAT csv)",
        )
        .await?;
    futures::pin_mut!(stream);
    let (mut copied_bytes, mut chunks) = (0usize, 0usize);
    while let Some(chunk) = stream.next().await {
        copied_bytes += chunk?.len();
        chunks += 1;
    }
    let copy_secs = started.elapsed().as_secs_f64();
    let export_rate = n as f64 / export_secs;
    let copy_rate = n as f64 / copy_secs;
    println!(
        "export: {n} contacts in {export_secs:.1} s = {export_rate:.0} rows/s, {:.1} MiB written; \
         peak RSS {peak:.0} MiB (RSS before {rss_before:.0} MiB, so {:.0} MiB for the export)",
        out.bytes as f64 / 1_048_576.0,
        (peak - rss_before).max(0.0)
    );
    println!(
        "raw COPY TO STDOUT of the same rows: {copy_secs:.1} s = {copy_rate:.0} rows/s ({:.1} MiB in {chunks} chunks)",
        copied_bytes as f64 / 1_048_576.0
    );
    println!("export speed / raw COPY speed: {:.2}", export_rate / copy_rate);

    // 2. The push within Zoho's limit.
    let per_minute: u32 = 120;
    zoho.state.limit_per_minute(per_minute as usize);
    let (access, refresh) = zoho.state.grant();
    admin
        .batch_execute(&format!(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ('{team}', 'crm', 'calls_per_minute', '{per_minute}');
             INSERT INTO integrations (id, team_id, provider, status, accounts_server, api_domain, access_expires_at,
                                       connected_by, push_after_at)
             VALUES ('int_01BENCH00000000000000000000', '{team}', 'zoho', 'connected', '{}', '{}', now() + interval '1 hour',
                     'bench', now() - interval '1 hour');
             INSERT INTO integration_secrets (integration_id, team_id, refresh_token, access_token)
             VALUES ('int_01BENCH00000000000000000000', '{team}', '{refresh}', '{access}');",
            zoho.accounts(),
            zoho.api(),
        ))
        .await?;
    let started = Instant::now();
    let mut pushed = 0i64;
    for _ in 0..100 {
        let task = {
            let mut conn = db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let t =
                integrations::create_task(&tx, &team, "int_01BENCH00000000000000000000", "push", &json!({}), "bench")
                    .await?;
            tx.commit().await?;
            t
        };
        nextier_integrations::crm::run_task(&worker, &team, &task.id).await?;
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let done = integrations::get_task(&tx, &task.id).await?;
        tx.commit().await?;
        if done.status == "queued" {
            // Handed back with a wait (our rate or a 429): wait it out as the queue would.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let n = done.result["pushed"].as_i64().unwrap_or(0);
        pushed += n;
        if n == 0 && !done.result["more"].as_bool().unwrap_or(false) {
            break;
        }
    }
    let push_secs = started.elapsed().as_secs_f64();
    let rate = pushed as f64 / push_secs * 60.0;
    let ceiling = f64::from(per_minute) * 100.0;
    println!(
        "push: {pushed} contacts to the fake Zoho in {push_secs:.1} s = {rate:.0} contacts/min \
         (limit {per_minute} calls/min, ceiling {ceiling:.0} contacts/min: {:.0}%), {} upsert calls, {} answered 429",
        100.0 * rate / ceiling,
        zoho.state.count("upsert"),
        zoho.state.count("limited"),
    );
    database.stop();
    Ok(())
}
