//! The live feed (`GET /teams/{teamId}/events`): events committed through the same outbox and
//! store code the deployed functions run, read by long polls in order and without gaps (a
//! transaction that began earlier but commits later is never skipped), shown only to readers
//! who may read what they are about, and cursors of other teams or expired refused.

mod support;

use axum::http::StatusCode;
use base64::Engine;
use nextier_domain::ids::TeamId;
use nextier_store::outbox::{self, Destination};
use nextier_store::{scope, Scope};
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");

async fn poll(h: &Harness, who: &As, team: &str, cursor: Option<&str>, wait: u32) -> Value {
    let mut url = format!("/teams/{team}/events?wait={wait}");
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={c}"));
    }
    let r = h.call(who, "GET", &url, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn kinds(feed: &Value) -> Vec<String> {
    feed["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// The `n` of this test's own events (a feed started "now" may first repeat events committed
/// moments before, while another transaction in the cluster was still open).
fn ns(feed: &Value) -> Vec<i64> {
    feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "CampaignStateChanged")
        .map(|e| e["data"]["n"].as_i64().unwrap())
        .collect()
}

/// Everything from `start` to the end of the feed, as one reader pages through it.
async fn read_all(h: &Harness, who: &As, team: &str, start: &str) -> Value {
    let (mut c, mut all, mut empty) = (start.to_owned(), Vec::new(), 0);
    while empty < 2 {
        let f = poll(h, who, team, Some(&c), 1).await;
        let got = f["events"].as_array().unwrap().clone();
        empty = if got.is_empty() { empty + 1 } else { 0 };
        all.extend(got);
        c = f["cursor"].as_str().unwrap().to_owned();
    }
    json!({"events": all})
}

/// Stages a team event through the outbox in an open transaction of the team.
async fn stage(tx: &nextier_store::Tx<'_>, team: &str, n: i64) {
    outbox::stage_for_team(
        tx,
        &TeamId::from_trusted(team.to_owned()),
        Destination::Event("CampaignStateChanged".into()),
        json!({"n": n}),
        "corr".into(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_later_commit_of_an_earlier_transaction_is_never_skipped() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let start = poll(&h, &ALICE, &team, None, 0).await;
    let cursor = start["cursor"].as_str().unwrap().to_owned();

    // One transaction writes first and commits last; another writes after it and commits first.
    let mut slow_conn = h.t.db.conn().await.unwrap();
    let slow = scope::begin(&mut slow_conn, &Scope::team(TeamId::from_trusted(team.clone()))).await.unwrap();
    stage(&slow, &team, 1).await;
    {
        let mut conn = h.t.db.conn().await.unwrap();
        let fast = scope::begin(&mut conn, &Scope::team(TeamId::from_trusted(team.clone()))).await.unwrap();
        stage(&fast, &team, 2).await;
        fast.commit().await.unwrap();
    }
    // While the first is open, the second is held back (showing it would let the cursor pass
    // the first).
    let held = poll(&h, &ALICE, &team, Some(&cursor), 0).await;
    assert!(ns(&held).is_empty(), "{held}");
    slow.commit().await.unwrap();
    drop(slow_conn);
    // From the cursor the held answer gave: both, in the order their transactions began.
    let mut c = held["cursor"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let f = poll(&h, &ALICE, &team, Some(&c), 1).await;
        seen.extend(ns(&f));
        c = f["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, vec![1, 2]);
    // Asking again from the new cursor: nothing twice.
    let again = poll(&h, &ALICE, &team, Some(&c), 0).await;
    assert!(ns(&again).is_empty(), "{again}");
}

#[tokio::test]
async fn concurrent_writers_and_fifty_waiting_readers_see_every_event_once_in_order() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let cursor = poll(&h, &ALICE, &team, None, 0).await["cursor"].as_str().unwrap().to_owned();
    // Fifty readers wait; twenty writers commit in a scramble.
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (h, team, cursor) = (&h, team.clone(), cursor.clone());
            async move {
                let mut seen: Vec<i64> = Vec::new();
                let mut c = cursor;
                while seen.len() < 20 {
                    let f = poll(h, &ALICE, &team, Some(&c), 5).await;
                    assert!(!f["events"].as_array().unwrap().is_empty(), "a wait ended with nothing new: {f}");
                    seen.extend(ns(&f));
                    c = f["cursor"].as_str().unwrap().to_owned();
                }
                seen
            }
        })
        .collect();
    let writers: Vec<_> = (0..20i64)
        .map(|n| {
            let (h, team) = (&h, team.clone());
            async move {
                let mut conn = h.t.db.conn().await.unwrap();
                let tx = scope::begin(&mut conn, &Scope::team(TeamId::from_trusted(team.clone()))).await.unwrap();
                stage(&tx, &team, n).await;
                tokio::time::sleep(std::time::Duration::from_millis(((n * 37) % 11 * 20) as u64)).await;
                tx.commit().await.unwrap();
            }
        })
        .collect();
    let (seen, ()) = tokio::join!(futures::future::join_all(readers), async {
        futures::future::join_all(writers).await;
    });
    let first = &seen[0];
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, (0..20).collect::<Vec<_>>(), "every event once: {first:?}");
    assert!(seen.iter().all(|s| s == first), "every reader sees one order");
}

#[tokio::test]
async fn events_are_shown_to_who_may_read_them_and_cursors_stay_in_their_team() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let other = h.team("bob", "Other").await;
    let contacts_only = As::Key(h.key(&team, "alice", &["team:read", "contacts:read"]).await);
    let start = poll(&h, &ALICE, &team, None, 0).await["cursor"].as_str().unwrap().to_owned();

    // A lead-state change (contacts) and a campaign event, through the API and the outbox.
    let c = h.call(&ALICE, "POST", &format!("/teams/{team}/contacts"), Some(json!({"firstName": "Ana"}))).await;
    let id = c.body["id"].as_str().unwrap();
    let r = h
        .call(&ALICE, "POST", &format!("/teams/{team}/contacts/{id}/lead-state"), Some(json!({"to": "touched"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    {
        let mut conn = h.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(TeamId::from_trusted(team.clone()))).await.unwrap();
        stage(&tx, &team, 7).await;
        tx.commit().await.unwrap();
    }
    let ours = |f: &Value| {
        kinds(f)
            .into_iter()
            .filter(|k| k == "ContactLeadStateChanged" || k == "CampaignStateChanged")
            .collect::<Vec<_>>()
    };
    let all = read_all(&h, &ALICE, &team, &start).await;
    assert_eq!(ours(&all), vec!["ContactLeadStateChanged", "CampaignStateChanged"], "{all}");
    let changed = all["events"].as_array().unwrap().iter().find(|e| e["type"] == "ContactLeadStateChanged").unwrap();
    assert_eq!(changed["data"]["contactId"], id);
    let narrow = read_all(&h, &contacts_only, &team, &start).await;
    assert_eq!(ours(&narrow), vec!["ContactLeadStateChanged"], "a contacts:read key sees no campaigns: {narrow}");
    // Nothing beyond the key's scopes (an ApiKeyCreated is an admin's), whatever else the
    // feed started with.
    assert!(
        kinds(&narrow).iter().all(|k| matches!(
            nextier_domain::access::feed_permission(k),
            nextier_domain::access::Permission::TeamRead | nextier_domain::access::Permission::ContactsRead
        )),
        "nothing beyond team:read and contacts:read: {narrow}"
    );

    // Bob's own feed has none of it; Alice's cursor on Bob's feed is refused; Bob cannot read
    // Alice's; a stranger nothing.
    let bobs = poll(&h, &BOB, &other, None, 0).await;
    assert!(ours(&bobs).is_empty(), "{bobs}");
    let cross = h.call(&BOB, "GET", &format!("/teams/{other}/events?wait=0&cursor={start}"), None).await;
    assert_eq!((cross.status, cross.field()), (StatusCode::BAD_REQUEST, Some("cursor")), "{}", cross.body);
    assert_eq!(h.call(&BOB, "GET", &format!("/teams/{team}/events?wait=0"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.call(&As::Nobody, "GET", &format!("/teams/{team}/events?wait=0"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Garbage, bad numbers and an expired cursor: clear answers.
    for (q, field) in [("cursor=%%%", "cursor"), ("cursor=djF8eA", "cursor"), ("wait=99", "wait"), ("limit=0", "limit")]
    {
        let r = h.call(&ALICE, "GET", &format!("/teams/{team}/events?{q}"), None).await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some(field)), "{q}: {}", r.body);
    }
    let old = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1|{team}|1|1|1000"));
    let r = h.call(&ALICE, "GET", &format!("/teams/{team}/events?wait=0&cursor={old}"), None).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
}
