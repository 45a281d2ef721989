//! Domain events and queue messages staged in the outbox inside the caller's transaction;
//! publish the returned ids after commit.

use nextier_domain::ids::{OutboxId, TeamId};
use nextier_http::ApiError;
use nextier_store::outbox::{self, Destination};
use nextier_store::Tx;

fn correlation_id() -> String {
    nextier_runtime::correlation::current().unwrap_or_default().to_string()
}

/// Stages `detail_type` with `data` for the event bus.
pub async fn stage(
    tx: &Tx<'_>,
    team: &TeamId,
    detail_type: &str,
    data: serde_json::Value,
) -> Result<OutboxId, ApiError> {
    let dest = Destination::Event(detail_type.to_owned());
    Ok(outbox::stage_for_team(tx, team, dest, data, correlation_id()).await?)
}

/// Stages a message for `queue` (delivered after commit, or by the sweeper).
pub async fn stage_queue(
    tx: &Tx<'_>,
    team: &TeamId,
    queue: &str,
    body: serde_json::Value,
) -> Result<OutboxId, ApiError> {
    let dest = Destination::Queue(queue.to_owned());
    Ok(outbox::stage_for_team(tx, team, dest, body, correlation_id()).await?)
}
