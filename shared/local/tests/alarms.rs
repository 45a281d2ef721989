//! Every alarm in template.yaml can fire: each metric of our own namespace it watches is one
//! the code emits (EMF), with exactly the dimension set it asks for (CloudWatch matches a
//! metric only by its whole dimension set), and a `Function` dimension names a function of the
//! template (deployed, the code's `Function` is the Lambda's own name, `!Ref` of it). AWS
//! metrics are watched on resources the template defines. Every alarm notifies someone.
//!
//! What the code emits is read from the code itself: every `metrics::emit(` call site in
//! `shared/`, its dimension names and its metric names (all literals there), with the roll-up
//! to the first dimension that `nextier_runtime::metrics::document` adds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml::Value;

fn template() -> Value {
    let path = nextier_testkit::workspace_root().join("template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("template.yaml is YAML")
}

/// A metric as CloudWatch files it: its name and its dimension names, sorted.
type Series = (String, Vec<String>);

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target" && n != "tests") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of a call's arguments: from after `(` to the matching `)`.
fn arguments(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return &text[..i],
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    text
}

/// Splits at commas outside brackets.
fn top_level(args: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in args.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(args[start..].trim());
    out.into_iter().filter(|a| !a.is_empty()).collect()
}

/// The names in `("Name", …)` tuples of an expression.
fn names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("(\"") {
        let after = &rest[i + 2..];
        let end = after.find('"').unwrap();
        out.push(after[..end].to_owned());
        rest = &after[end..];
    }
    out
}

/// Each `&[…]` group of a list of dimension lists (`[&[("Provider", p)][..], &[]]`).
fn groups(list: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(i) = rest.find("&[") {
        let inner = arguments(&rest[i + 2..]);
        out.push(names(inner));
        rest = &rest[i + 2 + inner.len()..];
    }
    out
}

/// Every series the code emits.
fn emitted() -> BTreeSet<Series> {
    let root = nextier_testkit::workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("shared"), &mut files);
    let mut out = BTreeSet::new();
    let mut sites = 0;
    for f in files {
        if f.ends_with("runtime/src/metrics.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (at, _) in text.match_indices("metrics::emit(").chain(text.match_indices("\n    emit(")) {
            let open = at + text[at..].find('(').unwrap() + 1;
            let args = top_level(arguments(&text[open..]));
            assert_eq!(args.len(), 2, "{}: emit takes dimensions and metrics: {args:?}", f.display());
            let sets = if args[0].starts_with("&[") {
                vec![names(args[0])]
            } else {
                // A loop over dimension lists: `for dimensions in [&[…][..], &[]] {`.
                let before = &text[..at];
                let header = before
                    .rfind(&format!("for {} in [", args[0]))
                    .unwrap_or_else(|| panic!("{}: cannot read the dimensions `{}` of an emit", f.display(), args[0]));
                let list_start = header + before[header..].find('[').unwrap() + 1;
                groups(arguments(&text[list_start..]))
            };
            let metrics = names(args[1]);
            assert!(!metrics.is_empty(), "{}: an emit without metrics", f.display());
            for dims in sets {
                let mut declared = vec![dims.clone()];
                if dims.len() > 1 {
                    declared.push(vec![dims[0].clone()]);
                }
                for mut set in declared {
                    set.sort();
                    for m in &metrics {
                        out.insert((m.clone(), set.clone()));
                    }
                }
            }
            sites += 1;
        }
    }
    assert!(sites >= 8, "found only {sites} emit sites; the scan is broken");
    out
}

/// `!Ref X`, `!GetAtt X.Attr` → `X`.
fn referenced(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(str::to_owned),
        Value::Tagged(t) if t.tag == "!GetAtt" => t.value.as_str().and_then(|s| s.split('.').next()).map(str::to_owned),
        _ => None,
    }
}

struct Watched {
    alarm: String,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, Value)>,
}

