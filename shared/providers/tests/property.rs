//! RealEstateAPI's property search and detail against the local fake speaking the published
//! contract (`x-api-key`, `POST /PropertySearch` paged by `size` and `resultIndex`,
//! `POST /PropertyDetail` by id) and its failures: a wrong key, 429 with Retry-After, 5xx,
//! a body that is not JSON, an unknown id; and records read generously (numbers as strings,
//! missing owners, an owner's names in the right order).

use std::time::Duration;

use nextier_platform::ports::property::{PropertyData, ProviderError, SandboxPropertyData};
use nextier_providers::realestate::{Config, RealEstateApi};
use nextier_providers::retry::Retry;
use nextier_testkit::fakes::{Failure, FakeProviders, REALESTATE_KEY};
use serde_json::json;

fn client(f: &FakeProviders, key: &str) -> RealEstateApi {
    RealEstateApi::new(Config {
        base_url: format!("{}/realestate", f.base),
        api_key: key.into(),
        retry: Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) },
        timeout: Duration::from_secs(5),
    })
}

fn seed(f: &FakeProviders) {
    for i in 0..7 {
        f.state.property(json!({
            "id": format!("{}", 253_175_000 + i),
            "address": {"street": format!("{} Oak St", 10 + i), "city": if i < 5 { "Tampa" } else { "Orlando" },
                        "state": "FL", "zip": "33602", "county": "Hillsborough"},
            "mailAddress": {"street": "9 Mail Rd", "city": "Miami", "state": "FL", "zip": "33101"},
            "owner1FirstName": "Ana", "owner1LastName": format!("Ruiz{i}"),
            "ownerOccupied": i % 2 == 0, "absenteeOwner": i % 2 == 1, "vacant": i == 3, "preForeclosure": i == 1,
            "equityPercent": 85, "estimatedValue": "418000", "estimatedEquity": 189084, "propertyType": "SFR",
            "yearBuilt": 1987
        }));
    }
}

#[tokio::test]
async fn a_search_pages_through_its_results_with_owners_in_order() {
    let f = FakeProviders::start().await;
    seed(&f);
    let c = client(&f, REALESTATE_KEY);
    let first = c.search(None, &json!({"state": "FL", "city": "Tampa"}), 0, 3).await.unwrap();
    assert_eq!((first.total, first.records.len()), (5, 3));
    let rest = c.search(None, &json!({"state": "FL", "city": "Tampa"}), 3, 3).await.unwrap();
    assert_eq!(rest.records.len(), 2);
    let r = &first.records[0];
    assert_eq!(r.external_id, "253175000");
    assert_eq!(r.owners, vec![(Some("Ana".to_owned()), Some("Ruiz0".to_owned()))], "first name first");
    assert_eq!((r.address.street.as_deref(), r.address.zip.as_deref()), (Some("10 Oak St"), Some("33602")));
    assert_eq!(r.mail_address.as_ref().and_then(|m| m.city.as_deref()), Some("Miami"));
    assert_eq!((r.estimated_value, r.equity_percent, r.year_built), (Some(418_000), Some(85.0), Some(1987)));
    let pf = c.search(None, &json!({"state": "FL", "pre_foreclosure": true}), 0, 250).await.unwrap();
    assert_eq!(pf.records.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>(), vec!["253175001"]);
    let calls = f.state.calls.lock().unwrap().clone();
    assert_eq!(calls.iter().filter(|(_, p)| p == "/PropertySearch").count(), 3);
}

#[tokio::test]
async fn a_detail_reads_the_nested_answer_and_an_unknown_id_is_none() {
    let f = FakeProviders::start().await;
    seed(&f);
    let c = client(&f, REALESTATE_KEY);
    let d = c.detail(None, "253175003").await.unwrap().unwrap();
    assert_eq!(d.owners, vec![(Some("Ana".to_owned()), Some("Ruiz3".to_owned()))]);
    assert_eq!((d.vacant, d.owner_occupied, d.pre_foreclosure), (Some(true), Some(false), Some(false)));
    assert_eq!(d.address.city.as_deref(), Some("Tampa"));
    assert_eq!(c.detail(None, "nope").await.unwrap(), None);
}

