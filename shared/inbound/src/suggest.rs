//! AI reply suggestions (DOMAIN.md A, human in the loop): a pluggable [`Suggester`] writes a
//! reply for an inbox item that needs one; a person approves, edits or rejects it, or the team
//! has switched on auto-send (setting `ai/auto_send`). Either way one `ai_approval_log` row
//! records the suggestion, the final text, the action, who and when, and it is written in the
//! same transaction that records the outgoing message, so nothing AI-written is sent without
//! it. Sending goes through the outbound gate like any other message.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_domain::ids::{InboxItemId, MessageId, SuggestionId, TeamId};
use nextier_domain::inbox::Classification;
use nextier_outbound::{OutboundGate, OutboundRequest, Prepared, Purpose, Verdict};
use nextier_platform::ports::suggester::{Context, Suggester, Written};
use nextier_store::ai::{self, Suggestion, SuggestionStatus};
use nextier_store::campaigns::Channel;
use nextier_store::{contacts, inbox, messages, scope, settings, Db, Scope, StoreError};

/// Team settings: `auto_send` (yes/no) and `template.<class>` (the template suggester's text
/// for a class; `{{firstName}}` is replaced).
pub const SETTINGS_SCOPE: &str = "ai";

/// Whether a class of reply wants an answer from a person (opt-outs, HELP and START are
/// answered by the system; wrong numbers and profanity by nobody).
pub fn needs_reply(c: Classification) -> bool {
    matches!(
        c,
        Classification::Positive | Classification::Question | Classification::Neutral | Classification::Negative
    )
}

/// The local default: deterministic texts per class, which the team can replace.
pub struct TemplateSuggester;

fn default_template(c: Classification) -> Option<&'static str> {
    match c {
        Classification::Positive => {
            Some("Thanks {{firstName}}! When is a good time for a quick call to go over the details?")
        }
        Classification::Question => {
            Some("Good question, {{firstName}}. It's easier to explain on a quick call: when suits you?")
        }
        Classification::Neutral => {
            Some("Thanks for getting back to me, {{firstName}}. Would you be open to a quick chat about the property?")
        }
        Classification::Negative => {
            Some("Understood, {{firstName}}, thanks for letting me know. If anything changes, just reply here.")
        }
        _ => None,
    }
}

#[async_trait]
impl Suggester for TemplateSuggester {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        if !needs_reply(ctx.classification) {
            return Ok(None);
        }
        let key = format!("template.{}", ctx.classification.key());
        let template = match ctx.settings.get(&key).map(|t| t.trim()).filter(|t| !t.is_empty()) {
            Some(t) => t.to_owned(),
            None => match default_template(ctx.classification) {
                Some(t) => t.to_owned(),
                None => return Ok(None),
            },
        };
        let text = match ctx.first_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => template.replace("{{firstName}}", name),
            // No name: drop the placeholder with the comma or space that introduced it.
            None => template.replace(", {{firstName}}", "").replace(" {{firstName}}", "").replace("{{firstName}}", ""),
        };
        Ok(Some(Written { text, source: format!("template:{}", ctx.classification.key()) }))
    }
}

