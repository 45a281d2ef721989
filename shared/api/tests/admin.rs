mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{email_of, harness, As};

const ALICE: As = As::User("alice");

#[tokio::test]
async fn creating_a_team_makes_the_creator_its_owner_and_announces_it() {
    let h = harness().await;
    let team = h.team("alice", "Acme Roofing").await;
    let r = h.call(&ALICE, "GET", "/teams", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["id"], team.as_str());
    assert_eq!(r.body["items"][0]["role"], "OWNER");
    assert_eq!(r.body["items"][0]["slug"].as_str().unwrap().split('-').next(), Some("acme"));
    let members = h.call(&ALICE, "GET", &format!("/teams/{team}/members"), None).await;
    assert_eq!(members.body["items"][0]["email"], email_of("alice"));
    assert_eq!(members.body["items"][0]["status"], "APPROVED");
    let events = h.bus.recent("TeamCreated", 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["teamId"], team.as_str());
    assert_eq!(events[0].detail["data"]["name"], "Acme Roofing");
}

#[tokio::test]
async fn strangers_get_404_and_members_get_403_for_admin_actions() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "mo", "MEMBER").await;

    let stranger = h.call(&As::User("eve"), "GET", &format!("/teams/{team}"), None).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    // Same answer as for a team that does not exist: no hint either way.
    let ghost = h.call(&As::User("eve"), "GET", "/teams/team_01JD8Z6Q3M4N5P6R7S8T9V0W1X", None).await;
    assert_eq!((ghost.status, ghost.body["detail"].clone()), (StatusCode::NOT_FOUND, stranger.body["detail"].clone()));

    let member = As::User("mo");
    assert_eq!(h.call(&member, "GET", &format!("/teams/{team}"), None).await.status, StatusCode::OK);
    let rename = h.call(&member, "PATCH", &format!("/teams/{team}"), Some(json!({"name": "Mine now"}))).await;
    assert_eq!(rename.status, StatusCode::FORBIDDEN);
    assert_eq!(rename.headers["content-type"], "application/problem+json");
    let keys = h.call(&member, "GET", &format!("/teams/{team}/api-keys"), None).await;
    assert_eq!(keys.status, StatusCode::FORBIDDEN);
    let invite = h
        .call(
            &member,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": "x@example.com", "role": "MEMBER"})),
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
    let team_name = h.call(&ALICE, "GET", &format!("/teams/{team}"), None).await.body["name"].clone();
    assert_eq!(team_name, "Acme", "nothing was changed by the refused requests");
}

