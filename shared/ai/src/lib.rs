//! The AI workers' engine (issue 16, DOMAIN.md C.8): one engine, configured per worker.
//!
//! - [`engine`]: a reply is routed to a worker (the owner of the number it came to, else the
//!   writer of the last outbound message, else the team's rules), recorded with its reason,
//!   written by the [`Suggester`](nextier_platform::ports::suggester::Suggester) with the
//!   worker's persona and the team's prompt, and either waits for a person or, when the
//!   worker's policy covers it, is scheduled after the worker's delay inside its active hours
//!   and within its caps; [`engine::send_due`] sends it then, through the gate.
//! - [`nurture`]: the nurture cadence, advanced by the scheduler (never timers in memory).
//! - [`closer`]: times to offer from the team's booking settings, and booking a meeting.
//! - [`research`]: NEVA's brief, cached a day, advisory only.
//! - [`intelligence`]: what AI work led to, logged (and the opener library's counters).
//! - [`suggest`]: templates (the deterministic local default and the fallback), sending and
//!   rejecting with the approval log.

pub mod closer;
pub mod engine;
pub mod intelligence;
pub mod nurture;
pub mod research;
pub mod suggest;

use std::sync::Arc;

use nextier_outbound::OutboundGate;
use nextier_platform::ports::clock::Clock;
use nextier_platform::ports::suggester::Suggester;
use nextier_store::Db;

/// What the engine works with.
#[derive(Clone)]
pub struct Ai {
    pub db: Db,
    pub gate: Arc<dyn OutboundGate>,
    pub suggester: Arc<dyn Suggester>,
    pub clock: Arc<dyn Clock>,
}
