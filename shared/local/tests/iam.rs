//! Least privilege, proven against template.yaml: each function is granted exactly the AWS
//! actions on exactly the resources `nextier_local::aws::FUNCTIONS` says its wiring performs,
//! in explicit statements (SAM's policy templates grant more than we use: DynamoDBCrudPolicy
//! includes Scan and DeleteItem), with no wildcard action or resource. A missing grant (the
//! inbox API sending through the DynamoDB limiter without DynamoDB rights) fails here, not in
//! production.

use std::collections::{BTreeMap, BTreeSet};

use nextier_local::aws::{self, Access};
use serde_yaml::Value;

fn template() -> Value {
    let path = nextier_testkit::workspace_root().join("template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("template.yaml is YAML")
}

/// A grant: (action, resource), the resource as `!GetAtt X.Arn` → `X`, or a `!Sub` string.
type Grant = (String, String);

fn resource(v: &Value) -> String {
    match v {
        Value::Tagged(t) if t.tag == "!GetAtt" => {
            let target = t.value.as_str().unwrap_or_default();
            assert!(target.ends_with(".Arn"), "a resource must be an ARN: {target}");
            target.trim_end_matches(".Arn").to_owned()
        }
        Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str().unwrap_or_default().to_owned(),
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().unwrap_or_default().to_owned(),
        Value::String(s) => s.clone(),
        other => panic!("a resource this test cannot read: {other:?}"),
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s.clone(),
        other => vec![other.clone()],
    }
}

fn granted(id: &str, props: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for p in props.get("Policies").and_then(Value::as_sequence).into_iter().flatten() {
        let statements = p.get("Statement").unwrap_or_else(|| {
            panic!("{id}: only explicit statements, no SAM policy templates (they grant more): {p:?}")
        });
        for st in list(statements) {
            assert_eq!(st["Effect"].as_str(), Some("Allow"), "{id}: {st:?}");
            assert!(st.get("Condition").is_none() || st.get("Resource").is_some(), "{id}");
            for action in list(&st["Action"]) {
                let action = action.as_str().unwrap_or_default().to_owned();
                assert!(!action.contains('*'), "{id}: a wildcard action {action}");
                for r in list(&st["Resource"]) {
                    let r = resource(&r);
                    assert!(r != "*" && !r.ends_with(":*"), "{id}: a wildcard resource for {action}");
                    out.insert((action.clone(), r));
                }
            }
        }
    }
    out
}

const UPLOADS: &str = "arn:${AWS::Partition}:s3:::nextier-${Stage}-uploads-${AWS::AccountId}";

/// A function's environment, the template's globals under its own.
fn environment(template: &Value, props: &Value) -> BTreeMap<String, Value> {
    let mut env = BTreeMap::new();
    for vars in [&template["Globals"]["Function"]["Environment"]["Variables"], &props["Environment"]["Variables"]] {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            env.insert(k.as_str().unwrap_or_default().to_owned(), v.clone());
        }
    }
    env
}

fn expected(template: &Value, env: &BTreeMap<String, Value>, access: &[Access]) -> BTreeSet<Grant> {
    let resources = template["Resources"].as_mapping().unwrap();
    let queue = |name: &str| -> String {
        let want = format!("nextier-${{Stage}}-{name}");
        resources
            .iter()
            .find(|(_, r)| {
                r["Type"].as_str() == Some("AWS::SQS::Queue")
                    && match &r["Properties"]["QueueName"] {
                        Value::Tagged(t) => t.value.as_str() == Some(want.as_str()),
                        _ => false,
                    }
            })
            .and_then(|(id, _)| id.as_str())
            .unwrap_or_else(|| panic!("no queue {name} in the template"))
            .to_owned()
    };
    let mut out = BTreeSet::new();
    for a in access {
        match a {
            Access::Send(q) => {
                out.insert(("sqs:SendMessage".into(), queue(q)));
            }
            Access::PutEvents => {
                out.insert(("events:PutEvents".into(), "EventBus".into()));
            }
            Access::RateBuckets => {
                out.insert(("dynamodb:GetItem".into(), "RateBucketsTable".into()));
                out.insert(("dynamodb:PutItem".into(), "RateBucketsTable".into()));
            }
            Access::ReadUploads(prefix) => {
                out.insert(("s3:GetObject".into(), format!("{UPLOADS}/{prefix}/*")));
            }
            Access::WriteUploads(prefix) => {
                out.insert(("s3:PutObject".into(), format!("{UPLOADS}/{prefix}/*")));
            }
            Access::Secret(setting) => {
                let arn = env.get(&format!("{setting}_SECRET_ARN")).unwrap_or_else(|| {
                    panic!("{setting} is read from its secret, but {setting}_SECRET_ARN is not in the environment")
                });
                out.insert(("secretsmanager:GetSecretValue".into(), resource(arn)));
            }
        }
    }
    out
}

#[test]
fn every_function_is_granted_exactly_what_its_wiring_does() {
    let t = template();
    let mut seen = BTreeSet::new();
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap();
        let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{id}: no Binary"));
        let declared =
            aws::function(binary).unwrap_or_else(|| panic!("{binary} is deployed but not in aws::FUNCTIONS"));
        let env = environment(&t, &r["Properties"]);
        no_secret_in(id, binary, &env, declared.access);
        let (want, have) = (expected(&t, &env, declared.access), granted(id, &r["Properties"]));
        let missing: Vec<_> = want.difference(&have).collect();
        let extra: Vec<_> = have.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{id} ({binary}): missing {missing:?}, more than needed {extra:?}"
        );
        seen.insert(binary);
    }
    for f in aws::FUNCTIONS {
        assert!(seen.contains(f.binary), "{} is declared but not deployed", f.binary);
    }
}

