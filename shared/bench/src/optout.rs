//! `nextier-bench optout [stops]`: opt-out latency, from the webhook's 200 for a STOP to the
//! suppression committed, under a mixed load of replies and AI jobs with a slow LLM (every
//! completion takes 3 s) and a carrier that answers 503, against the same path with no load
//! in the same run (the baseline). The path is the deployed one: the signed webhook, the
//! outbox published to queues with SQS semantics, one poller per queue (inbound, answers, ai)
//! handing batches to the Lambda handler under a deadline, the real gate and the real
//! SignalHouse and LLM clients against local fake servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::Processor;
use nextier_outbound::{Gate, SandboxTransport};
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::Queue;
use nextier_providers::llm::{self, Chain, LlmSuggester, OpenAi};
use nextier_providers::retry::Retry;
use nextier_providers::signalhouse::{self, SignalHouse};
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::json;
use tower::ServiceExt;

const SECRET: &[u8] = b"whsec_bench";
const NUMBER: &str = "+12127363100";
const LOAD_TEXTS: [&str; 4] = ["Yes I'm interested, what's your offer?", "HELP", "How much for the house?", "ok"];

async fn fake(path: &'static str, delay: Duration, status: StatusCode) -> anyhow::Result<String> {
    let app = Router::new().route(
        path,
        post(move || async move {
            tokio::time::sleep(delay).await;
            let body = json!({"choices": [{"message": {"role": "assistant", "content": "Thanks, when can we talk?"}}]});
            (status, axum::Json(body))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

fn signed(from: &str, text: &str, id: &str) -> Request<Body> {
    let body = json!({"event": "message.received", "text": text, "to": NUMBER, "from": from,
                      "message_id": format!("sh-{id}"), "timestamp": "2026-01-27T18:21:10.78-05:00"})
    .to_string();
    let ts = chrono::Utc::now().timestamp_millis();
    let sig = sign_signalhouse(SECRET, ts, body.as_bytes());
    Request::post(webhook::PATH)
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
        .header("x-signalhouse-delivery-id", id)
        .body(Body::from(body))
        .expect("request")
}

fn poll(queue: Arc<PgQueue>, p: Arc<Processor>, name: &'static str, visibility: Duration) {
    tokio::spawn(async move {
        loop {
            let batch = queue.receive(name, 10).await.unwrap_or_default();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let records: Vec<_> = batch
                .iter()
                .map(|m| {
                    json!({"messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
                                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                                "messageAttributes": {}})
                })
                .collect();
            let Ok(event) = serde_json::from_value(json!({"Records": records})) else { continue };
            let deadline = Some(Instant::now() + visibility);
            let resp =
                nextier_runtime::deadline::within(deadline, nextier_inbound::handle_queue(&p, name, event)).await;
            let failed: Vec<String> = resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
            for m in batch.iter().filter(|m| !failed.contains(&m.id)) {
                let _ = queue.delete(name, &m.receipt_handle).await;
            }
        }
    });
}

struct Rig {
    t: nextier_testkit::TestDb,
    router: Router,
}

async fn rig(llm_delay: Duration) -> anyhow::Result<Rig> {
    let t = nextier_testkit::TestDb::new().await;
    let team = nextier_testkit::fixtures::team(&t, "Bench").await;
    nextier_testkit::fixtures::sending_number(&t, &team, NUMBER).await;
    let queue = Arc::new(PgQueue::new(t.worker.clone()));
    let queues = [
        (nextier_inbound::QUEUE, Duration::from_secs(30)),
        (nextier_inbound::ANSWERS_QUEUE, Duration::from_secs(30)),
        (nextier_inbound::AI_QUEUE, Duration::from_secs(90)),
    ];
    for (q, v) in queues {
        queue.declare(&QueueSpec::with_dlq(q, v, 5)).await?;
    }
    let publisher =
        OutboxPublisher::new(t.worker.clone(), queue.clone(), Arc::new(PgEventBus::new(t.worker.clone(), "default")));
    let llm_url = fake("/v1/chat/completions", llm_delay, StatusCode::OK).await?;
    let sh_url = fake("/message/sms", Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE).await?;
    let retry = Retry { attempts: 3, backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(2) };
    let sms = SignalHouse::new(signalhouse::Config {
        base_url: sh_url,
        api_key: "sh-bench".into(),
        status_callback_url: None,
        retry: retry.clone(),
        timeout: Duration::from_secs(10),
    });
    let suggester = LlmSuggester {
        chain: Chain(vec![Arc::new(OpenAi::new(llm::Config {
            base_url: format!("{llm_url}/v1"),
            api_key: "sk-bench".into(),
            model: "bench".into(),
            retry,
            timeout: Duration::from_secs(20),
        }))]),
    };
    let sandbox = Arc::new(SandboxTransport::new());
    let p = Arc::new(Processor {
        db: t.worker.clone(),
        gate: Arc::new(Gate::new(Arc::new(sms), sandbox.clone(), sandbox)),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        outbox: Some(publisher.clone()),
        suggester: Arc::new(suggester),
    });
    for (q, v) in queues {
        poll(queue.clone(), p.clone(), q, v);
    }
    let router = webhook::router(WebhookState::new(t.worker.clone(), publisher, vec![SECRET.to_vec()]));
    Ok(Rig { t, router })
}

/// Latencies of `stops` STOPs, each after `load` other replies.
async fn measure(rig: &Rig, stops: usize, load: usize, tag: &str) -> anyhow::Result<Vec<f64>> {
    let su = rig.t.superuser().await;
    let mut out = Vec::with_capacity(stops);
    for s in 0..stops {
        for l in 0..load {
            let n = s * load + l;
            let from = format!("+1312{:03}{:04}", 736 + (n / 10_000) % 200, n % 10_000);
            let r = rig
                .router
                .clone()
                .oneshot(signed(&from, LOAD_TEXTS[n % LOAD_TEXTS.len()], &format!("{tag}-l{n}")))
                .await?;
            anyhow::ensure!(r.status() == StatusCode::OK, "load reply refused");
        }
        let stopper = format!("+1773{:03}{:04}", 736 + s / 10_000, s % 10_000);
        let r = rig.router.clone().oneshot(signed(&stopper, "STOP", &format!("{tag}-s{s}"))).await?;
        anyhow::ensure!(r.status() == StatusCode::OK, "STOP refused");
        let accepted = Instant::now();
        loop {
            let n: i64 =
                su.query_one("SELECT count(*) FROM suppressions WHERE address = $1", &[&stopper]).await?.get(0);
            if n > 0 {
                break;
            }
            anyhow::ensure!(accepted.elapsed() < Duration::from_secs(120), "a STOP was not suppressed in 2 minutes");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out.push(accepted.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(stops: usize) -> anyhow::Result<()> {
    let quiet = rig(Duration::from_millis(50)).await?;
    let mut base = measure(&quiet, stops, 0, "q").await?;
    let busy = rig(Duration::from_secs(3)).await?;
    let mut loaded = measure(&busy, stops, 10, "b").await?;
    let (b50, b99, l50, l99) =
        (pct(&mut base, 0.5), pct(&mut base, 0.99), pct(&mut loaded, 0.5), pct(&mut loaded, 0.99));
    println!(
        "opt-out latency (webhook 200 -> suppression committed), {stops} STOPs each: \
         no load p50 {b50:.1} ms, p99 {b99:.1} ms | behind 10 replies each (AI jobs on a 3 s LLM, \
         HELP answers to a carrier answering 503) p50 {l50:.1} ms, p99 {l99:.1} ms | ratio p50 {:.2}, p99 {:.2}",
        l50 / b50,
        l99 / b99
    );
    Ok(())
}
