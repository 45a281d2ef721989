//! The OpenAPI document is generated from the handlers; these tests keep it complete.

mod support;

use axum::http::StatusCode;
use support::{harness, As};

#[test]
fn the_document_is_openapi_3_1_and_secures_every_team_route() {
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{:?}", paths.keys());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let public = path == "/health" || path == "/openapi.json";
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !public, "{method} {path} security");
            assert!(op["responses"]["500"].is_object(), "{method} {path} documents problems");
            if secured {
                assert!(op["responses"]["401"]["content"]["application/problem+json"].is_object());
            }
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
    // The contract's version (major.minor.patch); major 1 is the one served without a prefix.
    let version = doc["info"]["version"].as_str().unwrap();
    assert!(version.starts_with("1.") && version.split('.').count() == 3, "info.version {version}");
}

/// Writes the document to `target/openapi.json`, where `infra/dev.sh test` then checks it
/// with openapi-spec-validator and generates a TypeScript client from it. (`cargo run -p
/// nextier-local -- openapi FILE` writes the same document without the tests.)
#[test]
fn the_document_is_written_for_the_contract_checks() {
    let dir = nextier_testkit::workspace_root().join("target");
    std::fs::create_dir_all(&dir).unwrap();
    let json = nextier_api::openapi_document().to_pretty_json().unwrap();
    std::fs::write(dir.join("openapi.json"), json + "\n").unwrap();
}

/// Every operation has an operationId of its own (a client generator names its methods by
/// them), and each path parameter the path names is documented, in the path.
#[test]
fn operation_ids_are_unique_and_path_parameters_are_documented() {
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let named: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and by {method} {path}");
            }
            let documented: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(documented, named, "{method} {path}: path parameters");
        }
    }
    assert!(seen.len() >= 80, "{} operations", seen.len());
}

/// A path parameter that takes a fixed set of values is documented as their enum.
#[test]
fn fixed_path_parameters_are_enums() {
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    let enum_of = |path: &str, method: &str, name: &str| -> Vec<String> {
        let op = &doc["paths"][path][method];
        let param = op["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == "path"))
            .unwrap_or_else(|| panic!("{method} {path} documents no {name}"));
        let values = param["schema"]["enum"].as_array().unwrap_or_else(|| panic!("{name} is not an enum: {param}"));
        values.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        enum_of("/teams/{teamId}/campaigns/{campaignId}/{action}", "post", "action"),
        ["stage", "unstage", "approve", "start", "pause", "resume", "complete", "cancel"]
    );
    assert_eq!(
        enum_of("/teams/{teamId}/inbox/buckets/{bucket}", "patch", "bucket"),
        [
            "UNIVERSAL_INBOX",
            "POSITIVE_RESPONSES",
            "NEUTRAL_REVIEW",
            "WRONG_NUMBER",
            "PROFANITY_REVIEW",
            "BLACKLIST",
            "LEGAL_DNC",
            "FOLLOW_UP"
        ]
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    // A documented path must reach a handler: anything but the router's own 404/405.
    let h = harness().await;
    let doc = serde_json::to_value(nextier_api::openapi_document()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{teamId}", "team_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{userId}", "usr_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{invitationId}", "inv_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{keyId}", "key_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{contactId}", "con_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{importId}", "imp_01JD8Z6Q3M4N5P6R7S8T9V0W1X")
            .replace("{scope}", "general")
            .replace("{name}", "greeting");
        for method in item.as_object().unwrap().keys() {
            let r = h.call(&As::User("alice"), &method.to_uppercase(), &concrete, None).await;
            let routed = !(r.status == StatusCode::METHOD_NOT_ALLOWED
                || (r.status == StatusCode::NOT_FOUND && r.body["detail"] == "no route matches this path"));
            assert!(routed, "{method} {path} is documented but not routed ({})", r.status);
        }
    }
}

/// Every function has a template resource, and every documented path is reachable through
/// API Gateway (template.yaml) and through `cargo lambda watch` (the Cargo.toml router), and
/// both send it to the same function. Like API Gateway, the most specific route wins.
#[test]
fn the_template_and_the_watch_router_send_every_route_to_the_same_function() {
    let root = nextier_testkit::workspace_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(template.contains(&format!("Binary: {name}\n")), "template.yaml has no function for {name}");
    }
    // (path pattern, function binary) from the template's HttpApi events on the people API.
    let mut gateway: Vec<(String, String)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut binary: Option<String> = None;
    for line in template.lines() {
        let top = line.len() > 2 && line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if top {
            if let Some(b) = binary.take() {
                gateway.extend(pending.drain(..).map(|p| (p, b.clone())));
            }
            pending.clear();
        }
        if let Some(b) = line.trim().strip_prefix("Binary: ") {
            binary = Some(b.to_owned());
        }
        if line.contains("ApiId: !Ref Api,") {
            if let Some(p) = line.split("Path: ").nth(1) {
                let path = match p.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next().unwrap(),
                    None => p.split([',', ' ']).next().unwrap(),
                };
                pending.push(path.to_owned());
            }
        }
    }
    if let Some(b) = binary.take() {
        gateway.extend(pending.drain(..).map(|p| (p, b.clone())));
    }
    let watch: Vec<(String, String)> = cargo
        .lines()
        .skip_while(|l| !l.starts_with("[workspace.metadata.lambda.watch.router]"))
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            Some((k.trim_matches('"').to_owned(), v.trim_matches('"').to_owned()))
        })
        .collect();
    let segs = |p: &str| -> Vec<String> {
        p.split('/').map(|s| if s.starts_with('{') { "{}".to_owned() } else { s.to_owned() }).collect()
    };
    // The most specific covering route: exact beats greedy; a longer greedy prefix beats a shorter.
    let route = |routes: &[(String, String)], path: &str, greedy: &str| -> Option<String> {
        let got = segs(path);
        routes
            .iter()
            .filter_map(|(pattern, f)| {
                let pat = segs(pattern);
                if pattern.ends_with(greedy) {
                    let n = pat.len() - 1;
                    (got.len() > n && pat[..n] == got[..n]).then_some(((0, n), f.clone()))
                } else {
                    (pat == got).then_some(((1, pat.len()), f.clone()))
                }
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, f)| f)
    };
    let doc = nextier_api::openapi_document();
    for path in doc.paths.paths.keys() {
        let by_gateway = route(&gateway, path, "{proxy+}");
        let by_watch = route(&watch, path, "{*rest}");
        assert!(by_gateway.is_some(), "no API Gateway route reaches {path}");
        assert_eq!(by_gateway, by_watch, "{path}: API Gateway and cargo lambda watch disagree");
    }
}
