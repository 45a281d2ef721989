//! `nextier-bench enrich [contacts]`: contacts enriched per minute through the real pipeline
//! (the enrichment queue, the consumer's handler run as Lambda's mapping would, two at once,
//! the Tracerfy and Trestle clients against the local fake of their contracts), against a
//! baseline in the same run: the same provider calls made directly by the clients, with no
//! queue, database or rules. Then the same list again as new contacts (the first set deleted):
//! the share of provider calls the cache saved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nextier_domain::ids::{ContactId, TeamId};
use nextier_enrichment::{Pipeline, Timing, QUEUE};
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::{PgEventBus, PgQueue, PgRateLimiter, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::SystemClock;
use nextier_platform::ports::enrichment::{PhoneIntel, Submitted, TraceQuery, Tracer};
use nextier_platform::Queue;
use nextier_providers::enrichment::{apollo, tracerfy, trestle};
use nextier_providers::retry::Retry;
use nextier_store::enrichment::SourceKind;
use nextier_store::{scope, Db, Scope};
use nextier_testkit::fakes::{FakeProviders, Found, APOLLO_KEY, TRACERFY_TOKEN, TRESTLE_KEY};
use nextier_testkit::pg::connect;

fn number(i: usize) -> String {
    format!("+1813{:03}{:04}", 200 + (i / 10_000) % 700, i % 10_000)
}

fn retry() -> Retry {
    Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) }
}

async fn contacts(admin: &tokio_postgres::Client, team: &TeamId, n: usize) -> anyhow::Result<Vec<ContactId>> {
    let ids: Vec<ContactId> = (0..n).map(|_| ContactId::new()).collect();
    let raw: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    admin
        .execute(
            "INSERT INTO contacts (id, team_id, first_name, last_name)
             SELECT id, $2, 'First' || n, 'Last' || n FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)",
            &[&raw, &team.as_str()],
        )
        .await?;
    admin
        .execute(
            "INSERT INTO contact_addresses (id, team_id, contact_id, line1, city, state, zip)
             SELECT 'row_' || substr(md5(id), 1, 26), $2, id, n || ' Main St', 'Tampa', 'FL', '33602'
               FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)",
            &[&raw, &team.as_str()],
        )
        .await?;
    Ok(ids)
}

async fn drain(p: &Pipeline, queue: &PgQueue) -> anyhow::Result<()> {
    let mut idle = 0;
    while idle < 3 {
        let batch = queue.receive(QUEUE, nextier_enrichment::CONSUMER.batch_size).await?;
        if batch.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        idle = 0;
        let event = nextier_local::runner::sqs_event(QUEUE, &batch);
        let resp = nextier_enrichment::handle(p, event).await;
        let failed: Vec<&str> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in &batch {
            if failed.contains(&m.id.as_str()) {
                queue.change_visibility(QUEUE, &m.receipt_handle, Duration::ZERO).await?;
            } else {
                queue.delete(QUEUE, &m.receipt_handle).await?;
            }
        }
    }
    Ok(())
}

async fn job(db: &Db, outbox: &OutboxPublisher, team: &TeamId, ids: &[ContactId]) -> anyhow::Result<()> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let started =
        nextier_enrichment::start(&tx, team, SourceKind::Contacts, &serde_json::json!({}), ids, "bench").await?;
    let nextier_enrichment::Started::Job { first, .. } = started else { anyhow::bail!("no job: {started:?}") };
    tx.commit().await?;
    outbox.publish(&[first]).await;
    Ok(())
}

