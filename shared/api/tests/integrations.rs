//! Integrations end to end (issue 19), through the code a deployed stack runs:
//!
//! - webhooks: an endpoint registered through the API; an opt-out made through the API commits
//!   `ContactOptedOut` through the outbox; the bus's rule (the template's WebhookEventsRule) puts
//!   it on `webhook-out`; the consumer signs and posts it to a receiver, which verifies it;
//!   replays, failures, hangs, disabling, rotation, SSRF and lower roles;
//! - exports: contacts, inbox and messages as CSV through the task queue and consumer into the
//!   blob store, read back through the API's link;
//! - Zoho: connect and callback against a fake Zoho speaking OAuth and CRM v3; the cron's push and
//!   pull tasks through the task queue and consumer; expiry, revocation, 429, conflicts, deletes.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use nextier_integrations::webhooks::Sender;
use nextier_integrations::{Worker, TASK_QUEUE, WEBHOOK_QUEUE};
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::Queue;
use nextier_testkit::fake_zoho::FakeZoho;
use serde_json::{json, Value};
use support::{harness, sqs_event, As, Harness};

const ALICE: As = As::User("alice");
const MO: As = As::User("mo");
const EVE: As = As::User("eve");

/// What the receiver saw: headers that matter, and the body.
#[derive(Clone, Debug)]
struct Seen {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

#[derive(Default)]
struct Receiver {
    seen: Mutex<Vec<Seen>>,
    /// The status to answer (200 unless set) and how long to wait first.
    status: Mutex<u16>,
    delay_ms: Mutex<u64>,
}

async fn receiver() -> (String, Arc<Receiver>) {
    use axum::routing::post;
    let r = Arc::new(Receiver { status: Mutex::new(200), ..Default::default() });
    let state = r.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let r = state.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                r.seen.lock().unwrap().push(Seen {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp").parse().unwrap_or(0),
                    signature: h("webhook-signature"),
                    body,
                });
                let wait = *r.delay_ms.lock().unwrap();
                tokio::time::sleep(Duration::from_millis(wait)).await;
                StatusCode::from_u16(*r.status.lock().unwrap()).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (origin, r)
}

struct Rig {
    h: Harness,
    queue: PgQueue,
    worker: Worker,
    sender: Sender,
    zoho: FakeZoho,
    hook_origin: String,
    hook: Arc<Receiver>,
    team: String,
}

async fn rig() -> Rig {
    let mut h = harness().await;
    let queue = PgQueue::new(h.t.db.clone());
    for name in [TASK_QUEUE, WEBHOOK_QUEUE, nextier_inbound::notify::QUEUE] {
        queue.declare(&QueueSpec::with_dlq(name, Duration::from_secs(120), 5)).await.unwrap();
    }
    let bus = PgEventBus::new(h.t.db.clone(), "default").with_rule(
        queue.clone(),
        WEBHOOK_QUEUE,
        nextier_domain::webhook_out::BUS_EVENTS,
    );
    let (hook_origin, hook) = receiver().await;
    let zoho = FakeZoho::start().await;
    let crm_hosts = vec![zoho.accounts(), zoho.api()];
    let crm: Arc<dyn nextier_platform::ports::crm::Crm> =
        Arc::new(nextier_providers::zoho::Zoho::new(nextier_providers::zoho::Config {
            client_id: nextier_testkit::fake_zoho::CLIENT_ID.into(),
            client_secret: nextier_testkit::fake_zoho::CLIENT_SECRET.into(),
            scopes: "ZohoCRM.modules.ALL".into(),
            timeout: Duration::from_secs(5),
            retry: nextier_providers::retry::Retry {
                attempts: 2,
                backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
            },
        }));
    h.state.outbox = OutboxPublisher::new(h.t.db.clone(), Arc::new(queue.clone()), Arc::new(bus.clone()));
    h.state.crm = crm.clone();
    h.state.config = Arc::new(nextier_api::AppConfig {
        crm_hosts: crm_hosts.clone(),
        zoho_accounts: zoho.accounts(),
        webhook_allow_origins: vec![hook_origin.clone()],
        ..Default::default()
    });
    h.app = nextier_api::full_app(h.state.clone(), None);
    let publisher = OutboxPublisher::new(h.t.worker.clone(), Arc::new(queue.clone()), Arc::new(bus));
    let worker = Worker {
        db: h.t.worker.clone(),
        queue: Arc::new(queue.clone()),
        blobs: h.state.blobs.clone(),
        limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(h.t.worker.clone())),
        crm,
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        crm_hosts,
        export_part_bytes: nextier_platform::ports::MIN_PART,
        publisher: Some(publisher.clone()),
    };
    let sender = Sender {
        db: h.t.worker.clone(),
        queue: Arc::new(queue.clone()),
        clock: Arc::new(nextier_platform::ports::clock::SystemClock),
        publisher: Some(publisher),
        allowed_origins: vec![hook_origin.clone()],
        timeout: Duration::from_secs(2),
    };
    let team = h.team("alice", "Acme").await;
    h.join(&team, "alice", "mo", "MEMBER").await;
    h.join(&team, "alice", "bob", "ADMIN").await;
    // The CRM call rate is the bench's to measure; here it only must not slow the tests.
    h.t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'crm', 'calls_per_minute', '6000')",
            &[&team],
        )
        .await
        .unwrap();
    Rig { h, queue, worker, sender, zoho, hook_origin, hook, team }
}

