//! `nextier-bench flow [events]`: issue 18's two figures, on the local runtime (the whole
//! backend on embedded defaults, as `infra/dev.sh run` starts it).
//! 1. Workflows: events per second from the bus to completed workflow actions. `events` lead-state
//!    changes are committed through the outbox; the bus's workflow rule queues them; the
//!    workflow consumer's handler (two at once, as deployed) starts a two-action workflow on
//!    each. Baseline in the same run: the same number of messages received and deleted bare.
//! 2. The live feed: 50 long polls wait on the team's feed over HTTP while events are committed
//!    one at a time; latency is commit → the poll's answer, at p50 and p99. Baseline in the same
//!    run: an authenticated GET of the team over the same connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nextier_domain::ids::TeamId;
use nextier_local::{start, LocalConfig};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::Queue;
use nextier_store::outbox::{self, Destination};
use nextier_store::{scope, Scope};
use serde_json::json;

pub async fn run(events: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/flow");
    let _ = std::fs::remove_dir_all(&root);
    let mut config = LocalConfig::from_env()?;
    config.home = root;
    config.port = 0;
    config.admin_url = None;
    config.app_url = None;
    config.worker_url = None;
    let rt = start(config).await?;
    let team = TeamId::parse("team", &rt.demo_team)?;
    let workflows = workflow_throughput(&rt, &team, events).await?;
    println!(
        "workflows: {events} events bus -> queue -> consumer -> 2 actions each in {:.2} s = {:.0} events/s | baseline, the same messages received and deleted bare: {:.0} messages/s | ratio {:.2}",
        workflows.0, events as f64 / workflows.0, events as f64 / workflows.1, workflows.1 / workflows.0
    );
    let (p50, p99, base_p50, base_p99, n) = feed_latency(&rt, &team).await?;
    println!(
        "live feed: 50 waiting long polls, {n} events written one at a time: write -> answer p50 {p50:.1} ms, p99 {p99:.1} ms | baseline GET /teams/{{id}} on the same connections p50 {base_p50:.1} ms, p99 {base_p99:.1} ms"
    );
    rt.stop().await;
    Ok(())
}

async fn stage(rt: &nextier_local::Running, team: &TeamId, kind: &str, data: serde_json::Value) -> anyhow::Result<()> {
    let mut conn = rt.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let id = outbox::stage_for_team(&tx, team, Destination::Event(kind.into()), data, "bench".into()).await?;
    tx.commit().await?;
    let publisher = OutboxPublisher::new(rt.db.clone(), Arc::new(rt.queue.clone()), Arc::new(rt.bus.clone()));
    publisher.publish(&[id]).await;
    Ok(())
}

