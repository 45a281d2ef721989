//! The local runtime as a developer uses it: a real server on loopback, real queues and
//! schedules in-process.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use nextier_local::registry::{Consumer, Registry, Schedule};
use nextier_local::{start, LocalConfig, Running};
use nextier_platform::local::QueueSpec;
use nextier_platform::ports::clock::OffsetClock;
use nextier_platform::{OutgoingMessage, Queue};
use nextier_runtime::sqs::{process_batch, Outcome};
use nextier_testkit::TestDb;
use serde_json::{json, Value};

async fn run(t: &TestDb, extra: Registry, every: Option<Duration>) -> Running {
    run_replying(t, extra, every, None).await
}

async fn run_replying(t: &TestDb, extra: Registry, every: Option<Duration>, reply: Option<&str>) -> Running {
    let home = nextier_testkit::state_dir("local").join(&t.name);
    start(LocalConfig {
        home,
        port: 0,
        admin_url: Some(t.superuser_url()),
        app_url: Some(t.app_url()),
        worker_url: Some(t.worker_url()),
        jwt_secret: "test-secret-test-secret-test-secret".into(),
        extra,
        schedule_every: every,
        sandbox_reply: reply.map(str::to_owned),
        clock: Arc::new(OffsetClock(nextier_testkit::fixtures::daytime_shift())),
    })
    .await
    .expect("local runtime starts")
}

