//! The local runtime and the deployed template describe the same consumers and schedules:
//! every queue the local registry consumes is in template.yaml with the same visibility
//! timeout, receive count before its dead-letter queue and batch size, consumed by a function
//! whose timeout fits six times in the visibility; every local schedule runs in the template
//! at the same rate; and the template consumes no queue and runs no schedule the local
//! runtime lacks. So the two cannot drift apart unnoticed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nextier_local::registry::Registry;
use nextier_platform::local::{FolderBlobStore, PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use serde_yaml::Value;

fn template() -> Value {
    let path = nextier_testkit::workspace_root().join("template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("template.yaml is YAML")
}

/// A scalar, with a CloudFormation tag (`!Sub`, `!GetAtt`, `!Ref`) taken off.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Tagged(t) => text(&t.value),
        _ => None,
    }
}

fn num(v: &Value) -> Option<u64> {
    text(v)?.parse().ok()
}

/// The registry as `infra/dev.sh run` builds it (the pools connect lazily; nothing runs).
fn registry() -> Registry {
    let db = |role: &str| nextier_store::Db::connect(&format!("postgres://{role}@127.0.0.1:9/none"), 1).unwrap();
    let (app, worker) = (db("nextier_app"), db("nextier_worker"));
    let queue = Arc::new(PgQueue::new(worker.clone()));
    let publisher = OutboxPublisher::new(worker.clone(), queue, Arc::new(PgEventBus::new(worker.clone(), "default")));
    let blobs =
        Arc::new(FolderBlobStore::new(std::env::temp_dir().join("nextier-template-test"), "http://localhost", b"x"));
    Registry::standard(app, worker, blobs, publisher)
}

struct Deployed {
    /// Logical id of each queue by its name without the `nextier-${Stage}-` prefix.
    queues: BTreeMap<String, (String, Value)>,
    resources: serde_yaml::Mapping,
}

fn deployed() -> Deployed {
    let t = template();
    let resources = t.get("Resources").and_then(Value::as_mapping).expect("Resources").clone();
    let mut queues = BTreeMap::new();
    for (id, r) in &resources {
        if r.get("Type").and_then(Value::as_str) == Some("AWS::SQS::Queue") {
            let name = r.get("Properties").and_then(|p| p.get("QueueName")).and_then(text).unwrap_or_default();
            let short = name.trim_start_matches("nextier-${Stage}-").to_owned();
            queues.insert(short, (id.as_str().unwrap_or_default().to_owned(), r.clone()));
        }
    }
    Deployed { queues, resources }
}

impl Deployed {
    /// The functions with an event of `kind`, and that event's properties.
    fn events(&self, kind: &str) -> Vec<(String, Value, Value)> {
        let mut out = Vec::new();
        for (id, r) in &self.resources {
            let Some(events) = r.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping) else {
                continue;
            };
            for ev in events.values() {
                if ev.get("Type").and_then(Value::as_str) == Some(kind) {
                    let props = ev.get("Properties").cloned().unwrap_or(Value::Null);
                    out.push((id.as_str().unwrap_or_default().to_owned(), r.clone(), props));
                }
            }
        }
        out
    }
}

