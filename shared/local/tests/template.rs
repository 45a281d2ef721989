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

/// `events/env.json` is `sam local invoke --env-vars`'s file for running a function against the
/// local runtime's database: an entry for each function of the template, by logical id, with
/// the database URLs the function reads (the worker role's where the template gives it one),
/// every URL on `host.docker.internal:PGPORT` (the placeholder events/README.md explains), and
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
    assert_eq!(
        entries.keys().collect::<std::collections::BTreeSet<_>>(),
        functions.keys().collect::<std::collections::BTreeSet<_>>(),
        "events/env.json's entries and template.yaml's functions (by logical id)"
    );
    for (id, own) in &functions {
        let entry = entries[id].as_object().unwrap_or_else(|| panic!("{id}: an object of variables"));
        for (name, value) in entry {
            let value = value.as_str().unwrap_or_else(|| panic!("{id}: {name} is not a string"));
            assert!(
                globals.contains(name) || own.contains(name) || SAM_LOCAL_UNDECLARED.contains(&name.as_str()),
                "{id}: template.yaml does not declare {name}, so SAM local would drop it"
            );
            if value.starts_with("postgres://") {
                assert!(value.contains("@host.docker.internal:PGPORT/nextier"), "{id}: {name} = {value}");
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
