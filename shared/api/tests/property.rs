//! Property intelligence through the API (the property function's routes) with RealEstateAPI's
//! client against the local fake of its contract: searches kept with distress scores and their
//! reasons, the cache and the team's daily cap, a refresh from the detail, owners linked to
//! contacts (one contact per person, names in order, ambiguity left to a person), and what
//! strangers, other teams, narrow keys and a failing provider get.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use nextier_providers::realestate::{Config, RealEstateApi};
use nextier_providers::retry::Retry;
use nextier_testkit::fakes::{Failure, FakeProviders, REALESTATE_KEY};
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");

async fn rig() -> (Harness, FakeProviders, String) {
    let mut h = harness().await;
    let fake = FakeProviders::start().await;
    h.state.property_data = Arc::new(RealEstateApi::new(Config {
        base_url: format!("{}/realestate", fake.base),
        api_key: REALESTATE_KEY.into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(5),
    }));
    h.app = nextier_api::full_app(h.state.clone(), None);
    let team = h.team("alice", "Acme").await;
    for (i, (first, last, city)) in [
        ("Ana", "Ruiz", "Tampa"),
        ("Bo", "Stone", "Tampa"),
        ("Cy", "Diaz", "Tampa"),
        ("", "ACME HOLDINGS LLC", "Orlando"),
    ]
    .into_iter()
    .enumerate()
    {
        let equity = [85, 20, -5, 50][i];
        let value = 300_000 + i * 1000;
        fake.state.property(json!({
            "id": format!("{}", 900_000 + i),
            "address": {"street": format!("{} Oak St", 10 + i), "city": city, "state": "FL", "zip": "33602", "county": "Hillsborough"},
            "mailAddress": {"street": format!("{} Mail Rd", 500 + i), "city": "Miami", "state": "FL", "zip": "33101"},
            "owner1FirstName": first, "owner1LastName": last,
            "ownerOccupied": false, "absenteeOwner": true, "vacant": i == 0, "preForeclosure": i == 0,
            "equityPercent": equity, "estimatedValue": value, "estimatedEquity": (value as i64) * (equity as i64) / 100,
            "propertyType": "SFR", "yearBuilt": 1980
        }));
    }
    (h, fake, team)
}

async fn ok(h: &Harness, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = h.call(&ALICE, method, path, body).await;
    assert!(r.status.is_success(), "{method} {path}: {} {}", r.status, r.body);
    r.body
}

fn calls(f: &FakeProviders, path: &str) -> usize {
    f.state.calls.lock().unwrap().iter().filter(|(_, p)| p == path).count()
}

