//! What each deployed function does to AWS, read from what its `main.rs` wires: the outbox
//! publisher sends the queue jobs and domain events its handlers stage and publish at once
//! (what it does not publish, the outbox sweeper does), the outbound gate takes tokens from the
//! DynamoDB rate buckets, the sequence consumer and the tick send to the campaign-sequence
//! queue, imports read uploads and write reports. Consuming a queue is SAM's SQS event, not
//! listed here. `tests/iam.rs` holds template.yaml to this list: each function is granted
//! exactly these actions on exactly these resources, and nothing else.

use nextier_campaigns::{SEQUENCE_QUEUE, SYNC_QUEUE};
use nextier_enrichment::QUEUE as ENRICHMENT_QUEUE;
use nextier_inbound::{AI_QUEUE, ANSWERS_QUEUE, QUEUE as INBOUND_QUEUE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `sqs:SendMessage` on a queue (by its name without the stage prefix).
    Send(&'static str),
    /// `events:PutEvents` on the domain event bus.
    PutEvents,
    /// `dynamodb:GetItem` and `dynamodb:PutItem` on the rate buckets (the limiter's
    /// TransactGetItems and conditional TransactWriteItems of puts).
    RateBuckets,
    /// `s3:GetObject` under a prefix of the uploads bucket.
    ReadUploads(&'static str),
    /// `s3:PutObject` under a prefix of the uploads bucket (also what a presigned URL needs).
    WriteUploads(&'static str),
    /// `secretsmanager:GetSecretValue` on the secret of a setting (`X_SECRET_ARN` → `X`).
    Secret(&'static str),
}

/// The settings that are secrets: never in an environment, each read from its secret.
pub const SECRET_SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "WORKER_DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "APP_DB_PASSWORD",
    "WORKER_DB_PASSWORD",
    "SIGNALHOUSE_API_KEY",
    "SENDGRID_API_KEY",
    "TWILIO_AUTH_TOKEN",
    "UNSUBSCRIBE_SECRET",
    "REALESTATE_API_KEY",
    "SIGNALHOUSE_WEBHOOK_SECRETS",
    "AI_API_KEY",
    "ANTHROPIC_API_KEY",
    "RESEARCH_API_KEY",
    "SKIP_TRACE_CALLBACK_SECRET",
    "ZOHO_CLIENT_SECRET",
];

/// A deployed function, by its binary's name, and what it does to AWS.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub binary: &'static str,
    pub access: &'static [Access],
}

use Access::*;

const MAIL_QUEUE: &str = nextier_inbound::notify::QUEUE;
const IMPORT_QUEUE: &str = nextier_imports::QUEUE;
const TASK_QUEUE: &str = nextier_integrations::TASK_QUEUE;
const WEBHOOK_QUEUE: &str = nextier_integrations::WEBHOOK_QUEUE;
/// Our Zoho client's secret (the CRM connect and token refresh).
const ZOHO: Access = Secret("ZOHO_CLIENT_SECRET");

/// The app role's database URL; the worker role's (functions that route across teams).
const APP_DB: Access = Secret("DATABASE_URL");
const WORKER_DB: Access = Secret("WORKER_DATABASE_URL");
/// What the outbound gate reads: the providers' keys and the unsubscribe links' signing key.
const SH: Access = Secret("SIGNALHOUSE_API_KEY");
const SG: Access = Secret("SENDGRID_API_KEY");
const TW: Access = Secret("TWILIO_AUTH_TOKEN");
const UNSUB: Access = Secret("UNSUBSCRIBE_SECRET");

pub const FUNCTIONS: &[Function] = &[
    // Team, member, key, setting and invitation events.
    Function { binary: "api-admin", access: &[APP_DB, PutEvents] },
    // Contact events and score changes for auto-enrolment; the cockpit's texts through the
    // gate; presigned import uploads and report downloads; skip traces.
    Function {
        binary: "api-contacts",
        access: &[
            APP_DB,
            PutEvents,
            Send(SYNC_QUEUE),
            RateBuckets,
            WriteUploads("imports"),
            ReadUploads("reports"),
            SH,
            SG,
            TW,
            UNSUB,
            Secret("REALESTATE_API_KEY"),
            Secret("SKIP_TRACE_CALLBACK_SECRET"),
            Send(ENRICHMENT_QUEUE),
        ],
    },
    // Campaign lifecycle, step and enrolment events; sending numbers at SignalHouse; a workflow
    // run retried by a person may mail the team's admins.
    Function { binary: "api-campaigns", access: &[APP_DB, PutEvents, SH, Send(MAIL_QUEUE)] },
    // Approved suggestions go out through the gate.
    // Booking a meeting publishes MeetingBooked; suggestions and research call the models.
    Function {
        binary: "api-inbox",
        access: &[
            APP_DB,
            RateBuckets,
            PutEvents,
            SH,
            SG,
            TW,
            UNSUB,
            Secret("AI_API_KEY"),
            Secret("ANTHROPIC_API_KEY"),
            Secret("RESEARCH_API_KEY"),
        ],
    },
    // The call queue and the dialer: the database only.
    Function { binary: "api-calls", access: &[APP_DB] },
    // RealEstateAPI searches and details, on the team's daily cap (the rate buckets).
    Function { binary: "api-property", access: &[APP_DB, RateBuckets, Secret("REALESTATE_API_KEY")] },
    // Continuations of a long import, ImportCompleted; reads the upload, writes the report.
    Function {
        binary: "consumer-lead-import",
        access: &[
            WORKER_DB,
            Send(IMPORT_QUEUE),
            Send(ENRICHMENT_QUEUE),
            PutEvents,
            ReadUploads("imports"),
            WriteUploads("reports"),
        ],
    },
    // Steps through the gate; a step held for its slot goes back on its own queue.
    Function {
        binary: "consumer-campaign-sequence",
        access: &[APP_DB, RateBuckets, Send(SEQUENCE_QUEUE), SH, SG, TW, UNSUB],
    },
    // Enrolments in the database only.
    Function { binary: "consumer-campaign", access: &[APP_DB] },
    // Traces, polls and grades: its own delayed steps, score changes, EnrichmentJobCompleted,
    // the daily caps on the rate table, the enrichment providers' keys.
    Function {
        binary: "consumer-enrichment",
        access: &[
            APP_DB,
            Send(ENRICHMENT_QUEUE),
            Send(SYNC_QUEUE),
            PutEvents,
            RateBuckets,
            Secret("TRACERFY_API_KEY"),
            Secret("TRESTLE_API_KEY"),
            Secret("APOLLO_API_KEY"),
            Secret("REALESTATE_API_KEY"),
        ],
    },
    // A reply stages its answer, its suggestion and InboundMessageReceived, published at once;
    // jobs of any kind run on any of the three queues, so it has the gate too.
    Function {
        binary: "consumer-inbound",
        access: &[WORKER_DB, Send(ANSWERS_QUEUE), Send(AI_QUEUE), PutEvents, RateBuckets, SH, SG, TW, UNSUB],
    },
    Function { binary: "consumer-answers", access: &[APP_DB, RateBuckets, PutEvents, SH, SG, TW, UNSUB] },
    Function {
        binary: "consumer-ai",
        access: &[APP_DB, RateBuckets, PutEvents, SH, SG, TW, UNSUB, Secret("AI_API_KEY"), Secret("ANTHROPIC_API_KEY")],
    },
    // Mail goes to SendGrid over HTTPS.
    Function { binary: "consumer-mail", access: &[APP_DB, SG] },
    // Each delivery's job, published at once; the signing secrets.
    Function {
        binary: "webhook-signalhouse",
        access: &[WORKER_DB, Send(INBOUND_QUEUE), Secret("SIGNALHOUSE_WEBHOOK_SECRETS")],
    },
    // Each event's job; unsubscribe links are verified with their signing key.
    Function { binary: "webhook-sendgrid", access: &[WORKER_DB, Send(INBOUND_QUEUE), UNSUB] },
    // Twilio signs with the account's auth token.
    Function { binary: "webhook-twilio", access: &[WORKER_DB, TW] },
    // Callback tokens are verified with their signing key before any database work.
    Function { binary: "webhook-skip-trace", access: &[WORKER_DB, Secret("SKIP_TRACE_CALLBACK_SECRET")] },
    Function { binary: "cron-campaign-tick", access: &[WORKER_DB, Send(SEQUENCE_QUEUE)] },
    Function { binary: "cron-campaign-starter", access: &[WORKER_DB, PutEvents] },
    Function { binary: "cron-inbox-sla", access: &[WORKER_DB, PutEvents, Send(MAIL_QUEUE)] },
    Function { binary: "cron-ai-scheduler", access: &[WORKER_DB, Send(AI_QUEUE)] },
    // Workflow actions publish their events and mail the team's admins.
    // Queues tasks and exports and publishes their messages (and a retried delivery); signs
    // export download links; exchanges Zoho's code with our client's secret.
    Function {
        binary: "api-integrations",
        access: &[APP_DB, Send(TASK_QUEUE), Send(WEBHOOK_QUEUE), ReadUploads("exports"), ZOHO],
    },
    // CRM calls on the team's call rate; the next task or a retry; the team told of a dead grant;
    // exports streamed as multipart uploads.
    Function {
        binary: "consumer-integrations",
        access: &[WORKER_DB, Send(TASK_QUEUE), Send(MAIL_QUEUE), PutEvents, RateBuckets, WriteUploads("exports"), ZOHO],
    },
    // Retries as delayed messages; a disabled endpoint told to the team.
    Function { binary: "consumer-webhook-out", access: &[WORKER_DB, Send(WEBHOOK_QUEUE), Send(MAIL_QUEUE), PutEvents] },
    Function { binary: "cron-crm-sync", access: &[WORKER_DB, Send(TASK_QUEUE), Send(MAIL_QUEUE), PutEvents, ZOHO] },
    Function { binary: "cron-webhook-redrive", access: &[WORKER_DB, Send(WEBHOOK_QUEUE)] },
    Function { binary: "consumer-workflows", access: &[WORKER_DB, PutEvents, Send(MAIL_QUEUE)] },
    Function { binary: "cron-workflow-timer", access: &[WORKER_DB, PutEvents, Send(MAIL_QUEUE)] },
    // RealEstateAPI searches on each team's daily cap (the rate buckets).
    Function { binary: "cron-property-match", access: &[WORKER_DB, RateBuckets, Secret("REALESTATE_API_KEY")] },
    Function { binary: "cron-signalhouse-reconcile", access: &[WORKER_DB, Send(INBOUND_QUEUE), SH] },
    // Settles queued messages through the gate.
    Function { binary: "cron-message-reconcile", access: &[WORKER_DB, RateBuckets, SH, SG, TW, UNSUB] },
    // Publishes whatever any function staged and left: every queue the outbox targets.
    Function {
        binary: "cron-outbox-sweeper",
        access: &[
            WORKER_DB,
            PutEvents,
            Send(IMPORT_QUEUE),
            Send(SYNC_QUEUE),
            Send(INBOUND_QUEUE),
            Send(ANSWERS_QUEUE),
            Send(AI_QUEUE),
            Send(MAIL_QUEUE),
            Send(ENRICHMENT_QUEUE),
            Send(TASK_QUEUE),
            Send(WEBHOOK_QUEUE),
        ],
    },
    // As the master user, straight to the writer; it sets the two roles' passwords.
    Function {
        binary: "migrate",
        access: &[Secret("MIGRATION_DATABASE_URL"), Secret("APP_DB_PASSWORD"), Secret("WORKER_DB_PASSWORD")],
    },
];

pub fn function(binary: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.binary == binary)
}
