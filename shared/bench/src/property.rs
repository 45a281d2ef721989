//! `nextier-bench property [properties]`: the nightly match's throughput (properties kept per
//! second, owners linked or created, against the local fake of RealEstateAPI's contract) and
//! the cache's hit rate on the second night; baseline in the same run: the same pages fetched
//! bare through the same client (no database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nextier_domain::ids::TeamId;
use nextier_local::database::{seed_demo, LocalDatabase};
use nextier_platform::local::PgRateLimiter;
use nextier_platform::ports::clock::ManualClock;
use nextier_platform::ports::property::PropertyData;
use nextier_property::{nightly, Properties};
use nextier_providers::realestate::{Config, RealEstateApi};
use nextier_providers::retry::Retry;
use nextier_store::Db;
use nextier_testkit::fakes::{FakeProviders, REALESTATE_KEY};
use nextier_testkit::pg::connect;
use serde_json::json;

pub async fn run(n: usize) -> anyhow::Result<()> {
    let root = nextier_testkit::workspace_root().join("target/bench/property");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let database = LocalDatabase::open(&root, None, None, None).await?;
    database.migrate().await?;
    let team = TeamId::parse("team", &seed_demo(&database.admin_url).await?)?;
    let admin = connect(&database.admin_url).await?;
    admin
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'enrichment', 'daily_cap_realestateapi', '1000000')",
            &[&team.as_str()],
        )
        .await?;
    admin
        .execute(
            "INSERT INTO property_searches (id, team_id, name, criteria, created_by)
             VALUES ('psr_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, 'bench', '{\"state\": \"FL\"}', 'bench')",
            &[&team.as_str()],
        )
        .await?;
    let fake = FakeProviders::start().await;
    for i in 0..n {
        fake.state.property(json!({
            "id": format!("{}", 10_000_000 + i),
            "address": {"street": format!("{} Oak St", i + 1), "city": "Tampa", "state": "FL", "zip": "33602"},
            "mailAddress": {"street": format!("{} Mail Rd", i + 1), "city": "Miami", "state": "FL", "zip": "33101"},
            "owner1FirstName": format!("First{i}"), "owner1LastName": format!("Last{i}"),
            "ownerOccupied": i % 2 == 0, "vacant": i % 7 == 0, "preForeclosure": i % 11 == 0,
            "equityPercent": (i % 120) as i64 - 10, "estimatedValue": 200_000 + i as i64
        }));
    }
    let client = Arc::new(RealEstateApi::new(Config {
        base_url: format!("{}/realestate", fake.base),
        api_key: REALESTATE_KEY.into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(20),
    }));
    // Baseline: the same pages, bare.
    let started = Instant::now();
    let mut index = 0;
    loop {
        let page = client.search(None, &json!({"state": "FL"}), index, 250).await?;
        index += page.records.len() as i64;
        if page.records.is_empty() || index >= page.total {
            break;
        }
    }
    let bare = started.elapsed().as_secs_f64();
    fake.state.calls.lock().map(|mut c| c.clear()).ok();

    let db = Db::connect(&database.worker_url, 8)?;
    let night = |t: &str| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap_or_default();
    let p = |now| Properties {
        db: db.clone(),
        data: client.clone(),
        limiter: Arc::new(PgRateLimiter::new(db.clone())),
        clock: Arc::new(ManualClock::at(now)),
    };
    let first_night = night("2026-12-04T08:00:00Z");
    let started = Instant::now();
    let s1 = nightly::run(&p(first_night), first_night).await?;
    let secs1 = started.elapsed().as_secs_f64();
    let calls1 = fake.state.calls.lock().map(|c| c.len()).unwrap_or(0);
    let second_night = night("2026-12-05T08:00:00Z");
    let started = Instant::now();
    let s2 = nightly::run(&p(second_night), second_night).await?;
    let secs2 = started.elapsed().as_secs_f64();
    let calls2 = fake.state.calls.lock().map(|c| c.len()).unwrap_or(0) - calls1;
    anyhow::ensure!(s1.properties == n && s2.properties == n, "every property each night: {s1:?} {s2:?}");

    println!("Nightly property match, {n} properties in one saved search (local fake of RealEstateAPI):");
    println!(
        "  first night: {:.0} properties/s ({} pages, {} owners created for review, {} linked, {:.1} s)",
        n as f64 / secs1,
        s1.pages,
        s1.owners_created,
        s1.owners_linked,
        secs1
    );
    println!("  baseline, the same pages fetched bare through the client: {:.0} properties/s", n as f64 / bare);
    println!(
        "  second night: {:.0} properties/s; cache hit rate {:.0}% ({} of {} pages from the cache, {calls2} provider calls)",
        n as f64 / secs2,
        100.0 * s2.cached_pages as f64 / s2.pages.max(1) as f64,
        s2.cached_pages,
        s2.pages
    );
    Ok(())
}
