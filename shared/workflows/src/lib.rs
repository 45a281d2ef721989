//! Running workflows (issue 18). The bus's events reach the `workflow-events` queue through an
//! EventBridge rule (locally the bus routes them itself); [`Engine::on_event`] starts each
//! matching workflow of the event's team on each contact the event is about, once per
//! (workflow, event, contact), and runs its actions in order in the same transaction, each
//! recorded. A `wait` leaves the run `waiting`; the timer ([`Engine::timer`], every minute)
//! wakes due runs and starts the "no reply in N days" workflows. An action's own events carry
//! the chain of workflows that led to them, so a chain that comes back to a workflow, or runs
//! longer than `MAX_DEPTH`, is stopped and recorded as a loop.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use nextier_domain::campaign::{CampaignStatus, Delay};
use nextier_domain::ids::{CampaignId, ContactId, ImportId, InboxItemId, OutboxId, TeamId};
use nextier_domain::inbox::Bucket;
use nextier_domain::lead_state::LeadState;
use nextier_domain::workflow::{self as rules, Action, Conditions, ContactFacts, Trigger};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::Clock;
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::outbox::{self, Destination};
use nextier_store::workflows::{self as store, Workflow};
use nextier_store::{campaigns, contacts, scope, Db, Scope, StoreError, Tx};
use serde::Deserialize;
use serde_json::{json, Value};

pub const QUEUE: &str = nextier_domain::workflow::QUEUE;
/// The workflow consumer: events one at a time per message, retried, then the DLQ.
pub const CONSUMER: nextier_runtime::serve::QueueConsumer = nextier_runtime::serve::QueueConsumer {
    queue: QUEUE,
    batch_size: 10,
    visibility_secs: 720,
    max_receives: 5,
    concurrency: 2,
};
/// The timer: due waits and "no reply" workflows, every minute.
pub const TIMER: nextier_runtime::serve::ScheduledJob =
    nextier_runtime::serve::ScheduledJob { name: "workflow-timer", every_secs: 60 };
/// An import's contacts are started a page at a time, each page its own transaction.
const PAGE: i64 = 200;

#[derive(Clone)]
pub struct Engine {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Publishes what the actions staged right after commit (else the sweeper does).
    pub publisher: Option<OutboxPublisher>,
}

impl Engine {
    /// As deployed: the worker role, the system clock, the platform's queue and bus.
    pub async fn from_env() -> anyhow::Result<Self> {
        let db = Db::worker_from_env()?;
        let platform = nextier_platform::wiring::Platform::from_env(&db).await;
        Ok(Engine {
            publisher: Some(platform.outbox(&db)),
            clock: Arc::new(nextier_platform::ports::clock::SystemClock),
            db,
        })
    }
}

/// A bus event as EventBridge delivers it to the queue (the outbox's detail inside).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: Detail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub outbox_id: String,
    pub team_id: Option<TeamId>,
    #[serde(default)]
    pub data: Value,
}

/// A workflow as it runs: its definition parsed.
struct Parsed {
    row: Workflow,
    trigger: Trigger,
    conditions: Conditions,
    actions: Vec<Action>,
}

fn parse(row: Workflow) -> Option<Parsed> {
    let trigger = serde_json::from_value(row.trigger.clone()).ok()?;
    let conditions = serde_json::from_value(row.conditions.clone()).ok()?;
    let actions = serde_json::from_value(row.actions.clone()).ok()?;
    Some(Parsed { row, trigger, conditions, actions })
}

/// What the engine did with an event or a wake-up.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub started: usize,
    pub already: usize,
    pub stopped: usize,
    #[serde(skip)]
    pub staged: Vec<OutboxId>,
}

