//! `nextier-bench webhook [seconds]`: the inbound path.
//! 1. The SignalHouse webhook through the local runtime on loopback: every request a new
//!    signed delivery (verify, store once, stage and publish to the inbound queue), then the
//!    same delivery repeated (verify, recognise the duplicate), each with 1 and 16
//!    connections; the static `GET /openapi.json` in the same run is the baseline. The
//!    runtime's inbound consumer drains the queue meanwhile, as it would deployed.
//! 2. The inbound consumer alone: replies from distinct senders (a realistic mix of classes)
//!    processed by 1 and by 4 workers: route, contact, record, classify, inbox item, actions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::{Job, Processor};
use nextier_local::{start, LocalConfig};
use serde_json::json;

use crate::load;

const NUMBER: &str = "+12127363100";
const TEXTS: [&str; 8] = [
    "Yes I am interested",
    "How much would you offer?",
    "ok",
    "not interested",
    "STOP",
    "wrong number",
    "call me at 516-407-9249",
    "Is this about the house on Main?",
];

fn sender(n: u64) -> String {
    // Distinct valid NANP numbers: area codes 201-989 with exchange 736.
    let mut area = 212 + (n / 10_000) % 700;
    if area % 100 == 11 {
        area += 1; // N11 codes are not area codes
    }
    format!("+1{area}736{:04}", n % 10_000)
}

