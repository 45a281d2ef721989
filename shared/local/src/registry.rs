//! What the local runtime serves: every queue consumer and every schedule, by name, with the
//! same handler the deployed Lambda calls.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::future::BoxFuture;
use nextier_platform::local::QueueSpec;
use nextier_platform::outbox::{sweep_job, OutboxPublisher};
use nextier_platform::ports::clock::{Clock, SystemClock};
use nextier_platform::BlobStore;
use nextier_runtime::serve::{QueueConsumer, ScheduledJob};
use nextier_store::Db;

/// A queue consumer: the queue (with its DLQ, as in template.yaml) and the batch handler.
#[derive(Clone)]
pub struct Consumer {
    pub queue: String,
    pub specs: Vec<QueueSpec>,
    pub batch_size: u32,
    /// Invocations at once (the template's MaximumConcurrency where waiting matters).
    pub concurrency: usize,
    pub handler: Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>,
}

/// A schedule: how often, and the cron handler.
#[derive(Clone)]
pub struct Schedule {
    pub name: String,
    pub every: Duration,
    pub handler: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<serde_json::Value>> + Send + Sync>,
}

impl Consumer {
    /// A consumer run as its use-case crate declares it (`QueueConsumer`), with its DLQ.
    pub fn declared(
        c: &QueueConsumer,
        handler: Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>,
    ) -> Self {
        Consumer {
            queue: c.queue.into(),
            specs: QueueSpec::with_dlq(c.queue, Duration::from_secs(c.visibility_secs), c.max_receives),
            batch_size: c.batch_size,
            concurrency: c.concurrency,
            handler,
        }
    }
}

impl Schedule {
    /// A schedule run as its use-case crate declares it (`ScheduledJob`).
    pub fn declared(
        j: &ScheduledJob,
        handler: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<serde_json::Value>> + Send + Sync>,
    ) -> Self {
        Schedule { name: j.name.into(), every: Duration::from_secs(j.every_secs), handler }
    }
}

#[derive(Clone, Default)]
pub struct Registry {
    pub consumers: Vec<Consumer>,
    pub schedules: Vec<Schedule>,
}

impl Registry {
    /// Everything the deployed stack runs, wired to the local adapters and, as deployed
    /// (template.yaml), to the database role each function connects as: `worker` for those
    /// that route across teams (and `publisher`, which sweeps), `app` for the others.
    pub fn standard(app: Db, worker: Db, blobs: Arc<dyn BlobStore>, publisher: OutboxPublisher) -> Self {
        let queue = nextier_platform::local::PgQueue::new(worker.clone());
        Self::standard_at(app, worker, blobs, publisher, Arc::new(SystemClock), queue)
    }

