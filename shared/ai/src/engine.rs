//! Routing a reply to a worker, writing its suggestion, and sending what a worker's policy
//! lets out on its own (after its delay, inside its active hours, within its caps).

use chrono::{DateTime, Duration, Utc};
use nextier_domain::ai::{self, RouteFacts, Routed};
use nextier_domain::ids::{ContactId, InboxItemId, SuggestionId, TeamId, WorkerId};
use nextier_domain::inbox::Classification;
use nextier_platform::ports::suggester::{Context, Persona, PromptTemplate, Written};
use nextier_store::ai::{self as store, New, Suggestion, SuggestionStatus};
use nextier_store::workers::{self, Worker};
use nextier_store::{contacts, inbox, messages, scope, settings, Scope, StoreError, Tx};

use crate::suggest::{self, Auto, SendError, SETTINGS_SCOPE};
use crate::{intelligence, Ai};

/// The team's zone for its workers' hours.
pub async fn zone(tx: &Tx<'_>) -> Result<ai::Tz, StoreError> {
    let s = settings::strings_in(tx, SETTINGS_SCOPE).await?;
    Ok(ai::zone(s.get("time_zone").map(String::as_str)))
}

/// The worker a reply goes to: the one already chosen for the item, else by routing, with the
/// decision recorded. `None` when the team has no active worker for it.
pub async fn route(tx: &Tx<'_>, team: &TeamId, item: &inbox::ItemView) -> Result<Option<Worker>, StoreError> {
    if let Some(earlier) = workers::routes_for_item(tx, &item.id).await?.into_iter().next() {
        return match earlier.worker_id {
            Some(w) => match workers::get(tx, &WorkerId::from_trusted(w)).await {
                Ok(w) => Ok(Some(w)),
                Err(StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        };
    }
    workers::ensure_defaults(tx, team).await?;
    let received_on = messages::get(tx, &item.message_id).await.ok().map(|m| m.to);
    let last_sender = workers::last_sender(tx, &item.contact_id).await?;
    let facts = RouteFacts {
        number_owner: match received_on {
            Some(n) => workers::owner_of_number(tx, &n).await?,
            None => None,
        },
        last_sender_nurtures: last_sender.as_ref().is_some_and(|w| w.fields.role == ai::Role::Nurture),
        last_sender,
        scheduling: ai::scheduling_intent(&item.response_text),
        exchanged: workers::exchanged(tx, &item.contact_id).await?,
    };
    let rules = ai::RoutingRules::from_settings(&settings::strings_in(tx, SETTINGS_SCOPE).await?);
    let (worker, reason, detail) = match ai::route(facts, rules) {
        Routed::Worker(w, reason, detail) => (Some(w), reason, detail),
        Routed::Role(role, reason, detail) => match workers::by_role(tx, role).await? {
            Some(w) => (Some(w), reason, detail),
            None => (None, reason, format!("{detail}; the team has no active {role} worker")),
        },
    };
    workers::record_route(tx, team, &item.id, &item.contact_id, worker.as_ref().map(|w| &w.id), reason, &detail)
        .await?;
    Ok(worker)
}

pub fn persona(w: &Worker) -> Persona {
    Persona {
        name: w.fields.name.clone(),
        role: w.fields.role.as_str().to_owned(),
        persona: w.fields.persona.clone(),
        tone: w.fields.tone.clone(),
        goal: w.fields.goal.clone(),
        industry: w.fields.industry.clone(),
        faqs: w.fields.faqs.iter().map(|f| (f.question.clone(), f.answer.clone())).collect(),
        sign_off: w.fields.sign_off.clone(),
    }
}

/// The team's newest prompt for `key`, else for `fallback`.
pub async fn prompt(tx: &Tx<'_>, key: &str, fallback: &str) -> Result<Option<PromptTemplate>, StoreError> {
    let p = match workers::prompt_latest(tx, key).await? {
        Some(p) => Some(p),
        None => workers::prompt_latest(tx, fallback).await?,
    };
    Ok(p.map(|p| PromptTemplate {
        key: p.key,
        version: p.version,
        system: p.system_template,
        user: p.user_template,
        model: p.model,
        temperature: p.temperature,
    }))
}

/// The last ten messages with a contact, oldest first.
pub async fn conversation(tx: &Tx<'_>, contact: &ContactId) -> Result<Vec<(String, String)>, StoreError> {
    let page = nextier_domain::page::PageRequest { after: None, limit: 10 };
    let mut c: Vec<(String, String)> =
        messages::thread(tx, contact, &page).await?.into_iter().take(10).map(|m| (m.direction, m.body)).collect();
    c.reverse();
    Ok(c)
}

/// When a suggestion of `worker` for a class at `confidence` goes out on its own, or why it
/// waits for a person (`None` note: the worker never auto-sends).
pub fn plan(
    w: &Worker,
    zone: ai::Tz,
    class: &str,
    confidence: Option<u8>,
    now: DateTime<Utc>,
    roll: f64,
) -> Result<DateTime<Utc>, Option<String>> {
    if w.fields.auto_send == ai::AutoSend::Never {
        return Err(None);
    }
    if !w.fields.active {
        return Err(Some(format!("{} is paused; a person decides", w.fields.name)));
    }
    let Some(confidence) = confidence else {
        return Err(Some("the writer could not say how sure it is (a fallback); a person decides".into()));
    };
    ai::auto_decision(&w.policy(), class, confidence).map_err(Some)?;
    let delay = (w.fields.response_delay.min_seconds.max(0) as u32, w.fields.response_delay.max_seconds.max(0) as u32);
    ai::send_after(now, &w.hours(zone), delay, roll)
        .ok_or_else(|| Some(format!("{} has no active hours; a person decides", w.fields.name)))
}

/// Writes a suggestion for an inbox item (the model runs outside any transaction), routed to
/// its worker. `None` when the item needs no reply. `auto`: the queue's job, whose suggestion
/// the worker's policy may send; a person's request (`false`) is never sent on its own. An
/// item already answered (approved, edited or auto-sent) gets that suggestion back; the job
/// writes nothing for an item a person processed or whose suggestion a person rejected.
pub async fn suggest_for_item(
    ai: &Ai,
    team: &TeamId,
    item: &InboxItemId,
    auto: bool,
) -> anyhow::Result<Option<(Suggestion, bool)>> {
    let now = ai.clock.now();
    let mut conn = ai.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let it = inbox::get(&tx, item).await?;
    let Some(classification) = Classification::ALL.into_iter().find(|c| c.as_str() == it.classification) else {
        return Ok(None);
    };
    if !suggest::needs_reply(classification) {
        return Ok(None);
    }
    // One waiting suggestion per item: do not pay a model for a second; and an answered item
    // is not answered again.
    let earlier = store::for_item(&tx, item).await?;
    if let Some(s) = earlier.iter().find(|s| s.status != SuggestionStatus::Rejected) {
        return Ok(Some((s.clone(), false)));
    }
    if auto && (!earlier.is_empty() || it.processed_at.is_some()) {
        return Ok(None);
    }
    let worker = route(&tx, team, &it).await?;
    let contact = contacts::get(&tx, &it.contact_id).await?;
    let zone = zone(&tx).await?;
    let settings = settings::strings_in(&tx, SETTINGS_SCOPE).await?;
    let role = worker.as_ref().map(|w| w.fields.role.as_str()).unwrap_or("opener");
    let (proposals, booking_link) = if role == "closer" {
        crate::closer::offer(&settings::strings_in(&tx, crate::closer::SETTINGS_SCOPE).await?, zone, now)
    } else {
        (vec![], None)
    };
    let ctx = Context {
        first_name: contact.first_name.clone(),
        classification,
        classification_confidence: it.confidence.clamp(0, 100) as u8,
        text: it.response_text.clone(),
        conversation: conversation(&tx, &it.contact_id).await?,
        settings,
        worker: worker.as_ref().map(persona),
        prompt: prompt(&tx, &format!("reply.{role}"), "reply").await?,
        follow_up: None,
        proposals,
        booking_link,
    };
    tx.commit().await?;
    // Nor any connection: several suggestions may wait on a slow model at once.
    drop(conn);
    let Some(w) = ai.suggester.suggest(&ctx).await? else { return Ok(None) };
    let class = classification.key();
    store_written(ai, team, &w, Target::Reply(item, &it.contact_id), worker.as_ref(), &class, auto, now).await
}

/// What a suggestion answers.
pub enum Target<'a> {
    Reply(&'a InboxItemId, &'a ContactId),
    /// A cadence's follow-up: the stage it writes, and when the one after is due (`None`: the
    /// last). The cadence advances in the transaction that stores it, and only from the stage
    /// before, so two ticks of one cadence never store two follow-ups.
    FollowUp {
        nurture: &'a nextier_domain::ids::NurtureId,
        contact: &'a ContactId,
        stage: i32,
        next: Option<DateTime<Utc>>,
    },
}

/// Stores what a suggester wrote, with its plan (when it goes out on its own, or why it waits),
/// and logs it. Older auto-sends to the same lead are held: a newer reply changes what to say.
/// `auto` false (a person asked for it) never schedules it. `None`: nothing was kept (the
/// cadence ended or moved on meanwhile).
#[allow(clippy::too_many_arguments)]
pub async fn store_written(
    ai: &Ai,
    team: &TeamId,
    w: &Written,
    target: Target<'_>,
    worker: Option<&Worker>,
    class: &str,
    auto: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(Suggestion, bool)>> {
    let text: String = w.text.trim().chars().take(1600).collect();
    if text.is_empty() {
        anyhow::bail!("the suggester wrote nothing");
    }
    let mut conn = ai.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let (item, nurture, contact) = match &target {
        Target::Reply(i, c) => (Some(*i), None, *c),
        Target::FollowUp { nurture, contact, .. } => (None, Some(*nurture), *contact),
    };
    // A reply may have ended the cadence while the model wrote, or another tick stored this
    // stage already: then nothing is kept.
    if let Target::FollowUp { nurture, stage, .. } = &target {
        let n = nextier_store::nurtures::lock(&tx, nurture).await?;
        if n.status != "active" || n.stage != stage - 1 || n.next_at.is_none_or(|at| at > now) {
            return Ok(None);
        }
    }
    let zone = zone(&tx).await?;
    let roll: f64 = rand::random();
    let mut planned = match worker {
        _ if !auto => Err(None),
        Some(wk) => plan(wk, zone, class, w.confidence, now, roll),
        None => Err(Some("no worker for this reply; a person decides".into())),
    };
    // Only the lead's latest message is answered on its own: a slower model finishing an older
    // reply's suggestion must not overtake the newer one.
    if let (Some(i), Ok(_)) = (item, &planned) {
        if !inbox::is_latest_for_contact(&tx, i, contact).await? {
            planned = Err(Some("a newer message from the lead arrived; a person decides".into()));
        }
    }
    let (send_after, plan_note) = match planned {
        Ok(at) => (Some(at), None),
        Err(note) => (None, note),
    };
    let note = match (&w.note, &plan_note) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.clone().or(b.clone()),
    };
    let new = New {
        item,
        nurture,
        contact: Some(contact),
        text: &text,
        source: &w.source,
        worker: worker.map(|w| &w.id),
        classification: Some(class),
        confidence: w.confidence.map(i16::from),
        prompt: w.prompt.as_ref().map(|(k, v)| (k.as_str(), *v)),
        note: note.as_deref(),
        send_after,
    };
    let (s, created) = store::create(&tx, team, &new).await?;
    if created {
        store::hold_others(&tx, contact, &s.id, "a newer message from the lead arrived; a person decides").await?;
        let event = if w.confidence.is_none() { "fallback" } else { "suggested" };
        let detail = match &s.note {
            Some(n) => format!("{}: {n}", s.source),
            None => s.source.clone(),
        };
        let wk = worker.map(|w| w.id.as_str());
        workers::log_event(&tx, team, wk, Some(contact), Some(&s.id), event, "neutral", Some(&detail)).await?;
        if let Target::FollowUp { nurture, stage, next, .. } = &target {
            nextier_store::nurtures::advance(&tx, nurture, *stage, *next).await?;
        }
    }
    tx.commit().await?;
    Ok(Some((s, created)))
}

/// What [`send_due`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    Sent(String),
    /// Later: outside active hours, or a cap reached (the new time is set).
    Postponed(DateTime<Utc>, String),
    /// It waits for a person now (the policy changed, the worker was paused, the gate refused).
    Held(String),
    /// Nothing to do (decided, held, or not yet due).
    Nothing(String),
}