impl Rig {
    fn url(&self, rest: &str) -> String {
        format!("/teams/{}{rest}", self.team)
    }

    async fn ok(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        let r = self.h.call(&ALICE, method, &self.url(rest), body).await;
        assert!(r.status.is_success(), "{method} {rest}: {} {}", r.status, r.body);
        r.body
    }

    async fn contact(&self, body: Value) -> String {
        self.ok("POST", "/contacts", Some(body)).await["id"].as_str().unwrap().to_owned()
    }

    /// Runs a queue's consumer until the queue is empty (delayed messages excepted).
    async fn drain(&self, queue: &str) -> usize {
        let mut handled = 0;
        for _ in 0..100 {
            let batch = self.queue.receive(queue, 10).await.unwrap();
            if batch.is_empty() {
                return handled;
            }
            handled += batch.len();
            let resp = if queue == WEBHOOK_QUEUE {
                nextier_integrations::webhooks::handle(&self.sender, sqs_event(queue, &batch)).await
            } else {
                nextier_integrations::handle_tasks(&self.worker, sqs_event(queue, &batch)).await
            };
            assert!(resp.batch_item_failures.is_empty(), "{:?}", resp.batch_item_failures);
            for m in &batch {
                self.queue.delete(queue, &m.receipt_handle).await.unwrap();
            }
        }
        handled
    }

    async fn endpoint(&self, types: &[&str]) -> (String, String) {
        let r = self
            .ok(
                "POST",
                "/webhook-endpoints",
                Some(json!({"url": format!("{}/hook", self.hook_origin), "eventTypes": types})),
            )
            .await;
        (r["id"].as_str().unwrap().to_owned(), r["secret"].as_str().unwrap().to_owned())
    }

    async fn sql(&self, q: &str) {
        self.h.t.superuser().await.batch_execute(q).await.unwrap();
    }
}

fn verify(secret: &str, s: &Seen) -> bool {
    nextier_domain::webhook_out::verify(
        secret,
        &s.id,
        s.timestamp,
        s.body.as_bytes(),
        &s.signature,
        chrono::Utc::now().timestamp(),
        300,
    )
}

