use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use nextier_api::{AppConfig, AppState};
use nextier_http::jwt::mint_hs256;
use nextier_platform::local::{blob_router, s3_event, FolderBlobStore, PgEventBus, PgQueue, UploadHook};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_platform::{OutgoingMessage, Queue, ReceivedMessage};
use nextier_store::Db;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::database::{seed_demo, LocalDatabase, DEMO_EMAIL, DEMO_SUBJECT};
use crate::registry::{Consumer, Registry, Schedule};

use nextier_http::jwt::{LOCAL_AUDIENCE as AUDIENCE, LOCAL_ISSUER as ISSUER};

#[derive(Clone)]
pub struct LocalConfig {
    /// Where the cluster and blobs live (`.local` in the checkout).
    pub home: PathBuf,
    /// 0 picks a free port.
    pub port: u16,
    pub admin_url: Option<String>,
    pub app_url: Option<String>,
    pub worker_url: Option<String>,
    pub jwt_secret: String,
    /// Consumers and schedules beyond the standard ones (tests register theirs here).
    pub extra: Registry,
    /// Overrides every schedule's period (tests).
    pub schedule_every: Option<Duration>,
    /// The sandbox carrier answers every text with this reply (`LOCAL_SANDBOX_REPLY`).
    pub sandbox_reply: Option<String>,
    /// Where the API, the consumers and the schedules take their time (the system's; a test
    /// that sends on a running clock may stand it elsewhere).
    pub clock: Arc<dyn Clock>,
}