impl Engine {
    /// Starts the team's workflows this event triggers, on each of its contacts: an import's
    /// contacts a page at a time, each page committed (a redelivery skips what is done).
    pub async fn on_event(&self, detail_type: &str, detail: &Detail) -> anyhow::Result<Summary> {
        let Some(team) = detail.team_id.clone() else { return Ok(Summary::default()) };
        let mut summary = Summary::default();
        let mut conn = self.db.conn().await?;
        let flows: Vec<Parsed> = {
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            store::for_event(&tx, detail_type)
                .await?
                .into_iter()
                .filter_map(parse)
                .filter(|w| w.trigger.matches(detail_type, &detail.data))
                .collect()
        };
        if flows.is_empty() {
            return Ok(summary);
        }
        let chain = rules::chain(&detail.data);
        let event = json!({"type": detail_type, "data": detail.data});
        let import = (detail_type == "ImportCompleted")
            .then(|| detail.data.get("importId").and_then(Value::as_str).map(|s| ImportId::from_trusted(s.to_owned())))
            .flatten();
        let mut after: Option<ContactId> = None;
        loop {
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let people = match &import {
                Some(import) => store::import_contacts(&tx, import, after.as_ref(), PAGE).await?,
                None => contacts_of(&tx, &detail.data).await?,
            };
            for w in &flows {
                for contact in &people {
                    let key = format!("{}:{contact}", detail.outbox_id);
                    self.start(&tx, &team, w, &key, contact, &event, &chain, &mut summary).await?;
                }
            }
            tx.commit().await?;
            self.publish(&std::mem::take(&mut summary.staged)).await;
            if import.is_none() || (people.len() as i64) < PAGE {
                return Ok(summary);
            }
            after = people.last().cloned();
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        w: &Parsed,
        key: &str,
        contact: &ContactId,
        event: &Value,
        chain: &[String],
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        let facts = match contacts::get(tx, contact).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        // A loop or a deleted contact: recorded (once) as stopped, nothing done.
        let stop = rules::loop_stop(chain, &w.row.id)
            .or_else(|| facts.is_none().then(|| "the contact is deleted; nothing was done".to_owned()));
        if let Some(why) = stop {
            if store::start_run(tx, team, &w.row.id, key, contact, event, chain, "stopped", Some(&why)).await?.is_some()
            {
                tracing::warn!(workflow = %w.row.id, contact = %contact, reason = %why, "workflow stopped");
                summary.stopped += 1;
            } else {
                summary.already += 1;
            }
            return Ok(());
        }
        let c = facts.expect("checked above");
        let f = ContactFacts { score: c.score, tags: c.tags.clone(), lead_state: c.lead_state.as_str().to_owned() };
        if !w.conditions.hold(&f, |field| campaigns::merge_value(&c, None, field)) {
            return Ok(());
        }
        let Some(run) = store::start_run(tx, team, &w.row.id, key, contact, event, chain, "running", None).await?
        else {
            summary.already += 1;
            return Ok(());
        };
        summary.started += 1;
        let mut next_chain = chain.to_vec();
        next_chain.push(w.row.id.clone());
        self.execute(tx, team, w, &run, contact, event, &next_chain, 0, summary).await
    }

    /// Runs the actions from `from` until the end, a wait or a failure.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        w: &Parsed,
        run: &str,
        contact: &ContactId,
        event: &Value,
        chain: &[String],
        from: usize,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        for (i, action) in w.actions.iter().enumerate().skip(from) {
            let idx = i as i32;
            if let Action::Wait { hours, business_days } = action {
                let wake = match (hours, business_days) {
                    (Some(h), _) => now + chrono::Duration::hours(*h),
                    (_, Some(d)) => Delay::BusinessDays(*d as u32).after(now),
                    _ => now,
                };
                store::record_step(
                    tx,
                    team,
                    run,
                    idx,
                    action.kind(),
                    "waiting",
                    &format!("until {}", wake.to_rfc3339()),
                    now,
                )
                .await?;
                store::set_run(tx, run, "waiting", idx + 1, Some(wake), None).await?;
                return Ok(());
            }
            match self.act(tx, team, w, run, idx, contact, event, chain, action, summary).await? {
                Ok((status, detail)) => {
                    store::record_step(tx, team, run, idx, action.kind(), status, &detail, now).await?
                }
                Err(why) => {
                    store::record_step(tx, team, run, idx, action.kind(), "failed", &why, now).await?;
                    store::set_run(tx, run, "failed", idx, None, Some(&why)).await?;
                    return Ok(());
                }
            }
        }
        store::set_run(tx, run, "done", w.actions.len() as i32, None, None).await?;
        Ok(())
    }