/// (seconds through the consumer, seconds for the bare baseline).
async fn workflow_throughput(rt: &nextier_local::Running, team: &TeamId, events: usize) -> anyhow::Result<(f64, f64)> {
    let admin = nextier_testkit::pg::connect(&rt.admin_database_url).await?;
    let ids: Vec<String> = (0..events).map(|_| nextier_domain::ids::ContactId::new().to_string()).collect();
    admin
        .execute(
            "INSERT INTO contacts (id, team_id, first_name, score, tags, source)
             SELECT id, $1, 'Lead', 60, '{cold}', 'bench' FROM unnest($2::text[]) id",
            &[&team.as_str(), &ids],
        )
        .await?;
    let ids = &ids;
    admin
        .execute(
            "INSERT INTO workflows (id, team_id, name, trigger, trigger_event, conditions, actions, created_by)
             VALUES ('wf_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, 'bench', '{\"type\": \"lead_state_changed\", \"to\": \"responded\"}',
                     'ContactLeadStateChanged', '{\"minScore\": 50}',
                     '[{\"type\": \"add_tag\", \"tag\": \"hot\"}, {\"type\": \"remove_tag\", \"tag\": \"cold\"}]', 'bench')",
            &[&team.as_str()],
        )
        .await?;
    // The runtime's own consumer would race the measurement: events are put on a queue of our
    // own by a bus with the same rule.
    let queue_name = "workflow-events-bench";
    rt.queue.declare(&nextier_platform::local::QueueSpec::with_dlq(queue_name, Duration::from_secs(720), 5)).await?;
    let bus = nextier_platform::local::PgEventBus::new(rt.db.clone(), "bench").with_rule(
        rt.queue.clone(),
        queue_name,
        nextier_domain::workflow::EVENTS,
    );
    let publisher = OutboxPublisher::new(rt.db.clone(), Arc::new(rt.queue.clone()), Arc::new(bus));
    let fill = |publisher: OutboxPublisher| async move {
        for chunk in ids.chunks(100) {
            let mut conn = rt.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let mut ids = Vec::new();
            for contact in chunk {
                ids.push(
                    outbox::stage_for_team(
                        &tx,
                        team,
                        Destination::Event("ContactLeadStateChanged".into()),
                        json!({"contactId": contact, "from": "touched", "to": "responded"}),
                        "bench".into(),
                    )
                    .await?,
                );
            }
            tx.commit().await?;
            publisher.publish(&ids).await;
        }
        anyhow::Ok(())
    };
    // Baseline: the same messages, received and deleted.
    fill(publisher.clone()).await?;
    let started = Instant::now();
    loop {
        let batch = rt.queue.receive(queue_name, 10).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            rt.queue.delete(queue_name, &m.receipt_handle).await?;
        }
    }
    let bare = started.elapsed().as_secs_f64();
    // The consumer: the outbox ids are new, so each event starts its workflow once.
    fill(publisher).await?;
    let engine = nextier_workflows::Engine {
        db: rt.worker_db.clone(),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        publisher: None,
    };
    let started = Instant::now();
    let drain = || async {
        loop {
            let batch = rt.queue.receive(queue_name, 10).await?;
            if batch.is_empty() {
                return anyhow::Ok(());
            }
            let event = nextier_local::runner::sqs_event(queue_name, &batch);
            let resp = nextier_workflows::handle(&engine, event).await;
            anyhow::ensure!(resp.batch_item_failures.is_empty(), "a workflow event failed");
            for m in batch {
                rt.queue.delete(queue_name, &m.receipt_handle).await?;
            }
        }
    };
    let (a, b) = tokio::join!(drain(), drain());
    a?;
    b?;
    let took = started.elapsed().as_secs_f64();
    let done: i64 = admin
        .query_one("SELECT count(*) FROM workflow_runs WHERE status = 'done' AND team_id = $1", &[&team.as_str()])
        .await?
        .get(0);
    anyhow::ensure!(done as usize == events, "{done} runs done of {events}");
    Ok((took, bare))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// (p50, p99, baseline p50, baseline p99, events).
async fn feed_latency(rt: &nextier_local::Running, team: &TeamId) -> anyhow::Result<(f64, f64, f64, f64, usize)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = |url: String| {
        hyper::Request::get(url)
            .header("authorization", format!("Bearer {}", rt.dev_token))
            .body(Full::new(Bytes::new()))
            .expect("a request")
    };
    let body = |resp: hyper::Response<hyper::body::Incoming>| async move {
        let bytes = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok(serde_json::from_slice::<serde_json::Value>(&bytes)?)
    };
    // Fifty pollers answer far more often than a team's UIs would: lift its API limit.
    let admin = nextier_testkit::pg::connect(&rt.admin_database_url).await?;
    admin
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'api', 'requests_per_minute', '100000')
             ON CONFLICT DO NOTHING",
            &[&team.as_str()],
        )
        .await?;
    // Baseline on the same client.
    let mut base = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = client.request(get(format!("{}/teams/{team}", rt.api_url))).await?;
        body(r).await?;
        base.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    base.sort_by(|a, b| a.total_cmp(b));
    let start = body(client.request(get(format!("{}/teams/{team}/events?wait=0", rt.api_url))).await?).await?;
    let cursor = start["cursor"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!cursor.is_empty(), "the feed did not answer: {start}");
    const EVENTS: usize = 40;
    let committed: Arc<std::sync::Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..50 {
        let (client, committed, mut cursor) = (client.clone(), committed.clone(), cursor.clone());
        let (url, token) = (rt.api_url.clone(), rt.dev_token.clone());
        let team = team.to_string();
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut seen = 0;
            while seen < EVENTS {
                let req = hyper::Request::get(format!("{url}/teams/{team}/events?wait=20&cursor={cursor}"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Full::new(Bytes::new()))?;
                let resp = client.request(req).await?;
                let got = resp.into_body().collect().await?.to_bytes();
                let at = Instant::now();
                let f: serde_json::Value = serde_json::from_slice(&got)?;
                anyhow::ensure!(f["cursor"].is_string(), "the feed did not answer: {f}");
                for e in f["events"].as_array().into_iter().flatten() {
                    let Some(n) = e["data"]["n"].as_i64() else { continue };
                    seen += 1;
                    if let Some((_, t)) = committed.lock().expect("a lock").iter().find(|(k, _)| *k == n) {
                        lat.push(at.duration_since(*t).as_secs_f64() * 1000.0);
                    }
                }
                cursor = f["cursor"].as_str().unwrap_or_default().to_owned();
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..EVENTS as i64 {
        let at = Instant::now();
        committed.lock().expect("a lock").push((n, at));
        stage(rt, team, "CampaignStateChanged", json!({"n": n})).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await??);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((percentile(&all, 0.5), percentile(&all, 0.99), percentile(&base, 0.5), percentile(&base, 0.99), EVENTS))
}
