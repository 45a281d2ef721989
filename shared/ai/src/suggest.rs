//! AI-written messages (DOMAIN.md A, human in the loop): a pluggable [`Suggester`] writes for
//! the worker a reply was routed to (or the nurture cadence's follow-up); a person approves,
//! edits or rejects it, or the worker's auto-send policy lets it out (after the worker's delay,
//! inside its active hours, within its caps). Either way one `ai_approval_log` row records the
//! suggestion, the final text, the action, who, when, and for an auto-send the policy version;
//! it is written in the same transaction that records the outgoing message, so nothing
//! AI-written is sent without it. Sending goes through the outbound gate like any other message.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nextier_domain::ids::{MessageId, SuggestionId, TeamId};
use nextier_domain::inbox::Classification;
use nextier_outbound::{OutboundGate, OutboundRequest, Prepared, Purpose, Verdict};
use nextier_platform::ports::suggester::{Context, Suggester, Written};
use nextier_store::ai::{self, Decision, Suggestion, SuggestionStatus};
use nextier_store::campaigns::Channel;
use nextier_store::{contacts, inbox, messages, scope, Db, Scope, StoreError};

/// Team settings: `time_zone` (the workers' active hours), `template.<class>` (the template
/// suggester's text for a class; `{{firstName}}` is replaced), `template.follow_up.<n>` and
/// `template.follow_up.final`, `template.closer` (with `{{times}}` and `{{link}}`),
/// `nurture.min_days` / `nurture.max_days` (3 and 7), `nurture.stages` (3), `route.opener_max`
/// and `route.nurture_max` (2 and 10).
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

fn default_follow_up(stage: i32, last: bool) -> &'static str {
    if last {
        return "Hi {{firstName}}, last note from me: if you ever want a no-obligation offer on the property, just reply here.";
    }
    match stage {
        1 => "Hi {{firstName}}, just checking back in: is the property still something you'd consider selling?",
        2 => "{{firstName}}, no pressure at all. If the timing isn't right I'm happy to check back later. Still open to an offer?",
        _ => "Hi {{firstName}}, following up once more in case my last message got buried. Any thoughts on the property?",
    }
}

/// Fills `{{firstName}}` (dropping it with the comma or space before it when there is no
/// name), `{{times}}` and `{{link}}`.
pub fn fill(template: &str, ctx: &Context) -> String {
    let times = match ctx.proposals.len() {
        0 => String::new(),
        1 => ctx.proposals[0].clone(),
        n => format!("{} or {}", ctx.proposals[..n - 1].join(", "), ctx.proposals[n - 1]),
    };
    let t = template.replace("{{times}}", &times).replace("{{link}}", ctx.booking_link.as_deref().unwrap_or(""));
    match ctx.first_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => t.replace("{{firstName}}", name),
        None => t.replace(", {{firstName}}", "").replace(" {{firstName}}", "").replace("{{firstName}}", ""),
    }
}

fn setting<'a>(ctx: &'a Context, key: &str) -> Option<&'a str> {
    ctx.settings.get(key).map(|t| t.trim()).filter(|t| !t.is_empty())
}

/// The closer's default: offer the times (and the link), or the link alone.
fn closer_template(ctx: &Context) -> Option<String> {
    if let Some(t) = setting(ctx, "template.closer") {
        return Some(t.to_owned());
    }
    match (ctx.proposals.is_empty(), ctx.booking_link.is_some()) {
        (false, true) => {
            Some("Thanks {{firstName}}! Would {{times}} work for a quick call? Or pick any time here: {{link}}".into())
        }
        (false, false) => Some("Thanks {{firstName}}! Would {{times}} work for a quick call?".into()),
        (true, true) => Some("Thanks {{firstName}}! Pick a time that suits you for a quick call: {{link}}".into()),
        (true, false) => None,
    }
}

/// The sign-off, once, on its own line.
pub fn signed(text: String, ctx: &Context) -> String {
    match ctx.worker.as_ref().map(|w| w.sign_off.trim()).filter(|s| !s.is_empty()) {
        Some(sign) if !text.trim_end().ends_with(sign) => format!("{}\n{sign}", text.trim_end()),
        _ => text,
    }
}