fn watched(id: &str, props: &Value) -> Vec<Watched> {
    let dims = |m: &Value| -> Vec<(String, Value)> {
        m.get("Dimensions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|d| (d["Name"].as_str().unwrap_or_default().to_owned(), d["Value"].clone()))
            .collect()
    };
    if let Some(metrics) = props.get("Metrics").and_then(Value::as_sequence) {
        let stats: Vec<_> = metrics.iter().filter_map(|m| m.get("MetricStat")).collect();
        assert!(!stats.is_empty(), "{id}: a metric-math alarm with no metric");
        for m in metrics {
            if let Some(expr) = m.get("Expression").and_then(Value::as_str) {
                // Every id an expression names is one of the alarm's metrics.
                let ids: BTreeSet<&str> = metrics.iter().filter_map(|o| o.get("Id").and_then(Value::as_str)).collect();
                for word in expr.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
                    if word.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        assert!(
                            ids.contains(word),
                            "{id}: the expression `{expr}` names `{word}`, which is not a metric"
                        );
                    }
                }
            }
        }
        stats
            .into_iter()
            .map(|s| Watched {
                alarm: id.to_owned(),
                namespace: s["Metric"]["Namespace"].as_str().unwrap_or_default().to_owned(),
                metric: s["Metric"]["MetricName"].as_str().unwrap_or_default().to_owned(),
                dimensions: dims(&s["Metric"]),
            })
            .collect()
    } else {
        vec![Watched {
            alarm: id.to_owned(),
            namespace: props["Namespace"].as_str().unwrap_or_default().to_owned(),
            metric: props["MetricName"].as_str().unwrap_or_default().to_owned(),
            dimensions: dims(props),
        }]
    }
}

#[test]
fn every_alarm_watches_a_metric_that_exists_and_notifies() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let kind = |id: &str| resources.get(id).and_then(|r| r["Type"].as_str()).unwrap_or_default().to_owned();
    let code = emitted();
    let mut alarms = 0;
    let mut ours: BTreeMap<String, usize> = BTreeMap::new();
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let id = id.as_str().unwrap();
        alarms += 1;
        let props = &r["Properties"];
        let actions = props["AlarmActions"].as_sequence().map(Vec::len).unwrap_or(0);
        assert!(actions > 0, "{id} notifies nobody");
        assert!(props["TreatMissingData"].as_str().is_some(), "{id}: say what missing data means");
        for w in watched(id, props) {
            match w.namespace.as_str() {
                "Nextier" => {
                    let mut set: Vec<String> = w.dimensions.iter().map(|(n, _)| n.clone()).collect();
                    set.sort();
                    assert!(
                        code.contains(&(w.metric.clone(), set.clone())),
                        "{}: the code never emits {} with dimensions {set:?}; it emits {:?}",
                        w.alarm,
                        w.metric,
                        code.iter().filter(|(m, _)| *m == w.metric).collect::<Vec<_>>()
                    );
                    for (name, value) in &w.dimensions {
                        if name == "Function" {
                            let f = referenced(value).unwrap_or_default();
                            assert_eq!(
                                kind(&f),
                                "AWS::Serverless::Function",
                                "{}: Function must be `!Ref` of a function (its Lambda name)",
                                w.alarm
                            );
                        }
                    }
                    *ours.entry(w.metric.clone()).or_default() += 1;
                }
                "AWS/SQS" => {
                    let (name, value) = &w.dimensions[0];
                    assert_eq!(name, "QueueName", "{}", w.alarm);
                    assert_eq!(kind(&referenced(value).unwrap_or_default()), "AWS::SQS::Queue", "{}", w.alarm);
                }
                "AWS/Lambda" => {
                    let (name, value) = &w.dimensions[0];
                    assert_eq!(name, "FunctionName", "{}", w.alarm);
                    assert_eq!(
                        kind(&referenced(value).unwrap_or_default()),
                        "AWS::Serverless::Function",
                        "{}",
                        w.alarm
                    );
                }
                other => panic!("{}: an alarm on namespace {other:?}, which nothing here publishes", w.alarm),
            }
        }
    }
    assert!(alarms >= 30, "{alarms} alarms");
    for must in ["ServerErrors", "OptOutLatency", "SlaBreaches", "ProviderFailures", "OutboxOldestAge"] {
        assert!(ours.contains_key(must), "no alarm watches {must}");
    }
}

