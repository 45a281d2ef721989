//! Campaigns at work: the lifecycle with its side effects ([`lifecycle`]), staging checks
//! ([`staging`]), the per-minute tick that claims due enrolments ([`tick`]), the starter
//! that runs scheduled starts and ends ([`starter`]), the campaign-sequence consumer that
//! sends each step through the outbound gate ([`sequence`], [`gate`]) and the campaign
//! consumer that enrols contacts whose score enters a running campaign's band ([`sync`]), and
//! merging two contacts with their enrolments ([`merge`]).

pub mod edits;
pub mod gate;
pub mod lifecycle;
pub mod merge;
pub mod sequence;
pub mod staging;
pub mod starter;
pub mod sync;
pub mod tick;

/// The queue the tick fills and the sequence consumer drains.
pub const SEQUENCE_QUEUE: &str = "campaign-sequence";
/// The queue of score changes that may enrol a contact in running campaigns.
pub const SYNC_QUEUE: &str = "campaign";

/// The campaign-sequence consumer: 25 invocations at once (each may wait up to a few seconds
/// for its rate-limit slots, holding no connection), 30 s each.
pub const SEQUENCE_CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: SEQUENCE_QUEUE,
    batch_size: 10,
    visibility_secs: 180,
    max_receives: 5,
    concurrency: 25,
};
/// The consumer of score changes (30 s invocations).
pub const SYNC_CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: SYNC_QUEUE,
    batch_size: 10,
    visibility_secs: 180,
    max_receives: 5,
    concurrency: 1,
};
/// The tick: every minute.
pub const TICK_SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "campaign-tick", every_secs: 60 };
/// Scheduled starts and ends: every minute.
pub const STARTER_SCHEDULE: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "campaign-starter", every_secs: 60 };

/// Team settings that change campaign rules (scope `campaigns`).
pub mod team_rules {
    /// `true`: an ADMIN may approve a campaign they wrote.
    pub const ALLOW_SELF_APPROVAL: &str = "allow_self_approval";
    /// `true`: a contact may be enrolled in several live campaigns at once.
    pub const ALLOW_OVERLAP: &str = "allow_overlapping_enrolments";
    pub const SCOPE: &str = "campaigns";
}
