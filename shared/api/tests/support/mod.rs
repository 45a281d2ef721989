//! A test harness: the admin app on a fresh database with the local adapters, and requests
//! shaped as API Gateway delivers them (JWT claims in the request context).

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use nextier_api::{AppConfig, AppState};
use nextier_platform::local::{PgEventBus, PgQueue};
use nextier_platform::outbox::OutboxPublisher;
use nextier_testkit::TestDb;
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct Harness {
    pub sandbox: Arc<nextier_outbound::SandboxTransport>,
    /// The provider's number inventory: lists only what a test places in a subgroup.
    pub numbers: Arc<nextier_platform::ports::numbers::SandboxNumbers>,
    pub t: TestDb,
    pub app: Router,
    pub bus: PgEventBus,
    pub state: AppState,
}

/// Messages from a queue as the SQS event a Lambda consumer receives.
pub fn sqs_event(queue: &str, batch: &[nextier_platform::ReceivedMessage]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<Value> = batch
        .iter()
        .map(|m| {
            json!({"messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
                   "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                   "messageAttributes": {},
                   "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}")})
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

pub async fn harness() -> Harness {
    let t = TestDb::new().await;
    let bus = PgEventBus::new(t.db.clone(), "default");
    let outbox = OutboxPublisher::new(t.db.clone(), Arc::new(PgQueue::new(t.db.clone())), Arc::new(bus.clone()));
    let blobs = Arc::new(nextier_platform::local::FolderBlobStore::new(
        nextier_testkit::state_dir("api-blobs").join(&t.name),
        "http://127.0.0.1:9",
        b"test-secret",
    ));
    let sandbox = Arc::new(nextier_outbound::SandboxTransport::new());
    // The system clock, or as far ahead as a sending window needs at the one hour no North
    // American zone has one (nextier_testkit::fixtures::daytime_shift).
    let clock: Arc<dyn nextier_platform::ports::clock::Clock> =
        Arc::new(nextier_platform::ports::clock::OffsetClock(nextier_testkit::fixtures::daytime_shift()));
    let gate = Arc::new(
        nextier_outbound::Gate::sandbox(sandbox.clone())
            .with_limiter(Arc::new(nextier_platform::local::PgRateLimiter::new(t.db.clone())))
            .with_clock(clock.clone()),
    );
    let numbers = Arc::new(nextier_platform::ports::numbers::SandboxNumbers::strict());
    let state = AppState {
        numbers: numbers.clone(),
        db: t.db.clone(),
        outbox,
        blobs,
        config: Arc::new(AppConfig::default()),
        gate,
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
        researcher: Arc::new(nextier_platform::ports::suggester::RecordsResearcher),
        property_data: Arc::new(nextier_platform::ports::property::SandboxPropertyData),
        limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(t.db.clone())),
        skip_tracer: Arc::new(nextier_platform::ports::skip_tracer::SandboxSkipTracer::default()),
        clock,
        crm: Arc::new(nextier_platform::ports::crm::SandboxCrm::default()),
    };
    Harness { app: nextier_api::full_app(state.clone(), None), t, bus, state, sandbox, numbers }
}

/// Who is calling.
#[derive(Clone)]
pub enum As {
    User(&'static str),
    Key(String),
    Nobody,
}

pub fn email_of(subject: &str) -> String {
    format!("{subject}@example.com")
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Resp {
    pub fn field(&self) -> Option<&str> {
        self.body["errors"][0]["field"].as_str()
    }
}

impl Harness {
    pub fn request(&self, who: &As, method: &str, uri: &str, body: Option<Value>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        if let As::Key(k) = who {
            b = b.header("x-api-key", k);
        }
        let mut req = b.body(body.map(|v| Body::from(v.to_string())).unwrap_or_default()).unwrap();
        if let As::User(sub) = who {
            let claims =
                [("sub".to_string(), sub.to_string()), ("email".to_string(), email_of(sub))].into_iter().collect();
            req.extensions_mut().insert(nextier_http::jwt::request_context(claims, method, uri));
        }
        req
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status, body, headers }
    }

    pub async fn call(&self, who: &As, method: &str, uri: &str, body: Option<Value>) -> Resp {
        self.send(self.request(who, method, uri, body)).await
    }

    /// Creates a team owned by `owner` and returns its id.
    pub async fn team(&self, owner: &'static str, name: &str) -> String {
        let r = self.call(&As::User(owner), "POST", "/teams", Some(json!({"name": name}))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// Invites `who` with `role` and has them accept; returns their user id.
    pub async fn join(&self, team: &str, owner: &'static str, who: &'static str, role: &str) -> String {
        let r = self
            .call(
                &As::User(owner),
                "POST",
                &format!("/teams/{team}/invitations"),
                Some(json!({"email": email_of(who), "role": role})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = r.body["token"].as_str().unwrap().to_owned();
        let r = self.call(&As::User(who), "POST", "/invitations/accept", Some(json!({"token": token}))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        self.user_id(team, owner, who).await
    }

    pub async fn user_id(&self, team: &str, asker: &'static str, who: &str) -> String {
        let r = self.call(&As::User(asker), "GET", &format!("/teams/{team}/members?limit=200"), None).await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email_of(who))
            .map(|m| m["userId"].as_str().unwrap().to_owned())
            .expect("member present")
    }

    pub async fn key(&self, team: &str, owner: &'static str, scopes: &[&str]) -> String {
        let r = self
            .call(
                &As::User(owner),
                "POST",
                &format!("/teams/{team}/api-keys"),
                Some(json!({"name": "ci", "scopes": scopes})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["secret"].as_str().unwrap().to_owned()
    }

    /// The campaign queues, declared on the test database.
    pub async fn campaign_queues(&self) -> PgQueue {
        use nextier_platform::local::QueueSpec;
        let q = PgQueue::new(self.t.db.clone());
        for name in [nextier_campaigns::SEQUENCE_QUEUE, nextier_campaigns::SYNC_QUEUE] {
            q.declare(&QueueSpec::with_dlq(name, std::time::Duration::from_secs(180), 5)).await.unwrap();
        }
        q
    }

    /// Runs one campaign tick (at the first moment, from now on the API's clock, outside quiet
    /// hours for New York numbers and Florida addresses, which span the Central and Eastern
    /// zones) and
    /// processes everything it queued through the sequence consumer and the sandbox gate;
    /// how many steps it claimed.
    pub async fn run_campaign_tick(&self, q: &PgQueue) -> u64 {
        use nextier_campaigns::sequence::{SequenceJob, Sequencer};
        use nextier_platform::Queue;
        let at = nextier_domain::quiet_hours::next_allowed(
            nextier_testkit::fixtures::daytime_now() + chrono::Duration::seconds(1),
            &nextier_domain::quiet_hours::locate("+12125552101", Some("FL")),
        );
        let s = nextier_campaigns::tick::tick(&self.t.worker, q, at, &Default::default()).await.unwrap();
        let seq = Sequencer {
            db: self.t.db.clone(),
            gate: Arc::new(nextier_campaigns::gate::sandbox()),
            clock: Arc::new(nextier_platform::ports::clock::ManualClock::at(at)),
            queue: None,
        };
        loop {
            let msgs = q.receive(nextier_campaigns::SEQUENCE_QUEUE, 10).await.unwrap();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
                seq.process(&job).await.unwrap();
                q.delete(nextier_campaigns::SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
            }
        }
        s.claimed
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.t.superuser().await.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0)
    }
}
