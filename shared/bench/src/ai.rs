//! `nextier-bench ai [replies]`: the AI workers' cost, measured against baselines in the same
//! run.
//!
//! 1. Suggestions per second through the real job (`Suggest` on the `ai` queue: routing with
//!    its recorded decision, the worker's persona and prompt, the LLM chain against a local fake
//!    speaking the chat-completions contract, the structured answer checked, the suggestion
//!    stored with its plan and logged), four at once as the consumer runs them; baseline: the
//!    same number of bare model calls through the same client, four at once.
//! 2. What the AI adds to the reply path: the inbound consumer's processing of a reply (p50 and
//!    p99 of the whole job), and the AI hook inside it alone (`on_reply`: end the cadence, hold
//!    waiting auto-sends, log the outcome) on the same data. The model is never on this path:
//!    suggestions are jobs of their own queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use futures::stream::{self, StreamExt};
use nextier_domain::ids::{ContactId, InboxItemId, TeamId};
use nextier_domain::inbox::Classification;
use nextier_inbound::{Job, Processor};
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_outbound::{Gate, SandboxTransport};
use nextier_platform::ports::clock::SystemClock;
use nextier_providers::llm::{Chain, Config, LlmSuggester, Model, OpenAi, Request};
use nextier_providers::retry::Retry;
use nextier_store::{scope, Db, Scope};
use nextier_testkit::pg::connect;
use serde_json::{json, Value};

async fn fake_llm() -> anyhow::Result<String> {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|Json(_): Json<Value>| async {
            Json(json!({"id": "chatcmpl-b", "object": "chat.completion", "model": "bench",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                    "content": "{\"reply\": \"Thanks! Would Tuesday at 10 work for a quick call?\", \"confidence\": 88}"}}]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Ok(format!("http://{addr}/v1"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/ai");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = TeamId::parse("team", &seed_demo(&database.admin_url).await?)?;
    let admin = connect(&database.admin_url).await?;
    admin
        .execute(
            "INSERT INTO sending_numbers (id, team_id, e164, created_by, verified_at)
             VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0B01', $1, '+12127363199', 'bench', now()) ON CONFLICT DO NOTHING",
            &[&team.as_str()],
        )
        .await?;
    let worker_db = Db::connect(&database.worker_url, 8)?;
    let app_db = Db::connect(&database.app_url, 8)?;
    let base = fake_llm().await?;
    let config = Config {
        base_url: base,
        api_key: "sk-bench".into(),
        model: "bench".into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(10),
    };
    let model: Arc<dyn Model> = Arc::new(OpenAi::new(config));
    let p = Arc::new(Processor {
        db: worker_db.clone(),
        gate: Arc::new(Gate::sandbox(Arc::new(SandboxTransport::new()))),
        clock: Arc::new(SystemClock),
        outbox: None,
        suggester: Arc::new(LlmSuggester { chain: Chain(vec![model.clone()]) }),
    });

    // The reply path: n replies through the inbound consumer's job, one at a time.
    let mut reply_ms = Vec::with_capacity(n);
    for i in 0..n {
        let payload = json!({"event": "message.received", "text": "Yes, I'd consider selling", "to": "+12127363199",
            "from": format!("+1212555{:04}", 2000 + i), "message_id": format!("bench-{i}"),
            "timestamp": chrono::Utc::now().to_rfc3339()});
        let started = Instant::now();
        p.process(&Job::Webhook { webhook_event_id: format!("whk_bench{i}"), payload }, 1).await?;
        reply_ms.push(ms(started.elapsed()));
    }
    // The AI hook alone, on the same contacts (rolled back: it changes nothing).
    let contacts: Vec<String> = admin
        .query("SELECT id FROM contacts WHERE team_id = $1 ORDER BY id", &[&team.as_str()])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut hook_ms = Vec::with_capacity(contacts.len());
    for c in &contacts {
        let contact = ContactId::from_trusted(c.clone());
        let mut conn = worker_db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let started = Instant::now();
        nextier_ai::engine::on_reply(&tx, &team, &contact, Classification::Positive, "Yes, I'd consider selling")
            .await?;
        hook_ms.push(ms(started.elapsed()));
        drop(tx);
    }
    reply_ms.sort_by(f64::total_cmp);
    hook_ms.sort_by(f64::total_cmp);

    // Baseline: bare model calls, four at once.
    let req = Request {
        system: "You write SMS.".into(),
        user: "Write a reply.".into(),
        model: None,
        temperature: 0.3,
        max_tokens: 300,
        json: true,
    };
    let started = Instant::now();
    let results: Vec<anyhow::Result<_>> = stream::iter(0..n)
        .map(|_| {
            let (m, r) = (model.clone(), req.clone());
            async move { m.complete(&r).await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    anyhow::ensure!(results.iter().all(|r| r.is_ok()), "the fake model answers");
    let bare = started.elapsed().as_secs_f64();

    // The Suggest jobs the replies staged, four at once.
    let items: Vec<String> = admin
        .query(
            "DELETE FROM outbox WHERE destination = 'ai' AND payload->>'kind' = 'suggest' RETURNING payload->>'itemId'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(items.len() == n, "each reply staged its suggestion job ({} of {n})", items.len());
    let ai = nextier_ai::Ai {
        db: app_db.clone(),
        gate: p.gate.clone(),
        suggester: p.suggester.clone(),
        clock: p.clock.clone(),
    };
    let started = Instant::now();
    let out: Vec<anyhow::Result<_>> = stream::iter(items.iter().cloned())
        .map(|item| {
            let (ai, team) = (ai.clone(), team.clone());
            async move { nextier_ai::engine::suggest_job(&ai, &team, &InboxItemId::from_trusted(item)).await }
        })
        .buffer_unordered(nextier_inbound::BATCH_CONCURRENCY)
        .collect()
        .await;
    let full = started.elapsed().as_secs_f64();
    let written = out.iter().filter(|r| matches!(r, Ok((Some(_), _)))).count();
    anyhow::ensure!(
        written == n,
        "every reply got a suggestion ({written} of {n}): {:?}",
        out.iter().find(|r| r.is_err())
    );
    let llm: i64 = admin.query_one("SELECT count(*) FROM ai_suggestions WHERE source LIKE 'llm:%'", &[]).await?.get(0);

    println!("AI workers, {n} replies (local fake model answering at once):");
    println!(
        "  suggestions through the Suggest job (routing, prompt, model, checked JSON, stored and logged), 4 at once: {:.0}/s ({llm} from the model)",
        n as f64 / full
    );
    println!("  baseline, bare model calls through the same client, 4 at once: {:.0}/s", n as f64 / bare);
    println!("  ratio (job / bare call time): {:.1}x", full / bare);
    println!(
        "  the reply path (the inbound job, whole): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&reply_ms, 0.5),
        percentile(&reply_ms, 0.99)
    );
    println!(
        "  of which the AI hook (end cadence, hold auto-sends, log the outcome): p50 {:.2} ms, p99 {:.2} ms ({:.0}% of the p50)",
        percentile(&hook_ms, 0.5),
        percentile(&hook_ms, 0.99),
        100.0 * percentile(&hook_ms, 0.5) / percentile(&reply_ms, 0.5).max(f64::EPSILON)
    );
    Ok(())
}