#[test]
fn every_queue_has_an_age_alarm_and_every_dead_letter_queue_an_alarm() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let mut age = BTreeSet::new();
    let mut visible = BTreeSet::new();
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        for w in watched(id.as_str().unwrap(), &r["Properties"]) {
            if w.namespace == "AWS/SQS" {
                let q = referenced(&w.dimensions[0].1).unwrap();
                match w.metric.as_str() {
                    "ApproximateAgeOfOldestMessage" => age.insert(q),
                    "ApproximateNumberOfMessagesVisible" => visible.insert(q),
                    _ => false,
                };
            }
        }
    }
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::SQS::Queue") {
            continue;
        }
        let id = id.as_str().unwrap().to_owned();
        let name = r["Properties"]["QueueName"].clone();
        let dead = serde_yaml::to_string(&name).unwrap().contains("-dlq");
        if dead {
            assert!(visible.contains(&id), "no alarm on the dead-letter queue {id}");
        } else {
            assert!(age.contains(&id), "no alarm on the age of the oldest message of {id}");
        }
    }
    let functions: Vec<&str> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(id, _)| id.as_str())
        .collect();
    for f in
        functions.iter().filter(|f| !f.starts_with("Api") && !f.starts_with("Consumer") && **f != "MigrateFunction")
    {
        let alarmed = resources.iter().any(|(_, r)| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && watched("", &r["Properties"])
                    .iter()
                    .any(|w| w.namespace == "AWS/Lambda" && referenced(&w.dimensions[0].1).as_deref() == Some(*f))
        });
        assert!(alarmed, "no alarm on the errors and throttles of the cron or webhook {f}");
    }
    for f in functions.iter().filter(|f| f.starts_with("Api")) {
        let alarmed = resources.iter().any(|(_, r)| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && watched("", &r["Properties"]).iter().any(|w| {
                    w.metric == "ServerErrors" && w.dimensions.iter().any(|(_, v)| referenced(v).as_deref() == Some(*f))
                })
        });
        assert!(alarmed, "no 5xx alarm for the API function {f}");
    }
}

#[test]
fn the_scan_reads_the_emit_forms_the_code_uses() {
    let code = emitted();
    // A route's request metrics, rolled up to the function (what the 5xx alarms watch).
    assert!(code.contains(&("ServerErrors".into(), vec!["Function".into(), "Route".into()])));
    assert!(code.contains(&("ServerErrors".into(), vec!["Function".into()])));
    // A loop over dimension lists: once by provider, once without dimensions.
    assert!(code.contains(&("ProviderConfigurationFaults".into(), vec!["Provider".into()])));
    assert!(code.contains(&("ProviderConfigurationFaults".into(), vec![])));
    // And what EMF really writes agrees with the roll-up the scan assumes.
    let doc = nextier_runtime::metrics::document(&[("Function", "f"), ("Queue", "q")], &[]);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Function", "Queue"], ["Function"]])
    );
}

#[test]
fn the_dashboard_is_json_and_graphs_what_the_code_emits() {
    let t = template();
    let body = t["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"].clone();
    let body = match body {
        Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
        other => panic!("a !Sub body: {other:?}"),
    };
    // CloudFormation fills the ${…} references; what is left must be a dashboard.
    let mut filled = String::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("${") {
        filled.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap();
        filled.push('X');
        rest = &rest[i + end + 1..];
    }
    filled.push_str(rest);
    let d: serde_json::Value = serde_json::from_str(&filled).expect("the dashboard body is JSON");
    let widgets = d["widgets"].as_array().unwrap();
    assert!(widgets.len() >= 8);
    let code = emitted();
    let names: BTreeSet<&String> = code.iter().map(|(m, _)| m).collect();
    let text = filled.as_str();
    for metric in
        ["Sends", "Replies", "Latency", "OptOutLatency", "SlaBreaches", "ProviderRequests", "ProviderFailures"]
    {
        assert!(
            text.contains(&format!("\"{metric}\"")) || text.contains(&format!("\\\"{metric}\\\"")),
            "the dashboard lacks {metric}"
        );
        assert!(names.contains(&metric.to_owned()), "the dashboard graphs {metric}, which the code never emits");
    }
    for aws in ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "ClientConnections"] {
        assert!(text.contains(aws), "the dashboard lacks {aws}");
    }
}
