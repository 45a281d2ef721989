//! CloudWatch Embedded Metric Format: one JSON document per line on stdout, which Lambda's
//! log pipeline turns into metrics with no API call and no extra latency.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Nextier";

#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// Whether EMF lines are written: on in Lambda, off locally unless `METRICS_EMF=1`.
pub fn enabled() -> bool {
    match crate::config::get("METRICS_EMF") {
        Some(v) => v == "1" || v.eq_ignore_ascii_case("true"),
        None => crate::config::in_lambda(),
    }
}

/// Builds one EMF document (exposed for tests). With more than one dimension, the metrics are
/// also recorded under the first alone (`Function`), so an alarm per function needs no route or
/// queue: CloudWatch matches a metric only by its exact dimension set.
pub fn document(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) -> Value {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut doc = Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let dim_names: Value = match names.len() {
        0 | 1 => json!([names]),
        _ => json!([names, [names[0]]]),
    };
    let defs: Vec<Value> = metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": ts,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dim_names, "Metrics": defs}]
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for (n, v, _) in metrics {
        doc.insert((*n).into(), json!(v));
    }
    if let Some(id) = crate::correlation::current() {
        // A property, not a dimension: searchable in Logs Insights, free in metrics.
        doc.insert("correlation_id".into(), json!(id.as_str()));
    }
    Value::Object(doc)
}

/// What [`capture`] is collecting, if anything.
static CAPTURED: Mutex<Option<Vec<Value>>> = Mutex::new(None);

/// Collects every document emitted from now on in this process (whether or not lines are
/// written), until the guard is dropped: tests read what the code really emits.
pub fn capture() -> Capture {
    *CAPTURED.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    Capture(())
}

pub struct Capture(());

impl Capture {
    /// The documents emitted so far.
    pub fn documents(&self) -> Vec<Value> {
        CAPTURED.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default()
    }

    /// Every (namespace, metric name, dimension set, dimension values) emitted so far.
    pub fn series(&self) -> Vec<Series> {
        let mut out = Vec::new();
        for doc in self.documents() {
            for cw in doc["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
                let ns = cw["Namespace"].as_str().unwrap_or_default().to_owned();
                for set in cw["Dimensions"].as_array().into_iter().flatten() {
                    let dims: Vec<(String, String)> = set
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|k| (k.to_owned(), doc[k].as_str().unwrap_or_default().to_owned()))
                        .collect();
                    for m in cw["Metrics"].as_array().into_iter().flatten() {
                        let name = m["Name"].as_str().unwrap_or_default().to_owned();
                        out.push(Series { namespace: ns.clone(), metric: name, dimensions: dims.clone() });
                    }
                }
            }
        }
        out
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        *CAPTURED.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// One metric as CloudWatch would file it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub namespace: String,
    pub metric: String,
    /// (name, value), in the order declared.
    pub dimensions: Vec<(String, String)>,
}

/// Writes one EMF line when metrics are enabled.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) {
    let capturing = {
        let mut c = CAPTURED.lock().unwrap_or_else(|p| p.into_inner());
        match c.as_mut() {
            Some(docs) => {
                docs.push(document(dimensions, metrics));
                true
            }
            None => false,
        }
    };
    if !enabled() || capturing {
        return;
    }
    let line = document(dimensions, metrics).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_emf_shape() {
        let doc =
            document(&[("Function", "api-admin"), ("Route", "GET /teams")], &[("Latency", 12.5, Unit::Milliseconds)]);
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "Nextier");
        assert_eq!(cw["Dimensions"], json!([["Function", "Route"], ["Function"]]), "rolled up to the function");
        assert_eq!(cw["Metrics"][0], json!({"Name": "Latency", "Unit": "Milliseconds"}));
        assert_eq!(doc["Latency"], 12.5);
        assert_eq!(doc["Route"], "GET /teams");
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    }
}