#[async_trait]
impl Suggester for TemplateSuggester {
    async fn suggest(&self, ctx: &Context) -> anyhow::Result<Option<Written>> {
        let (template, source, confidence) = if let Some((stage, last)) = ctx.follow_up {
            let key = if last { "template.follow_up.final".to_owned() } else { format!("template.follow_up.{stage}") };
            let t = setting(ctx, &key).map(str::to_owned).unwrap_or_else(|| default_follow_up(stage, last).to_owned());
            (t, format!("template:follow_up.{}", if last { "final".to_owned() } else { stage.to_string() }), 100)
        } else {
            if !needs_reply(ctx.classification) {
                return Ok(None);
            }
            let closer = ctx.worker.as_ref().is_some_and(|w| w.role == "closer")
                && ctx.classification != Classification::Negative;
            let key = format!("template.{}", ctx.classification.key());
            let t = match (closer.then(|| closer_template(ctx)).flatten(), setting(ctx, &key)) {
                (Some(t), _) => t,
                (None, Some(t)) => t.to_owned(),
                (None, None) => match default_template(ctx.classification) {
                    Some(t) => t.to_owned(),
                    None => return Ok(None),
                },
            };
            let source =
                if closer { "template:closer".to_owned() } else { format!("template:{}", ctx.classification.key()) };
            (t, source, ctx.classification_confidence)
        };
        let text = signed(fill(&template, ctx), ctx);
        Ok(Some(Written { confidence: Some(confidence), ..Written::new(text, source) }))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The gate would never send it (opted out, no textable number): nothing was recorded, and
    /// the suggestion is still pending.
    #[error("not sent: {0}")]
    Refused(String),
    /// The gate would send it later (the lead's quiet hours, rate limits): nothing was
    /// recorded, and the suggestion is still pending.
    #[error("not sent yet: {reason}; allowed from {}", until.to_rfc3339())]
    Deferred { until: DateTime<Utc>, reason: String },
    /// An auto-send no longer holds: a person holds it now, its policy changed, or a cap was
    /// reached meanwhile. Nothing was recorded.
    #[error("not sent on its own: {0}")]
    Stale(String),
    /// The provider failed; the message is queued under its key and the decision recorded.
    #[error("the provider did not take the message: {0}")]
    Provider(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What let a suggestion out without a person: the policy version and why.
#[derive(Debug, Clone)]
pub struct Auto {
    pub policy_version: i32,
    pub reason: String,
    /// The worker's caps, checked again under a lock on the worker (two sends at once cannot
    /// both take the last one): (sent today, all leads), (sent today, this lead), and when the
    /// day began.
    pub daily_cap: i64,
    pub per_lead_cap: i64,
    pub day_start: DateTime<Utc>,
}

/// Sends a suggestion (as written, or `edited`), recording the decision and the message in
/// one transaction, then delivers through the gate. The action is `approved`, `edited` or,
/// with `auto`, `auto_sent` (with its policy version). The send key is the suggestion's, so it
/// goes out once.
#[allow(clippy::too_many_arguments)]
pub async fn send(
    db: &Db,
    gate: &Arc<dyn OutboundGate>,
    team: &TeamId,
    id: &SuggestionId,
    edited: Option<&str>,
    auto: Option<&Auto>,
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
    // On its own, only as planned: still due, under the policy version that planned it, and
    // within the worker's caps (checked under a lock per worker, so two sends at once cannot
    // both take the last one).
    if let (Some(a), None) = (auto, &retrying) {
        if s.send_after.is_none_or(|at| at > now) {
            return Err(SendError::Stale(s.note.clone().unwrap_or_else(|| "a person decides".into())));
        }
        let Some(worker) = s.worker_id.clone() else { return Err(SendError::Stale("no worker".into())) };
        let worker = nextier_domain::ids::WorkerId::from_trusted(worker);
        let w = match nextier_store::workers::lock(&tx, &worker).await {
            Ok(w) => w,
            Err(StoreError::NotFound) => return Err(SendError::Stale("the worker was deleted".into())),
            Err(e) => return Err(e.into()),
        };
        if w.policy_version != a.policy_version {
            return Err(SendError::Stale(format!("the policy changed to v{}", w.policy_version)));
        }
        let (today, lead) = nextier_store::workers::sent_since(&tx, &worker, &s.contact_id, a.day_start).await?;
        if today >= a.daily_cap || lead >= a.per_lead_cap {
            return Err(SendError::Stale("a cap was reached meanwhile".into()));
        }
    }
    let final_text = match &retrying {
        Some(t) => t.clone(),
        None => edited.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(&s.suggested_text).to_owned(),
    };
    let action = if auto.is_some() {
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
    let decision = |message| Decision {
        action,
        final_text: Some(final_text.as_str()),
        reason: auto.map(|a| a.reason.as_str()),
        actor,
        message,
        policy_version: auto.map(|a| a.policy_version),
        now,
    };
    let dispatch = match gate.prepare(&tx, &req).await? {
        Prepared::Decided(Verdict::Sent { message }) => {
            if retrying.is_none() {
                ai::decide(&tx, team, &s, &decision(Some(&message))).await?;
                crate::intelligence::sent(&tx, team, &s, &message, action).await?;
            }
            tx.commit().await.map_err(StoreError::from)?;
            return Ok((s, message));
        }
        Prepared::Decided(Verdict::Blocked { reason }) | Prepared::Decided(Verdict::Failed { reason }) => {
            return Err(SendError::Refused(reason))
        }
        Prepared::Decided(Verdict::Deferred { until, reason }) => return Err(SendError::Deferred { until, reason }),
        Prepared::Ready(d) => d,
    };
    let message = dispatch.message().clone();
    if retrying.is_none() {
        ai::decide(&tx, team, &s, &decision(Some(&message))).await?;
        crate::intelligence::sent(&tx, team, &s, &message, action).await?;
        if let Some(item) = &s.inbox_item_id {
            inbox::mark_processed(&tx, item, actor, now).await?;
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    drop(conn);
    let verdict = nextier_outbound::deliver_and_settle(gate.as_ref(), db, team, &dispatch, now).await?;
    match verdict {
        Verdict::Sent { message } => Ok((s, message)),
        Verdict::Failed { reason } => Err(SendError::Provider(reason)),
        Verdict::Blocked { reason } => Err(SendError::Refused(reason)),
        Verdict::Deferred { until, reason } => Err(SendError::Deferred { until, reason }),
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
    let d = Decision { action: "rejected", final_text: None, reason, actor, message: None, policy_version: None, now };
    ai::decide(&tx, team, &s, &d).await?;
    let s = ai::get(&tx, id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nextier_platform::ports::suggester::Persona;

    fn ctx(c: Classification, name: Option<&str>, settings: &[(&str, &str)]) -> Context {
        let mut ctx = Context::reply(name, c, "yes");
        ctx.settings = settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ctx
    }

    #[tokio::test]
    async fn templates_per_class_with_or_without_a_name() {
        let t = TemplateSuggester;
        let w = t.suggest(&ctx(Classification::Positive, Some("Ana"), &[])).await.unwrap().unwrap();
        assert_eq!(w.text, "Thanks Ana! When is a good time for a quick call to go over the details?");
        assert_eq!(w.source, "template:positive");
        assert_eq!(w.confidence, Some(80), "a template is as sure as the classification");
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

    #[tokio::test]
    async fn the_closer_offers_times_and_the_link_and_signs_off() {
        let mut c = ctx(Classification::Positive, Some("Ana"), &[]);
        c.worker = Some(Persona { role: "closer".into(), sign_off: "- Sabrina".into(), ..Persona::default() });
        c.proposals = vec!["Tue Dec 8, 10:00 AM".into(), "Wed Dec 9, 2:00 PM".into()];
        c.booking_link = Some("https://cal.example.com/acme".into());
        let w = TemplateSuggester.suggest(&c).await.unwrap().unwrap();
        assert_eq!(
            w.text,
            "Thanks Ana! Would Tue Dec 8, 10:00 AM or Wed Dec 9, 2:00 PM work for a quick call? Or pick any time here: https://cal.example.com/acme\n- Sabrina"
        );
        assert_eq!(w.source, "template:closer");
        // A "no" is not answered with times.
        let mut no = c.clone();
        no.classification = Classification::Negative;
        let w = TemplateSuggester.suggest(&no).await.unwrap().unwrap();
        assert!(w.text.starts_with("Understood, Ana"), "{}", w.text);
    }

    #[tokio::test]
    async fn follow_ups_by_stage_with_a_final_attempt() {
        let mut c =
            ctx(Classification::Neutral, Some("Ana"), &[("template.follow_up.2", "Still there, {{firstName}}?")]);
        c.follow_up = Some((1, false));
        let w = TemplateSuggester.suggest(&c).await.unwrap().unwrap();
        assert!(w.text.starts_with("Hi Ana, just checking back in"), "{}", w.text);
        assert_eq!((w.source.as_str(), w.confidence), ("template:follow_up.1", Some(100)));
        c.follow_up = Some((2, false));
        assert_eq!(TemplateSuggester.suggest(&c).await.unwrap().unwrap().text, "Still there, Ana?");
        c.follow_up = Some((3, true));
        let w = TemplateSuggester.suggest(&c).await.unwrap().unwrap();
        assert!(w.text.contains("last note"), "{}", w.text);
        assert_eq!(w.source, "template:follow_up.final");
    }
}