#[tokio::test]
async fn failures_are_told_apart() {
    let f = FakeProviders::start().await;
    seed(&f);
    let wrong = client(&f, "wrong-key");
    assert!(matches!(wrong.search(None, &json!({}), 0, 10).await, Err(ProviderError::Unauthorized(_))));
    let c = client(&f, REALESTATE_KEY);
    // A team's own key is used when given.
    assert!(c.search(Some("not-the-key"), &json!({}), 0, 10).await.is_err());
    assert!(c.search(Some(REALESTATE_KEY), &json!({}), 0, 10).await.is_ok());
    // 429 is retried once within the call (after its Retry-After), then handed back.
    f.state.fail_next("realestateapi", Failure::RateLimited(0));
    f.state.fail_next("realestateapi", Failure::RateLimited(0));
    let e = c.search(None, &json!({}), 0, 10).await.unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited(_)) && e.retryable(), "{e:?}");
    for _ in 0..2 {
        f.state.fail_next("realestateapi", Failure::Status(503));
    }
    let e = c.search(None, &json!({}), 0, 10).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unavailable(_)), "{e:?}");
    f.state.failures.lock().unwrap().clear();
    f.state.fail_next("realestateapi", Failure::Garbage);
    let e = c.detail(None, "253175000").await.unwrap_err();
    assert!(matches!(e, ProviderError::Malformed(_)), "{e:?}");
    assert_eq!(c.search(None, &json!({}), 0, 10).await.unwrap().total, 7);
}

#[tokio::test]
async fn odd_records_are_read_generously_and_ones_without_an_id_are_skipped() {
    let f = FakeProviders::start().await;
    f.state.property(json!({"id": 42, "address": {"street": "1 Main St", "state": "fl", "zip": "33602-1234"},
        "equityPercent": "-12.5", "ownerOccupied": "N", "estimatedValue": null}));
    f.state.property(json!({"address": {"street": "no id"}}));
    f.state.property(json!({"id": "43", "owner1FirstName": "A\u{0}na", "owner1LastName": "Ruiz",
        "address": {"street": "2 Main\u{0} St"}, "equityPercent": "NaN", "note": {"x": "\u{0}"}}));
    let c = client(&f, REALESTATE_KEY);
    let page = c.search(None, &json!({}), 0, 10).await.unwrap();
    assert_eq!(page.records.len(), 2);
    let nul = &page.records[1];
    assert_eq!(nul.owners, vec![(Some("Ana".to_owned()), Some("Ruiz".to_owned()))], "NUL never reaches the database");
    assert_eq!((nul.address.street.as_deref(), nul.equity_percent), (Some("2 Main St"), None), "NaN is no equity");
    assert!(!nul.raw.to_string().contains("\\u0000"), "{}", nul.raw);
    let r = &page.records[0];
    assert_eq!(r.external_id, "42");
    assert_eq!((r.address.state.as_deref(), r.address.zip.as_deref()), (Some("FL"), Some("33602")));
    assert_eq!((r.equity_percent, r.owner_occupied, r.estimated_value), (Some(-12.5), Some(false), None));
    assert!(r.owners.is_empty(), "no owner named: no owner invented");
}

#[tokio::test]
async fn the_sandbox_answers_deterministically_for_the_local_runtime() {
    let s = SandboxPropertyData;
    let tampa = s.search(None, &json!({"state": "FL", "city": "tampa"}), 0, 250).await.unwrap();
    assert_eq!(tampa.total, 6);
    let again = s.search(None, &json!({"state": "FL", "city": "tampa"}), 0, 250).await.unwrap();
    assert_eq!(tampa, again);
    let one = s.detail(None, &tampa.records[0].external_id).await.unwrap().unwrap();
    assert_eq!(one, tampa.records[0]);
}
