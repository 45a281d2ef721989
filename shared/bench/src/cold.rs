//! A fake Lambda Runtime API (the three endpoints a custom runtime uses) so the real
//! `bootstrap` binary can be started as Lambda starts it, and timed to its first answer.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, Mutex};

pub struct Cold {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub peak_rss_mib: f64,
    pub spawn_baseline_ms: f64,
}

#[derive(Clone)]
struct Fake {
    event: Arc<String>,
    served: Arc<Mutex<bool>>,
    answered: mpsc::UnboundedSender<String>,
}

async fn next(State(f): State<Fake>) -> (HeaderMap, String) {
    let mut served = f.served.lock().await;
    if *served {
        drop(served);
        // The runtime waits for its next event; keep it waiting (it is killed after).
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return (HeaderMap::new(), String::new());
    }
    *served = true;
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", "bench-request-1".parse().expect("header"));
    h.insert("lambda-runtime-deadline-ms", (now_ms() + 30_000).to_string().parse().expect("header"));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:api-admin".parse().expect("header"),
    );
    h.insert("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".parse().expect("header"));
    (h, f.event.as_ref().clone())
}

async fn respond(State(f): State<Fake>, UrlPath(_id): UrlPath<String>, body: String) -> &'static str {
    let _ = f.answered.send(body);
    "{}"
}

async fn init_error(State(f): State<Fake>, body: String) -> &'static str {
    let _ = f.answered.send(format!("INIT ERROR {body}"));
    "{}"
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn rss_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_owned()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub async fn measure(binary: &Path, database_url: &str, runs: usize) -> anyhow::Result<Cold> {
    // A GET /teams as API Gateway would deliver it, for the seeded demo user.
    let event = std::fs::read_to_string(nextier_testkit::workspace_root().join("events/api-admin-list-teams.json"))?
        .replace("sample-user-1", "demo-user");
    let mut times = Vec::new();
    let mut peak = 0.0f64;
    for _ in 0..runs {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let fake = Fake { event: Arc::new(event.clone()), served: Arc::new(Mutex::new(false)), answered: tx };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "api-admin")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("DATABASE_URL", database_url)
            // As deployed: AWS adapters (built, not called by this route), no local JWT check.
            .env("RUST_LOG", "warn")
            .env("METRICS_EMF", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let answer = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await?.unwrap_or_default();
        let elapsed = started.elapsed();
        anyhow::ensure!(answer.contains("\"statusCode\":200"), "unexpected first answer: {answer}");
        if let Some(pid) = child.id() {
            peak = peak.max(rss_hwm_mib(pid));
        }
        let _ = child.kill().await;
        server.abort();
        times.push(elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let mut base = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        tokio::process::Command::new("/bin/true").status().await?;
        base.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    base.sort_by(|a, b| a.total_cmp(b));
    Ok(Cold {
        median_ms: times[times.len() / 2],
        p90_ms: times[(times.len() * 9 / 10).min(times.len() - 1)],
        min_ms: times[0],
        peak_rss_mib: peak,
        spawn_baseline_ms: base[base.len() / 2],
    })
}