#[tokio::test]
async fn an_opt_out_reaches_the_teams_endpoint_signed_once() {
    let r = rig().await;
    let (endpoint, secret) = r.endpoint(&["contact.opted_out"]).await;
    assert!(secret.starts_with("whsec_"));
    let listed = r.ok("GET", &format!("/webhook-endpoints/{endpoint}"), None).await;
    assert!(listed.get("secret").is_none(), "the secret is shown once: {listed}");

    let c = r.contact(json!({"firstName": "Ana", "phones": [{"number": "+13125552101"}]})).await;
    r.ok("POST", "/suppressions", Some(json!({"address": "+13125552101", "kind": "OPTED_OUT", "reason": "asked"})))
        .await;
    assert!(r.drain(WEBHOOK_QUEUE).await >= 1);

    let seen = r.hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(verify(&secret, &seen[0]), "the signature verifies with the endpoint's secret");
    assert!(!verify(&nextier_domain::webhook_out::new_secret(), &seen[0]));
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["type"], "contact.opted_out");
    assert_eq!(body["data"]["address"], "+13125552101");
    assert_eq!(body["data"]["contactIds"], json!([c]));
    assert_eq!(body["data"]["teamId"], r.team);

    // The delivery log has it, with its attempt.
    let log = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries"), None).await;
    let d = &log["items"][0];
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["id"], seen[0].id.as_str(), "webhook-id is the delivery's id");
    let one =
        r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries/{}", d["id"].as_str().unwrap()), None).await;
    assert_eq!(one["history"][0]["statusCode"], 200);

    // The same bus event again (EventBridge delivers at least once): nothing is sent twice.
    let again = json!({"detail-type": "ContactOptedOut", "detail": {"outboxId": body["eventId"], "teamId": r.team,
        "data": body["data"]}});
    let env: nextier_integrations::webhooks::Envelope = serde_json::from_value(again).unwrap();
    let out = r.sender.fan_out(&env).await.unwrap();
    assert_eq!(out.deliveries, 0);
    assert_eq!(r.hook.seen.lock().unwrap().len(), 1);

    // A stronger entry on an opted-out number is no new opt-out; a repeat is none either.
    r.ok("POST", "/suppressions", Some(json!({"address": "+13125552101", "kind": "OPTED_OUT"}))).await;
    r.drain(WEBHOOK_QUEUE).await;
    assert_eq!(r.hook.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_then_disabled_and_the_team_told() {
    let r = rig().await;
    let (endpoint, _) = r.endpoint(&["contact.opted_out"]).await;
    *r.hook.status.lock().unwrap() = 500;
    r.contact(json!({"firstName": "Bo", "phones": [{"number": "+13125552102"}]})).await;
    r.ok("POST", "/suppressions", Some(json!({"address": "+13125552102", "kind": "OPTED_OUT"}))).await;
    r.drain(WEBHOOK_QUEUE).await;
    let log = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries"), None).await;
    let d = log["items"][0].clone();
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["lastStatus"], 500);
    assert!(d["nextAttemptAt"].as_str().is_some());

    // A hanging endpoint: the attempt ends at the timeout, recorded as such.
    *r.hook.status.lock().unwrap() = 200;
    *r.hook.delay_ms.lock().unwrap() = 4000;
    r.sql(&format!("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = '{id}'")).await;
    let team = nextier_domain::ids::TeamId::parse("t", &r.team).unwrap();
    let sent = r.sender.deliver(&team, &id).await.unwrap();
    assert!(matches!(sent, nextier_integrations::webhooks::Sent::Retrying(_)), "{sent:?}");
    let one = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries/{id}"), None).await;
    assert_eq!(one["history"][1]["error"], "timed out", "{one}");
    *r.hook.delay_ms.lock().unwrap() = 0;
    *r.hook.status.lock().unwrap() = 503;

    // Not due yet: nothing is sent (a duplicate message or an early re-drive does nothing).
    assert_eq!(r.sender.deliver(&team, &id).await.unwrap(), nextier_integrations::webhooks::Sent::Skipped);

    // Failure after failure (each made due by hand): many in a burst do not turn it off...
    for _ in 0..nextier_domain::webhook_out::DISABLE_AFTER {
        r.sql(&format!("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() WHERE id = '{id}'"))
            .await;
        r.sender.deliver(&team, &id).await.unwrap();
    }
    let e = r.ok("GET", &format!("/webhook-endpoints/{endpoint}"), None).await;
    assert_eq!(e["active"], true, "a short outage is no reason to turn it off: {e}");
    assert!(e["consecutiveFailures"].as_i64().unwrap() >= nextier_domain::webhook_out::DISABLE_AFTER as i64);
    // ...failing for over a day as well does.
    r.sql(&format!(
        "UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = '{endpoint}';
         UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() WHERE id = '{id}'"
    ))
    .await;
    let last = r.sender.deliver(&team, &id).await.unwrap();
    let e = r.ok("GET", &format!("/webhook-endpoints/{endpoint}"), None).await;
    assert_eq!(e["active"], false, "{e} after {last:?}");
    assert!(e["disabledReason"].as_str().unwrap().contains("failed attempts in a row"), "{e}");
    // The team is told: its feed (an admin's event) and a mail to its owners and admins.
    let mail: i64 =
        r.h.t
            .superuser()
            .await
            .query_one(
                "SELECT count(*) FROM outbox WHERE destination = 'mail' AND payload->>'subject' LIKE '%disabled%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(mail, 1);
    let events: i64 =
        r.h.t
            .superuser()
            .await
            .query_one("SELECT count(*) FROM team_events WHERE type = 'WebhookEndpointDisabled'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(events, 1);

    // A retry while it is off is refused; on again, the retry is sent and delivered.
    let rr =
        r.h.call(&ALICE, "POST", &r.url(&format!("/webhook-endpoints/{endpoint}/deliveries/{id}/retry")), None).await;
    assert_eq!(rr.status, StatusCode::CONFLICT, "{}", rr.body);
    r.ok("PATCH", &format!("/webhook-endpoints/{endpoint}"), Some(json!({"active": true}))).await;
    *r.hook.status.lock().unwrap() = 204;
    let st = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries/{id}"), None).await["status"].clone();
    if st == "failed" || st == "cancelled" {
        r.ok("POST", &format!("/webhook-endpoints/{endpoint}/deliveries/{id}/retry"), None).await;
    } else {
        r.sql(&format!("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() WHERE id = '{id}'"))
            .await;
        r.sender.redrive(100).await.unwrap();
    }
    r.drain(WEBHOOK_QUEUE).await;
    let done = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries/{id}"), None).await;
    assert_eq!(done["status"], "delivered", "{done}");
    let e = r.ok("GET", &format!("/webhook-endpoints/{endpoint}"), None).await;
    assert_eq!(e["consecutiveFailures"], 0);
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let r = rig().await;
    let (endpoint, old) = r.endpoint(&["contact.opted_out"]).await;
    let rotated = r.ok("POST", &format!("/webhook-endpoints/{endpoint}/rotate-secret"), None).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previousSecretExpiresAt"].as_str().is_some());
    r.contact(json!({"firstName": "Cy", "phones": [{"number": "+13125552103"}]})).await;
    r.ok("POST", "/suppressions", Some(json!({"address": "+13125552103", "kind": "LEGAL_DNC"}))).await;
    r.drain(WEBHOOK_QUEUE).await;
    let seen = r.hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].signature.split(' ').count(), 2, "{}", seen[0].signature);
    assert!(verify(&new, &seen[0]) && verify(&old, &seen[0]));
}