impl LocalConfig {
    /// Embedded defaults, overridable from the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let home = match nextier_runtime::config::get("NEXTIER_HOME") {
            Some(h) => PathBuf::from(h),
            None => std::env::current_dir()?.join(".local"),
        };
        Ok(Self {
            home,
            port: nextier_runtime::config::parse("NEXTIER_PORT").unwrap_or(3000),
            admin_url: nextier_runtime::config::get("DATABASE_URL"),
            app_url: nextier_runtime::config::get("APP_DATABASE_URL"),
            worker_url: nextier_runtime::config::get("WORKER_DATABASE_URL"),
            jwt_secret: nextier_runtime::config::local_secret(),
            extra: Registry::default(),
            schedule_every: None,
            sandbox_reply: nextier_runtime::config::get("LOCAL_SANDBOX_REPLY"),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Twilio's auth token for the local voice webhooks when TWILIO_AUTH_TOKEN is unset.
pub const LOCAL_TWILIO_TOKEN: &str = "local-twilio-auth-token";

/// The webhook's signing secret when SIGNALHOUSE_WEBHOOK_SECRETS is unset (the same one the
/// function verifies with under `PLATFORM=local`).
pub const LOCAL_WEBHOOK_SECRET: &str = nextier_webhooks::signalhouse::LOCAL_SECRET;

pub struct Running {
    pub addr: SocketAddr,
    /// The environment file for `cargo lambda watch --env-file` (`<home>/watch.env`).
    pub watch_env: PathBuf,
    /// What the local SignalHouse webhook verifies signatures with.
    pub webhook_secret: String,
    pub api_url: String,
    pub app_database_url: String,
    pub worker_database_url: String,
    pub admin_database_url: String,
    pub dev_token: String,
    pub demo_team: String,
    /// The API's pool (role nextier_app).
    pub db: Db,
    /// The consumers', schedules' and webhooks' pool (role nextier_worker).
    pub worker_db: Db,
    pub queue: PgQueue,
    pub bus: PgEventBus,
    database: LocalDatabase,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops serving, lets in-flight work finish, and stops the private cluster if ours.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.database.stop();
    }
}

pub async fn start(config: LocalConfig) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.home)?;
    let database =
        LocalDatabase::open(&config.home, config.admin_url.clone(), config.app_url.clone(), config.worker_url.clone())
            .await?;
    let applied = database.migrate().await?;
    tracing::info!(?applied, "migrations");
    let demo_team = seed_demo(&database.admin_url).await?;

    // As deployed: the API as nextier_app, everything that routes across teams as
    // nextier_worker, each publishing through the outbox as its own role.
    // Deployed, each function has its own pool; here they share two. A consumer's invocation
    // may hold a transaction while the local token buckets take a second connection, so the
    // pools have room for two per concurrent invocation (the sequence consumer's 25 on the app
    // role; the inbound trio's 3 × 4 conversations, the crons and webhooks on the worker role),
    // lest they wait on each other.
    let db = Db::connect(&database.app_url, 64)?;
    let worker_db = Db::connect(&database.worker_url, 48)?;
    let queue = PgQueue::new(db.clone());
    // The template's rules: the events workflows start on, and those a team's endpoints may
    // want, go to their queues.
    let bus = PgEventBus::new(db.clone(), "default").with_template_rules(queue.clone());
    let publisher = OutboxPublisher::new(db.clone(), Arc::new(queue.clone()), Arc::new(bus.clone()));
    let worker_publisher = OutboxPublisher::new(worker_db.clone(), Arc::new(queue.clone()), Arc::new(bus.clone()));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let api_url = format!("http://{addr}");
    let blobs = Arc::new(FolderBlobStore::new(config.home.join("blobs"), &api_url, config.jwt_secret.as_bytes()));

    let verifier = nextier_http::jwt::verifier_from_env(&config.jwt_secret)?;
    // The API's per-team and per-key request limits, on the same Postgres buckets as texts.
    nextier_http::limits::install(
        Arc::new(nextier_platform::local::PgRateLimiter::new(db.clone())),
        config.clock.clone(),
    );
    // Zoho when configured; else the sandbox CRM, whose made-up hosts the connection accepts.
    let crm = nextier_providers::zoho::crm_from_env();
    let mut crm_hosts = nextier_integrations::crm_hosts_from_env();
    if nextier_runtime::config::get("ZOHO_CLIENT_ID").is_none() {
        crm_hosts.extend([
            nextier_platform::ports::crm::SANDBOX_ACCOUNTS.to_owned(),
            nextier_platform::ports::crm::SANDBOX_API.to_owned(),
        ]);
    }
    let state = AppState {
        db: db.clone(),
        outbox: publisher.clone(),
        blobs: blobs.clone(),
        config: Arc::new(AppConfig {
            webhook_base_url: api_url.clone(),
            crm_hosts: crm_hosts.clone(),
            ..AppConfig::from_env()
        }),
        // The cockpit's sends take the same gate as campaigns: the sandbox transport and the
        // Postgres token buckets.
        gate: Arc::new(nextier_campaigns::gate::sandbox_limited(Arc::new(
            nextier_platform::local::PgRateLimiter::new(db.clone()),
        ))),
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
        researcher: Arc::new(nextier_platform::ports::suggester::RecordsResearcher),
        property_data: Arc::new(nextier_platform::ports::property::SandboxPropertyData),
        limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(db.clone())),
        skip_tracer: Arc::new(nextier_platform::ports::skip_tracer::SandboxSkipTracer::default()),
        // Subgroups and numbers from SignalHouse when configured, else a sandbox that lists
        // any number a team registers.
        numbers: nextier_providers::numbers_from_env(),
        clock: config.clock.clone(),
        crm: crm.clone(),
    };
    if state.numbers.name() == "sandbox" {
        crate::database::connect_demo_to_sandbox(&database.admin_url, &demo_team).await?;
    }
    // S3 notifies the lead-import queue of every upload under imports/; so does this hook.
    let notify_queue = queue.clone();
    let on_upload: UploadHook = Arc::new(move |key: String| {
        let q = notify_queue.clone();
        Box::pin(async move {
            if !key.starts_with("imports/") {
                return;
            }
            let msg = OutgoingMessage { body: s3_event("local-uploads", &key, 0).to_string(), ..Default::default() };
            if let Err(e) = q.send(nextier_imports::QUEUE, msg).await {
                tracing::warn!(key, error = %e, "upload notification lost");
            }
        })
    });
    // SignalHouse's webhook, signed with SIGNALHOUSE_WEBHOOK_SECRETS or the local default.
    let mut webhook_secrets = nextier_webhooks::signalhouse::secrets_from_env();
    if webhook_secrets.is_empty() {
        webhook_secrets.push(LOCAL_WEBHOOK_SECRET.as_bytes().to_vec());
    }
    let webhook_secret = String::from_utf8_lossy(&webhook_secrets[0]).into_owned();
    let webhook = nextier_webhooks::signalhouse::routes(nextier_webhooks::signalhouse::WebhookState::new(
        worker_db.clone(),
        worker_publisher.clone(),
        webhook_secrets,
    ));
    // Twilio's voice webhooks, signed over this server's own URL with TWILIO_AUTH_TOKEN or
    // the local default.
    let voice = nextier_webhooks::twilio::routes(nextier_webhooks::twilio::VoiceState {
        db: worker_db.clone(),
        auth_token: Arc::new(nextier_runtime::config::or("TWILIO_AUTH_TOKEN", LOCAL_TWILIO_TOKEN)),
        base_url: Arc::new(api_url.clone()),
        clock: config.clock.clone(),
    });
    // SendGrid's event webhook (with SENDGRID_WEBHOOK_PUBLIC_KEY) and the unsubscribe links the
    // sandbox gate signs (UNSUBSCRIBE_SECRET or the local default).
    let mut mail = nextier_webhooks::sendgrid::MailState::from_env(worker_db.clone(), worker_publisher.clone());
    if mail.unsubscribe_secret.is_none() {
        mail.unsubscribe_secret = Some(Arc::new(nextier_outbound::email::LOCAL_SECRET.as_bytes().to_vec()));
    }
    let app = nextier_api::full_app(state, Some(verifier))
        .merge(nextier_webhooks::sendgrid::routes(mail))
        .merge(blob_router(blobs.clone(), Some(on_upload)))
        .merge(webhook)
        .merge(voice)
        .merge(nextier_webhooks::skip_trace::routes(nextier_webhooks::skip_trace::CallbackState::new(
            worker_db.clone(),
        )));

    let (shutdown, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut http_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "local HTTP server stopped");
        }
    }));

    // The sandbox plays the carrier: receipts (and scripted replies) as signed webhooks.
    let carrier = crate::carrier::Carrier {
        admin_url: database.admin_url.clone(),
        webhook_url: format!("{api_url}{}", nextier_webhooks::signalhouse::PATH),
        secret: webhook_secret.clone(),
        reply: config.sandbox_reply.clone(),
    };
    tasks.push(tokio::spawn(carrier.run(stop_rx.clone())));

    let mut registry = Registry::standard_at(
        db.clone(),
        worker_db.clone(),
        blobs.clone(),
        worker_publisher,
        config.clock.clone(),
        PgQueue::new(worker_db.clone()),
    );
    registry.consumers.extend(config.extra.consumers.clone());
    registry.schedules.extend(config.extra.schedules.clone());
    for consumer in registry.consumers {
        queue.declare(&consumer.specs).await?;
        tasks.push(tokio::spawn(poll(queue.clone(), consumer, stop_rx.clone())));
    }
    for mut schedule in registry.schedules {
        if let Some(every) = config.schedule_every {
            schedule.every = every;
        }
        tasks.push(tokio::spawn(tick(schedule, stop_rx.clone())));
    }

    let dev_token =
        mint_hs256(config.jwt_secret.as_bytes(), ISSUER, AUDIENCE, DEMO_SUBJECT, DEMO_EMAIL, 30 * 24 * 3600);
    // What a function run on its own needs to join this runtime (`infra/dev.sh watch` passes
    // it to `cargo lambda watch --env-file`): the two roles' URLs, the blob folder and URL, the
    // token and webhook secrets this runtime uses.
    let watch_env = config.home.join("watch.env");
    let lines = [
        ("PLATFORM", "local"),
        ("DATABASE_URL", database.app_url.as_str()),
        ("WORKER_DATABASE_URL", database.worker_url.as_str()),
        ("LOCAL_BLOB_DIR", &config.home.join("blobs").display().to_string()),
        ("LOCAL_PUBLIC_URL", api_url.as_str()),
        ("LOCAL_JWT_SECRET", config.jwt_secret.as_str()),
        (nextier_webhooks::signalhouse::SECRETS_ENV, webhook_secret.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}\n"))
    .collect::<String>();
    write_private(&watch_env, &lines)?;
    Ok(Running {
        watch_env,
        addr,
        webhook_secret,
        api_url,
        app_database_url: database.app_url.clone(),
        worker_database_url: database.worker_url.clone(),
        admin_database_url: database.admin_url.clone(),
        dev_token,
        demo_team,
        db,
        worker_db,
        queue,
        bus,
        database,
        shutdown,
        tasks,
    })
}

