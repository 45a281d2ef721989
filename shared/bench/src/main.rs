//! `infra/dev.sh bench [seconds]` (release build). Prints the figures quoted in the README:
//! 1. the api-admin release binary's size;
//! 2. its cold init: process start to the first answered invocation, against a fake Lambda
//!    Runtime API on loopback (median of 15 fresh processes), and its peak RSS by then;
//! 3. the local runtime's requests/second and p50/p99 for an authenticated GET, with an
//!    unauthenticated static route measured in the same run as the baseline.
//!
//! `infra/dev.sh bench import [rows]`: the CSV import against raw COPY (see `import.rs`).
//! `infra/dev.sh bench gate [messages]`: the outbound gate's throughput and a 75/minute bucket (see `gate.rs`).
//! `infra/dev.sh bench tick [enrolments]`: the campaign tick on 100,000 due enrolments (see `tick.rs`).
//! `infra/dev.sh bench webhook [seconds]`: the SignalHouse webhook and the inbound consumer (see `webhook.rs`).
//! `infra/dev.sh bench optout [stops]`: opt-out latency behind a slow LLM and a failing carrier (see `optout.rs`).
//! `infra/dev.sh bench enrich [contacts]`: contacts enriched per minute and the cache's savings (see `enrich.rs`).
//! `infra/dev.sh bench property [properties]`: the nightly match's throughput and the cache's hit rate (see `property.rs`).
//! `infra/dev.sh bench ai [replies]`: suggestions per second and what the AI adds to the reply path (see `ai.rs`).
//! `infra/dev.sh bench flow [events]`: workflow events per second and the live feed's latency (see `flow.rs`).
//! `infra/dev.sh bench integrations [contacts]`: export rows/s and memory for 1M contacts, Zoho pushes per minute (see `integrations.rs`).

mod ai;
mod cold;
mod enrich;
mod flow;
mod gate;
mod import;
mod integrations;
mod load;
mod optout;
mod property;
mod tick;
mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use nextier_local::{start, LocalConfig};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("property") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(5_000);
        return property::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("integrations") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
        return integrations::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("flow") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2_000);
        return flow::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("ai") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(500);
        return ai::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("enrich") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2_000);
        return enrich::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("gate") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
        return gate::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("webhook") {
        let seconds = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(10);
        return webhook::run(seconds).await;
    }
    if std::env::args().nth(1).as_deref() == Some("optout") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(100);
        return optout::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("tick") {
        let n = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
        return tick::run(n).await;
    }
    if std::env::args().nth(1).as_deref() == Some("import") {
        let rows = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
        return import::run(rows).await;
    }
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let root = nextier_testkit::workspace_root();
    let binary = root.join("target/release/api-admin");
    anyhow::ensure!(binary.exists(), "build it first: cargo build --release -p api-admin");

    let home: PathBuf = root.join("target/bench/local");
    let _ = std::fs::remove_dir_all(&home);
    let mut config = LocalConfig::from_env()?;
    config.home = home;
    config.port = 0;
    config.admin_url = None;
    config.app_url = None;
    config.worker_url = None;
    let rt = start(config).await?;

    let size = std::fs::metadata(&binary)?.len();
    println!("api-admin release binary: {:.2} MiB ({size} bytes)", size as f64 / 1_048_576.0);

    let cold = cold::measure(&binary, &rt.app_database_url, 15).await?;
    println!(
        "api-admin cold init (spawn -> first response, GET /teams with a real DB query): median {:.1} ms, p90 {:.1} ms, min {:.1} ms; peak RSS {:.1} MiB",
        cold.median_ms, cold.p90_ms, cold.min_ms, cold.peak_rss_mib
    );
    println!("  baseline, spawn -> exit of /bin/true: median {:.2} ms", cold.spawn_baseline_ms);

    let authed = format!("{}/teams/{}", rt.api_url, rt.demo_team);
    let baseline = format!("{}/openapi.json", rt.api_url);
    let dur = Duration::from_secs(seconds);
    for concurrency in [1usize, 16] {
        let base = load::run(&baseline, None, concurrency, dur).await?;
        let auth = load::run(&authed, Some(&rt.dev_token), concurrency, dur).await?;
        println!(
            "local runtime, {concurrency} connection(s), {seconds} s each: GET /teams/{{id}} (JWT + membership + RLS query) {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors | baseline GET /openapi.json {:.0} req/s, p99 {:.2} ms | ratio {:.2}",
            auth.rps, auth.p50_ms, auth.p99_ms, auth.errors, base.rps, base.p99_ms, auth.rps / base.rps
        );
    }
    rt.stop().await;
    Ok(())
}