#[tokio::test]
async fn endpoints_must_be_public_https_and_are_an_admins() {
    let r = rig().await;
    for (url, why) in [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://10.1.2.3/x", "private"),
        ("https://[::1]/x", "private"),
        ("https://localhost/x", "public host"),
        ("https://db.internal/x", "public host"),
        ("https://u:p@hooks.example.com/x", "credentials"),
    ] {
        let resp =
            r.h.call(
                &ALICE,
                "POST",
                &r.url("/webhook-endpoints"),
                Some(json!({"url": url, "eventTypes": ["reply.received"]})),
            )
            .await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{url}: {}", resp.body);
        assert_eq!(resp.field(), Some("url"), "{url}");
        assert!(resp.body["errors"][0]["message"].as_str().unwrap().contains(why), "{url}: {}", resp.body);
    }
    let resp =
        r.h.call(
            &ALICE,
            "POST",
            &r.url("/webhook-endpoints"),
            Some(json!({"url": "https://hooks.example.com/x", "eventTypes": ["everything"]})),
        )
        .await;
    assert_eq!(resp.field(), Some("eventTypes[0]"), "{}", resp.body);
    assert_eq!(r.h.count("webhook_endpoints").await, 0, "nothing half-written");

    // An endpoint whose row points inside (written before a rule tightened, say) is never
    // connected to: the attempt fails with the reason.
    let (endpoint, _) = r.endpoint(&["contact.opted_out"]).await;
    r.sql(&format!("UPDATE webhook_endpoints SET url = 'https://169.254.169.254/latest' WHERE id = '{endpoint}'"))
        .await;
    r.contact(json!({"firstName": "Di", "phones": [{"number": "+13125552104"}]})).await;
    r.ok("POST", "/suppressions", Some(json!({"address": "+13125552104", "kind": "OPTED_OUT"}))).await;
    r.drain(WEBHOOK_QUEUE).await;
    let log = r.ok("GET", &format!("/webhook-endpoints/{endpoint}/deliveries"), None).await;
    assert!(log["items"][0]["lastError"].as_str().unwrap().contains("private"), "{log}");
    assert!(r.hook.seen.lock().unwrap().is_empty());

    // A member, a narrow key and another team's owner get nothing.
    let resp = r.h.call(&MO, "GET", &r.url("/webhook-endpoints"), None).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    let key = r.h.key(&r.team, "alice", &["contacts:read", "settings:manage"]).await;
    let resp = r.h.call(&As::Key(key), "GET", &r.url("/webhook-endpoints"), None).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    let key = r.h.key(&r.team, "alice", &["integrations:manage"]).await;
    let resp = r.h.call(&As::Key(key.clone()), "GET", &r.url("/webhook-endpoints"), None).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
    let resp = r.h.call(&As::Key(key), "POST", &r.url("/exports"), Some(json!({"kind": "contacts"}))).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "exporting is its own scope");
    let other = r.h.team("eve", "Other").await;
    let resp = r.h.call(&EVE, "GET", &format!("/teams/{other}/webhook-endpoints/{endpoint}"), None).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let resp = r.h.call(&EVE, "GET", &r.url(&format!("/webhook-endpoints/{endpoint}")), None).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "a stranger learns nothing of the team");
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with a BOM");
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    let mut rows = vec![];
    let (mut row, mut cell, mut quoted, mut chars) = (vec![], String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn contacts_export_to_a_formula_safe_csv_through_the_queue() {
    let r = rig().await;
    let tagged = |n: usize, first: &str| {
        json!({"firstName": first, "lastName": format!("Row{n}"), "tags": ["florida"],
               "phones": [{"number": format!("+1312555{:04}", 2000 + n)}], "emails": [format!("p{n}@example.com")]})
    };
    r.contact(tagged(1, "=HYPERLINK(\"http://evil\")")).await;
    r.contact(tagged(2, "José 😀, \"the\" boss")).await;
    for n in 3..=7 {
        r.contact(tagged(n, "Plain")).await;
    }
    r.contact(json!({"firstName": "Untagged", "phones": [{"number": "+13125559999"}]})).await;

    let e = r.ok("POST", "/exports", Some(json!({"kind": "contacts", "filter": {"tag": "florida"}}))).await;
    assert_eq!(e["status"], "queued");
    let id = e["id"].as_str().unwrap().to_owned();
    assert_eq!(r.drain(TASK_QUEUE).await, 1);
    let done = r.ok("GET", &format!("/exports/{id}"), None).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["rowsWritten"], 7);
    assert_eq!(done["progressPercent"], 100);
    let url = done["downloadUrl"].as_str().unwrap();
    assert!(url.contains("expires=") && url.contains("signature="), "a time-limited link: {url}");

    let key = nextier_integrations::exports::key(&nextier_domain::ids::TeamId::parse("t", &r.team).unwrap(), &id);
    let bytes = r.h.state.blobs.get(&key).await.unwrap().unwrap();
    assert_eq!(done["bytes"], bytes.len());
    let rows = csv_rows(&bytes);
    assert_eq!(rows[0][..3], ["id", "first_name", "last_name"]);
    assert_eq!(rows.len(), 8, "a header and the seven tagged contacts");
    let first = rows.iter().find(|r| r[2] == "Row1").unwrap();
    assert_eq!(first[1], "'=HYPERLINK(\"http://evil\")", "a formula is shown as text");
    let second = rows.iter().find(|r| r[2] == "Row2").unwrap();
    assert_eq!(second[1], "José 😀, \"the\" boss", "real text kept whole");
    assert_eq!(second[5], "'+13125552002", "a phone that starts with + is text too");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()));

    // An export whose runner keeps dying is not tried for ever.
    let stuck = r.ok("POST", "/exports", Some(json!({"kind": "inbox"}))).await;
    let stuck = stuck["id"].as_str().unwrap().to_owned();
    r.sql(&format!(
        "UPDATE exports SET status = 'running', attempts = 3, lease_until = now() - interval '1 minute'
                    WHERE id = '{stuck}'"
    ))
    .await;
    r.drain(TASK_QUEUE).await;
    let s = r.ok("GET", &format!("/exports/{stuck}"), None).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert!(s["error"].as_str().unwrap().contains("without finishing"), "{s}");

    // Redelivered, the message finds the export done and writes nothing again.
    nextier_integrations::send_task(
        r.worker.queue.as_ref(),
        &nextier_integrations::TaskMessage { team_id: r.team.clone(), task_id: None, export_id: Some(id.clone()) },
        Duration::ZERO,
    )
    .await
    .unwrap();
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.ok("GET", &format!("/exports/{id}"), None).await["rowsWritten"], 7);

    // Inbox and message exports; bad input names its field and writes nothing.
    let m = r.ok("POST", "/exports", Some(json!({"kind": "messages", "filter": {"direction": "outbound"}}))).await;
    r.drain(TASK_QUEUE).await;
    let m = r.ok("GET", &format!("/exports/{}", m["id"].as_str().unwrap()), None).await;
    assert_eq!(m["status"], "done", "{m}");
    let i = r.ok("POST", "/exports", Some(json!({"kind": "inbox"}))).await;
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.ok("GET", &format!("/exports/{}", i["id"].as_str().unwrap()), None).await["status"], "done");
    let before = r.h.count("exports").await;
    for (body, field) in [
        (json!({"kind": "everything"}), "kind"),
        (json!({"kind": "contacts", "filter": {"minScore": "high"}}), "filter.minScore"),
        (json!({"kind": "contacts", "filter": {"nope": "1"}}), "filter.nope"),
        (json!({"kind": "messages", "filter": {"channel": "FAX"}}), "filter.channel"),
        (
            json!({"kind": "inbox", "filter": {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}}),
            "filter.until",
        ),
    ] {
        let resp = r.h.call(&ALICE, "POST", &r.url("/exports"), Some(body.clone())).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{body}: {}", resp.body);
        assert_eq!(resp.field(), Some(field), "{body}: {}", resp.body);
    }
    assert_eq!(r.h.count("exports").await, before);
    let resp = r.h.call(&MO, "POST", &r.url("/exports"), Some(json!({"kind": "contacts"}))).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "a member does not export the team's data");
}

