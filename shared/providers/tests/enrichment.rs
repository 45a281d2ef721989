//! The enrichment clients against the local fake speaking each provider's contract
//! (`nextier_testkit::fakes`): Tracerfy's batch submit and queue poll, Trestle's phone
//! intelligence, Apollo's organisation enrich and people search; and their failures: 429 with
//! Retry-After, 5xx, a body that is not JSON, a wrong key.

use std::time::Duration;

use nextier_platform::ports::enrichment::{Companies, PhoneIntel, ProviderError, Submitted, TraceQuery, Tracer};
use nextier_providers::enrichment::{apollo, tracerfy, trestle};
use nextier_providers::retry::Retry;
use nextier_testkit::fakes::{Failure, FakeProviders, Found, APOLLO_KEY, TRACERFY_TOKEN, TRESTLE_KEY};

fn fast() -> Retry {
    Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) }
}

fn tracer(f: &FakeProviders, key: Option<&str>) -> tracerfy::Tracerfy {
    tracerfy::Tracerfy::new(tracerfy::Config {
        base_url: format!("{}/tracerfy", f.base),
        api_key: key.map(str::to_owned),
        enhanced: false,
        retry: fast(),
        timeout: Duration::from_secs(5),
    })
}

fn query(first: &str, last: &str, address: &str) -> TraceQuery {
    TraceQuery {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        address: Some(address.into()),
        city: Some("Tampa".into()),
        state: Some("FL".into()),
        zip: Some("33602".into()),
    }
}

#[tokio::test]
async fn tracerfy_traces_a_batch_by_queue_and_matches_each_record_to_its_person() {
    let f = FakeProviders::start().await;
    f.state.find(
        "Ana",
        "Ruiz",
        Found {
            mobiles: vec!["(813) 555-2301".into(), "8135552302".into()],
            landlines: vec!["813-555-2399".into()],
            emails: vec!["ana.ruiz@example.com".into()],
        },
    );
    *f.state.pending_polls.lock().unwrap() = 2;
    let t = tracer(&f, Some(TRACERFY_TOKEN));
    // Records come back in the provider's order: matching is by name and address, not position.
    let queries = [query("Bo", "Nobody", "1 Elm St"), query("ana", "RUIZ", "12 Oak St")];
    let Submitted::Queued(reference) = t.submit(None, &queries).await.unwrap() else { panic!("Tracerfy queues") };
    assert_eq!(t.poll(None, &reference, &queries).await.unwrap(), None, "pending");
    assert_eq!(t.poll(None, &reference, &queries).await.unwrap(), None, "still pending");
    let results = t.poll(None, &reference, &queries).await.unwrap().expect("done");
    assert_eq!(results.len(), 2);
    assert!(results[0].phones.is_empty() && results[0].emails.is_empty(), "{:?}", results[0]);
    let numbers: Vec<(&str, &str)> =
        results[1].phones.iter().map(|p| (p.number.as_str(), p.line_type.as_str())).collect();
    assert_eq!(numbers, vec![("(813) 555-2301", "mobile"), ("8135552302", "mobile"), ("813-555-2399", "landline")]);
    assert_eq!(results[1].emails, vec!["ana.ruiz@example.com".to_owned()]);
    // One submission for the whole batch.
    assert_eq!(f.state.calls.lock().unwrap().iter().filter(|(_, p)| p == "/trace/").count(), 1);
}

