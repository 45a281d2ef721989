mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");

async fn contact(h: &Harness, team: &str, body: Value) -> Value {
    let r = h.call(&ALICE, "POST", &format!("/teams/{team}/contacts"), Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

#[tokio::test]
async fn phones_in_any_us_format_are_stored_as_e164_and_one_is_primary() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let c = contact(
        &h,
        &team,
        json!({"firstName": " Ana ", "lastName": "Ruiz", "phones": [{"number": "(516) 407-9249", "type": "mobile"},
               {"number": "1-212-555-1234"}], "emails": ["Ana@Example.COM"], "tags": ["Florida", "florida", "vip"],
               "address": {"city": "Tampa", "state": "fl", "zip": "33602-1234"}}),
    )
    .await;
    assert_eq!(c["firstName"], "Ana");
    let p = &c["phones"][0];
    assert_eq!(
        json!({"e164": p["e164"], "type": p["type"], "carrier": p["carrier"], "isPrimary": p["isPrimary"],
               "doNotCall": p["doNotCall"], "lineGrade": p["lineGrade"], "source": p["source"], "textable": p["textable"]}),
        json!({"e164": "+15164079249", "type": "mobile", "carrier": null, "isPrimary": true, "doNotCall": false,
               "lineGrade": null, "source": "user", "textable": true})
    );
    assert_eq!(c["phones"][1]["e164"], "+12125551234");
    assert_eq!(c["phones"][1]["isPrimary"], false);
    assert_eq!(c["emails"][0]["email"], "ana@example.com");
    assert_eq!(c["tags"], json!(["florida", "vip"]));
    assert_eq!(c["addresses"][0]["state"], "FL");
    assert_eq!(c["addresses"][0]["zip"], "33602");
    assert_eq!(c["leadState"], "new");
    let got = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{}", c["id"].as_str().unwrap()), None).await;
    assert_eq!(got.body, c);
}

#[tokio::test]
async fn a_number_belongs_to_one_contact_per_team() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let first = contact(&h, &team, json!({"firstName": "Ana", "phones": [{"number": "5164079249"}]})).await;
    let dup = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": "Bo", "phones": [{"number": "+1 516 407 9249"}]})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let detail = dup.body["detail"].as_str().unwrap();
    assert!(detail.contains("phones[0]") && detail.contains(first["id"].as_str().unwrap()), "{detail}");
    assert_eq!(h.count("contacts").await, 1, "the refused contact was not half-written");
    // Another team may know the same person.
    let other = h.team("zoe", "Other").await;
    let r = h
        .call(
            &As::User("zoe"),
            "POST",
            &format!("/teams/{other}/contacts"),
            Some(json!({"phones": [{"number": "5164079249"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // And neither team sees the other's.
    let list = h.call(&As::User("zoe"), "GET", &format!("/teams/{other}/contacts"), None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let peek = h
        .call(&As::User("zoe"), "GET", &format!("/teams/{other}/contacts/{}", first["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": "Ana", "phones": [{"number": "5164079249"}, {"number": "(911) 407-9249"}, {"number": "5164079249"}],
                        "emails": ["nope"], "address": {"state": "Florida", "zip": "123"}, "score": 101,
                        "tags": ["ok", "bad tag!"], "customFields": [1], "pipelineStatus": "won"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in [
        "phones[1].number",
        "phones[2].number",
        "emails[0]",
        "address.state",
        "address.zip",
        "score",
        "tags[1]",
        "customFields",
        "pipelineStatus",
    ] {
        assert!(fields.contains(&f), "{f} not named in {fields:?}");
    }
    let empty = h.call(&ALICE, "POST", &format!("/teams/{team}/contacts"), Some(json!({"tags": ["x"]}))).await;
    assert_eq!((empty.status, empty.field()), (StatusCode::BAD_REQUEST, Some("body")));
    assert_eq!(h.count("contacts").await, 0);
}

#[tokio::test]
async fn lists_filter_and_page() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    contact(
        &h,
        &team,
        json!({"firstName": "Ana", "lastName": "Ruiz", "tags": ["florida"], "score": 80,
        "phones": [{"number": "5164079249", "type": "mobile"}], "address": {"state": "FL", "zip": "33602"}}),
    )
    .await;
    contact(
        &h,
        &team,
        json!({"firstName": "Bo", "company": "Roofs R Us", "tags": ["texas"], "score": 20,
        "phones": [{"number": "2125551234", "type": "landline"}], "emails": ["bo@roofs.example"]}),
    )
    .await;
    contact(&h, &team, json!({"firstName": "Cy", "score": 55})).await;
    let ids_for = |q: &'static str| {
        let h = &h;
        let team = team.clone();
        async move {
            let r = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts?{q}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["firstName"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids_for("tag=florida").await, ["Ana"]);
    assert_eq!(ids_for("minScore=50").await, ["Ana", "Cy"]);
    assert_eq!(ids_for("minScore=50&maxScore=60").await, ["Cy"]);
    assert_eq!(ids_for("hasMobile=true").await, ["Ana"]);
    assert_eq!(ids_for("state=fl").await, ["Ana"]);
    assert_eq!(ids_for("zip=33602").await, ["Ana"]);
    assert_eq!(ids_for("q=roofs").await, ["Bo"]);
    assert_eq!(ids_for("q=555-1234").await, ["Bo"]);
    assert_eq!(ids_for("q=bo%40roofs").await, ["Bo"]);
    assert_eq!(ids_for("q=100%25").await, Vec::<String>::new(), "% is literal, not a wildcard");
    assert_eq!(ids_for("leadState=new&limit=2").await.len(), 2);
    let bad = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts?minScore=x&leadState=wat&color=red"), None).await;
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["minScore", "leadState", "color"]);
}

#[tokio::test]
async fn patches_change_only_what_they_name_and_fail_whole() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let a = contact(&h, &team, json!({"firstName": "Ana", "lastName": "Ruiz", "title": "Owner"})).await;
    contact(&h, &team, json!({"firstName": "Bo", "phones": [{"number": "2125551234"}]})).await;
    let uri = format!("/teams/{team}/contacts/{}", a["id"].as_str().unwrap());
    let r =
        h.call(&ALICE, "PATCH", &uri, Some(json!({"title": null, "score": 40, "addEmails": ["ana@x.example"]}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["title"].clone(), r.body["lastName"].clone(), r.body["score"].clone()),
        (Value::Null, json!("Ruiz"), json!(40))
    );
    assert_eq!(r.body["emails"][0]["email"], "ana@x.example");
    // Adding a number another contact holds fails the whole patch.
    let r = h.call(&ALICE, "PATCH", &uri, Some(json!({"score": 90, "addPhones": [{"number": "2125551234"}]}))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(h.call(&ALICE, "GET", &uri, None).await.body["score"], 40);
}

#[tokio::test]
async fn bulk_tagging_by_filter_and_deleting_needs_admin() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    let a = contact(&h, &team, json!({"firstName": "Ana", "score": 80})).await;
    contact(&h, &team, json!({"firstName": "Bo", "score": 10})).await;
    let uri = format!("/teams/{team}/contacts/bulk");
    let r = h
        .call(
            &As::User("mo"),
            "POST",
            &uri,
            Some(json!({"action": "tag", "tags": ["hot"], "filter": {"minScore": "50"}})),
        )
        .await;
    assert_eq!((r.status, r.body["affected"].clone()), (StatusCode::OK, json!(1)));
    let again = h
        .call(
            &As::User("mo"),
            "POST",
            &uri,
            Some(json!({"action": "tag", "tags": ["hot"], "filter": {"minScore": "50"}})),
        )
        .await;
    assert_eq!(again.body["affected"], 0, "tagging twice changes nothing");
    let untag = h
        .call(&As::User("mo"), "POST", &uri, Some(json!({"action": "untag", "tags": ["hot"], "ids": [a["id"]]})))
        .await;
    assert_eq!(untag.body["affected"], 1);
    let del = h.call(&As::User("mo"), "POST", &uri, Some(json!({"action": "delete", "filter": {}}))).await;
    assert_eq!(del.status, StatusCode::FORBIDDEN);
    let bad =
        h.call(&ALICE, "POST", &uri, Some(json!({"action": "delete", "ids": ["con_x"], "filter": {"tag": "x"}}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let del = h.call(&ALICE, "POST", &uri, Some(json!({"action": "delete", "filter": {"maxScore": "20"}}))).await;
    assert_eq!(del.body["affected"], 1);
    let left = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts"), None).await;
    assert_eq!(left.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn merging_moves_everything_and_an_opt_out_survives() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let keep = contact(
        &h,
        &team,
        json!({"firstName": "Ana", "phones": [{"number": "5164079249"}], "tags": ["a"], "score": 30}),
    )
    .await;
    let gone = contact(
        &h,
        &team,
        json!({"lastName": "Ruiz", "phones": [{"number": "2125551234"}], "emails": ["ana@x.example"],
        "tags": ["b"], "score": 70}),
    )
    .await;
    let (k, g) = (keep["id"].as_str().unwrap(), gone["id"].as_str().unwrap());
    let r = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts/{g}/lead-state"),
            Some(json!({"to": "suppressed", "reason": "STOP"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let m = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/contacts/{k}/merge"),
            Some(json!({"mergeId": g, "reason": "same person"})),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.body);
    let c = &m.body["contact"];
    assert_eq!((c["firstName"].clone(), c["lastName"].clone()), (json!("Ana"), json!("Ruiz")));
    assert_eq!(c["phones"].as_array().unwrap().len(), 2);
    assert_eq!(c["phones"].as_array().unwrap().iter().filter(|p| p["isPrimary"] == true).count(), 1);
    assert_eq!(c["emails"][0]["email"], "ana@x.example");
    assert_eq!((c["tags"].clone(), c["score"].clone()), (json!(["a", "b"]), json!(70)));
    assert_eq!(c["leadState"], "suppressed", "the merged contact had opted out");
    assert_eq!(h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{g}"), None).await.status, StatusCode::NOT_FOUND);
    let merges = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{k}/merges"), None).await;
    assert_eq!(merges.body["items"][0]["snapshot"]["lastName"], "Ruiz");
    assert_eq!(merges.body["items"][0]["reason"], "same person");
    let tl = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts/{k}/timeline"), None).await;
    let kinds: Vec<&str> = tl.body["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["merged", "lead_state_changed", "created", "created"], "history of both, newest first");
    let self_merge =
        h.call(&ALICE, "POST", &format!("/teams/{team}/contacts/{k}/merge"), Some(json!({"mergeId": k}))).await;
    assert_eq!(self_merge.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn lead_state_moves_follow_the_table() {
    let h = harness().await;
    let team = h.team("alice", "Acme").await;
    let c = contact(&h, &team, json!({"firstName": "Ana"})).await;
    let uri = format!("/teams/{team}/contacts/{}/lead-state", c["id"].as_str().unwrap());
    let jump = h.call(&ALICE, "POST", &uri, Some(json!({"to": "appointment_booked"}))).await;
    assert_eq!(jump.status, StatusCode::CONFLICT);
    assert!(jump.body["detail"].as_str().unwrap().contains("from new to appointment_booked"));
    for to in ["touched", "responded", "high_intent", "appointment_booked", "closed"] {
        let r = h.call(&ALICE, "POST", &uri, Some(json!({"to": to}))).await;
        assert_eq!((r.status, r.body["leadState"].clone()), (StatusCode::OK, json!(to)));
    }
    let after_close = h.call(&ALICE, "POST", &uri, Some(json!({"to": "responded"}))).await;
    assert_eq!(after_close.status, StatusCode::CONFLICT, "closed is terminal");
    let bad = h.call(&ALICE, "POST", &uri, Some(json!({"to": "CLOSED"}))).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("to")));
    assert_eq!(h.bus.recent("ContactLeadStateChanged", 10).await.unwrap().len(), 5);
}