#[tokio::test]
async fn a_search_keeps_properties_with_scores_and_reasons_and_the_cache_saves_the_second() {
    let (h, f, team) = rig().await;
    let out = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"state": "fl", "city": "Tampa"}, "size": 2})),
    )
    .await;
    assert_eq!((out["total"].clone(), out["added"].clone(), out["cached"].clone()), (json!(3), json!(2), json!(false)));
    let first = &out["properties"][0];
    assert_eq!(first["externalId"], "900000");
    // Pre-foreclosure, vacant, absentee and high equity: four signals at 10.
    assert_eq!(first["distress"]["score"], 40, "{first}");
    let signals: Vec<&str> = first["distress"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["present"] == true)
        .map(|s| s["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals, vec!["pre_foreclosure", "vacant", "non_occupant", "high_equity"]);
    assert_eq!(first["ownerNames"][0], json!({"first": "Ana", "last": "Ruiz"}), "first name first");
    assert_eq!(first["mailingAddress"]["city"], "Miami");
    // The same search again: from the cache, nothing paid, nothing added.
    let again = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"city": "Tampa", "state": "FL"}, "size": 2})),
    )
    .await;
    assert_eq!((again["cached"].clone(), again["added"].clone()), (json!(true), json!(0)));
    assert_eq!(calls(&f, "/PropertySearch"), 1);
    // The next page adds the third.
    let next = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"state": "FL", "city": "Tampa"}, "size": 2, "index": 2})),
    )
    .await;
    assert_eq!((next["added"].clone(), next["properties"].as_array().unwrap().len()), (json!(1), 1));
    // Listed and filtered: by distress, by city.
    let hot = ok(&h, "GET", &format!("/teams/{team}/properties?minDistress=30"), None).await;
    assert_eq!(hot["items"].as_array().unwrap().len(), 1);
    let tampa = ok(&h, "GET", &format!("/teams/{team}/properties?city=tampa&limit=2"), None).await;
    assert_eq!(tampa["items"].as_array().unwrap().len(), 2);
    let rest = ok(
        &h,
        "GET",
        &format!("/teams/{team}/properties?city=tampa&limit=2&after={}", tampa["next"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    // Team weights change what a signal is worth (on the next keep).
    ok(&h, "PUT", &format!("/teams/{team}/settings/property/weight.vacant"), Some(json!({"value": "30"}))).await;
    let id = first["id"].as_str().unwrap();
    let refreshed = ok(&h, "POST", &format!("/teams/{team}/properties/{id}/refresh"), None).await;
    assert_eq!(refreshed["distress"]["score"], 60, "{refreshed}");
    assert!(refreshed["refreshedAt"].is_string());
    ok(&h, "POST", &format!("/teams/{team}/properties/{id}/refresh"), None).await;
    assert_eq!(calls(&f, "/PropertyDetail"), 1, "the detail is cached too");
}

#[tokio::test]
async fn owners_become_one_contact_each_within_the_team() {
    let (h, _f, team) = rig().await;
    let out = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"state": "FL"}, "size": 10})),
    )
    .await;
    let by_ext = |e: &str| {
        out["properties"].as_array().unwrap().iter().find(|p| p["externalId"] == e).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Ana already is a contact at her mailing address; Bo twice (a duplicate nobody merged).
    let ana = ok(
        &h,
        "POST",
        &format!("/teams/{team}/contacts"),
        Some(json!({"firstName": "ana", "lastName": "RUIZ",
        "address": {"line1": "500  Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
    )
    .await;
    for _ in 0..2 {
        ok(
            &h,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": "Bo", "lastName": "Stone",
            "address": {"line1": "501 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
        )
        .await;
    }
    // Another team's Cy Diaz at the same address is never touched.
    let other = h.team("bob", "Other").await;
    let r = h
        .call(
            &BOB,
            "POST",
            &format!("/teams/{other}/contacts"),
            Some(json!({"firstName": "Cy", "lastName": "Diaz",
        "address": {"line1": "502 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let linked = ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", by_ext("900000")), None).await;
    assert_eq!(
        (linked["outcomes"][0]["outcome"].clone(), linked["outcomes"][0]["contactId"].clone()),
        (json!("linked"), ana["id"].clone())
    );
    let bo = ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", by_ext("900001")), None).await;
    assert_eq!(bo["outcomes"][0]["outcome"], "ambiguous", "{bo}");
    assert!(bo["property"]["owners"].as_array().unwrap().is_empty());
    let cy = ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", by_ext("900002")), None).await;
    assert_eq!(cy["outcomes"][0]["outcome"], "created");
    let cid = cy["outcomes"][0]["contactId"].as_str().unwrap();
    let c = ok(&h, "GET", &format!("/teams/{team}/contacts/{cid}"), None).await;
    assert_eq!(
        (c["firstName"].clone(), c["lastName"].clone(), c["needsReview"].clone()),
        (json!("Cy"), json!("Diaz"), json!(true))
    );
    // Linking again changes nothing; the company owner has no first name but a last: created.
    let again = ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", by_ext("900002")), None).await;
    assert_eq!(again["outcomes"][0]["outcome"], "linked");
    assert_eq!(h.count("contacts").await, 5, "Ana, Bo twice, Cy, and Bob's Cy");
    let corp = ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", by_ext("900003")), None).await;
    assert_eq!(corp["outcomes"][0]["outcome"], "created");
    // Contact lists (and campaign audiences, which take the same filters) by property fields.
    let ids = |v: &Value| {
        v["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let ana_id = ana["id"].as_str().unwrap().to_owned();
    for q in [
        "minDistress=30",
        "distressSignal=vacant",
        "propertyCity=TAMPA&minEquity=80",
        "minValue=300000&maxValue=300000",
    ] {
        let r = ok(&h, "GET", &format!("/teams/{team}/contacts?{q}"), None).await;
        assert_eq!(ids(&r), vec![ana_id.clone()], "{q}: {r}");
    }
    let none = ok(&h, "GET", &format!("/teams/{team}/contacts?minDistress=90"), None).await;
    assert!(ids(&none).is_empty());
    let bad = h.call(&ALICE, "GET", &format!("/teams/{team}/contacts?distressSignal=haunted"), None).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("distressSignal")));
    // Skip-tracing a property's owners is one action: linked, then an enrichment job over them.
    let traced =
        h.call(&ALICE, "POST", &format!("/teams/{team}/properties/{}/skip-trace", by_ext("900002")), None).await;
    assert_eq!(traced.status, StatusCode::ACCEPTED, "{}", traced.body);
    assert_eq!(traced.body["job"]["total"], 1, "{}", traced.body);
    let bo = h.call(&ALICE, "POST", &format!("/teams/{team}/properties/{}/skip-trace", by_ext("900001")), None).await;
    assert_eq!(bo.status, StatusCode::CONFLICT, "an ambiguous owner is not traced: {}", bo.body);
    // A contact's properties.
    let mine =
        ok(&h, "GET", &format!("/teams/{team}/properties?contactId={}", ana["id"].as_str().unwrap()), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Other teams see none of it.
    let x = h.call(&BOB, "GET", &format!("/teams/{other}/properties/{}", by_ext("900000")), None).await;
    assert_eq!(x.status, StatusCode::NOT_FOUND);
    let x = h.call(&BOB, "POST", &format!("/teams/{other}/properties/{}/link-owners", by_ext("900000")), None).await;
    assert_eq!(x.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_criteria_caps_narrow_keys_and_a_failing_provider_get_clear_answers() {
    let (h, f, team) = rig().await;
    let url = format!("/teams/{team}/properties/search");
    let bad = h
        .call(
            &ALICE,
            "POST",
            &url,
            Some(json!({"criteria": {"state": "Florida", "drop_table": 1, "city": {"x": 1}}, "size": 251})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for field in ["criteria.state", "criteria.drop_table", "criteria.city", "size"] {
        assert!(fields.contains(&field), "{field}: {}", bad.body);
    }
    let nul = h.call(&ALICE, "GET", &format!("/teams/{team}/properties?city=%00"), None).await;
    assert_eq!((nul.status, nul.field()), (StatusCode::BAD_REQUEST, Some("city")), "{}", nul.body);
    let num = h.call(&ALICE, "POST", &url, Some(json!({"criteria": {"state": 12}}))).await;
    assert_eq!((num.status, num.field()), (StatusCode::BAD_REQUEST, Some("criteria.state")));
    let empty = h.call(&ALICE, "POST", &url, Some(json!({"criteria": {}}))).await;
    assert_eq!((empty.status, empty.field()), (StatusCode::BAD_REQUEST, Some("criteria")));
    // A key that may only read contacts cannot pay for a search.
    let key = h.key(&team, "alice", &["contacts:read"]).await;
    let k = h.call(&As::Key(key.clone()), "POST", &url, Some(json!({"criteria": {"state": "FL"}}))).await;
    assert_eq!(k.status, StatusCode::FORBIDDEN);
    assert_eq!(h.call(&As::Key(key), "GET", &format!("/teams/{team}/properties"), None).await.status, StatusCode::OK);
    // The provider failing: a 503 with the reason, nothing kept.
    for _ in 0..2 {
        f.state.fail_next("realestateapi", Failure::Status(503));
    }
    let down = h.call(&ALICE, "POST", &url, Some(json!({"criteria": {"state": "FL"}}))).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE, "{}", down.body);
    assert_eq!(h.count("properties").await, 0);
    // The daily cap: one call left, then 429 until midnight UTC (the same cap skip traces use).
    ok(&h, "PUT", &format!("/teams/{team}/settings/enrichment/daily_cap_realestateapi"), Some(json!({"value": "2"})))
        .await;
    ok(&h, "POST", &url, Some(json!({"criteria": {"state": "FL"}}))).await;
    let capped = h.call(&ALICE, "POST", &url, Some(json!({"criteria": {"state": "FL", "city": "Orlando"}}))).await;
    assert_eq!(capped.status, StatusCode::TOO_MANY_REQUESTS, "{}", capped.body);
    assert!(capped.body["detail"].as_str().unwrap().contains("cap of 2"), "{}", capped.body);
    // A cached search still answers.
    let cached = ok(&h, "POST", &url, Some(json!({"criteria": {"state": "FL"}}))).await;
    assert_eq!(cached["cached"], true);
    // Strangers get nothing.
    assert_eq!(
        h.call(&As::Nobody, "GET", &format!("/teams/{team}/properties"), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.call(&BOB, "GET", &format!("/teams/{team}/properties"), None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_nightly_match_runs_each_saved_search_once_a_night_in_the_team_and_resumes() {
    use nextier_property::nightly;
    let (h, f, team) = rig().await;
    let s = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/saved-searches"),
        Some(json!({"name": "Tampa", "criteria": {"state": "FL", "city": "Tampa"}})),
    )
    .await;
    let dup = h
        .call(
            &ALICE,
            "POST",
            &format!("/teams/{team}/properties/saved-searches"),
            Some(json!({"name": "Tampa", "criteria": {"state": "FL"}})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Ana is already a contact at her mailing address; another team has a search too.
    ok(
        &h,
        "POST",
        &format!("/teams/{team}/contacts"),
        Some(json!({"firstName": "Ana", "lastName": "Ruiz",
        "address": {"line1": "500 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
    )
    .await;
    let other = h.team("bob", "Other").await;
    let r = h
        .call(
            &BOB,
            "POST",
            &format!("/teams/{other}/properties/saved-searches"),
            Some(json!({"name": "Orlando", "criteria": {"state": "FL", "city": "Orlando"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let at = |t: &str| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let p = |now: &str| nextier_property::Properties {
        db: h.t.worker.clone(),
        data: h.state.property_data.clone(),
        limiter: h.state.limiter.clone(),
        clock: Arc::new(nextier_platform::ports::clock::ManualClock::at(at(now))),
    };
    // 01:00 in New York: not yet.
    let n = nightly::run(&p("2026-12-04T06:00:00Z"), at("2026-12-04T06:00:00Z")).await.unwrap();
    assert_eq!(n.searches, 0);
    let n = nightly::run(&p("2026-12-04T08:00:00Z"), at("2026-12-04T08:00:00Z")).await.unwrap();
    assert_eq!((n.searches, n.finished, n.properties, n.added), (2, 2, 4, 4), "{n:?}");
    assert_eq!((n.owners_linked, n.owners_created), (1, 3), "{n:?}");
    let saved = ok(&h, "GET", &format!("/teams/{team}/properties/saved-searches"), None).await;
    assert_eq!((saved[0]["runStatus"].clone(), saved[0]["runDay"].clone()), (json!("done"), json!("2026-12-04")));
    let mine = ok(&h, "GET", &format!("/teams/{team}/properties"), None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 3, "only this team's search landed here");
    let tagged: i64 =
        h.t.superuser()
            .await
            .query_one("SELECT count(*) FROM contacts WHERE team_id = $1 AND 'property-match' = ANY(tags)", &[&team])
            .await
            .unwrap()
            .get(0);
    assert_eq!(tagged, 3);
    // Again the same night: nothing. The next night: from the cache, nothing new.
    assert_eq!(nightly::run(&p("2026-12-04T09:00:00Z"), at("2026-12-04T09:00:00Z")).await.unwrap().searches, 0);
    let before = (h.count("contacts").await, calls(&f, "/PropertySearch"));
    let n = nightly::run(&p("2026-12-05T08:00:00Z"), at("2026-12-05T08:00:00Z")).await.unwrap();
    assert_eq!((n.searches, n.pages, n.cached_pages, n.added), (2, 2, 2, 0), "{n:?}");
    assert_eq!(
        (h.count("contacts").await, calls(&f, "/PropertySearch")),
        before,
        "the second night paid nothing and doubled no one"
    );
    // A run cut short resumes where it stopped.
    h.t.superuser()
        .await
        .execute(
            "UPDATE property_searches SET run_day = '2026-12-06', run_index = 1, run_status = 'running' WHERE id = $1",
            &[&s["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let n = nightly::run(&p("2026-12-06T08:30:00Z"), at("2026-12-06T08:30:00Z")).await.unwrap();
    assert!(n.properties >= 2, "{n:?}");
    let saved = ok(&h, "GET", &format!("/teams/{team}/properties/saved-searches"), None).await;
    assert_eq!(saved[0]["runIndex"], 3, "{saved}");

    // Two invocations at once walk each search once (the run is leased), never twice.
    let now = "2026-12-07T08:00:00Z";
    let (one, two) = (p(now), p(now));
    let (x, y) = tokio::join!(nightly::run(&one, at(now)), nightly::run(&two, at(now)));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!((x.searches + y.searches, x.finished + y.finished), (2, 2), "{x:?} {y:?}");

    // A provider that keeps failing: three attempts in the night, then `failed` until the next.
    ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/saved-searches"),
        Some(json!({"name": "Zip", "criteria": {"state": "FL", "zip": "33602"}})),
    )
    .await;
    for _ in 0..6 {
        f.state.fail_next("realestateapi", Failure::Status(503));
    }
    for hour in ["08", "09", "10"] {
        let now = format!("2026-12-08T{hour}:00:00Z");
        let n = nightly::run(&p(&now), at(&now)).await.unwrap();
        assert_eq!(n.stopped.len(), 1, "{n:?}");
    }
    let saved = ok(&h, "GET", &format!("/teams/{team}/properties/saved-searches"), None).await;
    let zip = saved.as_array().unwrap().iter().find(|s| s["name"] == "Zip").unwrap();
    assert_eq!(zip["runStatus"], "failed", "{zip}");
    assert!(zip["runNote"].as_str().unwrap().contains("stopped"), "{zip}");
    let before = calls(&f, "/PropertySearch");
    let n = nightly::run(&p("2026-12-08T11:00:00Z"), at("2026-12-08T11:00:00Z")).await.unwrap();
    assert_eq!((n.searches, calls(&f, "/PropertySearch")), (0, before), "not again tonight: {n:?}");
    let n = nightly::run(&p("2026-12-09T08:00:00Z"), at("2026-12-09T08:00:00Z")).await.unwrap();
    assert_eq!((n.searches, n.finished), (3, 3), "the next night it runs anew: {n:?}");
}

#[tokio::test]
async fn property_merge_fields_render_in_a_campaign_send_with_fallbacks_and_staging_names_who_lacks_them() {
    let (h, fake, team) = rig().await;
    h.join(&team, "alice", "bob", "ADMIN").await;
    // Ana owns 20 Elm St outright (a record with equity in dollars) and 10 Oak St (the more
    // distressed: vacant, pre-foreclosure); the merge fields speak of the more distressed one.
    fake.state.property(json!({
        "id": "900010",
        "address": {"street": "20 Elm St", "city": "Tampa", "state": "FL", "zip": "33602"},
        "mailAddress": {"street": "500 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"},
        "owner1FirstName": "Ana", "owner1LastName": "Ruiz", "ownerOccupied": false,
        "equityPercent": 100, "estimatedValue": 150000, "estimatedEquity": 150000
    }));
    let out = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"state": "FL"}, "size": 10})),
    )
    .await;
    let ana = ok(
        &h,
        "POST",
        &format!("/teams/{team}/contacts"),
        Some(json!({"firstName": "Ana", "lastName": "Ruiz", "phones": [{"number": "2125552101", "type": "mobile"}],
        "address": {"line1": "500 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
    )
    .await;
    let eve = ok(
        &h,
        "POST",
        &format!("/teams/{team}/contacts"),
        Some(json!({"firstName": "Eve", "phones": [{"number": "2125552102", "type": "mobile"}]})),
    )
    .await;
    for p in out["properties"].as_array().unwrap() {
        if ["900000", "900010"].contains(&p["externalId"].as_str().unwrap()) {
            let l =
                ok(&h, "POST", &format!("/teams/{team}/properties/{}/link-owners", p["id"].as_str().unwrap()), None)
                    .await;
            assert_eq!(l["outcomes"][0]["outcome"], "linked", "{l}");
        }
    }
    let campaign = |body: &'static str| {
        let h = &h;
        let team = team.clone();
        let contacts = json!([ana["id"], eve["id"]]);
        async move {
            let c = ok(h, "POST", &format!("/teams/{team}/campaigns"), Some(json!({"name": &body[..40]}))).await;
            let id = c["id"].as_str().unwrap().to_owned();
            ok(
                h,
                "POST",
                &format!("/teams/{team}/campaigns/{id}/steps"),
                Some(json!({"channel": "SMS", "body": body})),
            )
            .await;
            let e = ok(
                h,
                "POST",
                &format!("/teams/{team}/campaigns/{id}/enrolments"),
                Some(json!({"contactIds": contacts})),
            )
            .await;
            (id, e)
        }
    };

    // With fallbacks it stages, and the send renders Ana's property and Eve's fallbacks.
    let (id, _) = campaign(
        "Hi {{firstName}}, is {{propertyAddress|your property}} in {{propertyCity|town}} for sale? \
         Worth ~{{estimatedValue|a lot}} ({{equity|some}} equity, {{equityPercent|many%}}), score {{distressScore|n/a}}.",
    )
    .await;
    for (who, action) in [(&ALICE, "stage"), (&BOB, "approve"), (&BOB, "start")] {
        let r = h.call(who, "POST", &format!("/teams/{team}/campaigns/{id}/{action}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.body);
    }
    let q = h.campaign_queues().await;
    assert_eq!(h.run_campaign_tick(&q).await, 2);
    let sent: Vec<String> =
        h.t.superuser()
            .await
            .query("SELECT body FROM messages WHERE body LIKE '%for sale%' ORDER BY body", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    let why: Vec<String> =
        h.t.superuser()
            .await
            .query("SELECT status || ': ' || coalesce(reason, '') FROM campaign_executions", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(sent.len(), 2, "{sent:?} {why:?}");
    assert!(
        sent[0].starts_with("Hi Ana, is 10 Oak St in Tampa for sale? Worth ~$300,000 ($255,000 equity, 85%), score "),
        "{}",
        sent[0]
    );
    assert_eq!(sent[1], "Hi Eve, is your property in town for sale? Worth ~a lot (some equity, many%), score n/a.");
    // Eve owns nothing: a template that requires a property field does not enrol her, and
    // says why; Ana (whose one-step enrolment completed) is enrolled.
    let (_, e) = campaign("Hi {{firstName}}, is {{propertyAddress}} for sale?").await;
    assert_eq!(e["enrolled"], 1, "{e}");
    assert_eq!(e["skipped"][0]["contactId"], eve["id"], "{e}");
    assert!(e["skipped"][0]["reason"].as_str().unwrap().contains("propertyAddress"), "{e}");
}

#[tokio::test]
async fn owners_are_linked_by_hand_stay_dismissed_and_concurrent_links_make_one_contact() {
    let (h, fake, team) = rig().await;
    // Dan owns two properties, mailed to one address with a zip+4: two links at once, one contact.
    for (i, street) in ["1 Bay Rd", "2 Bay Rd"].into_iter().enumerate() {
        fake.state.property(json!({
            "id": format!("95000{i}"),
            "address": {"street": street, "city": "Sarasota", "state": "FL", "zip": "34236"},
            "mailAddress": {"street": "9  Harbor Ln", "city": "Naples", "state": "fl", "zip": "34102-4455"},
            "owner1FirstName": "Dan", "owner1LastName": "Cole", "estimatedValue": 410000
        }));
    }
    // Cy Diaz (of the rig) owns another property, mailed to the same address.
    fake.state.property(json!({
        "id": "950020",
        "address": {"street": "7 Pine St", "city": "Tampa", "state": "FL", "zip": "33602"},
        "mailAddress": {"street": "502 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"},
        "owner1FirstName": "Cy", "owner1LastName": "Diaz"
    }));
    // A record with no mailing or property street: nobody is made up.
    fake.state.property(json!({
        "id": "950009", "address": {"city": "Sarasota", "state": "FL"},
        "owner1FirstName": "Nia", "owner1LastName": "Vale"
    }));
    let out = ok(
        &h,
        "POST",
        &format!("/teams/{team}/properties/search"),
        Some(json!({"criteria": {"state": "FL"}, "size": 20})),
    )
    .await;
    let by_ext = |e: &str| {
        out["properties"].as_array().unwrap().iter().find(|p| p["externalId"] == e).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let link = |id: String| {
        let h = &h;
        let team = team.clone();
        async move { ok(h, "POST", &format!("/teams/{team}/properties/{id}/link-owners"), None).await }
    };
    let (a, b) = tokio::join!(link(by_ext("950000")), link(by_ext("950001")));
    let dan: Vec<&Value> = [&a, &b].iter().map(|l| &l["outcomes"][0]["contactId"]).collect();
    assert_eq!(dan[0], dan[1], "one owner, one contact: {a} {b}");
    let outcomes = [a["outcomes"][0]["outcome"].as_str().unwrap(), b["outcomes"][0]["outcome"].as_str().unwrap()];
    assert!(outcomes.contains(&"created") && outcomes.contains(&"linked"), "{outcomes:?}");
    let c = ok(&h, "GET", &format!("/teams/{team}/contacts/{}", dan[0].as_str().unwrap()), None).await;
    assert_eq!(c["addresses"][0]["zip"], "34102", "{c}");
    assert_eq!(c["addresses"][0]["state"], "FL", "{c}");
    let nia = link(by_ext("950009")).await;
    assert_eq!(nia["outcomes"][0]["outcome"], "no_address", "{nia}");

    // Bo is two contacts at one address: ambiguous until a person links one by hand.
    let mut bos = Vec::new();
    for _ in 0..2 {
        let bo = ok(
            &h,
            "POST",
            &format!("/teams/{team}/contacts"),
            Some(json!({"firstName": "Bo", "lastName": "Stone",
            "address": {"line1": "501 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"}})),
        )
        .await;
        bos.push(bo["id"].as_str().unwrap().to_owned());
    }
    let bo_prop = by_ext("900001");
    let amb = link(bo_prop.clone()).await;
    assert_eq!(amb["outcomes"][0]["outcome"], "ambiguous");
    let url = format!("/teams/{team}/properties/{bo_prop}/link-owners");
    for (body, field) in [
        (json!({"ownerNumber": 2, "contactId": bos[0]}), "ownerNumber"),
        (json!({"ownerNumber": 0, "contactId": bos[0]}), "ownerNumber"),
        (json!({"ownerNumber": 1, "contactId": "con_nope"}), "contactId"),
        (json!({"ownerNumber": 1}), "contactId"),
    ] {
        let r = h.call(&ALICE, "POST", &url, Some(body.clone())).await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {}", r.body);
    }
    // Another team's contact is no contact of this team.
    let other = h.team("bob", "Other").await;
    let theirs = h
        .call(&BOB, "POST", &format!("/teams/{other}/contacts"), Some(json!({"firstName": "Bo", "lastName": "Stone"})))
        .await;
    let r = h.call(&ALICE, "POST", &url, Some(json!({"ownerNumber": 1, "contactId": theirs.body["id"]}))).await;
    assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("contactId")), "{}", r.body);
    let chosen = ok(&h, "POST", &url, Some(json!({"ownerNumber": 1, "contactId": bos[1]}))).await;
    assert_eq!(chosen["property"]["owners"][0]["contactId"], bos[1].as_str(), "{chosen}");
    assert_eq!(chosen["property"]["owners"][0]["matchedBy"], "person");

    // A contact made for review and deleted by a person is not made again.
    let cy = link(by_ext("900002")).await;
    assert_eq!(cy["outcomes"][0]["outcome"], "created");
    let cy_id = cy["outcomes"][0]["contactId"].as_str().unwrap().to_owned();
    let del = h.call(&ALICE, "DELETE", &format!("/teams/{team}/contacts/{cy_id}"), None).await;
    assert!(del.status.is_success(), "{}", del.body);
    let before = h.count("contacts").await;
    let again = link(by_ext("900002")).await;
    assert_eq!(again["outcomes"][0]["outcome"], "dismissed", "{again}");
    let pine = link(by_ext("950020")).await;
    assert_eq!(pine["outcomes"][0]["outcome"], "dismissed", "the person, not only the property: {pine}");
    assert_eq!(h.count("contacts").await, before);

    // The searches are on the team's cost ledger: one call, its records as credits.
    ok(&h, "POST", &format!("/teams/{team}/properties/search"), Some(json!({"criteria": {"state": "FL"}, "size": 20})))
        .await;
    let costs = ok(&h, "GET", &format!("/teams/{team}/enrichment-costs"), None).await;
    let rea = costs["days"].as_array().unwrap().iter().find(|d| d["provider"] == "realestateapi").unwrap();
    assert_eq!(
        (rea["calls"].clone(), rea["credits"].clone(), rea["cacheHits"].clone()),
        (json!(1), json!(8), json!(1))
    );
}