#[test]
fn every_local_consumer_is_deployed_with_the_same_queue_settings() {
    let d = deployed();
    let consumers = d.events("SQS");
    let registry = registry();
    for c in &registry.consumers {
        let (logical, queue) =
            d.queues.get(&c.queue).unwrap_or_else(|| panic!("queue {} is not in template.yaml", c.queue));
        let spec = c.specs.iter().find(|s| s.name == c.queue).expect("the consumer's own queue spec");
        let props = queue.get("Properties").expect("queue properties");
        assert_eq!(
            props.get("VisibilityTimeout").and_then(num),
            Some(spec.visibility_timeout.as_secs()),
            "{}: visibility timeout",
            c.queue
        );
        let redrive = props.get("RedrivePolicy").unwrap_or_else(|| panic!("{}: no dead-letter queue", c.queue));
        assert_eq!(
            redrive.get("maxReceiveCount").and_then(num),
            spec.max_receive_count.map(u64::from),
            "{}: receives before the DLQ",
            c.queue
        );
        let dlq = spec.dead_letter_queue.as_deref().expect("a DLQ locally");
        let (dlq_id, _) = d.queues.get(dlq).unwrap_or_else(|| panic!("DLQ {dlq} is not in template.yaml"));
        assert!(
            redrive.get("deadLetterTargetArn").and_then(text).is_some_and(|t| t.starts_with(&format!("{dlq_id}."))),
            "{}: redrives to {dlq}",
            c.queue
        );
        let (function, resource, event) = consumers
            .iter()
            .find(|(_, _, e)| e.get("Queue").and_then(text).is_some_and(|q| q == format!("{logical}.Arn")))
            .unwrap_or_else(|| panic!("no function consumes {}", c.queue));
        assert_eq!(event.get("BatchSize").and_then(num), Some(u64::from(c.batch_size)), "{function}: batch size");
        let timeout = resource.get("Properties").and_then(|p| p.get("Timeout")).and_then(num).expect("a timeout");
        assert!(
            spec.visibility_timeout >= Duration::from_secs(6 * timeout),
            "{}: visibility {:?} under 6 × the {timeout} s timeout of {function}",
            c.queue,
            spec.visibility_timeout
        );
        let most = event.get("ScalingConfig").and_then(|s| s.get("MaximumConcurrency")).and_then(num);
        match most {
            Some(most) => assert!(
                c.concurrency as u64 <= most && (c.concurrency == 1 || c.concurrency as u64 == most),
                "{function}: local concurrency {} against MaximumConcurrency {most}",
                c.concurrency
            ),
            None => assert_eq!(c.concurrency, 1, "{function}: concurrent locally, unbounded deployed"),
        }
    }
    // And nothing deployed that the local runtime does not consume.
    for (function, _, event) in &consumers {
        let arn = event.get("Queue").and_then(text).unwrap_or_default();
        let short = d.queues.iter().find(|(_, (id, _))| arn == format!("{id}.Arn")).map(|(n, _)| n.clone());
        let short = short.unwrap_or_else(|| panic!("{function} consumes a queue the template does not declare"));
        assert!(
            registry.consumers.iter().any(|c| c.queue == short),
            "{function} consumes {short}, which the local runtime does not"
        );
    }
}