/// Writes a suggestion for an item (outside any transaction: a model may take seconds),
/// then stores it. `None` when the item needs no reply or one is already pending.
pub async fn suggest_for_item(
    db: &Db,
    suggester: &dyn Suggester,
    team: &TeamId,
    item: &InboxItemId,
) -> anyhow::Result<Option<(Suggestion, bool)>> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let it = inbox::get(&tx, item).await?;
    let Some(classification) = Classification::ALL.into_iter().find(|c| c.as_str() == it.classification) else {
        return Ok(None);
    };
    let contact = contacts::get(&tx, &it.contact_id).await?;
    let page = nextier_domain::page::PageRequest { after: None, limit: 10 };
    let mut conversation: Vec<(String, String)> = messages::thread(&tx, &it.contact_id, &page)
        .await?
        .into_iter()
        .take(10)
        .map(|m| (m.direction, m.body))
        .collect();
    conversation.reverse();
    let ctx = Context {
        first_name: contact.first_name.clone(),
        classification,
        text: it.response_text.clone(),
        conversation,
        settings: settings::strings_in(&tx, SETTINGS_SCOPE).await?,
    };
    drop(tx);
    // Nor any connection: several suggestions may wait on a slow model at once.
    drop(conn);
    let Some(w) = suggester.suggest(&ctx).await? else { return Ok(None) };
    let text: String = w.text.trim().chars().take(1600).collect();
    if text.is_empty() {
        anyhow::bail!("the suggester wrote nothing");
    }
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let out = ai::create(&tx, team, item, &it.contact_id, &text, &w.source).await?;
    tx.commit().await?;
    Ok(Some(out))
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The gate would not send it now (quiet hours, limits) or ever (opted out): nothing was
    /// recorded, and the suggestion is still pending.
    #[error("not sent: {0}")]
    Refused(String),
    /// The provider failed; the message is queued under its key and the decision recorded.
    #[error("the provider did not take the message: {0}")]
    Provider(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Sends a suggestion (as written, or `edited`), recording the decision and the message in
/// one transaction, then delivers through the gate. `action` is `approved`, `edited` or
/// `auto_sent`. The send key is the suggestion's, so it goes out once.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    db: &Db,
    gate: &Arc<dyn OutboundGate>,
    team: &TeamId,
    id: &SuggestionId,
    edited: Option<&str>,
    auto: bool,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Suggestion, MessageId), SendError> {
    let mut conn = db.conn().await.map_err(SendError::Store)?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let s = ai::lock(&tx, id).await?;
    // A decided suggestion whose message the provider has not yet taken is retried (same
    // text, same key); any other decided suggestion is final.
    let retrying = match (s.status, &s.log) {
        (SuggestionStatus::Pending, _) => None,
        (_, Some(log)) if log.message_id.is_some() => {
            let m = MessageId::from_trusted(log.message_id.clone().unwrap_or_default());
            match messages::status(&tx, &m).await? {
                Some(nextier_domain::message::MessageStatus::Queued) => {
                    Some(log.final_text.clone().unwrap_or_default())
                }
                _ => return Err(StoreError::Conflict(format!("the suggestion was already {}", s.status)).into()),
            }
        }
        _ => return Err(StoreError::Conflict(format!("the suggestion was already {}", s.status)).into()),
    };
    let final_text = match &retrying {
        Some(t) => t.clone(),
        None => edited.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(&s.suggested_text).to_owned(),
    };
    let action = if auto {
        "auto_sent"
    } else if final_text != s.suggested_text {
        "edited"
    } else {
        "approved"
    };
    let contact = contacts::get(&tx, &s.contact_id).await?;
    let req = OutboundRequest {
        team,
        contact: &contact,
        channel: Channel::Sms,
        subject: None,
        body: final_text.clone(),
        send_key: format!("ai:{id}"),
        campaign: None,
        sent_by: actor,
        purpose: Purpose::Outreach,
        to: None,
        now,
    };
    let dispatch = match gate.prepare(&tx, &req).await? {
        Prepared::Decided(Verdict::Sent { message }) => {
            if retrying.is_none() {
                ai::decide(&tx, team, &s, action, Some(&final_text), None, actor, Some(&message), now).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            return Ok((s, message));
        }
        Prepared::Decided(Verdict::Blocked { reason }) | Prepared::Decided(Verdict::Failed { reason }) => {
            return Err(SendError::Refused(reason))
        }
        Prepared::Decided(Verdict::Deferred { until, reason }) => {
            return Err(SendError::Refused(format!("{reason}; allowed from {}", until.to_rfc3339())))
        }
        Prepared::Ready(d) => d,
    };
    let message = dispatch.message().clone();
    if retrying.is_none() {
        ai::decide(&tx, team, &s, action, Some(&final_text), None, actor, Some(&message), now).await?;
        inbox::mark_processed(&tx, &s.inbox_item_id, actor, now).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    drop(conn);
    let verdict = nextier_outbound::deliver_and_settle(gate.as_ref(), db, team, &dispatch, now).await?;
    match verdict {
        Verdict::Sent { message } => Ok((s, message)),
        Verdict::Failed { reason } => Err(SendError::Provider(reason)),
        Verdict::Blocked { reason } | Verdict::Deferred { reason, .. } => Err(SendError::Refused(reason)),
    }
}

/// Rejects a pending suggestion, with the log row.
pub async fn reject(
    db: &Db,
    team: &TeamId,
    id: &SuggestionId,
    reason: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Suggestion, SendError> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let s = ai::lock(&tx, id).await?;
    if s.status != SuggestionStatus::Pending {
        return Err(StoreError::Conflict(format!("the suggestion was already {}", s.status)).into());
    }
    ai::decide(&tx, team, &s, "rejected", None, reason, actor, None, now).await?;
    let s = ai::get(&tx, id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(c: Classification, name: Option<&str>, settings: &[(&str, &str)]) -> Context {
        Context {
            first_name: name.map(str::to_owned),
            classification: c,
            text: "yes".into(),
            conversation: vec![],
            settings: settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[tokio::test]
    async fn templates_per_class_with_or_without_a_name() {
        let t = TemplateSuggester;
        let w = t.suggest(&ctx(Classification::Positive, Some("Ana"), &[])).await.unwrap().unwrap();
        assert_eq!(w.text, "Thanks Ana! When is a good time for a quick call to go over the details?");
        assert_eq!(w.source, "template:positive");
        let w = t.suggest(&ctx(Classification::Negative, None, &[])).await.unwrap().unwrap();
        assert_eq!(w.text, "Understood, thanks for letting me know. If anything changes, just reply here.");
        let w = t
            .suggest(&ctx(
                Classification::Question,
                Some("Bo"),
                &[("template.question", "Hi {{firstName}}, Ana will call you.")],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.text, "Hi Bo, Ana will call you.");
        for c in
            [Classification::DncRequest, Classification::Help, Classification::WrongNumber, Classification::Profanity]
        {
            assert_eq!(t.suggest(&ctx(c, Some("Ana"), &[])).await.unwrap(), None, "{c:?}");
        }
    }
}
