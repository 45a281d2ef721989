//! The intelligence log: what AI work led to. A message sent, the lead's answer to it (with
//! the outcome its class says), a meeting booked; and the opener library's counters.

use nextier_domain::ids::{ContactId, MessageId, TeamId};
use nextier_domain::inbox::Classification;
use nextier_store::ai::Suggestion;
use nextier_store::{workers, StoreError, Tx};

/// An AI-written message went out (`approved`, `edited` or `auto_sent`).
pub async fn sent(
    tx: &Tx<'_>,
    team: &TeamId,
    s: &Suggestion,
    message: &MessageId,
    action: &str,
) -> Result<(), StoreError> {
    let detail = format!("{action}: {message}");
    workers::log_event(
        tx,
        team,
        s.worker_id.as_deref(),
        Some(&s.contact_id),
        Some(&s.id),
        "sent",
        "neutral",
        Some(&detail),
    )
    .await
}

pub fn outcome(class: Classification) -> &'static str {
    match class {
        Classification::Positive | Classification::Question | Classification::OptIn => "positive",
        Classification::Negative
        | Classification::DncRequest
        | Classification::WrongNumber
        | Classification::Profanity => "negative",
        Classification::Neutral | Classification::Help => "neutral",
    }
}

/// The lead answered: the worker (and opener variant) of the last outbound message gets the
/// outcome, once per message (only the first reply after it counts).
pub async fn replied(tx: &Tx<'_>, team: &TeamId, contact: &ContactId, class: Classification) -> Result<(), StoreError> {
    let rows = tx
        .query_typed(
            "SELECT m.id, l.worker_id, l.suggestion_id, m.opener_id,
                    (SELECT count(*) FROM messages r WHERE r.contact_id = m.contact_id AND r.direction = 'inbound'
                        AND r.created_at > m.created_at) AS replies
               FROM messages m LEFT JOIN ai_approval_log l ON l.message_id = m.id
              WHERE m.contact_id = $1 AND m.direction = 'outbound'
              ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
            &[(&contact.as_str(), tokio_postgres::types::Type::TEXT)],
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(()) };
    // This reply is already recorded: more than one since the message means it was counted.
    if r.get::<_, i64>("replies") > 1 {
        return Ok(());
    }
    let outcome = outcome(class);
    // The message's first reply, for its campaign step's per-variant stats.
    tx.execute_typed(
        "UPDATE messages SET reply_class = $2 WHERE id = $1 AND reply_class IS NULL",
        &[
            (&r.get::<_, String>("id"), tokio_postgres::types::Type::TEXT),
            (&class.as_str(), tokio_postgres::types::Type::TEXT),
        ],
    )
    .await?;
    let event = if class == Classification::DncRequest { "opted_out" } else { "replied" };
    if let Some(worker) = r.get::<_, Option<String>>("worker_id") {
        let suggestion =
            r.get::<_, Option<String>>("suggestion_id").map(nextier_domain::ids::SuggestionId::from_trusted);
        workers::log_event(
            tx,
            team,
            Some(&worker),
            Some(contact),
            suggestion.as_ref(),
            event,
            outcome,
            Some(class.as_str()),
        )
        .await?;
    }
    if let Some(opener) = r.get::<_, Option<String>>("opener_id") {
        nextier_store::openers::count_reply(tx, &opener, outcome == "positive").await?;
    }
    Ok(())
}
