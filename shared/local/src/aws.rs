//! What each deployed function does to AWS, read from what its `main.rs` wires: the outbox
//! publisher sends the queue jobs and domain events its handlers stage and publish at once
//! (what it does not publish, the outbox sweeper does), the outbound gate takes tokens from the
//! DynamoDB rate buckets, the sequence consumer and the tick send to the campaign-sequence
//! queue, imports read uploads and write reports. Consuming a queue is SAM's SQS event, not
//! listed here. `tests/iam.rs` holds template.yaml to this list: each function is granted
//! exactly these actions on exactly these resources, and nothing else.

use nextier_campaigns::{SEQUENCE_QUEUE, SYNC_QUEUE};
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
}

/// A deployed function, by its binary's name, and what it does to AWS.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub binary: &'static str,
    pub access: &'static [Access],
}

use Access::*;

const MAIL_QUEUE: &str = nextier_inbound::notify::QUEUE;
const IMPORT_QUEUE: &str = nextier_imports::QUEUE;

pub const FUNCTIONS: &[Function] = &[
    // Team, member, key, setting and invitation events.
    Function { binary: "api-admin", access: &[PutEvents] },
    // Contact events and score changes for auto-enrolment; the cockpit's texts through the
    // gate; presigned import uploads and report downloads.
    Function {
        binary: "api-contacts",
        access: &[PutEvents, Send(SYNC_QUEUE), RateBuckets, WriteUploads("imports"), ReadUploads("reports")],
    },
    // Campaign lifecycle, step and enrolment events.
    Function { binary: "api-campaigns", access: &[PutEvents] },
    // Approved suggestions go out through the gate.
    Function { binary: "api-inbox", access: &[RateBuckets] },
    // The call queue and the dialer: the database only.
    Function { binary: "api-calls", access: &[] },
    // Continuations of a long import, ImportCompleted; reads the upload, writes the report.
    Function {
        binary: "consumer-lead-import",
        access: &[Send(IMPORT_QUEUE), PutEvents, ReadUploads("imports"), WriteUploads("reports")],
    },
    // Steps through the gate; a step held for its slot goes back on its own queue.
    Function { binary: "consumer-campaign-sequence", access: &[RateBuckets, Send(SEQUENCE_QUEUE)] },
    // Enrolments in the database only.
    Function { binary: "consumer-campaign", access: &[] },
    // A reply stages its answer, its suggestion and InboundMessageReceived, published at once;
    // jobs of any kind run on any of the three queues, so it has the gate too.
    Function { binary: "consumer-inbound", access: &[Send(ANSWERS_QUEUE), Send(AI_QUEUE), PutEvents, RateBuckets] },
    Function { binary: "consumer-answers", access: &[RateBuckets, PutEvents] },
    Function { binary: "consumer-ai", access: &[RateBuckets, PutEvents] },
    // Mail goes to SendGrid over HTTPS.
    Function { binary: "consumer-mail", access: &[] },
    // Each delivery's job, published at once.
    Function { binary: "webhook-signalhouse", access: &[Send(INBOUND_QUEUE)] },
    Function { binary: "webhook-sendgrid", access: &[Send(INBOUND_QUEUE)] },
    Function { binary: "webhook-twilio", access: &[] },
    Function { binary: "webhook-skip-trace", access: &[] },
    Function { binary: "cron-campaign-tick", access: &[Send(SEQUENCE_QUEUE)] },
    Function { binary: "cron-campaign-starter", access: &[PutEvents] },
    Function { binary: "cron-inbox-sla", access: &[PutEvents, Send(MAIL_QUEUE)] },
    Function { binary: "cron-signalhouse-reconcile", access: &[Send(INBOUND_QUEUE)] },
    // Settles queued messages through the gate.
    Function { binary: "cron-message-reconcile", access: &[RateBuckets] },
    // Publishes whatever any function staged and left: every queue the outbox targets.
    Function {
        binary: "cron-outbox-sweeper",
        access: &[
            PutEvents,
            Send(IMPORT_QUEUE),
            Send(SYNC_QUEUE),
            Send(INBOUND_QUEUE),
            Send(ANSWERS_QUEUE),
            Send(AI_QUEUE),
            Send(MAIL_QUEUE),
        ],
    },
    Function { binary: "migrate", access: &[] },
];

pub fn function(binary: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.binary == binary)
}
