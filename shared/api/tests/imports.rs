mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::{harness, As};

const ALICE: As = As::User("alice");

#[tokio::test]
async fn an_import_hands_out_an_upload_url_and_can_use_a_saved_preset() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let preset = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/import-presets"),
            Some(json!({"name": "County list", "mapping": {"Tel": "phone", "Owner": "fullName"}})),
        )
        .await;
    assert_eq!(preset.status, StatusCode::CREATED, "{}", preset.body);
    let dup = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/import-presets"),
            Some(json!({"name": "County list", "mapping": {"Tel": "phone"}})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let listed = h.call(&ALICE, "GET", &format!("/teams/{team}/import-presets"), None).await;
    assert_eq!(listed.body["items"][0]["name"], "County list");

    let created = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/imports"),
            Some(json!({"fileName": "county.CSV", "presetId": preset.body["id"]})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["upload"]["method"], "PUT");
    assert!(created.body["upload"]["url"].as_str().unwrap().contains("/_local/blobs/imports/"));
    let stored: serde_json::Value =
        h.t.superuser().await.query_one("SELECT mapping FROM imports", &[]).await.unwrap().get(0);
    assert_eq!(stored, json!({"Tel": "phone", "Owner": "fullName"}));
    let got = h
        .call(&ALICE, "GET", &format!("/teams/{team}/imports/{}", created.body["import"]["id"].as_str().unwrap()), None)
        .await;
    assert_eq!((got.body["status"].clone(), got.body["reportUrl"].clone()), (json!("awaiting_upload"), json!(null)));

    let both = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/imports"),
            Some(json!({"fileName": "a.csv", "presetId": preset.body["id"], "mapping": {"Tel": "phone"}})),
        )
        .await;
    assert_eq!((both.status, both.field()), (StatusCode::BAD_REQUEST, Some("presetId")));
    let ghost = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/imports"),
            Some(json!({"fileName": "a.csv", "presetId": "row_01JD8Z6Q3M4N5P6R7S8T9V0W1X"})),
        )
        .await;
    assert_eq!((ghost.status, ghost.field()), (StatusCode::BAD_REQUEST, Some("presetId")));
    assert_eq!(h.count("imports").await, 1, "refused imports leave no job behind");
}

/// A team runs a few imports at once (its setting, default 3): one more is 429 with
/// Retry-After and no job; another team is not held back.
#[tokio::test]
async fn a_team_with_its_imports_in_progress_waits_for_one_to_finish() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let other = h.team("bob", "Other").await;
    let r = h
        .call(&ALICE, "PUT", &format!("/teams/{team}/settings/imports/max_concurrent"), Some(json!({"value": "2"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let hr = &h;
    let create = |t: String, who: As| async move {
        hr.call(&who, "POST", &format!("/teams/{t}/imports"), Some(json!({"fileName": "list.csv"}))).await
    };
    for _ in 0..2 {
        assert_eq!(create(team.clone(), ALICE).await.status, StatusCode::CREATED);
    }
    let before = h.count("imports").await;
    let third = create(team.clone(), ALICE).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS, "{}", third.body);
    assert!(third.body["detail"].as_str().unwrap().contains("2 imports in progress"), "{}", third.body);
    assert!(third.headers.contains_key("retry-after"));
    assert_eq!(h.count("imports").await, before, "no job is left behind");
    assert_eq!(create(other.clone(), As::User("bob")).await.status, StatusCode::CREATED);
    // One finishes (or its upload window passes): there is room again.
    h.t.superuser()
        .await
        .execute("UPDATE imports SET status = 'completed' WHERE team_id = $1 AND id = (SELECT min(id) FROM imports WHERE team_id = $1)", &[&team])
        .await
        .unwrap();
    assert_eq!(create(team.clone(), ALICE).await.status, StatusCode::CREATED);
}
