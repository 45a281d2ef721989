//! Opt-outs have their own time budget. With the LLM hanging for a minute and SignalHouse
//! answering 503 to everything, a STOP that arrives behind ten other replies is suppressed
//! within seconds and never reaches a dead-letter queue: replies and receipts have the inbound
//! queue to themselves, answers and suggestions run on their own queues, and every provider
//! call is bounded by the invocation's deadline.
//!
//! Everything is the deployed path: the signed webhook, the outbox published to queues with
//! SQS semantics (visibility timeout, receive counts, DLQ), one poller per queue handing
//! batches to the Lambda handler under a deadline, the real gate, the real SignalHouse and LLM
//! clients against local fake servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::Processor;
use nextier_outbound::{Gate, SandboxTransport};
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::Queue;
use nextier_providers::llm::{self, Chain, LlmSuggester, OpenAi};
use nextier_providers::retry::Retry;
use nextier_providers::signalhouse::{self, SignalHouse};
use nextier_testkit::fixtures::{sending_number, team};
use nextier_testkit::TestDb;
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::json;
use tower::ServiceExt;

const SECRET: &[u8] = b"whsec_budget";
const NUMBER: &str = "+12127363100";

/// A server at `path` that answers after `delay` with `status`.
async fn fake(path: &'static str, delay: Duration, status: StatusCode) -> String {
    let app = Router::new().route(
        path,
        post(move || async move {
            tokio::time::sleep(delay).await;
            (status, axum::Json(json!({"message": "busy"})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn signed(from: &str, text: &str, n: usize) -> Request<Body> {
    let body = json!({"event": "message.received", "text": text, "to": NUMBER, "from": from,
                      "message_id": format!("sh-budget-{n}"), "timestamp": "2026-01-27T18:21:10.78-05:00"})
    .to_string();
    let ts = Utc::now().timestamp_millis();
    let sig = sign_signalhouse(SECRET, ts, body.as_bytes());
    Request::post(webhook::PATH)
        .header("content-type", "application/json")
        .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
        .header("x-signalhouse-delivery-id", format!("budget-{n}"))
        .body(Body::from(body))
        .unwrap()
}

/// The event source mapping of one queue: receive up to ten, hand them to the handler under
/// the invocation's deadline (the visibility timeout, as Lambda's timeout is), delete what
/// succeeded. Runs until the test ends.
fn poll(queue: Arc<PgQueue>, p: Arc<Processor>, name: &'static str, visibility: Duration) {
    tokio::spawn(async move {
        loop {
            let batch = queue.receive(name, 10).await.unwrap_or_default();
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
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
            let event = serde_json::from_value(json!({"Records": records})).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_behind_ten_replies_is_suppressed_within_seconds_with_the_llm_hanging_and_signalhouse_down() {
    let t = TestDb::new().await;
    let team = team(&t, "Acme").await;
    sending_number(&t, &team, NUMBER).await;
    let queue = Arc::new(PgQueue::new(t.worker.clone()));
    let queues = [
        (nextier_inbound::QUEUE, Duration::from_secs(30)),
        (nextier_inbound::ANSWERS_QUEUE, Duration::from_secs(30)),
        (nextier_inbound::AI_QUEUE, Duration::from_secs(90)),
    ];
    for (q, v) in queues {
        // Short visibility and few receives, so a job that kept failing would reach the DLQ
        // within the test.
        queue.declare(&QueueSpec::with_dlq(q, v, 2)).await.unwrap();
    }
    let publisher =
        OutboxPublisher::new(t.worker.clone(), queue.clone(), Arc::new(PgEventBus::new(t.worker.clone(), "default")));

    // The LLM answers after a minute; SignalHouse answers 503 to everything.
    let llm_url = fake("/v1/chat/completions", Duration::from_secs(60), StatusCode::OK).await;
    let sh_url = fake("/message/sms", Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE).await;
    let retry = Retry { attempts: 3, backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(2) };
    let sms = SignalHouse::new(signalhouse::Config {
        base_url: sh_url,
        api_key: "sh-test-key".into(),
        status_callback_url: None,
        retry: retry.clone(),
        timeout: Duration::from_secs(10),
    });
    let suggester = LlmSuggester {
        chain: Chain(vec![Arc::new(OpenAi::new(llm::Config {
            base_url: format!("{llm_url}/v1"),
            api_key: "sk-test".into(),
            model: "gpt-test".into(),
            retry,
            timeout: Duration::from_secs(20),
        }))]),
    };
    let sandbox = Arc::new(SandboxTransport::new());
    let gate: Arc<dyn nextier_outbound::OutboundGate> = Arc::new(Gate::new(Arc::new(sms), sandbox.clone(), sandbox));
    let suggester: Arc<dyn nextier_platform::ports::suggester::Suggester> = Arc::new(suggester);
    for (q, v) in queues {
        // Each queue's consumer is its own function deployed, with its own pool of five.
        let p = Arc::new(Processor {
            db: nextier_store::Db::connect(&t.worker_url(), 5).unwrap(),
            gate: gate.clone(),
            clock: Arc::new(nextier_platform::ports::clock::SystemClock),
            outbox: Some(publisher.clone()),
            suggester: suggester.clone(),
        });
        poll(queue.clone(), p, q, v);
    }
    // The webhook is its own function deployed, with its own connections: the consumers'
    // pool being busy must not be what the STOP waits for.
    let webhook_db = nextier_store::Db::connect(&t.worker_url(), 2).unwrap();
    let router = webhook::router(WebhookState::new(webhook_db, publisher, vec![SECRET.to_vec()]));

    // Ten replies that each want an AI suggestion (and HELP answers that need SignalHouse).
    for n in 0..10 {
        let from = format!("+1312555{:04}", 1000 + n);
        let text = if n % 3 == 0 { "HELP" } else { "Yes I'm interested, what's your offer?" };
        let r = router.clone().oneshot(signed(&from, text, n)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Give the suggestions time to be taken and hang on the LLM.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopper = "+17737360188";
    let accepted = Instant::now();
    let r = router.clone().oneshot(signed(stopper, "STOP", 99)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let su = t.superuser().await;
    let mut latency = None;
    while accepted.elapsed() < Duration::from_secs(30) {
        let n: i64 = su
            .query_one("SELECT count(*) FROM suppressions WHERE address = $1 AND kind = 'OPTED_OUT'", &[&stopper])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            latency = Some(accepted.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let latency = latency.expect("the STOP was suppressed");
    println!("opt-out latency behind a hanging LLM and a failing carrier: {latency:?}");
    assert!(latency < Duration::from_secs(5), "suppressed within seconds, not after the LLM: {latency:?}");

    // Every reply and the STOP are processed (the replies' conversations run beside the STOP's,
    // so one may still be finishing when the STOP is done), and nothing of the inbound queue
    // is dead.
    let mut unprocessed: i64 = -1;
    let settled = Instant::now();
    while settled.elapsed() < Duration::from_secs(10) {
        unprocessed =
            su.query_one("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL", &[]).await.unwrap().get(0);
        if unprocessed == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(unprocessed, 0);
    assert_eq!(queue.depth("inbound-dlq").await.unwrap(), 0, "no delivery reached the DLQ");
    // The confirmation waits for SignalHouse on its own queue; it is not lost.
    let pending: i64 = su
        .query_one("SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'queued'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(pending >= 1, "the confirmation is recorded and waits for a retry");
}