/// `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)` as a duration.
fn rate(expr: &str) -> Option<Duration> {
    let inner = expr.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

#[test]
fn every_local_schedule_is_deployed_at_the_same_rate() {
    let d = deployed();
    let schedules = d.events("ScheduleV2");
    let registry = registry();
    let deployed: BTreeMap<String, Duration> = schedules
        .iter()
        .map(|(function, _, e)| {
            let input = e.get("Input").and_then(text).unwrap_or_default();
            let input: serde_json::Value = serde_json::from_str(&input).unwrap_or_else(|_| panic!("{function}: Input"));
            let name = input["schedule"].as_str().unwrap_or_else(|| panic!("{function}: Input names its schedule"));
            let every = e.get("ScheduleExpression").and_then(text).and_then(|x| rate(&x));
            (name.to_owned(), every.unwrap_or_else(|| panic!("{function}: a rate() expression")))
        })
        .collect();
    let local: BTreeMap<String, Duration> = registry.schedules.iter().map(|s| (s.name.clone(), s.every)).collect();
    assert_eq!(local, deployed, "the local runtime's schedules and the template's");
}

#[test]
fn the_rate_parser_reads_the_forms_the_template_uses() {
    assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
    assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
    assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
    assert_eq!(rate("cron(0 12 * * ? *)"), None);
}

/// Variables `events/env.json` sets though template.yaml does not declare them. SAM passes a
/// function only the variables its template declares (in Globals or on the function), so until
/// the template declares `PLATFORM` (blank, which every function reads as unset) SAM local
/// drops it and the functions use the AWS adapters.
const SAM_LOCAL_UNDECLARED: &[&str] = &[];

/// A function's variables as `sam local` gives them from events/env.json: SAM's `Parameters`
/// for every function, then the function's own entry over them.
fn sam_env(file: &serde_json::Value, id: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut env = file["Parameters"].as_object().cloned().unwrap_or_default();
    let own = file[id].as_object().unwrap_or_else(|| panic!("events/env.json: {id} is an object of variables"));
    env.extend(own.clone());
    env
}

/// `events/env.json` is `sam local invoke --env-vars`'s file for running a function against the
/// local runtime's database: an entry for each function of the template, by logical id, with
/// the database URLs the function reads (the worker role's where the template gives it one),
/// every URL on `127.0.0.1:PGPORT` (the placeholder events/README.md explains), and
/// no variable SAM would drop.
#[test]
fn the_sam_local_env_file_has_an_entry_for_every_function() {
    let t = template();
    let d = deployed();
    let vars = |v: Option<&Value>| -> Vec<String> {
        v.and_then(|e| e.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let globals = vars(t.get("Globals").and_then(|g| g.get("Function")));
    let functions: BTreeMap<String, Vec<String>> = d
        .resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap_or_default().to_owned(), vars(r.get("Properties"))))
        .collect();
    let path = nextier_testkit::workspace_root().join("events/env.json");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("events/env.json"))
        .expect("events/env.json is JSON");
    let entries = file.as_object().expect("events/env.json is an object of functions");
    let mut named: std::collections::BTreeSet<String> = functions.keys().cloned().collect();
    named.insert("Parameters".into());
    assert_eq!(
        entries.keys().cloned().collect::<std::collections::BTreeSet<_>>(),
        named,
        "events/env.json's entries: template.yaml's functions (by logical id) and SAM's Parameters for all"
    );
    for (id, own) in &functions {
        let entry = sam_env(&file, id);
        for (name, value) in &entry {
            let value = value.as_str().unwrap_or_else(|| panic!("{id}: {name} is not a string"));
            let declared = globals.contains(name) || own.contains(name);
            // A blank value only says the function reads a variable the template does not
            // declare, which SAM leaves unset; over a declared one it would hide its value.
            if value.is_empty() {
                assert!(!declared, "{id}: a blank {name} in events/env.json hides the template's value");
            } else {
                assert!(
                    declared || SAM_LOCAL_UNDECLARED.contains(&name.as_str()),
                    "{id}: template.yaml does not declare {name}, so SAM local would drop it"
                );
            }
            if value.starts_with("postgres://") {
                assert!(value.contains("@127.0.0.1:PGPORT/nextier"), "{id}: {name} = {value}");
            }
        }
        let url = |name: &str| entry.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
        if own.iter().any(|v| v == "MIGRATION_DATABASE_URL") {
            assert!(url("MIGRATION_DATABASE_URL").starts_with("postgres://postgres@"), "{id}: the admin URL");
            continue;
        }
        assert_eq!(url("PLATFORM"), "local", "{id}: PLATFORM");
        // Each function connects as one role, the one the template gives it.
        let app = own.iter().any(|v| v == "DATABASE_URL");
        assert_eq!(
            url("DATABASE_URL").starts_with("postgres://nextier_app@"),
            app,
            "{id}: DATABASE_URL, the app role, exactly where the template gives one"
        );
        let worker = own.iter().any(|v| v == "WORKER_DATABASE_URL");
        assert_eq!(
            url("WORKER_DATABASE_URL").starts_with("postgres://nextier_worker@"),
            worker,
            "{id}: WORKER_DATABASE_URL, the worker role, exactly where the template gives one"
        );
        assert!(app != worker, "{id}: one database role");
    }
}

