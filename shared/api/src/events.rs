//! Domain events staged in the outbox inside the caller's transaction.

use nextier_domain::ids::{OutboxId, TeamId};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::Tx;

use nextier_http::ApiError;

/// Stages `detail_type` with `data` for the event bus; publish the returned id after commit.
pub async fn stage(
    tx: &Tx<'_>,
    team: &TeamId,
    detail_type: &str,
    data: serde_json::Value,
) -> Result<OutboxId, ApiError> {
    let msg = OutboxMessage {
        team: Some(team.clone()),
        destination: Destination::Event(detail_type.to_owned()),
        payload: data,
        correlation_id: nextier_runtime::correlation::current().unwrap_or_default().to_string(),
        dedupe_key: None,
    };
    outbox::stage(tx, &msg)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("outbox row without dedupe key was not staged")))
}

/// Stages a message for `queue` (delivered after commit, or by the sweeper).
pub async fn stage_queue(
    tx: &Tx<'_>,
    team: &TeamId,
    queue: &str,
    body: serde_json::Value,
) -> Result<OutboxId, ApiError> {
    let msg = OutboxMessage {
        team: Some(team.clone()),
        destination: Destination::Queue(queue.to_owned()),
        payload: body,
        correlation_id: nextier_runtime::correlation::current().unwrap_or_default().to_string(),
        dedupe_key: None,
    };
    outbox::stage(tx, &msg)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("outbox row without dedupe key was not staged")))
}
