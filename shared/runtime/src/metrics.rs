//! CloudWatch Embedded Metric Format: one JSON document per line on stdout, which Lambda's
//! log pipeline turns into metrics with no API call and no extra latency.

use std::io::Write;
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

/// Builds one EMF document (exposed for tests).
pub fn document(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) -> Value {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut doc = Map::new();
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let defs: Vec<Value> = metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": ts,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dim_names], "Metrics": defs}]
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

/// Writes one EMF line when metrics are enabled.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) {
    if !enabled() {
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
        assert_eq!(cw["Dimensions"][0], json!(["Function", "Route"]));
        assert_eq!(cw["Metrics"][0], json!({"Name": "Latency", "Unit": "Milliseconds"}));
        assert_eq!(doc["Latency"], 12.5);
        assert_eq!(doc["Route"], "GET /teams");
        assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    }
}