    /// One action: `Ok(Ok((done|skipped, detail)))`, or `Ok(Err(why))` for a failure a person
    /// can retry (nothing of it was written).
    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        w: &Parsed,
        run: &str,
        idx: i32,
        contact: &ContactId,
        event: &Value,
        chain: &[String],
        action: &Action,
        summary: &mut Summary,
    ) -> anyhow::Result<Result<(&'static str, String), String>> {
        let actor = format!("workflow:{}", w.row.id);
        let now = self.clock.now();
        let c = match contacts::get(tx, contact).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Ok(Ok(("skipped", "the contact is deleted".into()))),
            Err(e) => return Err(e.into()),
        };
        let stage = |kind: &str, data: Value| {
            let mut data = data;
            data["workflowChain"] = json!(chain);
            outbox::stage_for_team(tx, team, Destination::Event(kind.into()), data, correlation())
        };
        Ok(Ok(match action {
            Action::AddTag { tag } => {
                let added = tx
                    .execute(
                        "UPDATE contacts SET tags = array_append(tags, $2), updated_at = now()
                          WHERE id = $1 AND deleted_at IS NULL
                            AND NOT EXISTS (SELECT 1 FROM unnest(tags) t WHERE lower(t) = lower($2))",
                        &[&contact.as_str(), &tag.trim()],
                    )
                    .await?;
                if added == 0 {
                    ("skipped", format!("already tagged {tag}"))
                } else {
                    summary
                        .staged
                        .push(stage("ContactTagged", json!({"contactId": contact, "tag": tag.trim()})).await?);
                    ("done", format!("tagged {tag}"))
                }
            }
            Action::RemoveTag { tag } => {
                let n = tx
                    .execute(
                        "UPDATE contacts SET tags = coalesce(ARRAY(SELECT t FROM unnest(tags) t WHERE lower(t) <> lower($2)), '{}'),
                                updated_at = now()
                          WHERE id = $1 AND EXISTS (SELECT 1 FROM unnest(tags) t WHERE lower(t) = lower($2))",
                        &[&contact.as_str(), &tag.trim()],
                    )
                    .await?;
                if n == 0 {
                    ("skipped", format!("not tagged {tag}"))
                } else {
                    ("done", format!("untagged {tag}"))
                }
            }
            Action::SetLeadState { to } => {
                let Ok(to) = to.parse::<LeadState>() else { return Ok(Err(format!("{to} is not a lead state"))) };
                if c.lead_state == to {
                    ("skipped", format!("already {}", to.as_str()))
                } else if !c.lead_state.can_move_to(to) {
                    ("skipped", format!("a lead cannot move from {} to {}", c.lead_state.as_str(), to.as_str()))
                } else {
                    let (from, to) = match contacts::transition(tx, team, contact, to, Some("a workflow"), &actor).await
                    {
                        Ok(moved) => moved,
                        Err(StoreError::Conflict(why)) => return Ok(Ok(("skipped", why))),
                        Err(e) => return Err(e.into()),
                    };
                    if let Some(exit) = nextier_domain::campaign::exit_reason_for(to) {
                        campaigns::exit_contact(tx, contact, exit).await?;
                    }
                    summary.staged.push(
                        stage("ContactLeadStateChanged", json!({"contactId": contact, "from": from, "to": to})).await?,
                    );
                    ("done", format!("{} → {}", from.as_str(), to.as_str()))
                }
            }
            Action::MoveInboxItem { to } => {
                let Some(bucket) = Bucket::parse(to) else { return Ok(Err(format!("{to} is not a bucket"))) };
                let item = match event["data"].get("inboxItemId").or_else(|| event["data"].get("itemId")) {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => latest_open_item(tx, contact).await?,
                };
                match item {
                    None => ("skipped", "the contact has no open inbox item".into()),
                    Some(item) => {
                        let id = InboxItemId::from_trusted(item);
                        let moved = nextier_store::inbox::move_in_chain(
                            tx,
                            team,
                            &id,
                            bucket,
                            &actor,
                            Some("a workflow"),
                            now,
                            chain,
                        )
                        .await;
                        match moved {
                            Ok(before) if before.bucket == bucket.as_str() => {
                                ("skipped", format!("already in {}", bucket.as_str()))
                            }
                            Ok(before) => ("done", format!("{} → {}", before.bucket, bucket.as_str())),
                            Err(StoreError::NotFound) => ("skipped", "the inbox item is gone".into()),
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
            Action::PushToCallQueue { reason } => match nextier_outbound::number_to_queue(tx, team, &c, now).await? {
                Err(why) => ("skipped", format!("not queued: {why}")),
                Ok(phone) => {
                    let why = reason.clone().unwrap_or_else(|| format!("workflow {}", w.row.name));
                    let push = nextier_store::calls::Push {
                        contact,
                        phone: &phone,
                        priority: 500,
                        reason: &why,
                        source: &actor,
                        max_attempts: 3,
                    };
                    let (entry, new) = nextier_store::calls::push(tx, team, &push).await?;
                    ("done", if new { format!("queued {}", entry.id) } else { format!("already queued {}", entry.id) })
                }
            },
            Action::Notify { message } => {
                let name = [c.first_name.as_deref(), c.last_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let job = nextier_inbound::notify::MailJob {
                    team_id: team.to_string(),
                    key: format!("workflow:{run}:{idx}"),
                    subject: format!("{}: {}", w.row.name, if name.is_empty() { contact.to_string() } else { name }),
                    text: format!("{message}\n\nContact: {contact}\nWorkflow: {} ({})", w.row.name, w.row.id),
                };
                summary.staged.push(
                    outbox::stage_for_team(
                        tx,
                        team,
                        Destination::Queue(nextier_inbound::notify::QUEUE.into()),
                        serde_json::to_value(&job)?,
                        correlation(),
                    )
                    .await?,
                );
                ("done", "mailed the team's owners and admins".into())
            }
            Action::EnrolInCampaign { campaign_id } => {
                let id = CampaignId::from_trusted(campaign_id.clone());
                let campaign = match campaigns::get(tx, &id).await {
                    Ok(c) => c,
                    Err(StoreError::NotFound) => return Ok(Err(format!("no campaign {campaign_id} in this team"))),
                    Err(e) => return Err(e.into()),
                };
                if !matches!(campaign.status, CampaignStatus::Approved | CampaignStatus::Running) {
                    return Ok(Err(format!(
                        "campaign {campaign_id} is {:?}: a workflow enrols only into an approved or running campaign",
                        campaign.status
                    )));
                }
                let steps = campaigns::steps(tx, &id).await?;
                let required = nextier_campaigns::staging::required_fields(&steps);
                let required: Vec<&str> = required.iter().map(String::as_str).collect();
                let exclusive = !nextier_store::settings::flag(
                    tx,
                    nextier_campaigns::team_rules::SCOPE,
                    nextier_campaigns::team_rules::ALLOW_OVERLAP,
                )
                .await?;
                let ids = [contact.clone()];
                let rules = campaigns::EnrolRules {
                    team,
                    campaign: &id,
                    required_fields: &required,
                    exclusive,
                    first_run_at: Some(steps.first().map(|s| s.delay.after(now)).unwrap_or(now)),
                    actor: &actor,
                };
                let out = campaigns::enrol(tx, contacts::Selection::Ids(&ids), &rules).await?;
                match out.skipped.first() {
                    Some(s) => ("skipped", format!("not enrolled: {}", s.reason)),
                    None => ("done", format!("enrolled in {}", campaign.name)),
                }
            }
            Action::Wait { .. } => ("done", String::new()),
        }))
    }

    /// Wakes due waiting runs and starts the timer-triggered workflows ("no reply in N days").
    pub async fn timer(&self, limit: i32) -> anyhow::Result<Summary> {
        let now = self.clock.now();
        let (due, timed) = {
            let mut conn = self.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::default()).await?;
            (store::due(&tx, now, limit).await?, store::timed(&tx).await?)
        };
        let mut summary = Summary::default();
        // Each run and each workflow on its own: one that fails is logged and left for the next
        // tick, never stopping the others.
        for (run, team) in due {
            if let Err(e) = self.resume_run(&team, &run, false, &mut summary).await {
                tracing::warn!(run = %run, error = %format!("{e:#}"), "workflow run not resumed; the next tick tries again");
            }
        }
        for (id, team) in timed {
            if let Err(e) = self.no_reply(&team, &id, now, limit, &mut summary).await {
                tracing::warn!(workflow = %id, error = %format!("{e:#}"), "no-reply workflow not run; the next tick tries again");
            }
        }
        self.publish(&summary.staged).await;
        Ok(summary)
    }

    /// Starts a "no reply in N days" workflow on the messages that went unanswered.
    async fn no_reply(
        &self,
        team: &TeamId,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
        limit: i32,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let w = match store::get(&tx, id).await {
            Ok(w) => w,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(w) = parse(w) else { return Ok(()) };
        let Trigger::NoReply { days } = w.trigger else { return Ok(()) };
        for (message, contact) in
            store::unanswered(&tx, &w.row.id, days, w.row.created_at, now, i64::from(limit)).await?
        {
            let event = json!({"type": "NoReply", "data": {"messageId": message, "contactId": contact, "days": days}});
            self.start(&tx, team, &w, &format!("noreply:{message}"), &contact, &event, &[], summary).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Continues a run: a due wait, or (by a person, `retry`) a failed step again.
    pub async fn resume_run(
        &self,
        team: &TeamId,
        run: &str,
        retry: bool,
        summary: &mut Summary,
    ) -> anyhow::Result<bool> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let Some(r) = store::lock_run(&tx, run).await? else { return Ok(false) };
        let ready =
            if retry { r.status == "failed" } else { r.status == "waiting" && r.wake_at <= Some(self.clock.now()) };
        if !ready {
            return Ok(false);
        }
        let Some(w) = parse(store::get(&tx, &r.workflow_id).await?) else { return Ok(false) };
        if !w.row.active {
            store::set_run(&tx, run, "stopped", r.next_action, None, Some("the workflow was turned off")).await?;
            tx.commit().await?;
            return Ok(true);
        }
        store::set_run(&tx, run, "running", r.next_action, None, None).await?;
        let mut chain = r.chain.clone();
        chain.push(w.row.id.clone());
        self.execute(&tx, team, &w, run, &r.contact_id, &r.event, &chain, r.next_action.max(0) as usize, summary)
            .await?;
        tx.commit().await?;
        self.publish(&summary.staged).await;
        Ok(true)
    }

    async fn publish(&self, staged: &[OutboxId]) {
        if let Some(p) = &self.publisher {
            p.publish(staged).await;
        }
    }
}

fn correlation() -> String {
    nextier_runtime::correlation::current().unwrap_or_default().to_string()
}

async fn latest_open_item(tx: &Tx<'_>, contact: &ContactId) -> Result<Option<String>, StoreError> {
    let rows = tx
        .query(
            "SELECT id FROM inbox_items WHERE contact_id = $1 AND processed_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
            &[&contact.as_str()],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The contact an event is about (an import's are paged by `on_event`).
async fn contacts_of(tx: &Tx<'_>, data: &Value) -> Result<Vec<ContactId>, StoreError> {
    let s = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(c) = s("contactId") {
        return Ok(vec![ContactId::from_trusted(c)]);
    }
    if let Some(item) = s("inboxItemId").or_else(|| s("itemId")) {
        let rows = tx.query("SELECT contact_id FROM inbox_items WHERE id = $1", &[&item]).await?;
        return Ok(rows.iter().filter_map(|r| r.get::<_, Option<String>>(0)).map(ContactId::from_trusted).collect());
    }
    Ok(vec![])
}

/// The `consumer-workflows` handler: each message is one bus event.
pub async fn handle(engine: &Engine, event: SqsEvent) -> SqsBatchResponse {
    process_batch(QUEUE, event, |m: Message| async move {
        let env: Envelope = match serde_json::from_str(&m.body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "dropping a message that is not a bus event");
                return Outcome::Done;
            }
        };
        match engine.on_event(&env.detail_type, &env.detail).await {
            Ok(s) => {
                tracing::info!(detail_type = %env.detail_type, started = s.started, already = s.already,
                               stopped = s.stopped, "workflow event");
                Outcome::Done
            }
            // A database or provider error: SQS retries, then the DLQ (nothing ran twice:
            // runs are unique per event and contact, and the transaction rolled back).
            Err(e) => Outcome::Retry(e),
        }
    })
    .await
}