/// Waits (at most 10 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_api_answers_on_loopback_with_the_dev_token_and_an_api_key() {
    let t = TestDb::new().await;
    let rt = run(&t, Registry::default(), None).await;
    let http = reqwest::Client::new();
    let health: Value = http.get(format!("{}/health", rt.api_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");

    let teams: Value = http
        .get(format!("{}/teams", rt.api_url))
        .bearer_auth(&rt.dev_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(teams["items"][0]["id"], rt.demo_team.as_str());
    assert_eq!(teams["items"][0]["role"], "OWNER");

    let bad = http.get(format!("{}/teams", rt.api_url)).bearer_auth("x.y.z").send().await.unwrap();
    assert_eq!(bad.status(), 401);
    let forged = rt.dev_token.replace('.', ".x");
    assert_eq!(http.get(format!("{}/teams", rt.api_url)).bearer_auth(forged).send().await.unwrap().status(), 401);

    let created: Value = http
        .post(format!("{}/teams/{}/api-keys", rt.api_url, rt.demo_team))
        .bearer_auth(&rt.dev_token)
        .json(&json!({"name": "script", "scopes": ["team:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secret"].as_str().unwrap();
    let team =
        http.get(format!("{}/teams/{}", rt.api_url, rt.demo_team)).header("x-api-key", secret).send().await.unwrap();
    assert_eq!(team.status(), 200);
    let doc: Value = http.get(format!("{}/openapi.json", rt.api_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    rt.stop().await;
}

#[tokio::test]
async fn queued_messages_reach_their_consumer_and_failures_end_in_the_dlq() {
    let t = TestDb::new().await;
    let seen: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let log = seen.clone();
    let consumer = Consumer {
        queue: "echo".into(),
        specs: QueueSpec::with_dlq("echo", Duration::from_secs(1), 2),
        batch_size: 10,
        concurrency: 1,
        handler: Arc::new(move |event: SqsEvent| {
            let log = log.clone();
            Box::pin(async move {
                // The same helper the deployed consumers use.
                process_batch("echo", event, |m| {
                    let log = log.clone();
                    async move {
                        log.lock().unwrap().push((m.body.clone(), m.receive_count));
                        if m.body == "poison" {
                            Outcome::Retry(anyhow::anyhow!("cannot handle"))
                        } else {
                            Outcome::Done
                        }
                    }
                })
                .await
            })
        }),
    };
    let rt = run(&t, Registry { consumers: vec![consumer], schedules: vec![] }, None).await;
    for body in ["hello", "poison"] {
        let msg = OutgoingMessage { body: body.into(), correlation_id: "c".into(), ..Default::default() };
        rt.queue.send("echo", msg).await.unwrap();
    }
    eventually("two deliveries of the poison message", || async {
        seen.lock().unwrap().iter().filter(|(b, _)| b == "poison").count() >= 2
    })
    .await;
    // After max receives the poison message is moved to the DLQ; the good one is gone.
    eventually("the poison message in the DLQ", || async {
        rt.queue.depth("echo-dlq").await.unwrap() == 1 && rt.queue.depth("echo").await.unwrap() == 0
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(b, _)| b == "hello").count(), 1, "a handled message is delivered once");
    assert!(seen.contains(&("poison".into(), 2)), "redelivered with its receive count: {seen:?}");
    rt.stop().await;
}

#[tokio::test]
async fn schedules_fire_and_the_sweeper_publishes_stranded_outbox_rows() {
    let t = TestDb::new().await;
    let ticks: Arc<Mutex<u32>> = Arc::default();
    let counter = ticks.clone();
    let schedule = Schedule {
        name: "count".into(),
        every: Duration::from_secs(3600),
        handler: Arc::new(move || {
            let c = counter.clone();
            Box::pin(async move {
                *c.lock().unwrap() += 1;
                Ok(json!({}))
            })
        }),
    };
    // A row that was committed but never published (the process died after commit).
    t.superuser()
        .await
        .execute(
            "INSERT INTO outbox (id, team_id, kind, destination, payload, correlation_id)
             VALUES ('obx_01JD8Z6Q3M4N5P6R7S8T9V0W1X', NULL, 'event', 'Stranded', '{\"x\":1}', 'c-1')",
            &[],
        )
        .await
        .unwrap();
    let rt = run(&t, Registry { consumers: vec![], schedules: vec![schedule] }, Some(Duration::from_millis(200))).await;
    eventually("two ticks", || async { *ticks.lock().unwrap() >= 2 }).await;
    eventually("the sweeper to publish the stranded row", || async {
        !rt.bus.recent("Stranded", 10).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(rt.bus.recent("Stranded", 10).await.unwrap()[0].detail["correlationId"], "c-1");
    rt.stop().await;
}

#[tokio::test]
async fn the_runtime_serves_signed_blob_urls() {
    let t = TestDb::new().await;
    let rt = run(&t, Registry::default(), None).await;
    let store = nextier_platform::local::FolderBlobStore::new(
        nextier_testkit::state_dir("local").join(&t.name).join("blobs"),
        &rt.api_url,
        b"test-secret-test-secret-test-secret",
    );
    use nextier_platform::BlobStore;
    let put = store.presign_put("imports/demo/leads.csv", Duration::from_secs(60), "text/csv").await.unwrap();
    let http = reqwest::Client::new();
    assert_eq!(http.put(&put).body("phone\n").send().await.unwrap().status(), 200);
    let get = store.presign_get("imports/demo/leads.csv", Duration::from_secs(60)).await.unwrap();
    assert_eq!(http.get(&get).send().await.unwrap().text().await.unwrap(), "phone\n");
    rt.stop().await;
}

#[tokio::test]
async fn an_uploaded_csv_is_imported_end_to_end() {
    let t = TestDb::new().await;
    let rt = run(&t, Registry::default(), None).await;
    let http = reqwest::Client::new();
    let base = format!("{}/teams/{}", rt.api_url, rt.demo_team);
    let bad: Value = http
        .post(format!("{base}/imports"))
        .bearer_auth(&rt.dev_token)
        .json(&json!({"fileName": "leads.xlsx", "kind": "people", "mapping": {"Tel": "telephone"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["fileName", "kind", "mapping.Tel", "mapping"]);

    let created: Value = http
        .post(format!("{base}/imports"))
        .bearer_auth(&rt.dev_token)
        .json(&json!({"fileName": "Florida leads.csv", "source": "fl-list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["import"]["status"], "awaiting_upload");
    let id = created["import"]["id"].as_str().unwrap().to_owned();
    let csv = "name,phone,email\nAna Ruiz,(516) 407-9249,ana@example.com\nBo,not a phone,\n";
    let put = http
        .put(created["upload"]["url"].as_str().unwrap())
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let status = Arc::new(Mutex::new(Value::Null));
    eventually("the import to complete", || {
        let (http, url, token, status) =
            (http.clone(), format!("{base}/imports/{id}"), rt.dev_token.clone(), status.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            let done = v["status"] == "completed";
            *status.lock().unwrap() = v;
            done
        }
    })
    .await;
    let s = status.lock().unwrap().clone();
    assert_eq!(
        (s["rowsRead"].clone(), s["rowsCreated"].clone(), s["rowsRejected"].clone()),
        (json!(2), json!(1), json!(1))
    );
    let report = http.get(s["reportUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(report.contains("3,phone,has letters or symbols"), "{report}");
    let contacts: Value = http
        .get(format!("{base}/contacts?q=ruiz"))
        .bearer_auth(&rt.dev_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contacts["items"][0]["phones"][0]["e164"], "+15164079249");
    assert_eq!(contacts["items"][0]["source"], "fl-list");
    rt.stop().await;
}

#[tokio::test]
async fn a_scheduled_campaign_starts_ticks_and_sends_on_the_local_runtime() {
    let t = TestDb::new().await;
    let rt = run(&t, Registry::default(), Some(Duration::from_millis(300))).await;
    let http = reqwest::Client::new();
    let base = format!("{}/teams/{}", rt.api_url, rt.demo_team);
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}")).bearer_auth(&rt.dev_token).json(&body).send()
    };
    // The demo team has one person: let them approve their own campaigns.
    let r =
        call(reqwest::Method::PUT, "/settings/campaigns/allow_self_approval", json!({"value": "true"})).await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // The consumer sends through the real gate, quiet hours included, on the runtime's clock
    // (the daytime clock): text a number where it is daytime on it.
    let number = format!("+1{}5559123", nextier_testkit::fixtures::daytime_area());
    let contact: Value = call(
        reqwest::Method::POST,
        "/contacts",
        json!({"firstName": "Ana", "phones": [{"number": number, "type": "mobile"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let starts = (nextier_testkit::fixtures::daytime_now() - chrono::Duration::seconds(5)).to_rfc3339();
    let c: Value = call(reqwest::Method::POST, "/campaigns", json!({"name": "Local", "startsAt": starts}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = c["id"].as_str().unwrap().to_owned();
    call(
        reqwest::Method::POST,
        &format!("/campaigns/{id}/steps"),
        json!({"channel": "SMS", "body": "Hi {{firstName}}"}),
    )
    .await
    .unwrap();
    call(reqwest::Method::POST, &format!("/campaigns/{id}/enrolments"), json!({"contactIds": [contact["id"]]}))
        .await
        .unwrap();
    for action in ["stage", "approve"] {
        let r = call(reqwest::Method::POST, &format!("/campaigns/{id}/{action}"), json!({})).await.unwrap();
        assert!(r.status().is_success(), "{action}: {}", r.text().await.unwrap());
    }
    // The starter starts it, the tick claims the step, the consumer sends it.
    eventually("the first step to be sent", || {
        let (http, url, token) = (http.clone(), format!("{base}/campaigns/{id}/stats"), rt.dev_token.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v[0]["sent"] == 1
        }
    })
    .await;
    let history: Value = http
        .get(format!("{base}/campaigns/{id}/history"))
        .bearer_auth(&rt.dev_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"][2]["actor"], "system:scheduler");
    assert_eq!(history["items"][2]["to"], "RUNNING");
    rt.stop().await;
}

#[tokio::test]
async fn a_signed_reply_reaches_the_inbox_and_an_opt_out_is_confirmed_on_the_local_runtime() {
    let t = TestDb::new().await;
    let rt = run(&t, Registry::default(), None).await;
    let http = reqwest::Client::new();
    let base = format!("{}/teams/{}", rt.api_url, rt.demo_team);
    let r = http
        .post(format!("{base}/sending-numbers"))
        .bearer_auth(&rt.dev_token)
        .json(&json!({"number": "(212) 736-3100"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deliver = |delivery: &'static str, text: &'static str, id: &'static str| {
        let body = json!({"event": "message.received", "from": "+13126181234", "to": "+12127363100",
                          "text": text, "message_id": id})
        .to_string();
        let ts = chrono::Utc::now().timestamp_millis();
        let sig =
            nextier_domain::webhook_signature::sign_signalhouse(rt.webhook_secret.as_bytes(), ts, body.as_bytes());
        http.post(format!("{}/webhooks/signalhouse", rt.api_url))
            .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
            .header("x-signalhouse-delivery-id", delivery)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = deliver("d-1", "Yes, interested. What's the offer?", "sh-1").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // An unsigned delivery is refused.
    let r = http.post(format!("{}/webhooks/signalhouse", rt.api_url)).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let items = |q: &'static str| {
        let (http, url, token) = (http.clone(), format!("{base}/inbox/items{q}"), rt.dev_token.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v["items"].as_array().cloned().unwrap_or_default()
        }
    };
    eventually("the reply to reach the inbox", || async { items("").await.len() == 1 }).await;
    let item = items("").await[0].clone();
    assert_eq!(
        (item["classification"].as_str(), item["bucket"].as_str()),
        (Some("POSITIVE"), Some("POSITIVE_RESPONSES"))
    );

    let r = deliver("d-2", "STOP", "sh-2").await.unwrap();
    assert_eq!(r.status(), 200);
    let contact = item["contactId"].as_str().unwrap().to_owned();
    eventually("the opt-out confirmation to be sent", || {
        let (http, url, token) = (http.clone(), format!("{base}/contacts/{contact}/messages"), rt.dev_token.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v["items"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["direction"] == "outbound" && m["status"] == "sent"))
        }
    })
    .await;
    let s: Value =
        http.get(format!("{base}/suppressions")).bearer_auth(&rt.dev_token).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["items"][0]["kind"], "OPTED_OUT");
    rt.stop().await;
}

#[tokio::test]
async fn the_sandbox_plays_the_carrier_with_signed_receipts_and_scripted_replies() {
    let t = TestDb::new().await;
    let rt = run_replying(&t, Registry::default(), None, Some("Yes please, call me")).await;
    let http = reqwest::Client::new();
    let base = format!("{}/teams/{}", rt.api_url, rt.demo_team);
    let post =
        |path: &str, body: Value| http.post(format!("{base}{path}")).bearer_auth(&rt.dev_token).json(&body).send();
    assert!(post("/sending-numbers", json!({"number": "(212) 736-3100"})).await.unwrap().status().is_success());
    // A daytime number (the gate checks quiet hours on the runtime's clock, the daytime one).
    let number = format!("+1{}5559123", nextier_testkit::fixtures::daytime_area());
    let contact: Value =
        post("/contacts", json!({"firstName": "Ana", "phones": [{"number": number, "type": "mobile"}]}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let cid = contact["id"].as_str().unwrap().to_owned();
    let sent =
        post(&format!("/contacts/{cid}/messages"), json!({"body": "Hi Ana, still own 12 Oak St?"})).await.unwrap();
    assert_eq!(sent.status(), 201, "{}", sent.text().await.unwrap());
    let sent: Value = sent.json().await.unwrap();
    let mid = sent["id"].as_str().unwrap().to_owned();
    eventually("the sandbox's receipt to mark the text delivered", || {
        let (http, url, token) = (http.clone(), format!("{base}/messages/{mid}"), rt.dev_token.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v["status"] == "delivered"
        }
    })
    .await;
    eventually("the scripted reply to reach the inbox", || {
        let (http, url, token) = (http.clone(), format!("{base}/inbox/items"), rt.dev_token.clone());
        async move {
            let v: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
            v["items"].as_array().is_some_and(|i| i.iter().any(|i| i["responseText"] == "Yes please, call me"))
        }
    })
    .await;
    rt.stop().await;
}