    /// [`Registry::standard`] on a given clock, with the queue the tick fills and the
    /// sequence consumer requeues to (a simulation drives both with one clock).
    pub fn standard_at(
        app: Db,
        worker: Db,
        blobs: Arc<dyn BlobStore>,
        publisher: OutboxPublisher,
        clock: Arc<dyn Clock>,
        queue: nextier_platform::local::PgQueue,
    ) -> Self {
        let db = worker;
        let limited = |db: &Db| {
            nextier_campaigns::gate::sandbox_limited(Arc::new(nextier_platform::local::PgRateLimiter::new(db.clone())))
                .with_clock(clock.clone())
        };
        let mut r = Registry::default();
        let integration_blobs = blobs.clone();
        // Each consumer and schedule runs with the settings its crate declares (`QueueConsumer`,
        // `ScheduledJob`); tests/template.rs holds template.yaml to the same.
        // template.yaml: ConsumerLeadImportFunction.
        let import_publisher = publisher.clone();
        let import_db = db.clone();
        r.consumers.push(Consumer::declared(
            &nextier_imports::CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let (db, blobs, publisher) = (import_db.clone(), blobs.clone(), import_publisher.clone());
                Box::pin(async move { nextier_imports::handle(&db, blobs.as_ref(), &publisher, event).await })
            }),
        ));
        // template.yaml: ConsumerCampaignSequenceFunction.
        let seq = Arc::new(nextier_campaigns::sequence::Sequencer {
            db: app.clone(),
            gate: Arc::new(limited(&app)),
            clock: clock.clone(),
            queue: Some(Arc::new(queue.clone())),
        });
        r.consumers.push(Consumer::declared(
            &nextier_campaigns::SEQUENCE_CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let seq = seq.clone();
                Box::pin(async move { nextier_campaigns::sequence::handle(&seq, event).await })
            }),
        ));
        // template.yaml: ConsumerCampaignFunction.
        let (sync_db, sync_clock) = (app.clone(), clock.clone());
        r.consumers.push(Consumer::declared(
            &nextier_campaigns::SYNC_CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let (db, clock) = (sync_db.clone(), sync_clock.clone());
                Box::pin(async move { nextier_campaigns::sync::handle(&db, clock.as_ref(), event).await })
            }),
        ));
        // template.yaml: ConsumerEnrichmentFunction; locally the sandbox providers answer.
        let sandboxes = nextier_providers::enrichment::Providers::sandbox();
        let pipeline = Arc::new(nextier_enrichment::Pipeline {
            db: app.clone(),
            outbox: publisher.clone(),
            queue: Arc::new(queue.clone()),
            limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(app.clone())),
            clock: clock.clone(),
            tracer: sandboxes.tracer,
            other_tracers: sandboxes.other_tracers,
            phone_intel: sandboxes.phone_intel,
            companies: sandboxes.companies,
            timing: nextier_enrichment::Timing::default(),
        });
        r.consumers.push(Consumer::declared(
            &nextier_enrichment::CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let p = pipeline.clone();
                Box::pin(async move { nextier_enrichment::handle(&p, event).await })
            }),
        ));
        let inbound = Arc::new(nextier_inbound::Processor {
            db: db.clone(),
            gate: Arc::new(limited(&db)),
            clock: clock.clone(),
            outbox: Some(publisher.clone()),
            suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
        });
        // ConsumerInboundFunction, ConsumerAnswersFunction and ConsumerAiFunction: the same
        // handler and Processor, apart so that an opt-out never waits behind a provider or an LLM.
        for c in [nextier_inbound::INBOUND_CONSUMER, nextier_inbound::ANSWERS_CONSUMER, nextier_inbound::AI_CONSUMER] {
            let (inbound, queue) = (inbound.clone(), c.queue);
            r.consumers.push(Consumer::declared(
                &c,
                Arc::new(move |event: SqsEvent| {
                    let p = inbound.clone();
                    Box::pin(async move { nextier_inbound::handle_queue(&p, queue, event).await })
                }),
            ));
        }
        // template.yaml: ConsumerMailFunction; locally the mail is logged, not sent.
        let (mail_db, mailer) = (app.clone(), Arc::new(nextier_platform::ports::mailer::LogMailer::default()));
        r.consumers.push(Consumer::declared(
            &nextier_inbound::notify::CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let (db, mailer) = (mail_db.clone(), mailer.clone());
                Box::pin(async move { nextier_inbound::notify::handle(&db, mailer.as_ref(), event).await })
            }),
        ));
        // template.yaml: InboxSlaFunction.
        let (sla_db, sla_publisher, sla_clock) = (db.clone(), publisher.clone(), clock.clone());
        r.schedules.push(Schedule::declared(
            &nextier_inbound::sla::SCHEDULE,
            Arc::new(move || {
                let (db, publisher, now) = (sla_db.clone(), sla_publisher.clone(), sla_clock.now());
                Box::pin(async move {
                    let s = nextier_inbound::sla::run(&db, &publisher, now).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: AiSchedulerFunction.
        let (ai_db, ai_publisher, ai_clock) = (db.clone(), publisher.clone(), clock.clone());
        r.schedules.push(Schedule::declared(
            &nextier_inbound::ai_schedule::SCHEDULE,
            Arc::new(move || {
                let (db, publisher, now) = (ai_db.clone(), ai_publisher.clone(), ai_clock.now());
                Box::pin(async move {
                    let s = nextier_inbound::ai_schedule::run(&db, &publisher, now).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: ConsumerWorkflowsFunction and WorkflowTimerFunction.
        let engine =
            nextier_workflows::Engine { db: db.clone(), clock: clock.clone(), publisher: Some(publisher.clone()) };
        let consumer_engine = engine.clone();
        r.consumers.push(Consumer::declared(
            &nextier_workflows::CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let engine = consumer_engine.clone();
                Box::pin(async move { nextier_workflows::handle(&engine, event).await })
            }),
        ));
        r.schedules.push(Schedule::declared(
            &nextier_workflows::TIMER,
            Arc::new(move || {
                let engine = engine.clone();
                Box::pin(async move { Ok(serde_json::to_value(engine.timer(500).await?)?) })
            }),
        ));
        // template.yaml: ConsumerIntegrationsFunction, ConsumerWebhookOutFunction, CrmSyncFunction and
        // WebhookRedriveFunction (Zoho when configured, else the sandbox CRM).
        let mut crm_hosts = nextier_integrations::crm_hosts_from_env();
        if nextier_runtime::config::get("ZOHO_CLIENT_ID").is_none() {
            crm_hosts.extend([
                nextier_platform::ports::crm::SANDBOX_ACCOUNTS.to_owned(),
                nextier_platform::ports::crm::SANDBOX_API.to_owned(),
            ]);
        }
        let worker = nextier_integrations::Worker {
            db: db.clone(),
            queue: Arc::new(queue.clone()),
            blobs: integration_blobs,
            limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(db.clone())),
            crm: nextier_providers::zoho::crm_from_env(),
            clock: clock.clone(),
            crm_hosts,
            export_part_bytes: nextier_platform::ports::MIN_PART,
            publisher: Some(publisher.clone()),
        };
        let task_worker = worker.clone();
        r.consumers.push(Consumer::declared(
            &nextier_integrations::TASK_CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let w = task_worker.clone();
                Box::pin(async move { nextier_integrations::handle_tasks(&w, event).await })
            }),
        ));
        r.schedules.push(Schedule::declared(
            &nextier_integrations::CRM_SCHEDULE,
            Arc::new(move || {
                let w = worker.clone();
                Box::pin(async move { Ok(serde_json::to_value(nextier_integrations::crm::sync(&w).await?)?) })
            }),
        ));
        let sender = nextier_integrations::webhooks::Sender {
            db: db.clone(),
            queue: Arc::new(queue.clone()),
            clock: clock.clone(),
            publisher: Some(publisher.clone()),
            allowed_origins: nextier_integrations::webhooks::allowed_origins_from_env(),
            timeout: Duration::from_secs(10),
        };
        let send = sender.clone();
        r.consumers.push(Consumer::declared(
            &nextier_integrations::WEBHOOK_CONSUMER,
            Arc::new(move |event: SqsEvent| {
                let s = send.clone();
                Box::pin(async move { nextier_integrations::webhooks::handle(&s, event).await })
            }),
        ));
        r.schedules.push(Schedule::declared(
            &nextier_integrations::REDRIVE_SCHEDULE,
            Arc::new(move || {
                let s = sender.clone();
                Box::pin(async move { Ok(serde_json::json!({"resent": s.redrive(500).await?})) })
            }),
        ));
        // template.yaml: PropertyMatchFunction (the sandbox's properties locally).
        let properties = nextier_property::Properties {
            db: db.clone(),
            data: Arc::new(nextier_platform::ports::property::SandboxPropertyData),
            limiter: Arc::new(nextier_platform::local::PgRateLimiter::new(db.clone())),
            clock: clock.clone(),
        };
        let match_clock = clock.clone();
        r.schedules.push(Schedule::declared(
            &nextier_property::nightly::SCHEDULE,
            Arc::new(move || {
                let (p, now) = (properties.clone(), match_clock.now());
                Box::pin(async move {
                    let s = nextier_property::nightly::run(&p, now).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: CampaignTickFunction and CampaignStarterFunction.
        let (tick_db, tick_queue, tick_clock) = (db.clone(), Arc::new(queue.clone()), clock.clone());
        let tick_config = nextier_campaigns::tick::TickConfig::from_env();
        r.schedules.push(Schedule::declared(
            &nextier_campaigns::TICK_SCHEDULE,
            Arc::new(move || {
                let (db, queue, config, now) =
                    (tick_db.clone(), tick_queue.clone(), tick_config.clone(), tick_clock.now());
                Box::pin(async move {
                    let s = nextier_campaigns::tick::tick(&db, queue.as_ref(), now, &config).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        let (start_db, start_publisher, start_clock) = (db.clone(), publisher.clone(), clock.clone());
        r.schedules.push(Schedule::declared(
            &nextier_campaigns::STARTER_SCHEDULE,
            Arc::new(move || {
                let (db, publisher, now) = (start_db.clone(), start_publisher.clone(), start_clock.now());
                Box::pin(async move {
                    let s = nextier_campaigns::starter::run(&db, &publisher, now).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: SignalHouseReconcileFunction: reads SignalHouse's
        // notifications when SIGNALHOUSE_API_KEY and SIGNALHOUSE_GROUP_ID are set, as deployed;
        // otherwise there is nothing to reconcile from (the sandbox carrier's webhooks are not
        // lost).
        let (rec_db, rec_publisher) = (db.clone(), publisher.clone());
        let source = nextier_providers::notifications::Config::from_env()
            .map(|c| Arc::new(nextier_providers::notifications::SignalHouseNotifications::new(c)));
        r.schedules.push(Schedule::declared(
            &nextier_inbound::reconcile::SCHEDULE,
            Arc::new(move || {
                let (db, publisher, source) = (rec_db.clone(), rec_publisher.clone(), source.clone());
                Box::pin(async move {
                    let Some(source) = source else {
                        return Ok(serde_json::json!({"skipped": "not configured"}));
                    };
                    let s = nextier_inbound::reconcile::run(&db, &publisher, source.as_ref(), 10).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: MessageReconcileFunction: messages left queued, settled
        // through the sandbox gate (SignalHouse is asked when SIGNALHOUSE_API_KEY is set).
        let (recon_db, recon_gate, recon_clock) = (db.clone(), Arc::new(limited(&db)), clock.clone());
        let lookup = nextier_providers::lookup::lookup_from_env();
        r.schedules.push(Schedule::declared(
            &nextier_outbound::reconcile::SCHEDULE,
            Arc::new(move || {
                let (db, gate, lookup, now) = (recon_db.clone(), recon_gate.clone(), lookup.clone(), recon_clock.now());
                Box::pin(async move {
                    let config = nextier_outbound::reconcile::ReconcileConfig::default();
                    let s = nextier_outbound::reconcile::run(&db, gate.as_ref(), lookup.as_ref(), &config, now).await?;
                    Ok(serde_json::to_value(s)?)
                })
            }),
        ));
        // template.yaml: OutboxSweeperFunction.
        r.schedules.push(Schedule::declared(
            &nextier_platform::outbox::SWEEP_SCHEDULE,
            Arc::new(move || {
                let (p, db) = (publisher.clone(), db.clone());
                Box::pin(async move {
                    let mut out = serde_json::to_value(sweep_job(&p, Duration::from_secs(40)).await?)?;
                    let after = nextier_inbound::redrive::AFTER;
                    out["webhooksRedriven"] = nextier_inbound::redrive::run(&db, &p, after).await?.into();
                    Ok(out)
                })
            }),
        ));
        r
    }
}
