//! Enrichment end to end, through the code a deployment runs: the API starts a job, the outbox
//! puts its first step on the `enrichment` queue, the consumer's handler takes each batch from
//! the queue (as Lambda's event source mapping would), calls the Tracerfy and Trestle clients
//! against the fake speaking their contracts, and the effect is read back over HTTP: statuses
//! with reasons, provenance, the cost ledger, the cache on a re-run, a daily cap that makes the
//! job wait (and resume the next day), and the score with its breakdown.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use nextier_enrichment::{Pipeline, Timing, QUEUE};
use nextier_platform::local::{PgQueue, PgRateLimiter, QueueSpec};
use nextier_platform::ports::clock::ManualClock;
use nextier_platform::Queue;
use nextier_providers::enrichment::{apollo, tracerfy, trestle};
use nextier_providers::retry::Retry;
use nextier_testkit::fakes::{Failure, FakeProviders, Found, APOLLO_KEY, REALESTATE_KEY, TRACERFY_TOKEN, TRESTLE_KEY};
use serde_json::{json, Value};
use support::{harness, As, Harness};

const ALICE: As = As::User("alice");

struct Rig {
    h: Harness,
    fake: FakeProviders,
    queue: PgQueue,
    pipeline: Pipeline,
    clock: ManualClock,
    team: String,
}

fn fast() -> Retry {
    Retry { attempts: 2, backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) }
}

