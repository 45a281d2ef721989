//! Whatever a client sends, the answer is a 4xx problem+json that says what is wrong, and
//! nothing is written.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use support::{harness, As};

const ALICE: As = As::User("alice");

#[tokio::test]
async fn bad_bodies_get_a_problem_naming_the_field_and_write_nothing() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let before =
        (h.count("teams").await, h.count("team_invitations").await, h.count("api_keys").await, h.count("outbox").await);

    let cases: Vec<(&str, String, serde_json::Value, StatusCode, Option<&str>)> = vec![
        ("POST", "/teams".into(), json!({"name": 42}), StatusCode::BAD_REQUEST, Some("name")),
        ("POST", "/teams".into(), json!({}), StatusCode::BAD_REQUEST, Some("name")),
        ("POST", "/teams".into(), json!({"name": "   "}), StatusCode::BAD_REQUEST, Some("name")),
        ("POST", "/teams".into(), json!({"name": "x".repeat(101)}), StatusCode::BAD_REQUEST, Some("name")),
        ("POST", "/teams".into(), json!({"name": "ok", "owner": "me"}), StatusCode::BAD_REQUEST, Some("owner")),
        ("POST", "/teams".into(), json!(["name"]), StatusCode::BAD_REQUEST, Some("body")),
        (
            "POST",
            format!("/teams/{team}/invitations"),
            json!({"email": "not-an-email", "role": "MEMBER"}),
            StatusCode::BAD_REQUEST,
            Some("email"),
        ),
        (
            "POST",
            format!("/teams/{team}/invitations"),
            json!({"email": "a@b.io", "role": "KING"}),
            StatusCode::BAD_REQUEST,
            Some("role"),
        ),
        (
            "POST",
            format!("/teams/{team}/invitations"),
            json!({"email": "a@b.io", "role": "OWNER"}),
            StatusCode::BAD_REQUEST,
            Some("role"),
        ),
        (
            "POST",
            format!("/teams/{team}/api-keys"),
            json!({"name": "k", "scopes": ["team:read", "root"]}),
            StatusCode::BAD_REQUEST,
            Some("scopes[1]"),
        ),
        (
            "POST",
            format!("/teams/{team}/api-keys"),
            json!({"name": "k", "scopes": []}),
            StatusCode::BAD_REQUEST,
            Some("scopes"),
        ),
        (
            "POST",
            format!("/teams/{team}/api-keys"),
            json!({"name": "k", "scopes": ["*"], "expiresAt": "2001-01-01T00:00:00Z"}),
            StatusCode::BAD_REQUEST,
            Some("expiresAt"),
        ),
        (
            "POST",
            format!("/teams/{team}/api-keys"),
            json!({"name": "k", "scopes": ["*"], "expiresAt": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            Some("expiresAt"),
        ),
        (
            "PUT",
            format!("/teams/{team}/settings/Bad%20Scope/x"),
            json!({"value": "v"}),
            StatusCode::BAD_REQUEST,
            Some("scope"),
        ),
        (
            "PUT",
            format!("/teams/{team}/settings/general/x"),
            json!({"value": "v".repeat(5000)}),
            StatusCode::BAD_REQUEST,
            Some("value"),
        ),
        ("GET", "/teams/not-a-team".into(), json!(null), StatusCode::BAD_REQUEST, Some("teamId")),
        ("GET", "/teams/team_01jd8z6q3m4n5p6r7s8t9v0w1x".into(), json!(null), StatusCode::BAD_REQUEST, Some("teamId")),
        (
            "PATCH",
            format!("/teams/{team}/members/usr_nope"),
            json!({"role": "ADMIN"}),
            StatusCode::BAD_REQUEST,
            Some("userId"),
        ),
        ("GET", format!("/teams/{team}/api-keys?limit=0"), json!(null), StatusCode::BAD_REQUEST, Some("limit")),
        ("GET", format!("/teams/{team}/api-keys?cursor=%25%25"), json!(null), StatusCode::BAD_REQUEST, Some("cursor")),
        (
            "GET",
            format!("/teams/{team}/settings/general/x?reveal=maybe"),
            json!(null),
            StatusCode::BAD_REQUEST,
            Some("reveal"),
        ),
        ("POST", "/invitations/accept".into(), json!({"token": "nxi_short"}), StatusCode::BAD_REQUEST, Some("token")),
    ];
    for (method, uri, body, status, field) in cases {
        let body = (!body.is_null()).then_some(body);
        let r = h.call(&ALICE, method, &uri, body.clone()).await;
        assert_eq!(r.status, status, "{method} {uri} {body:?}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json", "{method} {uri}");
        assert_eq!(r.field(), field, "{method} {uri} {body:?}: {}", r.body);
        assert!(r.body["correlationId"].is_string());
    }
    let after =
        (h.count("teams").await, h.count("team_invitations").await, h.count("api_keys").await, h.count("outbox").await);
    assert_eq!(before, after, "nothing was written");
}

#[tokio::test]
async fn malformed_oversized_and_mistyped_bodies_are_refused() {
    let h = harness().await;
    let raw = |body: Vec<u8>, ct: Option<&str>| {
        let mut b = Request::builder().method("POST").uri("/teams");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let mut req = b.body(Body::from(body)).unwrap();
        let claims = [("sub".to_string(), "alice".to_string())].into_iter().collect();
        req.extensions_mut().insert(nextier_http::jwt::request_context(claims, "POST", "/teams"));
        req
    };
    let r = h.send(raw(b"{\"name\": ".to_vec(), Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("not valid JSON"));
    let r = h.send(raw(vec![0xff, 0xfe, 0x00], Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let r = h.send(raw(big.into_bytes(), Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = h.send(raw(b"name=x".to_vec(), Some("application/x-www-form-urlencoded"))).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = h.send(raw(b"{\"name\": \"x\"}".to_vec(), None)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(h.count("teams").await, 0);
}

#[tokio::test]
async fn duplicated_headers_unknown_routes_and_methods_get_problems() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let key = h.key(&team, "alice", &["*"]).await;

    let mut req = h.request(&As::Key(key.clone()), "GET", &format!("/teams/{team}"), None);
    req.headers_mut().append("x-api-key", key.parse().unwrap());
    let r = h.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains("x-api-key"));

    let mut req = h.request(&ALICE, "GET", "/teams", None);
    req.headers_mut().append("x-correlation-id", "one".parse().unwrap());
    req.headers_mut().append("x-correlation-id", "two".parse().unwrap());
    assert_eq!(h.send(req).await.status, StatusCode::BAD_REQUEST);

    let r = h.call(&ALICE, "GET", "/nope", None).await;
    assert_eq!(
        (r.status, r.headers["content-type"].to_str().unwrap()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    let r = h.call(&ALICE, "PUT", "/teams", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_correlation_id_is_echoed_and_quoted_in_problems() {
    let h = harness().await;
    let mut req = h.request(&As::Nobody, "GET", "/teams", None);
    req.headers_mut().insert("x-correlation-id", "trace-abc-123".parse().unwrap());
    let r = h.send(req).await;
    assert_eq!(r.headers["x-correlation-id"], "trace-abc-123");
    assert_eq!(r.body["correlationId"], "trace-abc-123");
    // An unsafe id is replaced, not echoed.
    let mut req = h.request(&As::Nobody, "GET", "/teams", None);
    req.headers_mut().insert("x-correlation-id", "<script>".parse().unwrap());
    let r = h.send(req).await;
    assert_ne!(r.headers["x-correlation-id"], "<script>");
    assert_eq!(r.body["correlationId"], r.headers["x-correlation-id"].to_str().unwrap());
}

#[tokio::test]
async fn text_postgres_cannot_store_is_refused_with_the_field_named() {
    // A NUL reaches PostgreSQL as an error; it must be a 400 naming the field, never a 500.
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let c = h.call(&ALICE, "POST", &format!("/teams/{team}/campaigns"), Some(json!({"name": "c"}))).await;
    let campaign = c.body["id"].as_str().unwrap().to_owned();
    let cases: Vec<(&str, String, serde_json::Value, &str)> = vec![
        (
            "POST",
            format!("/teams/{team}/campaigns/{campaign}/steps"),
            json!({"channel": "SMS", "body": "Hi\u{0}"}),
            "body",
        ),
        (
            "POST",
            format!("/teams/{team}/campaigns/{campaign}/steps"),
            json!({"channel": "EMAIL", "subject": "S\u{0}", "body": "Hi"}),
            "subject",
        ),
        (
            "POST",
            format!("/teams/{team}/message-templates"),
            json!({"name": "t", "channel": "SMS", "body": "a\u{0}b"}),
            "body",
        ),
        (
            "POST",
            format!("/teams/{team}/saved-filters"),
            json!({"name": "f", "filter": {"tag": "a\u{0}"}}),
            "filter.tag",
        ),
        (
            "POST",
            format!("/teams/{team}/saved-filters"),
            json!({"name": "f", "filter": {"tag": "a", "x\u{0}": "y"}}),
            "filter.x",
        ),
        ("POST", format!("/teams/{team}/inbox/classify"), json!({"text": "\u{0}"}), "text"),
        (
            "POST",
            format!("/teams/{team}/contacts"),
            json!({"firstName": "A", "customFields": {"k": "v\u{0}"}}),
            "customFields",
        ),
        ("PUT", format!("/teams/{team}/settings/inbox/help_text"), json!({"value": "call\u{0}us"}), "value"),
    ];
    for (method, uri, body, field) in cases {
        let r = h.call(&ALICE, method, &uri, Some(body.clone())).await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some(field)), "{method} {uri} {body}: {}", r.body);
    }
    let r = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts?q=a%00b"), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("q")), "{}", r.body);
    assert_eq!(
        h.count("campaign_steps").await + h.count("message_templates").await + h.count("saved_filters").await,
        0
    );
}