/// No secret is in an environment: a secret setting comes as `X_SECRET_ARN` (a database URL
/// may be given without its password), and only the ones the function reads.
fn no_secret_in(id: &str, binary: &str, env: &BTreeMap<String, Value>, access: &[Access]) {
    for (name, value) in env {
        let text = serde_yaml::to_string(value).unwrap();
        assert!(!text.contains("resolve:secretsmanager"), "{id}: {name} resolves a secret into the environment");
        if let Some(setting) = name.strip_suffix("_SECRET_ARN") {
            assert!(
                access.iter().any(|a| matches!(a, Access::Secret(s) if *s == setting)),
                "{id}: {name} is given, but {binary} is not declared to read {setting}"
            );
            continue;
        }
        if aws::SECRET_SETTINGS.contains(&name.as_str()) {
            assert!(name.ends_with("DATABASE_URL"), "{id}: the secret {name} is in the environment");
            let rest = text.split("://").nth(1).unwrap_or_default();
            let userinfo = rest.split_once('@').map(|(u, _)| u).unwrap_or_default();
            assert!(!userinfo.contains(':'), "{id}: {name} carries a password: {text}");
        }
    }
}

#[test]
fn every_function_that_sends_through_the_gate_may_take_rate_tokens() {
    // The functions whose wiring builds the outbound gate over the DynamoDB limiter.
    let root = nextier_testkit::workspace_root();
    for f in aws::FUNCTIONS {
        let main = std::fs::read_to_string(root.join("functions").join(f.binary).join("src/main.rs")).unwrap();
        let gate = main.contains("gate_from_env")
            || main.contains("inbound_processor")
            || (main.contains("nextier_api::run_lambda") && {
                // An API group sends when its handlers use the gate.
                let group = f.binary.trim_start_matches("api-");
                let dir = root.join("shared/api/src");
                let uses = |p: std::path::PathBuf| std::fs::read_to_string(p).is_ok_and(|s| s.contains("app.gate"));
                match group {
                    "contacts" => uses(dir.join("messages.rs")),
                    "inbox" => uses(dir.join("inbox/suggestions.rs")),
                    _ => false,
                }
            });
        // Enrichment takes its daily caps from the same limiter, and so do property searches
        // (the property API group's handlers use `app.limiter`).
        let caps = main.contains("nextier_enrichment::Pipeline")
            || main.contains("nextier_integrations::handle_tasks")
            || main.contains("nextier_property::Properties")
            || (main.contains("nextier_api::run_lambda")
                && f.binary == "api-property"
                && std::fs::read_to_string(root.join("shared/api/src/property.rs"))
                    .is_ok_and(|s| s.contains("app.limiter")));
        assert_eq!(
            gate || caps,
            f.access.contains(&Access::RateBuckets),
            "{}: builds the gate = {gate}, takes enrichment caps = {caps}, but its declared access says otherwise",
            f.binary
        );
    }
}

#[test]
fn the_sweeper_may_publish_to_every_queue_the_outbox_targets() {
    let sweeper = aws::function("cron-outbox-sweeper").unwrap();
    // Every queue any function sends to through its outbox is one the sweeper can publish to
    // (the tick and the sequence consumer send to their queue directly, not through it).
    for f in aws::FUNCTIONS {
        for a in f.access {
            if let Access::Send(q) = a {
                if *q != nextier_campaigns::SEQUENCE_QUEUE {
                    assert!(sweeper.access.contains(a), "the sweeper cannot publish {}'s jobs to {q}", f.binary);
                }
            }
        }
    }
}

#[test]
fn migrations_run_during_every_deploy_whose_code_changed() {
    let t = template();
    let r = &t["Resources"];
    let m = &r["Migrations"];
    assert_eq!(m["Type"].as_str(), Some("Custom::Migrations"));
    let token = serde_yaml::to_string(&m["Properties"]["ServiceToken"]).unwrap();
    let version = serde_yaml::to_string(&m["Properties"]["CodeVersion"]).unwrap();
    assert!(token.contains("MigrateFunction.Alias"), "invokes the published migrate function: {token}");
    assert!(version.contains("MigrateFunction.Version"), "changes with the code: {version}");
    assert!(r["MigrateFunction"]["Properties"]["AutoPublishAlias"].as_str().is_some());
    assert_eq!(r["MigrateFunction"]["Metadata"]["BuildProperties"]["Binary"].as_str(), Some("migrate"));
}

#[test]
fn every_public_function_url_has_reserved_concurrency() {
    let t = template();
    let mut urls = 0;
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        let props = &r["Properties"];
        if props.get("FunctionUrlConfig").is_none() {
            continue;
        }
        urls += 1;
        let n = props["ReservedConcurrentExecutions"].as_u64();
        assert!(n.is_some_and(|n| (1..=100).contains(&n)), "{id:?}: a public URL without a concurrency cap");
    }
    assert_eq!(urls, 4, "the four provider webhooks");
}
