//! Who may hand out power: ADMIN and OWNER are granted by people only, a key never mints a
//! key stronger than itself, an unverified email cannot claim an invitation, and a token that
//! is not yet valid is refused.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{email_of, harness, As, Harness};
use tower::ServiceExt;

const ALICE: As = As::User("alice");

async fn role_of(h: &Harness, team: &str, who: &str) -> Value {
    let r = h.call(&ALICE, "GET", &format!("/teams/{team}/members?limit=200"), None).await;
    r.body["items"].as_array().unwrap().iter().find(|m| m["email"] == email_of(who)).unwrap()["role"].clone()
}

#[tokio::test]
async fn an_api_key_with_every_scope_cannot_grant_admin_power() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let mo = h.join(&team, "alice", "mo", "MEMBER").await;
    let all = As::Key(h.key(&team, "alice", &["*"]).await);

    for role in ["ADMIN", "OWNER"] {
        let r = h.call(&all, "PATCH", &format!("/teams/{team}/members/{mo}"), Some(json!({"role": role}))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}: {}", r.body);
    }
    assert_eq!(role_of(&h, &team, "mo").await, "MEMBER");

    let invite = h
        .call(
            &all,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": "x@example.com", "role": "ADMIN"})),
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN, "{}", invite.body);

    for scopes in [json!(["*"]), json!(["keys:manage"]), json!(["team:manage"]), json!(["campaigns:manage"])] {
        let r = h
            .call(&all, "POST", &format!("/teams/{team}/api-keys"), Some(json!({"name": "up", "scopes": scopes})))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{scopes}: {}", r.body);
    }
    // What it may still do: a narrower, non-administrative key.
    let narrow = h
        .call(
            &all,
            "POST",
            &format!("/teams/{team}/api-keys"),
            Some(json!({"name": "ro", "scopes": ["contacts:read"]})),
        )
        .await;
    assert_eq!(narrow.status, StatusCode::CREATED, "{}", narrow.body);
    assert_eq!(h.count("api_keys").await, 2, "only the narrow key was added");
    assert_eq!(h.count("team_invitations").await, 1, "mo's invitation only");
}

#[tokio::test]
async fn a_member_cannot_promote_invite_admins_or_mint_keys() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let mo = h.join(&team, "alice", "mo", "MEMBER").await;
    let me = As::User("mo");
    let r = h.call(&me, "PATCH", &format!("/teams/{team}/members/{mo}"), Some(json!({"role": "ADMIN"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .call(
            &me,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": "y@example.com", "role": "ADMIN"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.call(&me, "POST", &format!("/teams/{team}/api-keys"), Some(json!({"name": "k", "scopes": ["*"]}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&h, &team, "mo").await, "MEMBER");

    // A person who is ADMIN may promote.
    let admin = h.join(&team, "alice", "ada", "ADMIN").await;
    assert!(!admin.is_empty());
    let r =
        h.call(&As::User("ada"), "PATCH", &format!("/teams/{team}/members/{mo}"), Some(json!({"role": "ADMIN"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn accept_request(sub: &str, verified: Option<Value>, token: &str) -> Request<Body> {
    let mut claims: std::collections::HashMap<String, String> =
        [("sub".to_string(), sub.to_string()), ("email".to_string(), email_of(sub))].into_iter().collect();
    if let Some(v) = verified {
        claims.insert(
            "email_verified".into(),
            match v {
                Value::String(s) => s,
                other => other.to_string(),
            },
        );
    }
    let mut req = Request::builder()
        .method("POST")
        .uri("/invitations/accept")
        .header("content-type", "application/json")
        .body(Body::from(json!({"token": token}).to_string()))
        .unwrap();
    req.extensions_mut().insert(nextier_http::jwt::request_context(claims, "POST", "/invitations/accept"));
    req
}

#[tokio::test]
async fn an_unverified_email_cannot_claim_an_invitation() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let invite = |who: &'static str| {
        let h = &h;
        let team = team.clone();
        async move {
            let r = h
                .call(
                    &ALICE,
                    "POST",
                    &format!("/teams/{team}/invitations"),
                    Some(json!({"email": email_of(who), "role": "ADMIN"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
            r.body["token"].as_str().unwrap().to_owned()
        }
    };
    let token = invite("vic").await;
    for unverified in [json!(false), json!("false"), json!("no")] {
        let r = h.send(accept_request("vic", Some(unverified.clone()), &token)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{unverified}: {}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("verify"));
    }
    let members = h.call(&ALICE, "GET", &format!("/teams/{team}/members"), None).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 1, "vic did not join");

    // Verified (as Cognito writes it, a string) joins.
    let r = h.send(accept_request("vic", Some(json!("true")), &token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(role_of(&h, &team, "vic").await, "ADMIN");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused_401() {
    let h = harness().await;
    let secret = b"test-secret-test-secret-test-secret";
    let verifier = nextier_http::jwt::JwtVerifier::hs256(secret, "nextier-local", "nextier-api");
    let app = nextier_api::full_app(h.state.clone(), Some(verifier));
    let now = chrono::Utc::now().timestamp();
    let token = |nbf: i64| {
        let claims = json!({"iss": "nextier-local", "aud": "nextier-api", "sub": "nat", "email": "nat@example.com",
                            "iat": now, "exp": now + 3600, "nbf": nbf});
        nextier_http::jwt::mint_hs256_claims(secret, &claims)
    };
    let post = |t: String| {
        Request::builder()
            .method("POST")
            .uri("/teams")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::from(json!({"name": "Early"}).to_string()))
            .unwrap()
    };
    let early = app.clone().oneshot(post(token(now + 600))).await.unwrap();
    assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
    let body = early.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("invalid token"));
    assert_eq!(h.count("teams").await, 0, "nothing was created");
    let valid = app.oneshot(post(token(now - 10))).await.unwrap();
    assert_eq!(valid.status(), StatusCode::CREATED);
}