/// Sends an auto-send suggestion whose time has come, re-checking everything first: the
/// worker's current policy, its active hours and its caps. A provider failure is an error
/// (the job is retried with the same send key).
pub async fn send_due(ai: &Ai, team: &TeamId, id: &SuggestionId) -> anyhow::Result<Due> {
    let now = ai.clock.now();
    let mut conn = ai.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let s = store::lock(&tx, id).await?;
    if s.status == SuggestionStatus::AutoSent {
        // The provider failed it before: deliver that same message again.
        tx.commit().await?;
        drop(conn);
        return resend(ai, team, &s).await;
    }
    if s.status != SuggestionStatus::Pending {
        return Ok(Due::Nothing(format!("already {}", s.status)));
    }
    let Some(at) = s.send_after else { return Ok(Due::Nothing("waits for a person".into())) };
    if at > now {
        return Ok(Due::Nothing(format!("due at {}", at.to_rfc3339())));
    }
    let Some(worker_id) = s.worker_id.clone() else {
        store::hold(&tx, id, "no worker; a person decides").await?;
        tx.commit().await?;
        return Ok(Due::Held("no worker".into()));
    };
    let w = match workers::get(&tx, &WorkerId::from_trusted(worker_id)).await {
        Ok(w) => w,
        Err(StoreError::NotFound) => {
            store::hold(&tx, id, "the worker was deleted; a person decides").await?;
            tx.commit().await?;
            return Ok(Due::Held("the worker was deleted".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let zone = zone(&tx).await?;
    let class = s.classification.clone().unwrap_or_default();
    let confidence = s.confidence.map(|c| c.clamp(0, 100) as u8);
    // The policy as it is now: a change since the suggestion was written counts.
    let decision = match plan(&w, zone, &class, confidence, now, 0.0) {
        Ok(_) => ai::auto_decision(&w.policy(), &class, confidence.unwrap_or(0)).map_err(Some),
        Err(e) => Err(e),
    };
    let reason = match decision {
        Ok(reason) => reason,
        Err(note) => {
            let note = note.unwrap_or_else(|| format!("policy v{}: a person decides", w.policy_version));
            store::hold(&tx, id, &note).await?;
            workers::log_event(
                &tx,
                team,
                Some(w.id.as_str()),
                Some(&s.contact_id),
                Some(id),
                "held",
                "neutral",
                Some(&note),
            )
            .await?;
            tx.commit().await?;
            return Ok(Due::Held(note));
        }
    };
    let hours = w.hours(zone);
    if !hours.is_open(now) {
        let next = hours.next_open(now).unwrap_or(now + Duration::days(1));
        let note = format!("outside {}'s active hours", w.fields.name);
        store::postpone(&tx, id, next, &note).await?;
        tx.commit().await?;
        return Ok(Due::Postponed(next, note));
    }
    let (today, lead_today) = workers::sent_since(&tx, &w.id, &s.contact_id, hours.day_start(now)).await?;
    let capped = if today >= i64::from(w.fields.daily_cap) {
        Some(format!("{}'s daily cap of {} is reached", w.fields.name, w.fields.daily_cap))
    } else if lead_today >= i64::from(w.fields.per_lead_cap) {
        Some(format!("{}'s cap of {} a day for this lead is reached", w.fields.name, w.fields.per_lead_cap))
    } else {
        None
    };
    if let Some(note) = capped {
        let tomorrow = hours.day_start(now) + Duration::hours(26);
        let next = hours.next_open(hours.day_start(tomorrow)).unwrap_or(tomorrow);
        store::postpone(&tx, id, next, &note).await?;
        tx.commit().await?;
        return Ok(Due::Postponed(next, note));
    }
    tx.commit().await?;
    drop(conn);
    let auto = Auto {
        policy_version: w.policy_version,
        reason,
        daily_cap: i64::from(w.fields.daily_cap),
        per_lead_cap: i64::from(w.fields.per_lead_cap),
        day_start: hours.day_start(now),
    };
    let actor = format!("ai:{}", w.key);
    let (note, later) = match suggest::send(&ai.db, &ai.gate, team, id, None, Some(&auto), &actor, now).await {
        Ok((_, message)) => return Ok(Due::Sent(message.to_string())),
        Err(SendError::Refused(reason)) => (format!("the gate did not send it ({reason}); a person decides"), None),
        // The lead's quiet hours or a rate limit: it goes when the gate allows.
        Err(SendError::Deferred { until, reason }) => (format!("the gate deferred it ({reason})"), Some(until)),
        // Held, re-planned or capped meanwhile: the next run sees it as it is now.
        Err(SendError::Stale(m)) | Err(SendError::Store(StoreError::Conflict(m))) => return Ok(Due::Nothing(m)),
        Err(SendError::Store(StoreError::NotFound)) => ("the lead was deleted".into(), None),
        Err(e) => return Err(anyhow::anyhow!(e)),
    };
    let mut conn = ai.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let out = match later {
        Some(until) => {
            store::postpone(&tx, id, until, &note).await?;
            Due::Postponed(until, note)
        }
        None => {
            store::hold(&tx, id, &note).await?;
            let (w, c) = (Some(w.id.as_str()), Some(&s.contact_id));
            workers::log_event(&tx, team, w, c, Some(id), "held", "neutral", Some(&note)).await?;
            Due::Held(note)
        }
    };
    tx.commit().await?;
    Ok(out)
}

async fn resend(ai: &Ai, team: &TeamId, s: &Suggestion) -> anyhow::Result<Due> {
    let policy = s.log.as_ref().and_then(|l| l.policy_version).unwrap_or(0);
    // The same message again (same key and text): its caps were taken when it was recorded.
    let auto = Auto {
        policy_version: policy,
        reason: "retry".into(),
        daily_cap: i64::MAX,
        per_lead_cap: i64::MAX,
        day_start: ai.clock.now(),
    };
    let actor = s.log.as_ref().map(|l| l.actor.clone()).unwrap_or_else(|| "ai:auto".into());
    match suggest::send(&ai.db, &ai.gate, team, &s.id, None, Some(&auto), &actor, ai.clock.now()).await {
        Ok((_, m)) => Ok(Due::Sent(m.to_string())),
        Err(SendError::Store(StoreError::Conflict(m))) | Err(SendError::Refused(m)) | Err(SendError::Stale(m)) => {
            Ok(Due::Nothing(m))
        }
        Err(SendError::Deferred { reason, .. }) => Ok(Due::Nothing(reason)),
        Err(e) => Err(anyhow::anyhow!(e)),
    }
}

/// The AI queue's `Suggest` job: write the item's suggestion and, when its worker's policy
/// sends it at once (no delay, inside active hours), send it. A retry after the provider
/// failed an auto-sent suggestion delivers that one again (same key), never a second.
pub async fn suggest_job(ai: &Ai, team: &TeamId, item: &InboxItemId) -> anyhow::Result<(Option<Suggestion>, Due)> {
    let earlier = {
        let mut conn = ai.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        store::for_item(&tx, item).await?
    };
    if let Some(prev) = earlier.iter().find(|s| s.status == SuggestionStatus::AutoSent) {
        return Ok((Some(prev.clone()), resend(ai, team, prev).await?));
    }
    let Some((s, created)) = suggest_for_item(ai, team, item, true).await? else {
        return Ok((None, Due::Nothing("no suggestion for this item".into())));
    };
    let due = match s.send_after {
        Some(at) if created && at <= ai.clock.now() => send_due(ai, team, &s.id).await?,
        Some(at) => Due::Nothing(format!("sends on its own at {}", at.to_rfc3339())),
        None => Due::Nothing(s.note.clone().unwrap_or_else(|| "waits for a person".into())),
    };
    Ok((Some(s), due))
}

/// What a reply does to the AI side, in the reply's transaction: the lead's cadence ends
/// (handed to the closer when the reply asks for a time), waiting auto-sends are held, and the
/// worker that wrote the last message gets the outcome in the intelligence log.
pub async fn on_reply(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    class: Classification,
    text: &str,
) -> Result<(), StoreError> {
    let gone = matches!(class, Classification::DncRequest | Classification::WrongNumber);
    let (status, reason) = if gone {
        ("stopped", if class == Classification::DncRequest { "opted out" } else { "wrong number" })
    } else if ai::scheduling_intent(text) {
        ("handed_over", "the lead asked for a time: the closer takes over")
    } else {
        ("stopped", "the lead replied")
    };
    if let Some(n) = nextier_store::nurtures::end_for_contact(tx, contact, status, reason).await? {
        let event = if status == "handed_over" { "handed_over" } else { "replied" };
        workers::log_event(tx, team, Some(n.worker_id.as_str()), Some(contact), None, event, "neutral", Some(reason))
            .await?;
    }
    store::hold_contact(tx, contact, "a newer message from the lead arrived; a person decides").await?;
    intelligence::replied(tx, team, contact, class).await
}