/// Connects the rig's team to the fake Zoho through the API.
async fn connect(r: &Rig) -> Value {
    let started = r
        .ok(
            "POST",
            "/integrations/zoho/connect",
            Some(json!({"redirectUri": "https://app.nextier.example/zoho/back",
            "accountsServer": r.zoho.accounts()})),
        )
        .await;
    let auth = started["authorizeUrl"].as_str().unwrap();
    assert!(auth.starts_with(&format!("{}/oauth/v2/auth?", r.zoho.accounts())), "{auth}");
    assert!(auth.contains("access_type=offline"));
    let state = started["state"].as_str().unwrap().to_owned();
    let code = format!("code-{}", ulid::Ulid::new());
    r.zoho.state.issue_code(&code);
    // Another admin of the team cannot complete it (the state is the asker's).
    let resp =
        r.h.call(
            &As::User("bob"),
            "POST",
            &r.url("/integrations/zoho/callback"),
            Some(json!({"code": code, "state": state, "accountsServer": r.zoho.accounts()})),
        )
        .await;
    assert_eq!(resp.field(), Some("state"), "{}", resp.body);
    let connected = r
        .ok(
            "POST",
            "/integrations/zoho/callback",
            Some(json!({"code": code, "state": state, "accountsServer": r.zoho.accounts()})),
        )
        .await;
    // The state is single-use.
    let resp =
        r.h.call(
            &ALICE,
            "POST",
            &r.url("/integrations/zoho/callback"),
            Some(json!({"code": code, "state": state, "accountsServer": r.zoho.accounts()})),
        )
        .await;
    assert_eq!(resp.field(), Some("state"), "{}", resp.body);
    connected
}