/// The local escape hatches (an endpoint on loopback, a fake Zoho) never reach a deployed
/// stack: no function, nor the globals, sets them.
#[test]
fn no_deployed_function_admits_private_webhook_or_crm_hosts() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    let mut checked = 0;
    let mut check = |where_: &str, vars: &Value| {
        for name in ["WEBHOOK_ALLOW_ORIGINS", "ZOHO_EXTRA_HOSTS", "ZOHO_ACCOUNTS_URL"] {
            assert!(vars.get(name).is_none(), "{where_} sets {name}");
        }
        checked += 1;
    };
    check("Globals", globals);
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            check(id.as_str().unwrap_or_default(), &r["Properties"]["Environment"]["Variables"]);
        }
    }
    assert!(checked > 30, "{checked} functions checked");
}

/// Variables a function may read that events/env.json leaves out, and why.
const NOT_FOR_SAM_LOCAL: &[(&str, &str)] = &[
    // Read only off the local platform (PLATFORM=local selects the Postgres adapters).
    ("QUEUE_PREFIX", "the SQS adapter's"),
    ("EVENT_BUS_NAME", "the EventBridge adapter's"),
    ("UPLOADS_BUCKET", "the S3 adapter's"),
    ("RATE_TABLE", "the DynamoDB token buckets'"),
    // Set by Lambda itself (and by SAM local and cargo lambda watch).
    ("AWS_LAMBDA_FUNCTION_NAME", "set by the Lambda runtime"),
    // The template's value, where a function uses it, serves locally too.
    ("DB_POOL_SIZE", "the template's pool size"),
    ("CAMPAIGN_TICK_BUDGET", "the template's tick budget"),
    ("CAMPAIGN_TICK_CHUNK", "the template's tick chunk"),
    ("CAMPAIGN_TICK_LEASE_SECONDS", "the template's tick lease"),
];

/// Every variable a function's code reads, found in the sources of its crate and of the
/// workspace crates it depends on (not their tests): the first argument of the config readers
/// (`get`, `var`, `or`, `parse`, `is_set`, `var_os`, `from_env_var`), a literal or a constant,
/// and every `…_ENV` constant naming a variable. `QUEUE_URL_<QUEUE>` (the SQS adapter's, built
/// from the queue's name) is not found, and needs no entry (deployed only).
fn variables_read_by(binary: &str, workspace: &Workspace) -> std::collections::BTreeSet<String> {
    let mut crates = vec![workspace.bins.get(binary).unwrap_or_else(|| panic!("no crate builds {binary}")).clone()];
    let mut seen = std::collections::BTreeSet::new();
    let mut read = std::collections::BTreeSet::new();
    while let Some(name) = crates.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let krate = &workspace.crates[&name];
        crates.extend(krate.deps.iter().filter(|d| workspace.crates.contains_key(*d)).cloned());
        let constants: BTreeMap<String, String> =
            workspace.constants.iter().chain(&krate.constants).map(|(k, v)| (k.clone(), v.clone())).collect();
        for source in &krate.sources {
            read.extend(reads_in(source, &constants));
        }
    }
    read
}

struct Crate {
    deps: Vec<String>,
    /// Each source file without its `#[cfg(test)]` items.
    sources: Vec<String>,
    /// Its `const NAME: &str = "VALUE";`s (resolved before the workspace's).
    constants: BTreeMap<String, String>,
}

struct Workspace {
    crates: BTreeMap<String, Crate>,
    /// Binary name → its crate.
    bins: BTreeMap<String, String>,
    /// `const NAME: &str = "VALUE";` across the workspace's sources.
    constants: BTreeMap<String, String>,
}

