//! Messages sent and received. An outbound message carries a `send_key` unique in its team,
//! so however often the work that produces it is retried, it is recorded (and sent) once.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, MessageId, StepId, TeamId};
use nextier_domain::message::MessageStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::campaigns::Channel;
use crate::error::Result;
use crate::Tx;

#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub team: &'a TeamId,
    pub contact: &'a ContactId,
    pub campaign: Option<&'a CampaignId>,
    pub step: Option<&'a StepId>,
    pub enrolment: Option<&'a EnrolmentId>,
    pub channel: Channel,
    pub to: &'a str,
    pub from: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub provider: &'a str,
    pub provider_message_id: Option<&'a str>,
    pub status: MessageStatus,
    pub send_key: &'a str,
    pub sent_by: Option<&'a str>,
    pub segments: Option<i32>,
    pub at: DateTime<Utc>,
}

/// Records an outbound message once per send key; returns its id and whether this call
/// created it (false: an earlier attempt already did).
pub async fn record_outbound(tx: &Tx<'_>, m: &Outbound<'_>) -> Result<(MessageId, bool)> {
    let id = MessageId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO messages (id, team_id, contact_id, campaign_id, step_id, enrolment_id, channel, direction,
                                   to_address, from_address, subject, body, status, provider, provider_message_id,
                                   send_key, created_at, sent_at, segments, sent_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'outbound', $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     CASE WHEN $12 IN ('sent', 'delivered') THEN $16 END, $17, $18)
             ON CONFLICT (team_id, send_key) DO NOTHING RETURNING id",
            params![id.as_str() => TEXT, m.team.as_str() => TEXT, m.contact.as_str() => TEXT,
                    m.campaign.map(|c| c.as_str()) => TEXT, m.step.map(|s| s.as_str()) => TEXT,
                    m.enrolment.map(|e| e.as_str()) => TEXT, m.channel.as_str() => TEXT, m.to => TEXT, m.from => TEXT,
                    m.subject => TEXT, m.body => TEXT, m.status.as_str() => TEXT, m.provider => TEXT,
                    m.provider_message_id => TEXT, m.send_key => TEXT, m.at => TIMESTAMPTZ,
                    m.segments => INT4, m.sent_by => TEXT],
        )
        .await?;
    if !rows.is_empty() {
        return Ok((id, true));
    }
    let existing = tx
        .query_typed(
            "SELECT id FROM messages WHERE team_id = $1 AND send_key = $2",
            params![m.team.as_str() => TEXT, m.send_key => TEXT],
        )
        .await?;
    let id = existing.first().map(|r| MessageId::from_trusted(r.get(0))).unwrap_or(id);
    Ok((id, false))
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub status: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// A message as the API shows it, with its status timeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: MessageId,
    pub contact_id: Option<ContactId>,
    pub campaign_id: Option<CampaignId>,
    pub step_id: Option<StepId>,
    pub channel: Channel,
    pub direction: String,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub segments: Option<i32>,
    pub status: MessageStatus,
    /// Why it was refused or failed.
    pub error: Option<String>,
    pub provider: String,
    pub provider_message_id: Option<String>,
    pub sent_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub timeline: Vec<StatusChange>,
}

const VIEW: &str =
    "SELECT m.id, m.contact_id, m.campaign_id, m.step_id, m.channel, m.direction, m.to_address, m.subject,
    m.body, m.segments, m.status, m.error, m.provider, m.provider_message_id, m.sent_by, m.created_at, m.sent_at,
    m.send_key,
    coalesce((SELECT json_agg(json_build_object('status', e.status, 'detail', e.detail, 'at', e.at) ORDER BY e.id)
              FROM message_events e WHERE e.message_id = m.id), '[]') AS timeline
  FROM messages m";

fn view(r: &tokio_postgres::Row) -> MessageView {
    MessageView {
        id: MessageId::from_trusted(r.get("id")),
        contact_id: r.get::<_, Option<String>>("contact_id").map(ContactId::from_trusted),
        campaign_id: r.get::<_, Option<String>>("campaign_id").map(CampaignId::from_trusted),
        step_id: r.get::<_, Option<String>>("step_id").map(StepId::from_trusted),
        channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
        direction: r.get("direction"),
        to: r.get("to_address"),
        subject: r.get("subject"),
        body: r.get("body"),
        segments: r.get("segments"),
        status: status_of(r.get("status")),
        error: r.get("error"),
        provider: r.get("provider"),
        provider_message_id: r.get("provider_message_id"),
        sent_by: r.get("sent_by"),
        created_at: r.get("created_at"),
        sent_at: r.get("sent_at"),
        timeline: serde_json::from_value(r.get("timeline")).unwrap_or_default(),
    }
}