#[tokio::test]
async fn requests_without_credentials_get_401() {
    let h = harness().await;
    let r = h.call(&As::Nobody, "GET", "/teams", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["type"], "https://docs.nextier.app/problems/unauthorized");
    let r = h
        .call(&As::Key(format!("nxk_{}", "a".repeat(64))), "GET", "/teams/team_01JD8Z6Q3M4N5P6R7S8T9V0W1X", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_invitation_is_accepted_once_by_the_invited_address_only() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": "Bob@Example.com", "role": "ADMIN"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let token = r.body["token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["invitation"]["email"], "Bob@example.com");

    // A second open invitation for the same address is a conflict.
    let dup = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": "bob@example.com", "role": "MEMBER"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let wrong = h.call(&As::User("eve"), "POST", "/invitations/accept", Some(json!({"token": token}))).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let ok = h.call(&As::User("bob"), "POST", "/invitations/accept", Some(json!({"token": token}))).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["role"], "ADMIN");
    let again = h.call(&As::User("bob"), "POST", "/invitations/accept", Some(json!({"token": token}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let listed = h.call(&As::User("bob"), "GET", "/teams", None).await;
    assert_eq!(listed.body["items"][0]["role"], "ADMIN");
    assert_eq!(h.bus.recent("MemberJoined", 10).await.unwrap().len(), 1);
    // The token is never part of an event.
    let invited = h.bus.recent("MemberInvited", 10).await.unwrap();
    assert!(!invited[0].detail.to_string().contains(&token));
}

#[tokio::test]
async fn expired_and_revoked_invitations_are_gone() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let make = |who: &'static str| {
        let h = &h;
        let team = team.clone();
        async move {
            let r = h
                .call(
                    &ALICE,
                    "POST",
                    &format!("/teams/{team}/invitations"),
                    Some(json!({"email": email_of(who), "role": "MEMBER"})),
                )
                .await;
            (r.body["invitation"]["id"].as_str().unwrap().to_owned(), r.body["token"].as_str().unwrap().to_owned())
        }
    };
    let (_, late_token) = make("late").await;
    h.t.superuser()
        .await
        .execute("UPDATE team_invitations SET expires_at = now() - interval '1 minute'", &[])
        .await
        .unwrap();
    let r = h.call(&As::User("late"), "POST", "/invitations/accept", Some(json!({"token": late_token}))).await;
    assert_eq!(r.status, StatusCode::GONE);

    let (id, token) = make("gone").await;
    assert_eq!(
        h.call(&ALICE, "DELETE", &format!("/teams/{team}/invitations/{id}"), None).await.status,
        StatusCode::NO_CONTENT
    );
    let r = h.call(&As::User("gone"), "POST", "/invitations/accept", Some(json!({"token": token}))).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(h.count("team_members").await, 1, "only the owner is a member");
    // An expired invitation does not block inviting the same address again.
    let again = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/invitations"),
            Some(json!({"email": email_of("late"), "role": "MEMBER"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_last_owner_stays_and_only_owners_touch_ownership() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let alice = h.user_id(&team, "alice", "alice").await;
    let adam = h.join(&team, "alice", "adam", "ADMIN").await;
    let mo = h.join(&team, "alice", "mo", "MEMBER").await;

    let demote_self =
        h.call(&ALICE, "PATCH", &format!("/teams/{team}/members/{alice}"), Some(json!({"role": "ADMIN"}))).await;
    assert_eq!(demote_self.status, StatusCode::CONFLICT);
    let leave = h.call(&ALICE, "DELETE", &format!("/teams/{team}/members/{alice}"), None).await;
    assert_eq!(leave.status, StatusCode::CONFLICT);

    let admin = As::User("adam");
    let crown = h.call(&admin, "PATCH", &format!("/teams/{team}/members/{mo}"), Some(json!({"role": "OWNER"}))).await;
    assert_eq!(crown.status, StatusCode::FORBIDDEN);
    let promote = h.call(&admin, "PATCH", &format!("/teams/{team}/members/{mo}"), Some(json!({"role": "ADMIN"}))).await;
    assert_eq!((promote.status, promote.body["role"].clone()), (StatusCode::OK, json!("ADMIN")));
    let kick_owner = h.call(&admin, "DELETE", &format!("/teams/{team}/members/{alice}"), None).await;
    assert_eq!(kick_owner.status, StatusCode::FORBIDDEN);

    // With a second owner, the first may step down.
    let second =
        h.call(&ALICE, "PATCH", &format!("/teams/{team}/members/{adam}"), Some(json!({"role": "OWNER"}))).await;
    assert_eq!(second.status, StatusCode::OK);
    let step_down =
        h.call(&ALICE, "PATCH", &format!("/teams/{team}/members/{alice}"), Some(json!({"role": "MEMBER"}))).await;
    assert_eq!(step_down.status, StatusCode::OK);
    // A member may leave on their own.
    let mo_leaves = h.call(&As::User("mo"), "DELETE", &format!("/teams/{team}/members/{mo}"), None).await;
    assert_eq!(mo_leaves.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let alice = h.user_id(&team, "alice", "alice").await;
    let adam = h.join(&team, "alice", "adam", "ADMIN").await;
    h.call(&ALICE, "PATCH", &format!("/teams/{team}/members/{adam}"), Some(json!({"role": "OWNER"}))).await;
    let (uri_a, uri_b) = (format!("/teams/{team}/members/{alice}"), format!("/teams/{team}/members/{adam}"));
    let adam_user = As::User("adam");
    let (a, b) = tokio::join!(
        h.call(&ALICE, "PATCH", &uri_a, Some(json!({"role": "MEMBER"}))),
        h.call(&adam_user, "PATCH", &uri_b, Some(json!({"role": "MEMBER"}))),
    );
    let oks = [a.status, b.status].iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(oks, 1, "{} / {}", a.body, b.body);
    let owners: i64 =
        h.t.superuser()
            .await
            .query_one("SELECT count(*) FROM team_members WHERE role = 'OWNER'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(owners, 1);
}

#[tokio::test]
async fn api_keys_act_within_their_scopes_and_team_until_revoked() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let other = h.team("zoe", "Other").await;
    let reader = h.key(&team, "alice", &["team:read", "settings:read"]).await;
    let r = h.call(&ALICE, "GET", &format!("/teams/{team}/api-keys"), None).await;
    assert!(!r.body.to_string().contains(&reader), "listing never shows a secret");
    assert_eq!(r.body["items"][0]["prefix"].as_str().unwrap(), &reader[..12]);

    let key = As::Key(reader.clone());
    assert_eq!(h.call(&key, "GET", &format!("/teams/{team}"), None).await.status, StatusCode::OK);
    assert_eq!(h.call(&key, "GET", &format!("/teams/{other}"), None).await.status, StatusCode::NOT_FOUND);
    let rename = h.call(&key, "PATCH", &format!("/teams/{team}"), Some(json!({"name": "x"}))).await;
    assert_eq!(rename.status, StatusCode::FORBIDDEN);
    assert!(rename.body["detail"].as_str().unwrap().contains("team:manage"));
    assert_eq!(h.call(&key, "GET", "/teams", None).await.status, StatusCode::FORBIDDEN);

    // A key that manages keys cannot mint one stronger than itself.
    let manager = As::Key(h.key(&team, "alice", &["keys:manage", "team:read"]).await);
    let escalate =
        h.call(&manager, "POST", &format!("/teams/{team}/api-keys"), Some(json!({"name": "x", "scopes": ["*"]}))).await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);
    let fine = h
        .call(&manager, "POST", &format!("/teams/{team}/api-keys"), Some(json!({"name": "x", "scopes": ["team:read"]})))
        .await;
    assert_eq!(fine.status, StatusCode::CREATED);

    let id = r.body["items"][0]["id"].as_str().unwrap();
    let revoked = h.call(&ALICE, "DELETE", &format!("/teams/{team}/api-keys/{id}"), None).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.body["revokedAt"].is_string());
    assert_eq!(h.call(&key, "GET", &format!("/teams/{team}"), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secrets_are_masked_unless_an_admin_asks_to_reveal() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    let put = h
        .call(
            &ALICE,
            "PUT",
            &format!("/teams/{team}/settings/signalhouse/api_key"),
            Some(json!({"value": "sh_live_1234567890wxyz", "secret": true})),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body["value"], "••••wxyz");
    h.call(
        &ALICE,
        "PUT",
        &format!("/teams/{team}/settings/general/help_text"),
        Some(json!({"value": "Reply STOP to opt out"})),
    )
    .await;

    let mo = As::User("mo");
    let list = h.call(&mo, "GET", &format!("/teams/{team}/settings"), None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    assert!(!list.body.to_string().contains("1234567890"));
    let peek = h.call(&mo, "GET", &format!("/teams/{team}/settings/signalhouse/api_key?reveal=true"), None).await;
    assert_eq!(peek.status, StatusCode::FORBIDDEN);
    let reveal = h.call(&ALICE, "GET", &format!("/teams/{team}/settings/signalhouse/api_key?reveal=true"), None).await;
    assert_eq!(reveal.body["value"], "sh_live_1234567890wxyz");
    let scoped = h.call(&mo, "GET", &format!("/teams/{team}/settings?scope=general"), None).await;
    assert_eq!(scoped.body["items"][0]["value"], "Reply STOP to opt out");
    let changed = h.bus.recent("TeamSettingChanged", 10).await.unwrap();
    assert!(!changed.iter().any(|e| e.detail.to_string().contains("1234567890")), "events never carry values");

    assert_eq!(
        h.call(&ALICE, "DELETE", &format!("/teams/{team}/settings/general/help_text"), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.call(&ALICE, "DELETE", &format!("/teams/{team}/settings/general/help_text"), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn lists_page_with_cursors_without_gaps_or_repeats() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    for _ in 0..5 {
        h.key(&team, "alice", &["team:read"]).await;
    }
    let mut seen = Vec::new();
    let mut uri = format!("/teams/{team}/api-keys?limit=2");
    let mut pages = 0;
    loop {
        let r = h.call(&ALICE, "GET", &uri, None).await;
        assert_eq!(r.status, StatusCode::OK);
        pages += 1;
        for k in r.body["items"].as_array().unwrap() {
            seen.push(k["id"].as_str().unwrap().to_owned());
        }
        match r.body["nextCursor"].as_str() {
            Some(c) => uri = format!("/teams/{team}/api-keys?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((seen.len(), sorted.len()), (5, 5));
    assert_eq!(seen, sorted, "pages come in id order");
}

#[tokio::test]
async fn names_with_sql_metacharacters_and_emoji_are_stored_verbatim() {
    let h = harness().await;
    let name = "Robert'); DROP TABLE teams;-- 🚀 O'Brien";
    let team = h.team("alice", name).await;
    let r = h.call(&ALICE, "GET", &format!("/teams/{team}"), None).await;
    assert_eq!(r.body["name"], name);
    assert_eq!(h.count("teams").await, 1);
}