fn workspace() -> Workspace {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(nextier_testkit::workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ws = Workspace { crates: BTreeMap::new(), bins: BTreeMap::new(), constants: BTreeMap::new() };
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_owned();
        let dir = std::path::Path::new(p["manifest_path"].as_str().unwrap()).parent().unwrap().join("src");
        let deps = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null() && d["path"].is_string())
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        for t in p["targets"].as_array().unwrap() {
            if t["kind"].as_array().unwrap().iter().any(|k| k == "bin") {
                ws.bins.insert(t["name"].as_str().unwrap().to_owned(), name.clone());
            }
        }
        let mut sources = Vec::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    sources.push(without_tests(&std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let constants: BTreeMap<String, String> = sources.iter().flat_map(|c| string_constants(c)).collect();
        for (constant, value) in &constants {
            ws.constants.entry(constant.clone()).or_insert_with(|| value.clone());
        }
        ws.crates.insert(name, Crate { deps, sources, constants });
    }
    ws
}

/// `code` without its `#[cfg(test)]` items (a test module, function or import), by matching
/// the item's braces (or its `;`).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let (brace, semi) = (item.find('{'), item.find(';'));
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => s + 1,
            (Some(b), _) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

fn is_variable(s: &str) -> bool {
    s.len() >= 3
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `const NAME: &str = "VALUE";` in `code`.
fn string_constants(code: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
        let Some(rest) = line.strip_prefix("const ") else { continue };
        let Some((name, rest)) = rest.split_once(':') else { continue };
        let Some(value) =
            rest.trim().strip_prefix("&str = \"").or_else(|| rest.trim().strip_prefix("&'static str = \""))
        else {
            continue;
        };
        if let Some((value, _)) = value.split_once('"') {
            found.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    found
}

/// The variables `code` reads (see [`variables_read_by`]).
fn reads_in(code: &str, constants: &BTreeMap<String, String>) -> Vec<String> {
    const READERS: &[&str] = &["get", "var", "or", "parse", "is_set", "var_os", "from_env_var"];
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for reader in READERS {
        let mut from = 0;
        while let Some(at) = code[from..].find(reader) {
            let start = from + at;
            from = start + reader.len();
            if start > 0 && ident(bytes[start - 1]) {
                continue;
            }
            let mut rest = &code[from..];
            if let Some(after) = rest.strip_prefix("::<") {
                match after.find(">(") {
                    Some(end) => rest = &after[end + 1..],
                    None => continue,
                }
            }
            let Some(arg) = rest.strip_prefix('(') else { continue };
            let arg = arg.trim_start();
            let name = if let Some(lit) = arg.strip_prefix('"') {
                lit.split('"').next().unwrap_or_default().to_owned()
            } else {
                // A constant, perhaps by its path (`signalhouse::SECRETS_ENV`).
                let path: String =
                    arg.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
                let id = path.rsplit("::").next().unwrap_or_default().to_owned();
                match constants.get(&id) {
                    Some(v) if is_variable(&id) => v.clone(),
                    _ => continue,
                }
            };
            if is_variable(&name) {
                found.push(name);
            }
        }
    }
    for (constant, value) in string_constants(code) {
        if constant.ends_with("_ENV") && is_variable(&value) {
            found.push(value);
        }
    }
    found
}

#[test]
fn the_variable_scan_finds_literal_constant_and_env_constant_reads() {
    let constants = BTreeMap::from([("SECRETS_ENV".to_owned(), "SIGNALHOUSE_WEBHOOK_SECRETS".to_owned())]);
    let code = without_tests(
        r#"
        #[cfg(test)]
        mod tests {
            fn x() { let _ = config::get("ONLY_IN_TESTS"); }
        }
        let g = nextier_runtime::config::get(nextier_webhooks::signalhouse::SECRETS_ENV);
        let a = nextier_runtime::config::get("ALPHA_URL");
        let b = config::parse::<u32>("BETA_SIZE");
        let c = config::or(  "GAMMA", "default");
        let d = nextier_runtime::config::get(SECRETS_ENV);
        let e = headers.get("x-signalhouse-signature").unwrap_or("UNKNOWN");
        let f = map.target("NOT_A_READ");
        pub const KEY_ENV: &str = "DELTA_API_KEY";
        #[cfg(test)]
        use something::Else;
        let after = config::get("AFTER_THE_TESTS");
    "#,
    );
    let mut found = reads_in(&code, &constants);
    found.sort();
    assert_eq!(
        found,
        [
            "AFTER_THE_TESTS",
            "ALPHA_URL",
            "BETA_SIZE",
            "DELTA_API_KEY",
            "GAMMA",
            "SIGNALHOUSE_WEBHOOK_SECRETS",
            "SIGNALHOUSE_WEBHOOK_SECRETS"
        ]
    );
}

/// Every variable a function reads is named in events/env.json (SAM's `Parameters` for all, or
/// the function's own entry; blank for what the template does not declare, which stays unset)
/// or declared by the template (whose value SAM passes), so that a new setting cannot be
/// forgotten there: a function run by `sam local` gets what it runs with.
#[test]
fn the_sam_local_env_file_names_every_variable_each_function_reads() {
    let t = template();
    let ws = workspace();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(nextier_testkit::workspace_root().join("events/env.json")).unwrap(),
    )
    .unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let binary = text(&r["Metadata"]["BuildProperties"]["Binary"]).unwrap_or_else(|| panic!("{id}: no Binary"));
        let env = sam_env(&file, id);
        let declared = declared_variables(&t, r);
        let read = variables_read_by(&binary, &ws);
        assert!(!read.is_empty(), "{id} ({binary}) reads no variable: the scan is broken");
        for v in read {
            if !env.contains_key(&v) && !declared.contains(&v) && !NOT_FOR_SAM_LOCAL.iter().any(|(n, _)| *n == v) {
                missing.push(format!("{id} ({binary}) reads {v}"));
            }
        }
        checked += 1;
    }
    assert!(checked > 30, "{checked} functions");
    assert!(missing.is_empty(), "events/env.json does not name:\n{}", missing.join("\n"));
}

/// The variables template.yaml declares for a function: the globals' and its own.
fn declared_variables(t: &Value, function: &Value) -> std::collections::BTreeSet<String> {
    let names = |v: &Value| -> Vec<String> {
        v.as_mapping().map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let mut all = names(&t["Globals"]["Function"]["Environment"]["Variables"]);
    all.extend(names(&function["Properties"]["Environment"]["Variables"]));
    all.into_iter().collect()
}

/// `PLATFORM=local` trusts the embedded dev secret for tokens and webhooks: nothing that deploys
/// may set it. The template declares it blank (for SAM local's sake) and no function sets it;
/// the workspace's cargo-lambda settings, which `cargo lambda deploy` applies too, leave it out
/// (`infra/dev.sh watch` passes it in the local runtime's watch.env).
#[test]
fn nothing_that_deploys_sets_the_local_platform() {
    let t = template();
    for name in ["PLATFORM", "LOCAL_BLOB_DIR", "LOCAL_PUBLIC_URL"] {
        assert_eq!(t["Globals"]["Function"]["Environment"]["Variables"][name].as_str(), Some(""), "Globals {name}");
    }
    let mut functions = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() == Some("AWS::Serverless::Function") {
            functions += 1;
            let vars = &r["Properties"]["Environment"]["Variables"];
            assert!(vars.get("PLATFORM").is_none(), "{id:?} sets PLATFORM");
        }
    }
    assert!(functions > 30);
    let cargo = std::fs::read_to_string(nextier_testkit::workspace_root().join("Cargo.toml")).unwrap();
    let section = cargo.split("[workspace.metadata.lambda.env]").nth(1).expect("the watch env section");
    let section = section.split("\n[").next().unwrap_or_default();
    assert!(
        !section.lines().any(|l| l.trim_start().starts_with("PLATFORM")),
        "[workspace.metadata.lambda.env] sets PLATFORM: cargo lambda deploy would ship it"
    );
}
