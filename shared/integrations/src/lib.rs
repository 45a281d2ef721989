//! Integrations out (issue 19): a team's CRM kept in step both ways ([`crm`]), its data out as
//! CSV ([`exports`]), and its own systems told of events by signed webhooks ([`webhooks`]).
//!
//! Two queues carry the work, each with a DLQ: `integration-task` (a CRM push or pull, an
//! export: each a recorded row the message only names, leased while it runs, so a redelivered
//! or duplicated message finds it done or leased and does nothing) and `webhook-out` (bus
//! events to fan out to the team's endpoints, and deliveries due again). Two schedules keep
//! them moving: the CRM sync every 5 minutes (token refresh, push and pull tasks, work whose
//! message was lost) and the webhook re-drive every minute.

pub mod crm;
pub mod csv;
pub mod exports;
pub mod webhooks;

use std::sync::Arc;

use nextier_domain::ids::TeamId;
use nextier_platform::ports::clock::Clock;
use nextier_platform::ports::crm::Crm;
use nextier_platform::ports::{BlobStore, OutgoingMessage, Queue, RateLimiter};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{Db, Tx};
use serde::{Deserialize, Serialize};

pub const TASK_QUEUE: &str = "integration-task";
pub const WEBHOOK_QUEUE: &str = nextier_domain::webhook_out::QUEUE;

/// The task consumer: a CRM task or an export per message (15-minute invocations: a large
/// export streams for minutes).
pub const TASK_CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: TASK_QUEUE,
    batch_size: 1,
    visibility_secs: 5400,
    max_receives: 5,
    concurrency: 2,
};

/// The webhook sender: ten deliveries a batch, each bounded by its timeout (60-second
/// invocations).
pub const WEBHOOK_CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: WEBHOOK_QUEUE,
    batch_size: 10,
    visibility_secs: 360,
    max_receives: 5,
    concurrency: 4,
};

/// Token refresh, push and pull tasks, and lost work re-sent.
pub const CRM_SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "crm-sync", every_secs: 300 };
/// Webhook deliveries due again.
pub const REDRIVE_SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "webhook-redrive", every_secs: 60 };

/// A message on the task queue: it names its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMessage {
    pub team_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
}

impl TaskMessage {
    /// The message naming a CRM task.
    pub fn task(team: &TeamId, id: &str) -> Self {
        TaskMessage { team_id: team.to_string(), task_id: Some(id.to_owned()), export_id: None }
    }

    /// The message naming an export.
    pub fn export(team: &TeamId, id: &str) -> Self {
        TaskMessage { team_id: team.to_string(), task_id: None, export_id: Some(id.to_owned()) }
    }
}

/// Stages a task queue message naming `task` or `export` in the caller's transaction.
pub async fn stage_task(
    tx: &Tx<'_>,
    team: &TeamId,
    m: &TaskMessage,
) -> nextier_store::error::Result<Option<nextier_domain::ids::OutboxId>> {
    let key = m.task_id.as_deref().or(m.export_id.as_deref()).unwrap_or_default();
    outbox::stage(
        tx,
        &OutboxMessage {
            team: Some(team.clone()),
            destination: Destination::Queue(TASK_QUEUE.into()),
            payload: serde_json::to_value(m).unwrap_or_default(),
            correlation_id: format!("task-{key}"),
            dedupe_key: None,
        },
    )
    .await
}

/// Sends a task queue message now (the cron's, for lost work).
pub async fn send_task(queue: &dyn Queue, m: &TaskMessage, delay: std::time::Duration) -> anyhow::Result<()> {
    queue
        .send(
            TASK_QUEUE,
            OutgoingMessage {
                body: serde_json::to_string(m)?,
                correlation_id: format!("task-{}", m.task_id.as_deref().or(m.export_id.as_deref()).unwrap_or_default()),
                team_id: Some(m.team_id.clone()),
                attributes: Default::default(),
                delay: delay.min(std::time::Duration::from_secs(900)),
            },
        )
        .await?;
    Ok(())
}

/// What the task consumer and the CRM cron work with.
#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub crm: Arc<dyn Crm>,
    pub clock: Arc<dyn Clock>,
    /// Hosts besides Zoho's own a connection may name (a test's fake, the local sandbox).
    pub crm_hosts: Vec<String>,
    /// Bytes per export part (S3's minimum 5 MiB at least).
    pub export_part_bytes: usize,
    /// Publishes what a task staged right after commit (else the sweeper does).
    pub publisher: Option<nextier_platform::outbox::OutboxPublisher>,
}

impl Worker {
    /// As deployed: the worker database role, the platform's adapters, Zoho when configured.
    pub async fn from_env(crm: Arc<dyn Crm>) -> anyhow::Result<Self> {
        let db = Db::worker_from_env()?;
        let platform = nextier_platform::wiring::Platform::from_env(&db).await;
        Ok(Worker {
            queue: platform.queue.clone(),
            blobs: platform.blobs.clone(),
            limiter: platform.limiter.clone(),
            crm,
            clock: Arc::new(nextier_platform::ports::clock::SystemClock),
            crm_hosts: crm_hosts_from_env(),
            export_part_bytes: nextier_platform::ports::MIN_PART * 2,
            publisher: Some(platform.outbox(&db)),
            db,
        })
    }
}

/// `ZOHO_EXTRA_HOSTS`: comma-separated origins a connection may name besides Zoho's own (a
/// local fake); a deployed stack sets none.
pub fn crm_hosts_from_env() -> Vec<String> {
    nextier_runtime::config::get("ZOHO_EXTRA_HOSTS")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// The `integration-task` queue's handler.
pub async fn handle_tasks(
    w: &Worker,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    use nextier_runtime::sqs::{process_batch, Message, Outcome};
    process_batch(TASK_QUEUE, event, |m: Message| async move {
        let msg: TaskMessage = match serde_json::from_str(&m.body) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "dropping a task message that does not parse");
                return Outcome::Done;
            }
        };
        let Ok(team) = TeamId::parse("teamId", &msg.team_id) else {
            tracing::warn!("dropping a task message without a valid team");
            return Outcome::Done;
        };
        let result = match (&msg.task_id, &msg.export_id) {
            (Some(task), _) => crm::run_task(w, &team, task).await.map(|_| ()),
            (None, Some(export)) => exports::run(w, &team, export).await.map(|_| ()),
            _ => Ok(()),
        };
        Outcome::from(result)
    })
    .await
}
