//! The developer loop as the README promises it: `cargo lambda watch` serving the real function
//! binaries against the local runtime's database, with the workspace's watch router and
//! environment (`PLATFORM=local`) and no pool setting. Through it: a read and a write of every
//! API group, a signed SignalHouse webhook, and one invoke of a consumer and a cron with their
//! sample events. Every answer must be right; a write slower than a second fails. The same
//! requests through the local runtime are timed beside them (the figures in the README).
//!
//! It needs cargo-lambda (`infra/dev.sh setup` installs it into .venv and `infra/dev.sh test`
//! names it in `CARGO_LAMBDA`; else it is looked up on PATH).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nextier_local::registry::Registry;
use nextier_local::{start, LocalConfig, Running};
use nextier_testkit::TestDb;
use serde_json::{json, Value};

/// The functions the test calls, built before `cargo lambda watch` starts (its `cargo run`
/// then finds them fresh, so the first answer times the start, not the build).
const FUNCTIONS: &[&str] = &[
    "api-admin",
    "api-contacts",
    "api-campaigns",
    "api-inbox",
    "api-calls",
    "api-property",
    "api-integrations",
    "webhook-signalhouse",
    "consumer-mail",
    "cron-outbox-sweeper",
];
/// A write through watch slower than this fails the test (the pool bug answered after 10 s).
const WRITE_LIMIT: Duration = Duration::from_secs(1);
/// A function's first answer: `cargo run` checks it is fresh and starts it.
const FIRST_ANSWER: Duration = Duration::from_secs(180);

fn cargo_lambda() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_LAMBDA").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("cargo-lambda"))
        .find(|p| p.is_file());
    found.expect("cargo-lambda is not installed: run infra/dev.sh setup (or set CARGO_LAMBDA)")
}

/// `cargo lambda watch` in its own process group, stopped with everything it started.
struct Watch {
    child: Child,
    log: PathBuf,
}