#[tokio::test]
async fn zoho_connects_and_a_forged_accounts_server_gets_nothing() {
    let r = rig().await;
    let resp = r
        .h
        .call(&ALICE, "POST", &r.url("/integrations/zoho/connect"),
              Some(json!({"redirectUri": "https://app.nextier.example/back", "accountsServer": "https://accounts.evil.example"})))
        .await;
    assert_eq!(resp.field(), Some("accountsServer"), "{}", resp.body);
    let resp = r
        .h
        .call(&ALICE, "POST", &r.url("/integrations/zoho/connect"), Some(json!({"redirectUri": "javascript:alert(1)"})))
        .await;
    assert_eq!(resp.field(), Some("redirectUri"), "{}", resp.body);
    let before = r.zoho.state.count("token");
    let resp =
        r.h.call(
            &ALICE,
            "POST",
            &r.url("/integrations/zoho/callback"),
            Some(json!({"code": "c", "state": "s", "accountsServer": "https://attacker.example"})),
        )
        .await;
    assert_eq!(resp.field(), Some("accountsServer"));
    assert_eq!(r.zoho.state.count("token"), before, "our client secret went nowhere");

    let i = connect(&r).await;
    assert_eq!(i["status"], "connected");
    assert_eq!(i["apiDomain"], r.zoho.api());
    let refresh: String =
        r.h.t.superuser().await.query_one("SELECT refresh_token FROM integration_secrets", &[]).await.unwrap().get(0);
    assert!(!i.to_string().contains(&refresh), "the answer carries no token: {i}");
    // The API role cannot read the tokens, even with SQL of its own.
    let app = r.h.t.db.conn().await.unwrap();
    let denied = app.query("SELECT refresh_token FROM integration_secrets", &[]).await;
    assert!(denied.is_err(), "the API role reads no CRM token");
    // A member cannot see or change the connection.
    let resp = r.h.call(&MO, "GET", &r.url("/integrations/zoho"), None).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn contacts_push_to_zoho_and_changes_come_back_with_conflicts_recorded() {
    let r = rig().await;
    connect(&r).await;
    let a = r
        .contact(json!({"firstName": "Ana", "lastName": "Ruiz", "company": "Ruiz Roofing",
        "phones": [{"number": "+13125552201", "type": "mobile"}], "emails": ["ana@ruiz.example"]}))
        .await;
    let b = r.contact(json!({"firstName": "Bo", "lastName": "Stone", "phones": [{"number": "+13125552202"}]})).await;
    // No last name: Zoho refuses the record, and the task says which and why.
    let c = r.contact(json!({"firstName": "Cy", "phones": [{"number": "+13125552203"}]})).await;

    let sum = nextier_integrations::crm::sync(&r.worker).await.unwrap();
    assert_eq!((sum.push_tasks, sum.pull_tasks), (1, 1), "{sum:?}");
    r.drain(TASK_QUEUE).await;
    let leads = r.zoho.state.records("Leads");
    assert_eq!(leads.len(), 2, "{leads:?}");
    let ana = leads.iter().find(|l| l["Nextier_Id"] == a.as_str()).unwrap().clone();
    assert_eq!(ana["Last_Name"], "Ruiz");
    assert_eq!(ana["Mobile"], "+13125552201");
    assert_eq!(ana["Nextier_Lead_State"], "new");
    let tasks = r.ok("GET", "/integrations/zoho/tasks", None).await;
    let push = tasks["items"].as_array().unwrap().iter().find(|t| t["kind"] == "push").unwrap().clone();
    assert_eq!(push["status"], "done", "{push}");
    assert_eq!(push["result"]["pushed"], 2);
    assert_eq!(push["result"]["refused"][0]["contactId"], c.as_str());
    assert!(push["result"]["refused"][0]["message"].as_str().unwrap().contains("Last_Name"), "{push}");

    // Unchanged contacts are not sent again; a changed one is, by its id (an update).
    let calls = r.zoho.state.count("upsert");
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "push", "contactIds": [a, b]}))).await;
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.zoho.state.count("upsert"), calls, "nothing changed, nothing sent");
    r.ok("POST", &format!("/contacts/{b}/lead-state"), Some(json!({"to": "touched"}))).await;

    // The access token expired: the task refreshes and carries on.
    r.zoho.state.expire_access_tokens();
    let tokens = r.zoho.state.count("token");
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "push"}))).await;
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.zoho.state.count("token"), tokens + 1, "one refresh");
    let bo = r.zoho.state.records("Leads").into_iter().find(|l| l["Nextier_Id"] == b.as_str()).unwrap();
    assert_eq!(bo["Nextier_Lead_State"], "touched");
    assert_eq!(r.zoho.state.records("Leads").len(), 2, "an upsert by our id, no duplicate");

    // A person edits in the CRM: the pull takes it.
    let ana_id = ana["id"].as_str().unwrap().to_owned();
    r.zoho.state.set_now(chrono::Utc::now());
    r.zoho.state.edit("Leads", &ana_id, json!({"First_Name": "Anabel", "Email": "changed@ruiz.example"}));
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "pull"}))).await;
    r.drain(TASK_QUEUE).await;
    let got = r.ok("GET", &format!("/contacts/{a}"), None).await;
    assert_eq!(got["firstName"], "Anabel");
    assert_eq!(got["emails"][0]["email"], "ana@ruiz.example", "an address never comes in from the CRM");

    // A person edits here after an older CRM change: ours stays, the conflict is recorded.
    let bo_id = bo["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    r.zoho.state.set_now(chrono::Utc::now());
    r.zoho.state.edit("Leads", &bo_id, json!({"First_Name": "Robert"}));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    r.ok("PATCH", &format!("/contacts/{b}"), Some(json!({"firstName": "Bobby"}))).await;
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "pull"}))).await;
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.ok("GET", &format!("/contacts/{b}"), None).await["firstName"], "Bobby");
    let conflicts = r.ok("GET", "/integrations/zoho/conflicts", None).await;
    let f = conflicts["items"].as_array().unwrap().iter().find(|c| c["kind"] == "field").unwrap().clone();
    assert_eq!(
        (f["field"].as_str(), f["ours"].as_str(), f["theirs"].as_str()),
        (Some("firstName"), Some("Bobby"), Some("Robert"))
    );
    assert_eq!(f["resolution"], "kept_ours");

    // A copy of Ana's record made in the CRM (custom fields copied, our id with them) takes
    // nothing over: Ana keeps her record, the copy is recorded as a conflict.
    r.zoho.state.set_now(chrono::Utc::now());
    let copy = r.zoho.state.insert("Leads", json!({"Last_Name": "Ruiz", "First_Name": "Imposter", "Nextier_Id": a}));
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "pull"}))).await;
    r.drain(TASK_QUEUE).await;
    assert_eq!(r.ok("GET", &format!("/contacts/{a}"), None).await["firstName"], "Anabel");
    let conflicts = r.ok("GET", "/integrations/zoho/conflicts?limit=1", None).await;
    assert_eq!(conflicts["items"][0]["kind"], "duplicate_record", "{conflicts}");
    assert_eq!(conflicts["items"][0]["externalId"], copy.as_str());
    let cursor = conflicts["nextCursor"].as_str().expect("a second page").to_owned();
    let more = r.ok("GET", &format!("/integrations/zoho/conflicts?limit=1&cursor={cursor}"), None).await;
    assert_eq!(more["items"][0]["kind"], "field", "{more}");
    // One unnamed pull at a time.
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "pull"}))).await;
    let twice = r.h.call(&ALICE, "POST", &r.url("/integrations/zoho/tasks"), Some(json!({"kind": "pull"}))).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    r.drain(TASK_QUEUE).await;

    // Deleted in the CRM: recorded, our contact stays, and it is not pushed back to life.
    r.zoho.state.delete("Leads", &bo_id);
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "pull"}))).await;
    r.drain(TASK_QUEUE).await;
    let conflicts = r.ok("GET", "/integrations/zoho/conflicts", None).await;
    assert!(conflicts["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "remote_deleted" && c["contactId"] == b.as_str()));
    r.ok("PATCH", &format!("/contacts/{b}"), Some(json!({"title": "Owner"}))).await;
    r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "push"}))).await;
    r.drain(TASK_QUEUE).await;
    assert!(r.zoho.state.records("Leads").iter().all(|l| l["Nextier_Id"] != b.as_str()));
}