/// Runs the job to its end with the deployed concurrency (two handlers at once).
async fn run_job(p: &Arc<Pipeline>, queue: &PgQueue) -> anyhow::Result<f64> {
    let started = Instant::now();
    let workers: Vec<_> = (0..nextier_enrichment::CONSUMER.concurrency)
        .map(|_| {
            let (p, q) = (p.clone(), queue.clone());
            tokio::spawn(async move { drain(&p, &q).await })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/enrich");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = TeamId::parse("team", &seed_demo(&database.admin_url).await?)?;
    let admin = connect(&database.admin_url).await?;
    admin
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES
               ($1, 'enrichment', 'daily_cap_tracerfy', '1000000'), ($1, 'enrichment', 'daily_cap_trestle', '1000000')",
            &[&team.as_str()],
        )
        .await?;
    let db = Db::connect(&database.app_url, 8)?;
    let fake = FakeProviders::start().await;
    for i in 0..n {
        fake.state.find(
            &format!("First{}", i + 1),
            &format!("Last{}", i + 1),
            Found { mobiles: vec![number(i)], ..Found::default() },
        );
        fake.state.number(&number(i), "Mobile", ["A", "B", "C", "D"][i % 4], 40 + (i % 60) as i64, "Verizon Wireless");
    }
    let tracer = Arc::new(tracerfy::Tracerfy::new(tracerfy::Config {
        base_url: format!("{}/tracerfy", fake.base),
        api_key: Some(TRACERFY_TOKEN.into()),
        enhanced: false,
        retry: retry(),
        timeout: Duration::from_secs(10),
    }));
    let intel = Arc::new(trestle::Trestle::new(trestle::Config {
        base_url: format!("{}/trestle", fake.base),
        api_key: Some(TRESTLE_KEY.into()),
        retry: retry(),
        timeout: Duration::from_secs(10),
    }));

    // Baseline: the same provider calls, straight from the clients.
    let queries: Vec<TraceQuery> = (0..n)
        .map(|i| TraceQuery {
            first_name: Some(format!("First{}", i + 1)),
            last_name: Some(format!("Last{}", i + 1)),
            address: Some(format!("{} Main St", i + 1)),
            city: Some("Tampa".into()),
            state: Some("FL".into()),
            zip: Some("33602".into()),
        })
        .collect();
    let started = Instant::now();
    for chunk in queries.chunks(tracer.max_batch()) {
        let Submitted::Queued(r) = tracer.submit(None, chunk).await? else { anyhow::bail!("Tracerfy queues") };
        anyhow::ensure!(tracer.poll(None, &r, chunk).await?.is_some(), "the fake answers at once");
    }
    for i in 0..n {
        intel.lookup(None, &number(i), Some("First Last")).await?;
    }
    let bare_secs = started.elapsed().as_secs_f64();
    let bare_calls = fake.state.calls.lock().map(|c| c.len()).unwrap_or(0);
    fake.state.calls.lock().map(|mut c| c.clear()).ok();

    let queue = PgQueue::new(db.clone());
    queue.declare(&QueueSpec::with_dlq(QUEUE, Duration::from_secs(360), 8)).await?;
    queue.declare(&QueueSpec::with_dlq(nextier_campaigns::SYNC_QUEUE, Duration::from_secs(180), 5)).await?;
    let outbox =
        OutboxPublisher::new(db.clone(), Arc::new(queue.clone()), Arc::new(PgEventBus::new(db.clone(), "default")));
    let pipeline = Arc::new(Pipeline {
        db: db.clone(),
        outbox: outbox.clone(),
        queue: Arc::new(queue.clone()),
        limiter: Arc::new(PgRateLimiter::new(db.clone())),
        clock: Arc::new(SystemClock),
        tracer,
        other_tracers: vec![],
        phone_intel: intel,
        companies: Arc::new(apollo::Apollo::new(apollo::Config {
            base_url: format!("{}/apollo", fake.base),
            api_key: Some(APOLLO_KEY.into()),
            retry: retry(),
            timeout: Duration::from_secs(10),
        })),
        timing: Timing {
            poll_every: Duration::ZERO,
            between_batches: Duration::ZERO,
            retry_after: Duration::from_secs(1),
            ..Timing::default()
        },
    });

    let first = contacts(&admin, &team, n).await?;
    job(&db, &outbox, &team, &first).await?;
    let secs = run_job(&pipeline, &queue).await?;
    let calls1 = fake.state.calls.lock().map(|c| c.len()).unwrap_or(0);
    let (done, ready): (i64, i64) = {
        let r = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE stage = 'done'), count(*) FILTER (WHERE outcome = 'ready') FROM enrichment_items",
                &[],
            )
            .await?;
        (r.get(0), r.get(1))
    };
    anyhow::ensure!(done as usize == n, "{done} of {n} contacts done");
    let rate = n as f64 / secs * 60.0;
    let bare_rate = n as f64 / bare_secs * 60.0;
    println!(
        "enrichment: {n} contacts (trace, grade, rules, score) in {secs:.1} s = {rate:.0} contacts/min; {ready} ready; \
         {calls1} provider calls"
    );
    println!("baseline, the same {bare_calls} provider calls straight from the clients: {bare_secs:.1} s = {bare_rate:.0} contacts/min");
    println!("pipeline speed / bare client calls: {:.2}", rate / bare_rate);

    // The same people again as new contacts (the first set deleted): the cache answers.
    admin.execute("DELETE FROM contacts", &[]).await?;
    fake.state.calls.lock().map(|mut c| c.clear()).ok();
    let second = contacts(&admin, &team, n).await?;
    job(&db, &outbox, &team, &second).await?;
    let secs2 = run_job(&pipeline, &queue).await?;
    let calls2 = fake.state.calls.lock().map(|c| c.len()).unwrap_or(0);
    let hits: i64 = admin
        .query_one("SELECT coalesce(sum(cache_hits), 0)::int8 FROM enrichment_costs c JOIN enrichment_jobs j ON j.id = c.job_id WHERE j.total > 0", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    println!(
        "re-run of the same list: {calls2} provider calls (was {calls1}), {hits} answers from the cache: {:.0}% of calls saved; {secs2:.1} s = {:.0} contacts/min",
        100.0 * (1.0 - calls2 as f64 / calls1.max(1) as f64),
        n as f64 / secs2 * 60.0
    );
    database.stop();
    Ok(())
}