/// The platform holds the Trestle key; Tracerfy is configured without one (teams bring theirs).
async fn rig() -> Rig {
    let h = harness().await;
    let fake = FakeProviders::start().await;
    // Ahead of the system clock, so what the outbox publishes (at the real now) is visible.
    let clock = ManualClock::at(chrono::Utc::now() + chrono::Duration::minutes(5));
    let queue = PgQueue::new(h.t.db.clone()).with_clock(Arc::new(clock.clone()));
    queue.declare(&QueueSpec::with_dlq(QUEUE, Duration::from_secs(360), 8)).await.unwrap();
    queue.declare(&QueueSpec::with_dlq(nextier_campaigns::SYNC_QUEUE, Duration::from_secs(180), 5)).await.unwrap();
    let pipeline = Pipeline {
        db: h.t.db.clone(),
        outbox: h.state.outbox.clone(),
        queue: Arc::new(queue.clone()),
        limiter: Arc::new(PgRateLimiter::new(h.t.db.clone())),
        clock: Arc::new(clock.clone()),
        tracer: Arc::new(tracerfy::Tracerfy::new(tracerfy::Config {
            base_url: format!("{}/tracerfy", fake.base),
            api_key: None,
            enhanced: false,
            retry: fast(),
            timeout: Duration::from_secs(5),
        })),
        other_tracers: vec![Arc::new(nextier_providers::realestate::RealEstateApi::new(
            nextier_providers::realestate::Config {
                base_url: format!("{}/realestate", fake.base),
                api_key: REALESTATE_KEY.into(),
                retry: fast(),
                timeout: Duration::from_secs(5),
            },
        ))],
        phone_intel: Arc::new(trestle::Trestle::new(trestle::Config {
            base_url: format!("{}/trestle", fake.base),
            api_key: Some(TRESTLE_KEY.into()),
            retry: fast(),
            timeout: Duration::from_secs(5),
        })),
        companies: Arc::new(apollo::Apollo::new(apollo::Config {
            base_url: format!("{}/apollo", fake.base),
            api_key: Some(APOLLO_KEY.into()),
            retry: fast(),
            timeout: Duration::from_secs(5),
        })),
        timing: Timing {
            poll_every: Duration::ZERO,
            between_batches: Duration::ZERO,
            retry_after: Duration::ZERO,
            ..Timing::default()
        },
    };
    let team = h.team("alice", "Acme").await;
    // The team's own Tracerfy token, stored as a secret setting.
    let r = h
        .call(
            &ALICE,
            "PUT",
            &format!("/teams/{team}/settings/enrichment/tracerfy_api_key"),
            Some(json!({"value": TRACERFY_TOKEN, "secret": true})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    Rig { h, fake, queue, pipeline, clock, team }
}

impl Rig {
    /// Runs the consumer over whatever is visible on the queue until nothing is; a failed
    /// message is made visible again, as SQS would after its visibility timeout.
    async fn drain(&self) -> usize {
        let mut handled = 0;
        for _ in 0..200 {
            let batch = self.queue.receive(QUEUE, nextier_enrichment::CONSUMER.batch_size).await.unwrap();
            if batch.is_empty() {
                return handled;
            }
            handled += batch.len();
            let resp = nextier_enrichment::handle(&self.pipeline, support::sqs_event(QUEUE, &batch)).await;
            let failed: Vec<String> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
            for m in &batch {
                if failed.contains(&m.id) {
                    self.queue.change_visibility(QUEUE, &m.receipt_handle, Duration::ZERO).await.unwrap();
                } else {
                    self.queue.delete(QUEUE, &m.receipt_handle).await.unwrap();
                }
            }
        }
        panic!("the queue never drained");
    }

    async fn contact(&self, body: Value) -> String {
        let r = self.h.call(&ALICE, "POST", &format!("/teams/{}/contacts", self.team), Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.h.call(&ALICE, "GET", &format!("/teams/{}{path}", self.team), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body
    }

    async fn start(&self, body: Value) -> String {
        let r = self.h.call(&ALICE, "POST", &format!("/teams/{}/enrichment-jobs", self.team), Some(body)).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    async fn setting(&self, name: &str, value: &str) {
        let r = self
            .h
            .call(
                &ALICE,
                "PUT",
                &format!("/teams/{}/settings/enrichment/{name}", self.team),
                Some(json!({"value": value})),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
}

fn provider<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["providers"].as_array().unwrap().iter().find(|p| p["provider"] == name).unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_raw_list_becomes_graded_leads_with_reasons_provenance_costs_and_scores() {
    let r = rig().await;
    let s = &r.fake.state;
    // Ana has only an address: the trace finds her a mobile, a landline and an email.
    s.find(
        "Ana",
        "Ruiz",
        Found {
            mobiles: vec!["(813) 555-2301".into()],
            landlines: vec!["813-555-2399".into()],
            emails: vec!["ana.ruiz@example.com".into()],
        },
    );
    s.number("+18135552301", "Mobile", "A", 91, "T-Mobile USA, Inc.");
    s.number("+18135552399", "Landline", "B", 80, "Frontier");
    // Bo gave his mobile himself: no trace is paid for; its grade rejects him.
    s.number("+18135552500", "Mobile", "D", 88, "AT&T Mobility");
    // Dee already holds the landline the trace will find for Ana.
    let dee = r.contact(json!({"firstName": "Dee", "lastName": "Stone", "phones": [{"number": "+18135552399"}]})).await;
    s.number("+18135552399", "Landline", "B", 80, "Frontier");
    let ana = r
        .contact(json!({"firstName": "Ana", "lastName": "Ruiz",
                        "address": {"line1": "12 Oak St", "city": "Tampa", "state": "FL", "zip": "33602"}}))
        .await;
    let bo = r
        .contact(
            json!({"firstName": "Bo", "lastName": "Lee", "phones": [{"number": "+18135552500", "type": "mobile"}]}),
        )
        .await;
    // Cy cannot be traced (no address) and has no number.
    let cy = r.contact(json!({"firstName": "Cy", "lastName": "Park"})).await;

    let job = r.start(json!({"contactIds": [ana, bo, cy]})).await;
    r.drain().await;

    let j = r.get(&format!("/enrichment-jobs/{job}")).await;
    assert_eq!(
        (j["status"].as_str(), j["total"].as_i64(), j["done"].as_i64(), j["ready"].as_i64(), j["rejected"].as_i64()),
        (Some("completed"), Some(3), Some(3), Some(1), Some(2)),
        "{j}"
    );
    // One batch submission (and its polls) for the one contact that needed a trace, one credit.
    let tf = provider(&j, "tracerfy");
    assert_eq!((tf["calls"].as_i64(), tf["credits"].as_i64()), (Some(1), Some(1)), "{j}");
    assert_eq!(s.calls.lock().unwrap().iter().filter(|(_, p)| p == "/trace/").count(), 1);
    // Ana's mobile and Bo's: two Trestle lookups (Dee's landline is not Ana's).
    assert_eq!(provider(&j, "trestle")["calls"].as_i64(), Some(2), "{j}");

    let a = r.get(&format!("/contacts/{ana}")).await;
    assert_eq!(a["enrichmentStatus"], "ready", "{a}");
    let phones = a["phones"].as_array().unwrap();
    assert_eq!(phones.len(), 1, "the landline stays Dee's: {a}");
    let p = &phones[0];
    assert_eq!(
        (
            p["e164"].as_str(),
            p["source"].as_str(),
            p["lineType"].as_str(),
            p["lineGrade"].as_str(),
            p["textable"].as_bool()
        ),
        (Some("+18135552301"), Some("tracerfy"), Some("mobile"), Some("A"), Some(true)),
        "{p}"
    );
    assert_eq!((p["activityScore"].as_i64(), p["carrier"].as_str()), (Some(91), Some("T-Mobile USA, Inc.")));
    assert_eq!(a["emails"][0]["source"], "tracerfy");
    let d = r.get(&format!("/contacts/{dee}")).await;
    assert_eq!(d["phones"][0]["e164"], "+18135552399");

    let b = r.get(&format!("/contacts/{bo}")).await;
    assert_eq!(b["enrichmentStatus"], "rejected");
    assert!(b["enrichmentReason"].as_str().unwrap().contains("graded D"), "{b}");
    // A person's type is kept; what the provider said is beside it.
    assert_eq!((b["phones"][0]["type"].as_str(), b["phones"][0]["source"].as_str()), (Some("mobile"), Some("user")));
    let c = r.get(&format!("/contacts/{cy}")).await;
    assert_eq!((c["enrichmentStatus"].as_str(), c["enrichmentReason"].as_str()), (Some("rejected"), Some("no phone")));

    // The score is explained, and is the contact's score.
    let sc = r.get(&format!("/contacts/{ana}/score")).await;
    assert_eq!(sc["score"], a["score"]);
    assert_eq!(sc["breakdown"]["total"], a["score"]);
    let parts: Vec<&str> =
        sc["breakdown"]["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(parts, ["dataQuality", "reachability", "roleValue", "propertyOpportunity", "businessFit"]);
    assert_eq!(sc["breakdown"]["components"][1]["reasons"][0], "mobile graded A, activity 91");
    assert!(a["score"].as_i64().unwrap() > c["score"].as_i64().unwrap(), "{a} vs {c}");

    // A computed score follows its inputs: a company and title raise the data quality.
    let before = a["score"].as_i64().unwrap();
    let p = r
        .h
        .call(&ALICE, "PATCH", &format!("/teams/{}/contacts/{ana}", r.team), Some(json!({"company": "Ruiz Roofing"})))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body["score"].as_i64().unwrap() > before, "{} > {before}", p.body["score"]);
    assert_eq!(r.get(&format!("/contacts/{ana}/score")).await["breakdown"]["components"][0]["score"], 100);

    // The timeline says what happened.
    let tl = r.get(&format!("/contacts/{ana}/timeline")).await;
    let kinds: Vec<&str> = tl["items"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"skip_traced") && kinds.contains(&"enriched"), "{kinds:?}");
}

#[tokio::test]
async fn a_rerun_pays_nothing_for_what_the_cache_knows() {
    let r = rig().await;
    let s = &r.fake.state;
    // Eve's trace finds nothing; Fay's finds a number Trestle cannot validate.
    s.find("Fay", "Lund", Found { mobiles: vec!["8135552700".into()], ..Found::default() });
    let addr = |line: &str| json!({"line1": line, "city": "Tampa", "state": "FL", "zip": "33602"});
    let eve = r.contact(json!({"firstName": "Eve", "lastName": "Moss", "address": addr("3 Bay Rd")})).await;
    let fay = r.contact(json!({"firstName": "Fay", "lastName": "Lund", "address": addr("4 Bay Rd")})).await;
    let first = r.start(json!({"contactIds": [eve, fay]})).await;
    r.drain().await;
    let j1 = r.get(&format!("/enrichment-jobs/{first}")).await;
    assert_eq!((j1["status"].as_str(), j1["rejected"].as_i64()), (Some("completed"), Some(2)), "{j1}");
    let (traces, lookups) = (s.count("tracerfy"), s.count("trestle"));
    assert_eq!(lookups, 1, "Fay's number was looked up once");
    let f = r.get(&format!("/contacts/{fay}")).await;
    assert_eq!((f["phones"][0]["lineGrade"].as_str(), f["phones"][0]["activityScore"].as_i64()), (Some("F"), Some(0)));

    // The same people again: Eve's empty trace comes from the cache, Fay has a number (graded
    // lately): no provider is called, and the job says what the cache saved.
    let second = r.start(json!({"contactIds": [eve, fay]})).await;
    r.drain().await;
    let j2 = r.get(&format!("/enrichment-jobs/{second}")).await;
    assert_eq!(j2["status"], "completed", "{j2}");
    assert_eq!((s.count("tracerfy"), s.count("trestle")), (traces, lookups), "no provider call on the re-run");
    assert_eq!(provider(&j2, "tracerfy")["cacheHits"].as_i64(), Some(1), "{j2}");
    assert_eq!(provider(&j2, "tracerfy")["calls"].as_i64().unwrap_or(0), 0, "{j2}");
    // The ledger by day shows both jobs' spend.
    let costs = r.get("/enrichment-costs").await;
    let tf: Vec<&Value> = costs["days"].as_array().unwrap().iter().filter(|d| d["provider"] == "tracerfy").collect();
    assert_eq!((tf[0]["calls"].as_i64(), tf[0]["cacheHits"].as_i64()), (Some(1), Some(1)), "{costs}");
}

#[tokio::test]
async fn a_cap_reached_mid_job_waits_for_tomorrow_and_loses_no_one() {
    let r = rig().await;
    let s = &r.fake.state;
    r.setting("daily_cap_trestle", "1").await;
    let mut ids = vec![];
    for (i, grade) in ["A", "B"].iter().enumerate() {
        let e164 = format!("+1813555260{i}");
        s.number(&e164, "Mobile", grade, 90, "Verizon Wireless");
        ids.push(
            r.contact(json!({"firstName": format!("P{i}"), "lastName": "Cap", "phones": [{"number": e164}]})).await,
        );
    }
    let job = r.start(json!({"contactIds": ids})).await;
    r.drain().await;
    let j = r.get(&format!("/enrichment-jobs/{job}")).await;
    assert_eq!((j["status"].as_str(), j["done"].as_i64()), (Some("waiting"), Some(1)), "{j}");
    assert!(j["waitReason"].as_str().unwrap().contains("daily trestle cap of 1"), "{j}");
    let until: chrono::DateTime<chrono::Utc> = serde_json::from_value(j["waitingUntil"].clone()).unwrap();
    assert_eq!(until, (r.clock_now().date_naive() + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).unwrap().and_utc());
    assert_eq!(s.count("trestle"), 1, "the cap held");

    // Later the same day the step comes back and waits again; the next day it goes on.
    r.clock.advance(chrono::Duration::minutes(16));
    r.drain().await;
    assert_eq!(r.get(&format!("/enrichment-jobs/{job}")).await["status"], "waiting");
    r.clock.set(until + chrono::Duration::minutes(1));
    r.drain().await;
    let j = r.get(&format!("/enrichment-jobs/{job}")).await;
    assert_eq!(
        (j["status"].as_str(), j["ready"].as_i64(), j["waitReason"].as_str()),
        (Some("completed"), Some(2), None),
        "{j}"
    );
    assert_eq!(s.count("trestle"), 2);
}

#[tokio::test]
async fn a_failing_provider_is_retried_without_double_charges_or_lost_contacts() {
    let r = rig().await;
    let s = &r.fake.state;
    s.find("Gil", "Hart", Found { mobiles: vec!["8135552800".into()], ..Found::default() });
    s.number("+18135552800", "Mobile", "B", 77, "Verizon Wireless");
    let gil = r
        .contact(json!({"firstName": "Gil", "lastName": "Hart",
                        "address": {"line1": "9 Palm Ave", "city": "Tampa", "state": "FL", "zip": "33602"}}))
        .await;
    // Tracerfy is rate limiting, then down; Trestle answers garbage once and then is fine.
    s.fail_next("tracerfy", Failure::RateLimited(1));
    s.fail_next("tracerfy", Failure::RateLimited(1));
    s.fail_next("tracerfy", Failure::Status(503));
    s.fail_next("tracerfy", Failure::Status(503));
    *s.pending_polls.lock().unwrap() = 1;
    let job = r.start(json!({"contactIds": [gil]})).await;
    // Each failure sends the step back after the provider's wait: a minute later it tries again.
    for _ in 0..8 {
        r.drain().await;
        r.clock.advance(chrono::Duration::minutes(2));
    }
    r.drain().await;
    let j = r.get(&format!("/enrichment-jobs/{job}")).await;
    assert_eq!((j["status"].as_str(), j["ready"].as_i64()), (Some("completed"), Some(1)), "{j}");
    let tf = provider(&j, "tracerfy");
    // Four failed submissions recorded (one retry at a time, never a growing crowd), one paid.
    assert_eq!(
        (tf["calls"].as_i64(), tf["credits"].as_i64(), tf["failures"].as_i64()),
        (Some(1), Some(1), Some(4)),
        "{j}"
    );
    assert_eq!(s.calls.lock().unwrap().iter().filter(|(_, p)| p == "/trace/").count(), 5);
    let g = r.get(&format!("/contacts/{gil}")).await;
    assert_eq!(g["phones"].as_array().unwrap().len(), 1, "the number was added once: {g}");

    // A repeated step (SQS delivers at least once) changes nothing.
    let step = json!({"step": "grade", "teamId": r.team, "jobId": job, "contactId": gil});
    r.queue
        .send(QUEUE, nextier_platform::OutgoingMessage { body: step.to_string(), ..Default::default() })
        .await
        .unwrap();
    let before = s.count("trestle");
    r.drain().await;
    assert_eq!(s.count("trestle"), before);
    assert_eq!(r.get(&format!("/enrichment-jobs/{job}")).await["ready"], 1);
}

#[tokio::test]
async fn jobs_are_the_teams_own_and_bad_requests_name_the_field() {
    let r = rig().await;
    let url = format!("/teams/{}/enrichment-jobs", r.team);
    let ana = r.contact(json!({"firstName": "Ana", "lastName": "Ruiz"})).await;
    for (body, field) in [
        (json!({}), "contactIds"),
        (json!({"contactIds": [ana], "importId": "imp_01JD8Z6Q3M4N5P6R7S8T9V0W1X"}), "contactIds"),
        (json!({"contactIds": ["nope"]}), "contactIds[0]"),
        (json!({"importId": "x"}), "importId"),
        (json!({"contactIds": []}), "contactIds"),
    ] {
        let resp = r.h.call(&ALICE, "POST", &url, Some(body.clone())).await;
        assert_eq!((resp.status, resp.field()), (StatusCode::BAD_REQUEST, Some(field)), "{body}: {}", resp.body);
    }
    assert_eq!(r.h.count("enrichment_jobs").await, 0, "nothing half-written");
    // Another team's contact is not ours to enrich, nor is our job theirs to read.
    let other = r.h.team("mallory", "Other").await;
    let theirs =
        r.h.call(&As::User("mallory"), "POST", &format!("/teams/{other}/contacts"), Some(json!({"firstName": "M"})))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let resp = r.h.call(&ALICE, "POST", &url, Some(json!({"contactIds": [ana, theirs]}))).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "{}", resp.body);
    let job = r.start(json!({"contactIds": [ana]})).await;
    let resp = r.h.call(&As::User("mallory"), "GET", &format!("/teams/{other}/enrichment-jobs/{job}"), None).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let resp =
        r.h.call(
            &As::User("mallory"),
            "POST",
            &format!("/teams/{}/enrichment-jobs", r.team),
            Some(json!({"contactIds": [ana]})),
        )
        .await;
    assert!(resp.status == StatusCode::FORBIDDEN || resp.status == StatusCode::NOT_FOUND, "{}", resp.status);
    // A key that may only read contacts cannot spend the team's credits.
    let key = r.h.key(&r.team, "alice", &["contacts:read", "contacts:write"]).await;
    let resp = r.h.call(&As::Key(key.clone()), "POST", &url, Some(json!({"contactIds": [ana]}))).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "{}", resp.body);
    let resp = r.h.call(&As::Key(key), "GET", &format!("{url}/{job}"), None).await;
    assert_eq!(resp.status, StatusCode::OK);
    // Cancelling stops it; cancelling again is a conflict.
    let c = r.h.call(&ALICE, "POST", &format!("{url}/{job}/cancel"), None).await;
    assert_eq!((c.status, c.body["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    let c = r.h.call(&ALICE, "POST", &format!("{url}/{job}/cancel"), None).await;
    assert_eq!(c.status, StatusCode::CONFLICT);
    r.drain().await;
    assert_eq!(r.fake.state.count("tracerfy") + r.fake.state.count("trestle"), 0, "a cancelled job calls nobody");
}

impl Rig {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use nextier_platform::ports::clock::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn a_business_gets_its_missing_fields_and_decision_makers_from_apollo() {
    let r = rig().await;
    let biz = nextier_domain::ids::BusinessId::new();
    // A B2B list gave the business a name, a website and an employee count (a person's value).
    r.h.t
        .superuser()
        .await
        .execute(
            "INSERT INTO businesses (id, team_id, name, normalized_name, website, employee_count)
             VALUES ($1::text, $2::text, 'Moss Build', 'moss build', 'mossbuild.example', 7)",
            &[&biz.as_str(), &r.team.as_str()],
        )
        .await
        .unwrap();
    r.fake.state.number("+13125552040", "Mobile", "A", 85, "Verizon Wireless");
    let url = format!("/teams/{}/businesses/{biz}/enrich", r.team);
    let first = r.h.call(&ALICE, "POST", &url, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let again = r.h.call(&ALICE, "POST", &url, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "one enrichment at a time: {}", again.body);
    r.drain().await;

    let job = r.get(&format!("/enrichment-jobs/{}", first.body["id"].as_str().unwrap())).await;
    assert_eq!(
        (job["status"].as_str(), job["total"].as_i64(), job["ready"].as_i64()),
        (Some("completed"), Some(2), Some(1)),
        "{job}"
    );
    assert_eq!(provider(&job, "apollo")["calls"].as_i64(), Some(2), "{job}");

    let b = r.get(&format!("/businesses/{biz}")).await;
    // Apollo filled what nobody had; the employee count a person gave stays.
    assert_eq!(
        (b["sector"].as_str(), b["employeeCount"].as_i64(), b["annualRevenue"].as_i64(), b["apolloStatus"].as_str()),
        (Some("construction"), Some(7), Some(3_500_000), Some("enriched")),
        "{b}"
    );
    assert_eq!(b["fieldSources"], json!({"sector": "apollo", "annualRevenue": "apollo"}));
    assert_eq!((b["people"].as_array().unwrap().len(), b["decisionMakers"].as_i64()), (2, Some(1)), "{b}");
    let owner = &b["people"][0];
    assert_eq!((owner["role"].as_str(), owner["isDecisionMaker"].as_bool()), (Some("owner"), Some(true)));
    let rita = owner["contactId"].as_str().unwrap();
    let c = r.get(&format!("/contacts/{rita}")).await;
    assert_eq!(
        (c["phones"][0]["source"].as_str(), c["enrichmentStatus"].as_str()),
        (Some("apollo"), Some("ready")),
        "{c}"
    );
    // The role value shows in the score: an owner who decides.
    let sc = r.get(&format!("/contacts/{rita}/score")).await;
    assert_eq!(sc["breakdown"]["components"][2]["score"], 100, "{sc}");

    // Contacts filter by business, role and sector; businesses by sector.
    let by_role = r.get(&format!("/contacts?businessId={biz}&role=owner")).await;
    assert_eq!(by_role["items"].as_array().unwrap().len(), 1);
    let by_sector = r.get("/contacts?sector=Construction").await;
    assert_eq!(by_sector["items"].as_array().unwrap().len(), 2);
    let list = r.get("/businesses?sector=construction").await;
    assert_eq!(list["items"][0]["id"], biz.to_string());
    let bad = r.h.call(&ALICE, "GET", &format!("/teams/{}/contacts?role=boss", r.team), None).await;
    assert_eq!((bad.status, bad.field()), (StatusCode::BAD_REQUEST, Some("role")));
}

#[tokio::test]
async fn overlapping_jobs_and_people_who_opted_out_are_never_paid_for() {
    let r = rig().await;
    let s = &r.fake.state;
    let addr = |line: &str| json!({"line1": line, "city": "Tampa", "state": "FL", "zip": "33602"});
    s.find("Hal", "Ives", Found { mobiles: vec!["8135552900".into()], ..Found::default() });
    s.number("+18135552900", "Mobile", "A", 95, "Verizon Wireless");
    let hal = r.contact(json!({"firstName": "Hal", "lastName": "Ives", "address": addr("5 Reef Ln")})).await;
    let ivy = r.contact(json!({"firstName": "Ivy", "lastName": "Jones", "address": addr("6 Reef Ln")})).await;
    // Ivy texted STOP: she is suppressed, and nobody pays to trace her.
    let stop =
        r.h.call(
            &ALICE,
            "POST",
            &format!("/teams/{}/contacts/{ivy}/lead-state", r.team),
            Some(json!({"to": "suppressed"})),
        )
        .await;
    assert!(stop.status.is_success(), "{}", stop.body);
    let first = r.start(json!({"contactIds": [hal, ivy]})).await;
    // A second job over the same people while the first runs takes nobody: 409, nothing started.
    let again =
        r.h.call(&ALICE, "POST", &format!("/teams/{}/enrichment-jobs", r.team), Some(json!({"contactIds": [hal]})))
            .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    r.drain().await;
    let j = r.get(&format!("/enrichment-jobs/{first}")).await;
    assert_eq!(
        (j["status"].as_str(), j["ready"].as_i64(), j["rejected"].as_i64()),
        (Some("completed"), Some(1), Some(1)),
        "{j}"
    );
    assert_eq!(s.calls.lock().unwrap().iter().filter(|(_, p)| p == "/trace/").count(), 1);
    assert_eq!(s.count("trestle"), 1, "only Hal's number");
    // Once the first job is done, a new one may take them again.
    let later =
        r.h.call(&ALICE, "POST", &format!("/teams/{}/enrichment-jobs", r.team), Some(json!({"contactIds": [hal]})))
            .await;
    assert_eq!(later.status, StatusCode::ACCEPTED, "{}", later.body);
}

#[tokio::test]
async fn a_team_may_trace_with_realestateapi_instead() {
    let r = rig().await;
    let s = &r.fake.state;
    r.setting("tracer", "realestateapi").await;
    s.find(
        "Jo",
        "King",
        Found { mobiles: vec!["8135553100".into()], landlines: vec!["8135553199".into()], ..Found::default() },
    );
    s.number("+18135553100", "Mobile", "B", 72, "AT&T Mobility");
    let addr = json!({"line1": "7 Gulf Blvd", "city": "Tampa", "state": "FL", "zip": "33602"});
    let jo = r.contact(json!({"firstName": "Jo", "lastName": "King", "address": addr})).await;
    let nobody = r
        .contact(json!({"firstName": "No", "lastName": "Body", "address": {"line1": "8 Gulf Blvd", "zip": "33602"}}))
        .await;
    let job = r.start(json!({"contactIds": [jo, nobody]})).await;
    r.drain().await;
    let j = r.get(&format!("/enrichment-jobs/{job}")).await;
    assert_eq!(
        (j["status"].as_str(), j["ready"].as_i64(), j["rejected"].as_i64()),
        (Some("completed"), Some(1), Some(1)),
        "{j}"
    );
    // One call per person, answered at once; Tracerfy is not asked.
    let re = provider(&j, "realestateapi");
    assert_eq!((re["calls"].as_i64(), re["credits"].as_i64()), (Some(1), Some(2)), "{j}");
    assert_eq!((s.count("realestateapi"), s.count("tracerfy")), (2, 0));
    let c = r.get(&format!("/contacts/{jo}")).await;
    let sources: Vec<(&str, &str)> = c["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["e164"].as_str().unwrap(), p["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("+18135553100", "realestateapi"), ("+18135553199", "realestateapi")], "{c}");
}

#[tokio::test]
async fn a_number_phone_intelligence_calls_a_landline_is_never_texted() {
    let r = rig().await;
    // A number inside its calling window now (on the API's clock, the daytime one), so only
    // the line type can stop the text.
    let number = format!("+1{}5553301", nextier_testkit::fixtures::daytime_area());
    let number = number.as_str();
    r.fake.state.number(number, "Landline", "A", 95, "Frontier");
    let kim = r.contact(json!({"firstName": "Kim", "lastName": "Lowe", "phones": [{"number": number}]})).await;
    let url = format!("/teams/{}/contacts/{kim}/messages", r.team);
    let h = &r.h;
    let send = |text: &'static str| h.call(&ALICE, "POST", &url, Some(json!({"body": text})));
    // Its type unknown, the number is textable: the cockpit's text goes.
    let first = send("Hi Kim").await;
    assert!(first.status.is_success(), "{}", first.body);
    assert_eq!(r.h.sandbox.sent().len(), 1);
    let job = r.start(json!({"contactIds": [kim]})).await;
    r.drain().await;
    let c = r.get(&format!("/contacts/{kim}")).await;
    assert_eq!(
        (c["phones"][0]["type"].as_str(), c["phones"][0]["lineType"].as_str(), c["phones"][0]["textable"].as_bool()),
        (Some("landline"), Some("landline"), Some(false)),
        "{c}"
    );
    assert_eq!(r.get(&format!("/enrichment-jobs/{job}")).await["rejected"], 1);
    // Now the gate refuses it, and nothing reaches the provider.
    let second = send("Hi again, Kim").await;
    assert!(second.status.is_client_error(), "{}: {}", second.status, second.body);
    assert!(second.body["detail"].as_str().unwrap_or_default().contains("textable"), "{}", second.body);
    assert_eq!(r.h.sandbox.sent().len(), 1);
}