/// The local stand-in for SQS's event source mapping: receive a batch, hand it to the
/// consumer as an `SqsEvent`, delete what succeeded, leave failures to reappear after the
/// visibility timeout (and reach the DLQ after max receives). Up to `concurrency` batches run
/// at once, as Lambda runs several invocations (the campaign-sequence consumer's wait for
/// rate-limit slots must not hold back the next batch).
async fn poll(queue: PgQueue, consumer: Consumer, mut stop: watch::Receiver<bool>) {
    let idle = Duration::from_millis(200);
    let mut running = tokio::task::JoinSet::new();
    while !*stop.borrow() {
        while running.try_join_next().is_some() {}
        if running.len() >= consumer.concurrency.max(1) {
            let _ = tokio::time::timeout(idle, running.join_next()).await;
            continue;
        }
        let batch = match queue.receive(&consumer.queue, consumer.batch_size).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(queue = %consumer.queue, error = %e, "local queue receive failed");
                wait(&mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            wait(&mut stop, idle).await;
            continue;
        }
        let serial = consumer.concurrency <= 1;
        let (queue, consumer) = (queue.clone(), consumer.clone());
        let invocation = async move { invoke(&queue, &consumer, batch).await };
        if serial {
            invocation.await;
        } else {
            running.spawn(invocation);
        }
    }
    running.shutdown().await;
}