pub async fn run(seconds: u64) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root();
    let home = root.join("target/bench/webhook");
    let _ = std::fs::remove_dir_all(&home);
    let mut config = LocalConfig::from_env()?;
    config.home = home;
    config.port = 0;
    config.admin_url = None;
    config.app_url = None;
    config.worker_url = None;
    let rt = start(config).await?;
    let http = reqwest_like_post(
        &format!("{}/teams/{}/sending-numbers", rt.api_url, rt.demo_team),
        &rt.dev_token,
        json!({"number": NUMBER}).to_string(),
    )
    .await?;
    anyhow::ensure!(http.is_success(), "adding the sending number: {http}");

    let url: hyper::Uri = format!("{}/webhooks/signalhouse", rt.api_url).parse()?;
    let secret = rt.webhook_secret.clone();
    let dur = Duration::from_secs(seconds);
    let stamp = chrono::Utc::now().timestamp_millis();
    for concurrency in [1usize, 16] {
        let base = load::run(&format!("{}/openapi.json", rt.api_url), None, concurrency, dur).await?;
        let (u, s) = (url.clone(), secret.clone());
        let fresh = load::run_with(concurrency, dur, move |n| {
            let n = n + concurrency as u64 * 1_000_000;
            let body = json!({"event": "message.received", "from": sender(n), "to": NUMBER,
                              "text": TEXTS[(n % 8) as usize], "message_id": format!("bench-{stamp}-{n}")})
            .to_string();
            signed(&u, &s, &format!("bench-{stamp}-{n}"), body)
        })
        .await?;
        let (u, s) = (url.clone(), secret.clone());
        let dup_body = json!({"event": "message.received", "from": sender(1), "to": NUMBER, "text": "ok",
                              "message_id": format!("bench-dup-{stamp}")})
        .to_string();
        let dup =
            load::run_with(concurrency, dur, move |_| signed(&u, &s, &format!("bench-dup-{stamp}"), dup_body.clone()))
                .await?;
        if let Some(o) = oha(&url.to_string(), &secret, concurrency, seconds, stamp) {
            println!(
                "  oha (the same delivery repeated, {concurrency} connection(s)): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, success {:.3}",
                o.0, o.1, o.2, o.3
            );
        }
        println!(
            "webhook, {concurrency} connection(s), {seconds} s each: new signed deliveries {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors | the same delivery repeated {:.0} req/s, p99 {:.2} ms | baseline GET /openapi.json {:.0} req/s, p99 {:.2} ms | new/baseline {:.2}",
            fresh.rps, fresh.p50_ms, fresh.p99_ms, fresh.errors, dup.rps, dup.p99_ms, base.rps, base.p99_ms, fresh.rps / base.rps
        );
    }
    let stored: i64 = nextier_testkit::pg::connect(&rt.admin_database_url)
        .await?
        .query_one("SELECT count(*) FROM webhook_events", &[])
        .await?
        .get(0);
    println!("  stored deliveries: {stored} (each new one once; every repeat acknowledged as a duplicate)");
    // Let the runtime's consumer finish the backlog, timing it, before measuring the consumer
    // alone.
    let admin = nextier_testkit::pg::connect(&rt.admin_database_url).await?;
    let started = Instant::now();
    let backlog: i64 =
        admin.query_one("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL", &[]).await?.get(0);
    loop {
        let left: i64 =
            admin.query_one("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL", &[]).await?.get(0);
        if left == 0 || started.elapsed() > Duration::from_secs(300) {
            println!(
                "  the local runtime's consumer drained the remaining {backlog} deliveries in {:.1} s ({left} left)",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let result = consumer(&rt.worker_database_url).await;
    rt.stop().await;
    result
}

/// Cross-checks the repeated-delivery figure with `oha` (from `$OHA` or the PATH) when it is
/// installed: one signed request, sent over and over. Returns (req/s, p50 ms, p99 ms, success).
fn oha(url: &str, secret: &str, concurrency: usize, seconds: u64, stamp: i64) -> Option<(f64, f64, f64, f64)> {
    let bin = std::env::var("OHA").unwrap_or_else(|_| "oha".into());
    let body = json!({"event": "message.received", "from": sender(2), "to": NUMBER, "text": "ok",
                      "message_id": format!("bench-oha-{stamp}")})
    .to_string();
    let ts = chrono::Utc::now().timestamp_millis();
    let sig = sign_signalhouse(secret.as_bytes(), ts, body.as_bytes());
    let out = std::process::Command::new(bin)
        .args(["-z", &format!("{seconds}s"), "-c", &concurrency.to_string(), "--no-tui", "--output-format", "json"])
        .args(["-m", "POST", "-H", "content-type: application/json"])
        .args(["-H", &format!("x-signalhouse-signature-v1: t={ts},v1={sig}")])
        .args(["-H", &format!("x-signalhouse-delivery-id: bench-oha-{stamp}")])
        .args(["-d", &body, url])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let ms = |k: &str| v["latencyPercentiles"][k].as_f64().unwrap_or(0.0) * 1000.0;
    Some((
        v["summary"]["requestsPerSec"].as_f64()?,
        ms("p50"),
        ms("p99"),
        v["summary"]["successRate"].as_f64().unwrap_or(0.0),
    ))
}

fn signed(url: &hyper::Uri, secret: &str, delivery: &str, body: String) -> hyper::Request<Full<Bytes>> {
    let ts = chrono::Utc::now().timestamp_millis();
    let sig = sign_signalhouse(secret.as_bytes(), ts, body.as_bytes());
    hyper::Request::post(url.clone())
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
        .header("x-signalhouse-delivery-id", delivery)
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

async fn reqwest_like_post(url: &str, token: &str, body: String) -> anyhow::Result<hyper::StatusCode> {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let req = hyper::Request::post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = client.request(req).await?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

async fn consumer(worker_url: &str) -> anyhow::Result<()> {
    let db = nextier_store::Db::connect(worker_url, 8)?;
    let n: u64 = 5_000;
    let stamp = chrono::Utc::now().timestamp_millis();
    let jobs: Vec<Job> = (0..n)
        .map(|i| Job::Webhook {
            webhook_event_id: format!("whk_bench{i}"),
            payload: json!({"event": "message.received", "from": sender(5_000_000 + i), "to": NUMBER,
                            "text": TEXTS[(i % 8) as usize], "message_id": format!("consumer-{stamp}-{i}")}),
        })
        .collect();
    let p = Arc::new(Processor {
        db: db.clone(),
        gate: Arc::new(nextier_campaigns::gate::sandbox()),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        outbox: None,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    });
    let (one, rest) = jobs.split_at(1_000);
    let (batched, four) = rest.split_at(1_000);
    let started = Instant::now();
    for j in one {
        p.process(j, 1).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "inbound consumer, 1 worker: {:.0} messages/s ({} in {secs:.2} s, {:.2} ms each: route, contact, record, classify, inbox item, actions)",
        one.len() as f64 / secs,
        one.len(),
        secs * 1000.0 / one.len() as f64
    );
    // The consumer as deployed: SQS batches of ten through the queue handler, which works the
    // batch's conversations side by side (`BATCH_CONCURRENCY`).
    let started = Instant::now();
    let mut failed = 0;
    for chunk in batched.chunks(10) {
        let msgs: Vec<nextier_platform::ReceivedMessage> = chunk
            .iter()
            .enumerate()
            .map(|(i, j)| nextier_platform::ReceivedMessage {
                id: format!("m{i}"),
                receipt_handle: format!("r{i}"),
                body: serde_json::to_string(j).expect("a job serialises"),
                receive_count: 1,
                attributes: Default::default(),
            })
            .collect();
        let resp = nextier_inbound::handle_queue(
            &p,
            nextier_inbound::QUEUE,
            nextier_local::runner::sqs_event("inbound", &msgs),
        )
        .await;
        failed += resp.batch_item_failures.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "inbound consumer, 1 worker, SQS batches of 10 (conversations side by side, {} at once): {:.0} messages/s ({} in {secs:.2} s, {failed} failed)",
        nextier_inbound::BATCH_CONCURRENCY,
        batched.len() as f64 / secs,
        batched.len()
    );
    let chunks: Vec<Vec<Job>> = four.chunks(four.len() / 4).map(|c| c.to_vec()).collect();
    let started = Instant::now();
    let mut workers = Vec::new();
    for chunk in chunks {
        let p = p.clone();
        workers.push(tokio::spawn(async move {
            for j in &chunk {
                p.process(j, 1).await?;
            }
            anyhow::Ok(chunk.len())
        }));
    }
    let mut done = 0;
    for w in workers {
        done += w.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("inbound consumer, 4 workers: {:.0} messages/s ({done} in {secs:.2} s)", done as f64 / secs);
    Ok(())
}
