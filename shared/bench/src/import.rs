//! `nextier-bench import [rows]`: imports a generated CSV through the real worker and, in the
//! same run and database, COPYs the same file into a bare table; prints both speeds, their
//! ratio and the process's peak memory.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use nextier_domain::ids::TeamId;
use nextier_domain::import::ImportKind;
use nextier_imports::{Importer, Limits, Ran};
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::FolderBlobStore;
use nextier_store::{imports, scope, Db, Scope};
use nextier_testkit::pg::connect;
use tokio::io::AsyncReadExt;

const AREAS: [&str; 20] = [
    "201", "212", "213", "305", "312", "404", "415", "469", "512", "516", "602", "617", "702", "713", "718", "786",
    "813", "914", "917", "972",
];

/// Valid subscriber exchanges: 200-999 without the N11 service codes and 555.
fn exchanges() -> Vec<usize> {
    (200..1000).filter(|e| e % 100 != 11 && *e != 555).collect()
}

/// The i-th distinct valid number.
fn phone(i: usize, exch: &[usize]) -> String {
    let line = i % 10_000;
    let e = exch[(i / 10_000) % exch.len()];
    let area = AREAS[(i / (10_000 * exch.len())) % AREAS.len()];
    format!("({area}) {e}-{line:04}")
}

fn generate(path: &std::path::Path, rows: usize) -> anyhow::Result<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "First Name,Last Name,Phone,Email,City,State,Zip,Tags")?;
    let exch = exchanges();
    for i in 0..rows {
        writeln!(
            w,
            "First{i},Last{i},{},person{i}@example.com,Tampa,FL,{:05},\"lead,fl\"",
            phone(i, &exch),
            33_000 + i % 1000
        )?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub async fn run(rows: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/import");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let csv = root.join("leads.csv");
    let bytes = generate(&csv, rows)?;
    println!("generated {rows} rows, {:.1} MiB", bytes as f64 / 1_048_576.0);

    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    if std::env::var_os("BENCH_LOG_SLOW").is_some() {
        connect(&database.admin_url).await?.batch_execute("ALTER SYSTEM SET log_min_duration_statement = 300").await?;
        connect(&database.admin_url).await?.batch_execute("SELECT pg_reload_conf()").await?;
    }
    let team = TeamId::parse("team", &seed_demo(&database.admin_url).await?)?;
    let db = Db::connect(&database.worker_url, 4)?;
    let rss_before = peak_rss_mib();

    // The importer, as the consumer Lambda runs it.
    let blobs = FolderBlobStore::new(root.join("blobs"), "http://127.0.0.1:9", b"bench");
    let job = {
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let job = imports::create(&tx, &team, ImportKind::Contacts, "leads.csv", None, None, "bench").await?;
        tx.commit().await?;
        job
    };
    std::fs::create_dir_all(
        root.join("blobs").join(std::path::Path::new(&job.object_key).parent().unwrap_or(std::path::Path::new(""))),
    )?;
    std::fs::hard_link(&csv, root.join("blobs").join(&job.object_key))?;
    let started = Instant::now();
    let importer =
        Importer { db: &db, blobs: &blobs, limits: Limits { budget: Duration::from_secs(3600), ..Limits::default() } };
    let (ran, _) = importer.run(&team, &job.id).await?;
    let import_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(ran == Ran::Completed, "import ended {ran:?}");
    let peak = peak_rss_mib();
    let status = {
        let mut conn = db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        imports::get(&tx, &job.id).await?
    };

    // Baseline in the same run and database: COPY the same file into a bare table.
    let admin = connect(&database.admin_url).await?;
    admin
        .batch_execute("CREATE TABLE bare (first text, last text, phone text, email text, city text, state text, zip text, tags text)")
        .await?;
    let started = Instant::now();
    let sink = admin.copy_in("COPY bare FROM STDIN (FORMAT csv, HEADER true)").await?;
    futures::pin_mut!(sink);
    let mut file = tokio::fs::File::open(&csv).await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        sink.send(Bytes::copy_from_slice(&buf[..n])).await?;
    }
    let copied = sink.finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();

    let import_rate = rows as f64 / import_secs;
    let copy_rate = copied as f64 / copy_secs;
    let secs = |a: Option<chrono::DateTime<chrono::Utc>>, b: Option<chrono::DateTime<chrono::Utc>>| {
        a.zip(b).map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0)
    };
    let stage_secs = secs(status.started_at, status.staged_at);
    println!(
        "import: {rows} rows in {import_secs:.1} s = {import_rate:.0} rows/s (created {}, duplicate {}, rejected {}, problems {}); \
         peak RSS {peak:.0} MiB (before the import {rss_before:.0} MiB)",
        status.rows_created, status.rows_duplicate, status.rows_rejected, status.problems
    );
    println!(
        "  of which read + validate + stage: {stage_secs:.1} s ({:.0} rows/s); merge into contacts: {:.1} s",
        rows as f64 / stage_secs.max(0.001),
        secs(status.staged_at, status.finished_at)
    );
    println!("raw COPY of the same file into a bare table: {copied} rows in {copy_secs:.1} s = {copy_rate:.0} rows/s");
    println!("import speed / raw COPY speed: {:.2}", import_rate / copy_rate);
    database.stop();
    Ok(())
}