#[tokio::test]
async fn a_revoked_grant_asks_for_reconnection_and_a_429_waits() {
    let r = rig().await;
    connect(&r).await;
    r.contact(json!({"firstName": "Di", "lastName": "Lowe", "phones": [{"number": "+13125552301"}]})).await;

    // Rate limited: the task goes back with the provider's wait, then completes.
    r.zoho.state.fail_next(1, 429, Some(1));
    let t = r.ok("POST", "/integrations/zoho/tasks", Some(json!({"kind": "push"}))).await;
    let id = t["id"].as_str().unwrap().to_owned();
    r.drain(TASK_QUEUE).await;
    let waiting = r.ok("GET", &format!("/integrations/zoho/tasks/{id}"), None).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert!(waiting["error"].as_str().unwrap().contains("rate limited"), "{waiting}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    r.drain(TASK_QUEUE).await;
    let done = r.ok("GET", &format!("/integrations/zoho/tasks/{id}"), None).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(r.zoho.state.records("Leads").len(), 1);

    // The grant revoked in Zoho: the next refresh marks the connection, tells the team once.
    let (_, refresh) = {
        let app = r.h.t.superuser().await;
        let row = app.query_one("SELECT access_token, refresh_token FROM integration_secrets", &[]).await.unwrap();
        (row.get::<_, String>(0), row.get::<_, String>(1))
    };
    r.zoho.state.revoke(&refresh);
    r.sql("UPDATE integrations SET access_expires_at = now()").await;
    let sum = nextier_integrations::crm::sync(&r.worker).await.unwrap();
    assert_eq!(sum.revoked, 1, "{sum:?}");
    let i = r.ok("GET", "/integrations/zoho", None).await;
    assert_eq!(i["status"], "needs_reconnect", "{i}");
    let resp = r.h.call(&ALICE, "POST", &r.url("/integrations/zoho/tasks"), Some(json!({"kind": "pull"}))).await;
    assert_eq!(resp.status, StatusCode::CONFLICT);
    nextier_integrations::crm::sync(&r.worker).await.unwrap();
    let told: i64 =
        r.h.t
            .superuser()
            .await
            .query_one("SELECT count(*) FROM team_events WHERE type = 'IntegrationNeedsReconnect'", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(told, 1, "told once");
    // Reconnecting brings it back.
    let again = connect(&r).await;
    assert_eq!(again["status"], "connected");
}
