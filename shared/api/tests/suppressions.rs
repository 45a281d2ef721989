//! The suppression list only gets stronger, through the public API, tried as a MEMBER, a
//! narrowly or widely scoped API key, an ADMIN and another team.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const MO: As = As::User("mo");
const EVE: As = As::User("eve");

async fn ok(h: &Harness, who: &As, method: &str, uri: &str, body: Option<Value>) -> Value {
    let r = h.call(who, method, uri, body).await;
    assert!(r.status.is_success(), "{method} {uri}: {} {}", r.status, r.body);
    r.body
}

async fn kind_of(h: &Harness, address: &str) -> (String, Option<String>) {
    let r =
        h.t.superuser()
            .await
            .query_one("SELECT kind, expires_at::text FROM suppressions WHERE address = $1", &[&address])
            .await
            .unwrap();
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn an_opt_out_is_never_weakened_nor_given_an_expiry_and_only_an_admin_person_lifts_it() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "bob", "ADMIN").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    let url = |rest: &str| format!("/teams/{team}{rest}");
    // Ada has two numbers and an email; the ADMIN records that she asked not to be contacted.
    let ada = ok(
        &h,
        &ALICE,
        "POST",
        &url("/contacts"),
        Some(json!({"firstName": "Ada", "phones": [{"number": "2125552181", "type": "mobile"},
                    {"number": "3127360143", "type": "mobile"}], "emails": ["ada@example.com"]})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = ok(
        &h,
        &BOB,
        "POST",
        &url("/suppressions"),
        Some(json!({"address": "212-555-2181", "kind": "OPTED_OUT",
                                                                      "reason": "asked on a call"})),
    )
    .await;
    assert_eq!(s["kind"], "OPTED_OUT");
    // The person's: every number and address.
    for a in ["+12125552181", "+13127360143", "ada@example.com"] {
        assert_eq!(kind_of(&h, a).await.0, "OPTED_OUT", "{a}");
    }
    let c = ok(&h, &MO, "GET", &url(&format!("/contacts/{ada}")), None).await;
    assert_eq!(c["leadState"], "suppressed");

    // A MEMBER, and an API key with every contacts scope, try to weaken it or make it lapse.
    let key = As::Key(h.key(&team, "alice", &["contacts:read", "contacts:write", "contacts:manage"]).await);
    for who in [&MO, &key] {
        for kind in ["WRONG_NUMBER", "BLACKLIST", "BOUNCED"] {
            let r = h
                .call(who, "POST", &url("/suppressions"), Some(json!({"address": "+13127360143", "kind": kind})))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["kind"], "OPTED_OUT", "a {kind} over an opt-out leaves the opt-out");
        }
        let r = h
            .call(
                who,
                "POST",
                &url("/suppressions"),
                Some(json!({"address": "+13127360143", "kind": "OPTED_OUT", "expiresAt": "2099-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("expiresAt")), "{}", r.body);
        let r = h.call(who, "DELETE", &url("/suppressions/%2B13127360143?reason=they%20said%20ok"), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(kind_of(&h, "+13127360143").await, ("OPTED_OUT".to_owned(), None));
    // A weaker kind with an expiry becomes permanent once strengthened.
    ok(
        &h,
        &MO,
        "POST",
        &url("/suppressions"),
        Some(json!({"address": "+14157360100", "kind": "BLACKLIST", "expiresAt": "2099-01-01T00:00:00Z"})),
    )
    .await;
    ok(&h, &MO, "POST", &url("/suppressions"), Some(json!({"address": "+14157360100", "kind": "LEGAL_DNC"}))).await;
    assert_eq!(kind_of(&h, "+14157360100").await, ("LEGAL_DNC".to_owned(), None));

    // Another team sees nothing and lifts nothing.
    let other = h.team("eve", "Rival").await;
    let _ = other;
    let r = h.call(&EVE, "DELETE", &url("/suppressions/%2B13127360143?reason=x"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(h.call(&EVE, "GET", &url("/suppressions/audit"), None).await.status, StatusCode::NOT_FOUND);

    // The ADMIN lifts it, but only with a reason.
    let r = h.call(&BOB, "DELETE", &url("/suppressions/%2B13127360143"), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("reason")), "{}", r.body);
    assert_eq!(
        h.call(&BOB, "DELETE", &url("/suppressions/%2B13127360143?reason=%20"), None).await.status,
        StatusCode::BAD_REQUEST
    );
    let r =
        h.call(&BOB, "DELETE", &url("/suppressions/%2B13127360143?reason=written%20consent%20on%20file"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Her other number and address are still opted out, so she stays suppressed.
    assert_eq!(ok(&h, &MO, "GET", &url(&format!("/contacts/{ada}")), None).await["leadState"], "suppressed");

    // The audit has every change, with who and why; repeats are there too.
    let audit = ok(&h, &MO, "GET", &url("/suppressions/audit?address=%2B13127360143&limit=200"), None).await;
    let rows = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions.first(), Some(&"add"));
    assert_eq!(actions.last(), Some(&"lift"));
    assert!(actions[1..actions.len() - 1].iter().all(|a| *a == "repeat"), "{actions:?}");
    assert_eq!(rows[0]["reason"], "asked on a call");
    let last = rows.last().unwrap();
    assert_eq!(last["reason"], "written consent on file");
    assert!(last["actor"].as_str().unwrap().starts_with("usr_"));
    let strengthened = ok(&h, &MO, "GET", &url("/suppressions/audit?address=%2B14157360100"), None).await;
    let acts: Vec<&str> =
        strengthened["items"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(acts, vec!["add", "strengthen"]);
    let r = h.call(&MO, "GET", &url("/suppressions/audit?address=not-an-address"), None).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("address")));
}
