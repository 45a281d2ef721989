mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use support::{harness, As};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");

/// A team over its API limit gets 429 with Retry-After and nothing else happens; another team,
/// a stranger and a forbidden call spend nothing of it; an API key has its own bucket.
#[tokio::test]
async fn a_team_and_a_key_over_their_limits_get_429_and_nothing_happens() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let keyed = h.team("alice", "Keyed").await;
    let other = h.team("bob", "Other").await;
    // Acme: six requests a minute (a burst of one). Keyed: six a minute per key.
    for (t, name) in [(&team, "requests_per_minute"), (&keyed, "key_requests_per_minute")] {
        let uri = format!("/teams/{t}/settings/api/{name}");
        let r = h.call(&ALICE, "PUT", &uri, Some(json!({"value": "6"}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let key = h.key(&keyed, "alice", &["contacts:read"]).await;
    // From here on, as deployed (the limits are read at each team's first limited request).
    nextier_http::limits::install(
        Arc::new(nextier_platform::local::PgRateLimiter::new(h.t.db.clone())),
        Arc::new(nextier_platform::ports::clock::SystemClock),
    );

    let first = h.call(&ALICE, "GET", &format!("/teams/{team}"), None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let contacts = h.count("contacts").await;
    let over = h.call(&ALICE, "POST", &format!("/teams/{team}/contacts"), Some(json!({"firstName": "Ada"}))).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(over.body["detail"].as_str().unwrap().contains("team's API limit (6 requests a minute)"), "{}", over.body);
    let retry: u64 = over.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_eq!(h.count("contacts").await, contacts, "nothing happened");
    // A stranger learns nothing and spends nothing; another team has its own budget.
    let stranger = h.call(&BOB, "GET", &format!("/teams/{team}"), None).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert_eq!(h.call(&BOB, "GET", &format!("/teams/{other}"), None).await.status, StatusCode::OK);
    assert_eq!(h.call(&BOB, "GET", &format!("/teams/{other}"), None).await.status, StatusCode::OK);

    // The key's own bucket: its second request is refused, while the team (600 a minute)
    // still serves its members.
    let as_key = As::Key(key);
    let list = format!("/teams/{keyed}/contacts");
    assert_eq!(h.call(&as_key, "GET", &list, None).await.status, StatusCode::OK);
    let over = h.call(&as_key, "GET", &list, None).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.body);
    assert!(over.body["detail"].as_str().unwrap().contains("this API key's API limit"), "{}", over.body);
    assert!(over.headers.contains_key("retry-after"));
    // A scope the key lacks is 403, not a spent token or a 429.
    let forbidden = h.call(&as_key, "POST", &list, Some(json!({"firstName": "Bo"}))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{}", forbidden.body);
    assert_eq!(h.call(&ALICE, "GET", &list, None).await.status, StatusCode::OK);
}