#[tokio::test]
async fn tracerfy_failures_are_sorted_for_the_pipeline() {
    let f = FakeProviders::start().await;
    let q = [query("Ana", "Ruiz", "12 Oak St")];
    // No key at all, and a wrong one: credentials, never retried as if the provider were down.
    let e = tracer(&f, None).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized(_)), "{e:?}");
    let e = tracer(&f, Some("wrong")).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized(_)), "{e:?}");
    // A team's own key wins over the platform's.
    assert!(tracer(&f, Some("wrong")).submit(Some(TRACERFY_TOKEN), &q).await.is_ok());
    // 429: rate limited, for the queue to retry later.
    f.state.fail_next("tracerfy", Failure::RateLimited(1));
    let e = tracer(&f, Some(TRACERFY_TOKEN)).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::RateLimited(_)) && e.retryable(), "{e:?}");
    // A 503 on a submission is not repeated within the call (a submission may have been taken
    // and billed): the pipeline retries it later.
    f.state.fail_next("tracerfy", Failure::Status(503));
    let before = f.state.count("tracerfy");
    let e = tracer(&f, Some(TRACERFY_TOKEN)).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unavailable(_)) && e.retryable(), "{e:?}");
    assert_eq!(f.state.count("tracerfy"), before + 1, "one attempt");
    assert!(matches!(tracer(&f, Some(TRACERFY_TOKEN)).submit(None, &q).await, Ok(Submitted::Queued(_))));
    // Out of credits (402) is for an operator, like a bad key.
    f.state.fail_next("tracerfy", Failure::Status(402));
    let e = tracer(&f, Some(TRACERFY_TOKEN)).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized(_)), "{e:?}");
    // A 200 that is not JSON is unusable, not retryable.
    f.state.fail_next("tracerfy", Failure::Garbage);
    let e = tracer(&f, Some(TRACERFY_TOKEN)).submit(None, &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Malformed(_)) && !e.retryable(), "{e:?}");
    // A reference that is not a queue id never reaches the provider's path.
    let e = tracer(&f, Some(TRACERFY_TOKEN)).poll(None, "../trace", &q).await.unwrap_err();
    assert!(matches!(e, ProviderError::Malformed(_)), "{e:?}");
}

fn intel(f: &FakeProviders, key: &str) -> trestle::Trestle {
    trestle::Trestle::new(trestle::Config {
        base_url: format!("{}/trestle", f.base),
        api_key: Some(key.into()),
        retry: fast(),
        timeout: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn trestle_reports_line_type_carrier_activity_and_grade() {
    let f = FakeProviders::start().await;
    f.state.number("+18135552301", "Mobile", "A", 91, "T-Mobile USA, Inc.");
    f.state.number("+18135552399", "FixedVOIP", "B", 75, "Comcast");
    let t = intel(&f, TRESTLE_KEY);
    let r = t.lookup(None, "+18135552301", Some("Ana Ruiz")).await.unwrap().unwrap();
    assert_eq!(
        (r.line_type.as_str(), r.carrier.as_deref(), r.activity_score, r.contact_grade, r.name_match),
        ("mobile", Some("T-Mobile USA, Inc."), Some(91), Some('A'), Some(true))
    );
    // A fixed VoIP line is a landline for texting.
    assert_eq!(t.lookup(None, "+18135552399", None).await.unwrap().unwrap().line_type, "landline");
    // Not a valid number: no report.
    assert_eq!(t.lookup(None, "+18135550000", None).await.unwrap(), None);
    let e = intel(&f, "wrong").lookup(None, "+18135552301", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized(_)), "{e:?}");
    f.state.fail_next("trestle", Failure::Status(500));
    f.state.fail_next("trestle", Failure::Status(502));
    let e = t.lookup(None, "+18135552301", None).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unavailable(_)) && e.retryable(), "{e:?}");
    f.state.fail_next("trestle", Failure::Garbage);
    assert!(matches!(t.lookup(None, "+18135552301", None).await, Err(ProviderError::Malformed(_))));
}

#[tokio::test]
async fn apollo_enriches_organisations_and_finds_their_decision_makers() {
    let f = FakeProviders::start().await;
    let a = apollo::Apollo::new(apollo::Config {
        base_url: format!("{}/apollo", f.base),
        api_key: Some(APOLLO_KEY.into()),
        retry: fast(),
        timeout: Duration::from_secs(5),
    });
    let org = a.enrich(None, Some("mossbuild.example"), Some("Moss Build")).await.unwrap().unwrap();
    assert_eq!(
        (org.id.as_deref(), org.employees, org.annual_revenue, org.industry.as_deref()),
        (Some("org-1"), Some(42), Some(3_500_000), Some("construction"))
    );
    assert_eq!(a.enrich(None, None, Some("Unknown Co")).await.unwrap(), None);
    let people = a.people(None, "org-1", &["owner", "manager"]).await.unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!((people[0].seniority.as_deref(), people[0].phone.as_deref()), (Some("owner"), Some("+13125552040")));
    // Apollo's placeholder for a locked email is no email.
    assert_eq!(people[1].email, None);
}