pub async fn get(tx: &Tx<'_>, id: &MessageId) -> Result<MessageView> {
    let rows = tx.query_typed(&format!("{VIEW} WHERE m.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(view).ok_or(crate::StoreError::NotFound)
}

/// A message by its send key, with the key's body (to tell a replay from a conflicting reuse).
pub async fn by_send_key(tx: &Tx<'_>, key: &str) -> Result<Option<(MessageView, Option<ContactId>)>> {
    let rows = tx.query_typed(&format!("{VIEW} WHERE m.send_key = $1"), params![key => TEXT]).await?;
    Ok(rows.first().map(|r| {
        let v = view(r);
        let c = v.contact_id.clone();
        (v, c)
    }))
}

/// The conversation with a contact, newest first.
pub async fn thread(
    tx: &Tx<'_>,
    contact: &ContactId,
    page: &nextier_domain::page::PageRequest,
) -> Result<Vec<MessageView>> {
    let before = page.after.as_deref().unwrap_or("msg_~");
    let rows = tx
        .query_typed(
            &format!("{VIEW} WHERE m.contact_id = $1 AND m.id < $2 ORDER BY m.id DESC LIMIT $3"),
            params![contact.as_str() => TEXT, before => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(view).collect())
}

/// Records a message the gate refused (or held) for a person's send, with the reason.
#[allow(clippy::too_many_arguments)]
pub async fn record_blocked(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    channel: Channel,
    to: &str,
    body: &str,
    send_key: &str,
    reason: &str,
    sent_by: &str,
    at: DateTime<Utc>,
) -> Result<MessageId> {
    let id = MessageId::new();
    tx.query_typed(
        "WITH m AS (INSERT INTO messages (id, team_id, contact_id, channel, direction, to_address, body, status, provider,
                                         send_key, error, sent_by, created_at)
                    VALUES ($1, $2, $3, $4, 'outbound', $5, $6, 'blocked', 'gate', $7, $8, $9, $10) RETURNING id)
         INSERT INTO message_events (team_id, message_id, status, detail, at) SELECT $2, id, 'blocked', $8, $10 FROM m",
        params![id.as_str() => TEXT, team.as_str() => TEXT, contact.as_str() => TEXT, channel.as_str() => TEXT,
                to => TEXT, body => TEXT, send_key => TEXT, reason => TEXT, sent_by => TEXT, at => TIMESTAMPTZ],
    )
    .await?;
    Ok(id)
}

/// The status of a message by id.
pub async fn status(tx: &Tx<'_>, id: &MessageId) -> Result<Option<MessageStatus>> {
    let rows = tx.query_typed("SELECT status FROM messages WHERE id = $1", params![id.as_str() => TEXT]).await?;
    Ok(rows.first().map(|r| status_of(r.get(0))))
}

/// A stored status; the table's CHECK allows no other, so an unknown one is a newer writer's
/// and is read as `failed` (nothing is resent or counted as delivered on its account).
fn status_of(s: &str) -> MessageStatus {
    MessageStatus::parse(s).unwrap_or(MessageStatus::Failed)
}

/// Moves a message to `status` and appends it to the message's timeline.
pub async fn set_status(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &MessageId,
    status: MessageStatus,
    provider_message_id: Option<&str>,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.query_typed(
        "WITH m AS (UPDATE messages SET status = $2, provider_message_id = coalesce($3, provider_message_id),
                           error = CASE WHEN $2 = 'failed' THEN $4 ELSE error END,
                           sent_at = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_at END
                     WHERE id = $1 RETURNING id)
         INSERT INTO message_events (team_id, message_id, status, detail, at) SELECT $6, id, $2, $4, $5 FROM m",
        params![id.as_str() => TEXT, status.as_str() => TEXT, provider_message_id => TEXT, detail => TEXT,
                at => TIMESTAMPTZ, team.as_str() => TEXT],
    )
    .await?;
    Ok(())
}

/// A reply (or an inbound call) as received.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    pub team: &'a TeamId,
    pub channel: Channel,
    pub contact: &'a ContactId,
    pub campaign: Option<&'a CampaignId>,
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub provider: &'a str,
    pub provider_message_id: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records a reply once per provider message id; returns its id and whether this call
