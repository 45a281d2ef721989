//! What settling a message needs beyond recording it: the mark that a provider without an
//! idempotency key was handed it, the reconciler's scan of messages left `queued`, and the
//! mail provider's events applied to the message they name.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, MessageId, StepId, TeamId};
use nextier_domain::message::MessageStatus;

use crate::campaigns::Channel;
use crate::error::Result;
use crate::Tx;

/// Marks a message as handed to a provider that cannot replay (in the transaction that
/// commits before the provider is called).
pub async fn mark_dispatched(tx: &Tx<'_>, id: &MessageId, at: DateTime<Utc>) -> Result<()> {
    tx.query_typed(
        "UPDATE messages SET dispatched_at = $2 WHERE id = $1",
        params![id.as_str() => TEXT, at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Clears the mark: the provider answered that it did not take the message.
pub async fn clear_dispatched(tx: &Tx<'_>, id: &MessageId) -> Result<()> {
    tx.query_typed("UPDATE messages SET dispatched_at = NULL WHERE id = $1", params![id.as_str() => TEXT]).await?;
    Ok(())
}

/// When a message was handed to a provider that cannot replay, if it was.
pub async fn dispatched_at(tx: &Tx<'_>, id: &MessageId) -> Result<Option<DateTime<Utc>>> {
    let rows = tx.query_typed("SELECT dispatched_at FROM messages WHERE id = $1", params![id.as_str() => TEXT]).await?;
    Ok(rows.first().and_then(|r| r.get(0)))
}

/// Messages left queued since before `before`, across teams, oldest first.
pub async fn stale_queued(tx: &Tx<'_>, before: DateTime<Utc>, limit: i32) -> Result<Vec<(MessageId, TeamId)>> {
    let rows = tx
        .query_typed(
            "SELECT id, team_id FROM stale_queued_messages($1, $2)",
            params![before => TIMESTAMPTZ, limit => INT4],
        )
        .await?;
    Ok(rows.iter().map(|r| (MessageId::from_trusted(r.get(0)), TeamId::from_trusted(r.get(1)))).collect())
}

/// The team of an outbound message and the address it went to (across teams).
pub async fn team_for_message(tx: &Tx<'_>, id: &str) -> Result<Option<(TeamId, String)>> {
    let rows = tx.query_typed("SELECT team_id, to_address FROM team_for_message($1)", params![id => TEXT]).await?;
    Ok(rows.first().map(|r| (TeamId::from_trusted(r.get(0)), r.get(1))))
}

/// A queued outbound message, with what sending it again through the gate needs.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: MessageId,
    pub team: TeamId,
    pub contact: Option<ContactId>,
    pub campaign: Option<CampaignId>,
    pub step: Option<StepId>,
    pub enrolment: Option<EnrolmentId>,
    /// The campaign's sends per minute, when a campaign sent it.
    pub per_minute: Option<i32>,
    pub channel: Channel,
    pub to: String,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub body: String,
    pub provider: String,
    pub send_key: String,
    pub sent_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
}

/// The message, locked, if it is still queued (in the caller's team scope).
pub async fn lock_queued(tx: &Tx<'_>, id: &MessageId) -> Result<Option<Queued>> {
    let rows = tx
        .query_typed(
            "SELECT m.id, m.team_id, m.contact_id, m.campaign_id, m.step_id, m.enrolment_id, c.sends_per_minute,
                    m.channel, m.to_address, m.from_address, m.subject, m.body, m.provider, m.send_key, m.sent_by,
                    m.created_at, m.dispatched_at
               FROM messages m LEFT JOIN campaigns c ON c.id = m.campaign_id
              WHERE m.id = $1 AND m.status = 'queued' AND m.direction = 'outbound'
              FOR UPDATE OF m SKIP LOCKED",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| Queued {
        id: MessageId::from_trusted(r.get(0)),
        team: TeamId::from_trusted(r.get(1)),
        contact: r.get::<_, Option<String>>(2).map(ContactId::from_trusted),
        campaign: r.get::<_, Option<String>>(3).map(CampaignId::from_trusted),
        step: r.get::<_, Option<String>>(4).map(StepId::from_trusted),
        enrolment: r.get::<_, Option<String>>(5).map(EnrolmentId::from_trusted),
        per_minute: r.get(6),
        channel: Channel::parse(r.get(7)).unwrap_or(Channel::Sms),
        to: r.get(8),
        from: r.get(9),
        subject: r.get(10),
        body: r.get(11),
        provider: r.get(12),
        send_key: r.get(13),
        sent_by: r.get(14),
        created_at: r.get(15),
        dispatched_at: r.get(16),
    }))
}

/// Applies what the mail provider reported about one of our messages (by our id): `sent`
/// (it took the mail), `delivered` or `failed`. A status never moves backwards. Returns
/// whether it moved.
pub async fn apply_mail_status(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &MessageId,
    status: MessageStatus,
    provider_message_id: Option<&str>,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool> {
    let from: Vec<&str> = status.reported_from().iter().map(|s| s.as_str()).collect();
    if from.is_empty() {
        return Ok(false);
    }
    let rows = tx
        .query_typed(
            "WITH m AS (UPDATE messages SET status = $2, provider_message_id = coalesce(provider_message_id, $3),
                               error = CASE WHEN $2 = 'failed' THEN $4 ELSE error END,
                               sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN coalesce(sent_at, $5) ELSE sent_at END,
                               delivered_at = CASE WHEN $2 = 'delivered' THEN $5 ELSE delivered_at END
                         WHERE id = $1 AND status = ANY($7) RETURNING id)
             INSERT INTO message_events (team_id, message_id, status, detail, at) SELECT $6, id, $2, $4, $5 FROM m
             RETURNING 1",
            params![id.as_str() => TEXT, status.as_str() => TEXT, provider_message_id => TEXT, detail => TEXT,
                    at => TIMESTAMPTZ, team.as_str() => TEXT, from => TEXT_ARRAY],
        )
        .await?;
    Ok(!rows.is_empty())
}