/// One invocation: the handler on the batch, then the deletes.
async fn invoke(queue: &PgQueue, consumer: &Consumer, batch: Vec<ReceivedMessage>) {
    let event = sqs_event(&consumer.queue, &batch);
    let handler = consumer.handler.clone();
    // The invocation's deadline, as Lambda's: the visibility timeout the message is hidden for.
    let budget = consumer.specs.first().map_or(Duration::from_secs(30), |s| s.visibility_timeout);
    let deadline = Some(std::time::Instant::now() + budget);
    // A panicking handler fails its whole batch, as a crashed Lambda would.
    let run = async move { nextier_runtime::deadline::within(deadline, handler(event)).await };
    let failed: HashSet<String> = match tokio::spawn(run).await {
        Ok(resp) => resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
        Err(e) => {
            tracing::error!(queue = %consumer.queue, error = %e, "consumer panicked; batch will be redelivered");
            batch.iter().map(|m| m.id.clone()).collect()
        }
    };
    for m in batch.iter().filter(|m| !failed.contains(&m.id)) {
        if let Err(e) = queue.delete(&consumer.queue, &m.receipt_handle).await {
            tracing::warn!(queue = %consumer.queue, error = %e, "delete failed; message will be redelivered");
        }
    }
}

async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, stop.wait_for(|s| *s)).await;
}

/// Builds the event SQS would deliver for these messages.
pub fn sqs_event(queue: &str, batch: &[ReceivedMessage]) -> SqsEvent {
    let records: Vec<_> = batch
        .iter()
        .map(|m| {
            let attrs: serde_json::Map<String, serde_json::Value> = m
                .attributes
                .iter()
                .map(|(k, v)| {
                    (k.clone(), json!({"stringValue": v, "dataType": "String", "stringListValues": [], "binaryListValues": []}))
                })
                .collect();
            json!({
                "messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                "messageAttributes": attrs,
                "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}"), "awsRegion": "local"
            })
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).expect("SQS event shape")
}

/// The local stand-in for EventBridge Scheduler.
async fn tick(schedule: Schedule, mut stop: watch::Receiver<bool>) {
    loop {
        if tokio::time::timeout(schedule.every, stop.wait_for(|s| *s)).await.is_ok() {
            return;
        }
        match (schedule.handler)().await {
            Ok(out) => tracing::debug!(schedule = %schedule.name, result = %out, "schedule ran"),
            Err(e) => {
                tracing::warn!(schedule = %schedule.name, error = %format!("{e:#}"), "schedule failed")
            }
        }
    }
}

/// Writes `contents` readable by its owner only (the file holds the local secrets).
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())
}