/// created it (false: the same reply was recorded before).
pub async fn record_inbound(tx: &Tx<'_>, m: &Inbound<'_>) -> Result<(MessageId, bool)> {
    let id = MessageId::new();
    let rows = tx
        .query_typed(
            "WITH m AS (INSERT INTO messages (id, team_id, contact_id, campaign_id, channel, direction, to_address,
                                              from_address, body, status, provider, provider_message_id, created_at)
                        VALUES ($1, $2, $3, $4, $11, 'inbound', $5, $6, $7, 'received', $8, $9, $10)
                        ON CONFLICT (team_id, provider, provider_message_id)
                           WHERE direction = 'inbound' AND provider_message_id IS NOT NULL DO NOTHING
                        RETURNING id)
             INSERT INTO message_events (team_id, message_id, status, at) SELECT $2, id, 'received', $10 FROM m
             RETURNING message_id",
            params![id.as_str() => TEXT, m.team.as_str() => TEXT, m.contact.as_str() => TEXT,
                    m.campaign.map(|c| c.as_str()) => TEXT, m.to => TEXT, m.from => TEXT, m.body => TEXT,
                    m.provider => TEXT, m.provider_message_id => TEXT, m.at => TIMESTAMPTZ, m.channel.as_str() => TEXT],
        )
        .await?;
    if !rows.is_empty() {
        return Ok((id, true));
    }
    let existing = tx
        .query_typed(
            "SELECT id FROM messages WHERE direction = 'inbound' AND provider = $1 AND provider_message_id = $2",
            params![m.provider => TEXT, m.provider_message_id => TEXT],
        )
        .await?;
    let id = existing.first().map(|r| MessageId::from_trusted(r.get(0))).unwrap_or(id);
    Ok((id, false))
}

/// The campaign of the latest outbound message to a contact: the thread a reply answers.
pub async fn latest_campaign(tx: &Tx<'_>, contact: &ContactId) -> Result<Option<CampaignId>> {
    let rows = tx
        .query_typed(
            "SELECT campaign_id FROM messages WHERE contact_id = $1 AND direction = 'outbound' AND campaign_id IS NOT NULL
              ORDER BY created_at DESC LIMIT 1",
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| CampaignId::from_trusted(r.get(0))))
}

/// Applies a provider's delivery receipt to the outbound message it names. Returns the
/// message and whether its status moved (a repeated or out-of-order receipt does not).
pub async fn apply_receipt(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    provider_message_id: &str,
    status: MessageStatus,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Option<(MessageId, bool)>> {
    let rows = tx
        .query_typed(
            "SELECT id, status FROM messages WHERE provider = $1 AND provider_message_id = $2 AND direction = 'outbound'
              FOR UPDATE",
            params![provider => TEXT, provider_message_id => TEXT],
        )
        .await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let id = MessageId::from_trusted(row.get(0));
    if !status.advances(status_of(row.get(1))) {
        return Ok(Some((id, false)));
    }
    tx.query_typed(
        "WITH m AS (UPDATE messages SET status = $2, error = CASE WHEN $2 = 'failed' THEN $3 ELSE error END,
                           sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN coalesce(sent_at, $4) ELSE sent_at END,
                           delivered_at = CASE WHEN $2 = 'delivered' THEN $4 ELSE delivered_at END
                     WHERE id = $1 RETURNING id)
         INSERT INTO message_events (team_id, message_id, status, detail, at) SELECT $5, id, $2, $3, $4 FROM m",
        params![id.as_str() => TEXT, status.as_str() => TEXT, detail => TEXT, at => TIMESTAMPTZ, team.as_str() => TEXT],
    )
    .await?;
    Ok(Some((id, true)))
}

/// A message by its provider's id (a Twilio CallSid, say): its id and contact, in the team in scope.
pub async fn by_provider_id(
    tx: &Tx<'_>,
    provider: &str,
    provider_id: &str,
) -> Result<Option<(String, Option<String>)>> {
    let rows = tx
        .query_typed(
            "SELECT id, contact_id FROM messages WHERE provider = $1 AND provider_message_id = $2",
            params![provider => TEXT, provider_id => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// Appends an event to a message's timeline.
pub async fn add_event(
    tx: &Tx<'_>,
    team: &TeamId,
    message: &str,
    status: &str,
    detail: Option<&str>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.query_typed(
        "INSERT INTO message_events (team_id, message_id, status, detail, at) VALUES ($1, $2, $3, $4, $5)",
        params![team.as_str() => TEXT, message => TEXT, status => TEXT, detail => TEXT, at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}