impl Watch {
    fn start(root: &Path, port: u16, env_file: &Path, log: PathBuf) -> Watch {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(cargo_lambda());
        plain_cargo_env(&mut cmd);
        cmd.args(["lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            .arg("--ignore-changes")
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        cmd.arg("--env-file").arg(env_file);
        // What the workspace metadata does not set comes from here, never from the test's own
        // environment (a DB_POOL_SIZE there would hide the bug this test exists for).
        cmd.env_remove("DB_POOL_SIZE").env_remove("DATABASE_URL").env_remove("WORKER_DATABASE_URL");
        Watch { child: cmd.spawn().expect("cargo lambda watch starts"), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    /// Stops the whole process group (cargo-lambda and the functions it started), politely
    /// first.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One request's answer and how long it took.
struct Answer {
    status: u16,
    body: Value,
    took: Duration,
}

async fn send(req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let started = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let took = started.elapsed();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer { status, body, took })
}

/// The API requests of the test: per group, a read and a write (the write's body may use what
/// earlier writes created).
struct Call {
    group: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    expect: u16,
}

fn calls(team: &str, contact: &str, round: u8) -> Vec<(Call, Call)> {
    let read = |group, path: &str| Call { group, method: "GET", path: path.to_owned(), body: None, expect: 200 };
    let write = |group, path: &str, body: Value, expect| Call {
        group,
        method: "POST",
        path: path.to_owned(),
        body: Some(body),
        expect,
    };
    let t = |p: &str| format!("/teams/{team}{p}");
    vec![
        (read("api-admin", "/teams"), write("api-admin", "/teams", json!({"name": "Watched"}), 201)),
        (
            read("api-contacts", &t("/contacts")),
            write(
                "api-contacts",
                &t("/contacts"),
                json!({"firstName": "Wanda", "phones": [{"number": format!("+131255509{round}0")}]}),
                201,
            ),
        ),
        (
            read("api-campaigns", &t("/campaigns")),
            write("api-campaigns", &t("/campaigns"), json!({"name": "Watched", "sendsPerMinute": 75}), 201),
        ),
        (
            read("api-inbox", &t("/inbox/items")),
            write(
                "api-inbox",
                &t("/ai/prompts"),
                json!({"key": "reply", "systemTemplate": "You are {{workerName}}.", "userTemplate": "{{reply}}"}),
                201,
            ),
        ),
        (
            read("api-calls", &t("/call-queue")),
            write("api-calls", &t("/call-queue"), json!({"contactId": contact, "priority": 50}), 201),
        ),
        (
            read("api-property", &t("/properties")),
            write(
                "api-property",
                &t("/properties/saved-searches"),
                json!({"name": format!("Tampa {round}"), "criteria": {"state": "FL", "city": "Tampa"}}),
                201,
            ),
        ),
        (
            read("api-integrations", &t("/exports")),
            write("api-integrations", &t("/exports"), json!({"kind": "contacts"}), 202),
        ),
    ]
}

fn request(http: &reqwest::Client, base: &str, token: &str, c: &Call) -> reqwest::RequestBuilder {
    let req = http.request(c.method.parse().unwrap(), format!("{base}{}", c.path)).bearer_auth(token);
    match &c.body {
        Some(b) => req.json(b),
        None => req,
    }
}

/// Times of one group's read and write: the first (cold for watch) and a warm repeat of each.
#[derive(Default)]
struct Times {
    first_read: Duration,
    warm_read: Duration,
    first_write: Duration,
    warm_write: Duration,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs every group's calls against `base`; the first read of a group may wait for `cargo run`.
async fn run_groups(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    team: &str,
    watch: Option<&Watch>,
    round: u8,
) -> Vec<(&'static str, Times)> {
    // A contact for the call queue, created through the group under test.
    let mut out = Vec::new();
    let mut contact = String::new();
    for i in 0..7 {
        let (read, write) = calls(team, &contact, round).swap_remove(i);
        let mut times = Times::default();
        let first = first_answer(http, base, token, &read, watch).await;
        times.first_read = first.took;
        times.warm_read = checked(http, base, token, &read, watch).await.took;
        let w = checked(http, base, token, &write, watch).await;
        times.first_write = w.took;
        if read.group == "api-contacts" {
            contact = w.body["id"].as_str().expect("the contact's id").to_owned();
        }
        // The same write again (a new team, contact, campaign, prompt version … each time; a
        // saved search's name is unique, so it gets a new one).
        // Some repeats are idempotent (the call queue answers 200 for a contact already in it).
        let again = Call { body: write.body.as_ref().map(|b| renamed(b, "again")), expect: ANY_SUCCESS, ..write };
        times.warm_write = checked(http, base, token, &again, watch).await.took;
        out.push((read.group, times));
    }
    out
}

fn renamed(body: &Value, suffix: &str) -> Value {
    let mut b = body.clone();
    if let Some(name) = b.get("name").and_then(Value::as_str) {
        b["name"] = json!(format!("{name} {suffix}"));
    }
    if let Some(phone) = b["phones"][0]["number"].as_str() {
        b["phones"] = json!([{"number": format!("{}1", &phone[..phone.len() - 1])}]);
    }
    b
}

/// The first call of a function: retried while `cargo lambda watch` is still starting it.
async fn first_answer(http: &reqwest::Client, base: &str, token: &str, c: &Call, watch: Option<&Watch>) -> Answer {
    let deadline = Instant::now() + FIRST_ANSWER;
    loop {
        match send(request(http, base, token, c).timeout(Duration::from_secs(60))).await {
            Ok(a) if a.status == c.expect => return a,
            Ok(a) if Instant::now() > deadline || (a.status < 500 && a.status != c.expect) => {
                panic!("{} {} answered {}: {}\n{}", c.method, c.path, a.status, a.body, watch_log(watch))
            }
            Err(e) if Instant::now() > deadline => panic!("{} {}: {e}\n{}", c.method, c.path, watch_log(watch)),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn checked(http: &reqwest::Client, base: &str, token: &str, c: &Call, watch: Option<&Watch>) -> Answer {
    let a = send(request(http, base, token, c).timeout(Duration::from_secs(30)))
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}\n{}", c.method, c.path, watch_log(watch)));
    let ok = a.status == c.expect || (c.expect == ANY_SUCCESS && (200..300).contains(&a.status));
    assert!(ok, "{} {} answered {}: {}\n{}", c.method, c.path, a.status, a.body, watch_log(watch));
    a
}

/// `Call::expect` for any 2xx.
const ANY_SUCCESS: u16 = 0;

/// Takes off the variables cargo and nextest set for this test's own process: build scripts
/// watch some of them (ring reruns when `CARGO_MANIFEST_DIR` changes), so a `cargo` started
/// with them would rebuild half the tree, and again for the next plain `cargo build`.
fn plain_cargo_env(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let kept = ["CARGO", "CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_LAMBDA", "CARGO_INCREMENTAL"].contains(&name)
            || ["CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_REGISTRIES_", "CARGO_NET_", "CARGO_TERM_", "CARGO_HTTP_"]
                .iter()
                .any(|p| name.starts_with(p));
        if (name.starts_with("CARGO_") && !kept) || name.contains("NEXTEST") || name == "RUST_TEST_THREADS" {
            cmd.env_remove(name);
        }
    }
    cmd
}

fn watch_log(watch: Option<&Watch>) -> String {
    match watch {
        Some(w) => {
            let log = w.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            format!("cargo lambda watch (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        }
        None => String::new(),
    }
}

/// Invokes a function by name through the emulator's Invoke API with a sample event.
async fn invoke(http: &reqwest::Client, base: &str, function: &str, event: &str, watch: &Watch) -> (Value, Duration) {
    let path = nextier_testkit::workspace_root().join("events").join(event);
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let url = format!("{base}/2015-03-31/functions/{function}/invocations");
    let deadline = Instant::now() + FIRST_ANSWER;
    loop {
        match send(http.post(&url).json(&event).timeout(Duration::from_secs(60))).await {
            Ok(a) if a.status == 200 => return (a.body, a.took),
            Ok(a) if Instant::now() > deadline => {
                panic!("invoke {function}: {} {}\n{}", a.status, a.body, watch_log(Some(watch)))
            }
            Err(e) if Instant::now() > deadline => panic!("invoke {function}: {e}\n{}", watch_log(Some(watch))),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn runtime(t: &TestDb) -> Running {
    start(LocalConfig {
        home: nextier_testkit::state_dir("watch").join(&t.name),
        port: 0,
        admin_url: Some(t.superuser_url()),
        app_url: Some(t.app_url()),
        worker_url: Some(t.worker_url()),
        jwt_secret: nextier_runtime::config::local_secret(),
        extra: Registry::default(),
        schedule_every: None,
        sandbox_reply: None,
        clock: std::sync::Arc::new(nextier_platform::ports::clock::SystemClock),
    })
    .await
    .expect("local runtime starts")
}

#[tokio::test]
async fn cargo_lambda_watch_serves_every_group_the_webhook_a_consumer_and_a_cron() {
    let root = nextier_testkit::workspace_root();
    // Build the binaries first, with the cargo that runs this test, so the times below are
    // the functions', not the compiler's.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let mut build = Command::new(&cargo);
    plain_cargo_env(&mut build).arg("build").arg("-q").current_dir(&root);
    for f in FUNCTIONS {
        build.args(["-p", f]);
    }
    assert!(build.status().expect("cargo build runs").success(), "the functions build");
    println!("built {} functions in {:.1} s", FUNCTIONS.len(), started.elapsed().as_secs_f64());

    // The local runtime owns the database (migrations, the demo team, its consumers and
    // schedules), as `infra/dev.sh run` does; watch's functions connect to it.
    let t = TestDb::new().await;
    let rt = runtime(&t).await;
    let port = free_port();
    let dir = nextier_testkit::state_dir("watch").join(&t.name);
    std::fs::create_dir_all(&dir).unwrap();
    // As `infra/dev.sh watch` starts it: the workspace's router and PLATFORM=local, and the
    // environment file the runtime wrote.
    let watch = Watch::start(&root, port, &rt.watch_env, dir.join("watch.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let watched = run_groups(&http, &base, &rt.dev_token, &rt.demo_team, Some(&watch), 1).await;
    let local = run_groups(&http, &rt.api_url, &rt.dev_token, &rt.demo_team, None, 2).await;

    println!("\n{:<18} {:>40} | {:>40}", "", "cargo lambda watch", "local runtime");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>9}  | {:>9} {:>9} {:>9} {:>9}",
        "group", "read 1st", "warm", "write 1st", "warm", "read 1st", "warm", "write 1st", "warm"
    );
    let mut slow = Vec::new();
    for ((group, w), (_, l)) in watched.iter().zip(&local) {
        println!(
            "{group:<18} {:>9} {:>9} {:>9} {:>9}  | {:>9} {:>9} {:>9} {:>9}",
            ms(w.first_read),
            ms(w.warm_read),
            ms(w.first_write),
            ms(w.warm_write),
            ms(l.first_read),
            ms(l.warm_read),
            ms(l.first_write),
            ms(l.warm_write)
        );
        for took in [w.first_write, w.warm_write] {
            if took > WRITE_LIMIT {
                slow.push(format!("{group}: a write took {}", ms(took)));
            }
        }
    }

    // SignalHouse's webhook, signed as SignalHouse signs it, with the local default secret
    // the function reads under PLATFORM=local.
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("events/webhook-signalhouse.json")).unwrap()).unwrap();
    let body = sample["body"].as_str().unwrap().replace("sample-sh-1", &format!("watch-{}", t.name));
    let now = chrono::Utc::now().timestamp_millis();
    let sig = nextier_domain::webhook_signature::sign_signalhouse(rt.webhook_secret.as_bytes(), now, body.as_bytes());
    let signed = |http: &reqwest::Client| {
        http.post(format!("{base}/webhooks/signalhouse"))
            .header("content-type", "application/json")
            .header("x-signalhouse-delivery-id", format!("watch-{}", t.name))
            .header("x-signalhouse-signature-v1", format!("t={now},v1={sig}"))
            .body(body.clone())
    };
    let deadline = Instant::now() + FIRST_ANSWER;
    let hook = loop {
        match send(signed(&http).timeout(Duration::from_secs(60))).await {
            Ok(a) if a.status == 200 => break a,
            Ok(a) if a.status != 502 && a.status != 503 && a.status < 500 => {
                panic!("the signed webhook answered {}: {}\n{}", a.status, a.body, watch_log(Some(&watch)))
            }
            _ if Instant::now() > deadline => panic!("the webhook never answered\n{}", watch_log(Some(&watch))),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let again = send(signed(&http)).await.unwrap();
    assert_eq!(again.status, 200, "a replay is acknowledged: {}", again.body);
    let worker = t.superuser().await;
    let stored: i64 = worker
        .query_one(
            "SELECT count(*) FROM webhook_events WHERE provider = 'signalhouse' AND delivery_id = $1",
            &[&format!("watch-{}", t.name)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the delivery is stored once");
    println!("webhook-signalhouse: signed delivery {} (replay {})", ms(hook.took), ms(again.took));

    // A consumer and a cron, invoked with their sample events.
    let (mail, mail_took) = invoke(&http, &base, "consumer-mail", "consumer-mail.json", &watch).await;
    assert!(mail["batchItemFailures"].is_array(), "an SQS batch response: {mail}");
    let (sweep, sweep_took) = invoke(&http, &base, "cron-outbox-sweeper", "cron-outbox-sweeper.json", &watch).await;
    assert!(sweep.get("backlog").is_some(), "the sweeper's summary: {sweep}");
    println!("consumer-mail invoke {} → {mail}", ms(mail_took));
    println!("cron-outbox-sweeper invoke {} → {sweep}", ms(sweep_took));

    // What the writes staged went out at commit: no row failed a delivery or waited for the
    // sweeper (before the fix, publishing waited out the pool and left its row behind).
    let late: Vec<String> = worker
        .query(
            "SELECT destination || ': ' || coalesce(last_error, 'published after ' || coalesce((published_at - created_at)::text, 'never'))
               FROM outbox
              WHERE created_at < now() - interval '2 seconds'
                AND (last_error IS NOT NULL OR published_at IS NULL OR published_at > created_at + interval '2 seconds')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(late.is_empty(), "outbox rows not published at commit: {late:?}");
    assert!(slow.is_empty(), "writes slower than {WRITE_LIMIT:?} through cargo lambda watch: {slow:?}");
    drop(watch);
    drop(rt);
}
