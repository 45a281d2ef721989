//! The campaign-sequence consumer: one message per (enrolment, step), handled a batch at a
//! time. A team's jobs in a batch share one transaction that locks their enrolments (in id
//! order), reads their contacts and suppressions (each send ordered after any opt-out that
//! committed first, as one at a time would be) and records their messages; their rate-limit
//! slots are reserved in one limiter call; they are delivered concurrently, each at its slot;
//! and their outcomes are settled in a second transaction. A duplicate delivery finds the
//! step already done and changes nothing.
//!
//! Pacing: with a queue to come back on, a text reserves its rate-limit slot up to
//! [`REQUEUE_WITHIN`] ahead (GCRA as a scheduler, in the batch's one limiter call). A slot
//! within [`nextier_outbound::RESERVE_AHEAD`] is waited for in-process; a later one sends the
//! step back on the queue, holding its slot, to arrive just before it. So a campaign at n a
//! minute sends n a minute, evenly, each step handled about once, and never over any bucket.
//! A step the gate defers by less than [`REQUEUE_WITHIN`] for another reason (quiet hours
//! about to end) also goes back on the queue with a delay and keeps its claim; a longer
//! deferral goes back to the tick.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Duration, Utc};
use futures::future::{join_all, try_join_all};
use nextier_domain::campaign::EnrolmentStatus;
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, TeamId};
use nextier_domain::sequence::{decide_contact, decide_enrolment, ContactDecision, EnrolmentDecision, EnrolmentFacts};
use nextier_domain::template::Template;
use nextier_platform::{OutgoingMessage, Queue};
use nextier_runtime::sqs::{process_whole_batch, Message, Outcome};
use nextier_store::campaigns::{self, Execution, Next, Work};
use nextier_store::contacts::Contact;
use nextier_store::{contacts, scope, Db, Scope, StoreError, Tx};
use serde::{Deserialize, Serialize};

use crate::gate::{Batched, Dispatch, FromCampaign, OutboundGate, OutboundRequest, Prepared, Verdict};
use nextier_platform::ports::clock::Clock;

use crate::SEQUENCE_QUEUE;

/// The queue message: everything needed to find the work, team id included (the original's
/// jobs carried none and were all rejected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequenceJob {
    pub team_id: TeamId,
    pub campaign_id: CampaignId,
    pub enrolment_id: EnrolmentId,
    pub step: i32,
    /// The rate-limit slot this step already holds (set when the consumer sends it back to
    /// wait for a slot it reserved): it goes then, without asking the limiter again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<DateTime<Utc>>,
}

/// What processing one message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// Already done, or the enrolment moved on or ended: nothing changed.
    Stale,
    /// The campaign is not running; the enrolment waits to be claimed again.
    Released,
    Sent {
        next: Next,
    },
    Deferred,
    Retrying,
    Ended {
        status: &'static str,
        reason: String,
    },
}

/// How many failed attempts a step gets before the enrolment is marked failed.
pub const MAX_FAILED_ATTEMPTS: i64 = 3;

/// A deferral shorter than this goes back on the queue with a delay (SQS delays reach 15
/// minutes); a longer one is left for the tick. With a queue to come back on, a step also
/// reserves its rate-limit slot up to this far ahead and comes back just before it.
pub const REQUEUE_WITHIN: Duration = Duration::minutes(10);

/// How long before its reserved slot a step comes back: SQS delays are whole seconds, so it
/// arrives one to two seconds early and waits the rest in-process (a step that came back
/// after its slot would reserve another).
const EARLY: Duration = Duration::seconds(3);

/// How long past its time a requeued step keeps its claim: if its queue message were lost,
/// a tick claims it again once this has passed.
const REQUEUE_GRACE: Duration = Duration::minutes(2);

pub struct Sequencer {
    pub db: Db,
    pub gate: Arc<dyn OutboundGate>,
    pub clock: Arc<dyn Clock>,
    /// Where short deferrals go back to (the campaign-sequence queue). `None`: every
    /// deferral waits for the tick.
    pub queue: Option<Arc<dyn Queue>>,
}

/// One job's place in the batch once its enrolment is locked.
struct Job<'a> {
    /// Its place in the batch.
    pos: usize,
    job: &'a SequenceJob,
    work: &'a Work,
    idx: usize,
    contact: Contact,
    subject: Option<String>,
    body: String,
    /// The opener-library variant the body was drawn from.
    opener: Option<String>,
}

impl Job<'_> {
    fn body_key(&self) -> String {
        send_key(self.work, self.idx)
    }

    fn base(&self, now: DateTime<Utc>) -> Execution<'_> {
        base(self.job, self.work, self.idx, now)
    }
}

fn base<'a>(job: &'a SequenceJob, work: &'a Work, idx: usize, now: DateTime<Utc>) -> Execution<'a> {
    Execution {
        team: &job.team_id,
        campaign: &work.campaign,
        enrolment: &work.enrolment,
        step: Some(&work.steps[idx].id),
        position: job.step,
        status: "skipped",
        reason: None,
        message: None,
        at: now,
    }
}

/// An attempt that ends the enrolment before the gate: its execution and where it goes.
struct Ending<'a> {
    job: &'a SequenceJob,
    work: &'a Work,
    idx: usize,
    /// The execution row's status and reason.
    status: &'static str,
    note: String,
    next: Next,
}

/// What became of a cleared text.
enum Delivery {
    Done(Result<nextier_outbound::Delivered, nextier_outbound::TransportError>),
    /// An opt-out or suppression came in while it waited for its slot: not sent.
    Stopped(String),
    /// Consent could not be checked again after the wait: not sent, tried again shortly.
    Unchecked(String),
}

/// A step to send back to the queue after the transaction commits, due at `at`.
struct Requeue {
    job: SequenceJob,
    at: DateTime<Utc>,
}

impl Sequencer {
    /// One job (a batch of one).
    pub async fn process(&self, job: &SequenceJob) -> anyhow::Result<Processed> {
        let mut out = self.process_team(&job.team_id, std::slice::from_ref(job)).await?;
        out.pop().ok_or_else(|| anyhow::anyhow!("no outcome"))
    }

    /// A batch, each team's jobs together (the teams side by side, so none waits behind
    /// another's rate-limit slots); one result per job, in order.
    pub async fn process_all(&self, jobs: &[SequenceJob]) -> Vec<anyhow::Result<Processed>> {
        let mut teams: Vec<&TeamId> = jobs.iter().map(|j| &j.team_id).collect();
        teams.sort();
        teams.dedup();
        let groups: Vec<(Vec<usize>, Vec<SequenceJob>)> = teams
            .into_iter()
            .map(|team| {
                jobs.iter().enumerate().filter(|(_, j)| &j.team_id == team).map(|(i, j)| (i, j.clone())).unzip()
            })
            .collect();
        let outcomes = join_all(groups.iter().map(|(_, group)| self.process_team(&group[0].team_id, group))).await;
        let mut results: Vec<Option<anyhow::Result<Processed>>> = jobs.iter().map(|_| None).collect();
        for ((idx, _), outcome) in groups.into_iter().zip(outcomes) {
            match outcome {
                Ok(out) => {
                    for (i, p) in idx.into_iter().zip(out) {
                        results[i] = Some(Ok(p));
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    for i in idx {
                        results[i] = Some(Err(anyhow::anyhow!("{msg}")));
                    }
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("no outcome")))).collect()
    }

    async fn process_team(&self, team: &TeamId, jobs: &[SequenceJob]) -> anyhow::Result<Vec<Processed>> {
        let now = self.clock.now();
        let mut out: Vec<Option<Processed>> = jobs.iter().map(|_| None).collect();
        let mut requeue: Vec<Requeue> = Vec::new();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;

        // Lock every enrolment of the batch at once, in id order.
        let ids: Vec<&EnrolmentId> = jobs.iter().map(|j| &j.enrolment_id).collect();
        let works: HashMap<EnrolmentId, Work> =
            campaigns::lock_work_all(&tx, &ids).await?.into_iter().map(|w| (w.enrolment.clone(), w)).collect();

        // What the enrolment alone decides; the rest need their contact.
        let mut seen = std::collections::HashSet::new();
        let mut live: Vec<(usize, &Work, usize)> = Vec::new();
        let mut settles: Vec<(EnrolmentId, Next)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let Some(work) = works.get(&job.enrolment_id) else {
                out[i] = Some(Processed::Stale);
                continue;
            };
            let idx = work.steps.iter().position(|s| s.position == job.step);
            let facts = EnrolmentFacts {
                active: work.status == EnrolmentStatus::Active,
                at_the_jobs_step: work.campaign == job.campaign_id && work.current_step == job.step,
                // The same step twice in one batch (a redelivery): the first does it.
                repeated: !seen.insert((&job.enrolment_id, job.step)),
                campaign: work.campaign_status,
                step_exists: idx.is_some(),
            };
            match (decide_enrolment(&facts), idx) {
                (EnrolmentDecision::Stale, _) => out[i] = Some(Processed::Stale),
                (EnrolmentDecision::Release, _) => {
                    settles.push((work.enrolment.clone(), Next::Release));
                    out[i] = Some(Processed::Released);
                }
                (EnrolmentDecision::ReadContact, Some(idx)) => live.push((i, work, idx)),
                // The step no longer exists (steps were removed): the sequence is over.
                (EnrolmentDecision::Complete | EnrolmentDecision::ReadContact, _) => {
                    settles.push((work.enrolment.clone(), Next::Complete));
                    out[i] = Some(Processed::Sent { next: Next::Complete });
                }
            }
        }

        // Their contacts, in one pipelined round.
        let found = try_join_all(live.iter().map(|(_, w, _)| async {
            match contacts::get(&tx, &w.contact).await {
                Ok(c) => Ok(Some(c)),
                Err(StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .await?;
        // The property merge fields' values, for the contacts whose step names one.
        let owners: Vec<ContactId> = live
            .iter()
            .zip(&found)
            .filter(|((_, w, idx), c)| c.is_some() && w.steps[*idx].uses_property_fields())
            .map(|((_, w, _), _)| w.contact.clone())
            .collect();
        let properties = campaigns::merge_properties(&tx, &owners).await?;

        let mut endings: Vec<Ending<'_>> = Vec::new();
        let mut ready: Vec<Job<'_>> = Vec::new();
        for ((i, work, idx), contact) in live.into_iter().zip(found) {
            let job = &jobs[i];
            // The execution's status and note; the enrolment's end and reason.
            let mut ending = |status: &'static str, note: String, next_status: &'static str, reason: String| {
                let next = Next::End { status: next_status, reason: reason.clone() };
                out[i] = Some(Processed::Ended { status: next_status, reason });
                endings.push(Ending { job, work, idx, status, note, next });
            };
            // Exit rules that the contact's state already answers.
            let contact = match (decide_contact(contact.as_ref().map(|c| c.lead_state), work.exit_on_meeting), contact)
            {
                (ContactDecision::Send, Some(contact)) => contact,
                (decision, _) => {
                    // A contact that is gone is always an exit (`contact_deleted`), never a send.
                    let reason = if let ContactDecision::Exit(r) = decision { r } else { "contact_deleted" };
                    ending("skipped", reason.into(), "exited", reason.into());
                    continue;
                }
            };
            // Render; a missing required field refuses the send (never a blank).
            let key = send_key(work, idx);
            match render(&work.steps[idx], &contact, properties.get(&contact.id), &key) {
                Ok((subject, body, opener)) => {
                    ready.push(Job { pos: i, job, work, idx, contact, subject, body, opener })
                }
                Err(why) => ending("failed", why.clone(), "failed", why),
            }
        }

        // The gate, for all that may send: checks pipelined, one reservation, records pipelined.
        let reqs: Vec<OutboundRequest<'_>> = ready.iter().map(|j| request(j, now)).collect();
        let held: Vec<Option<DateTime<Utc>>> = ready.iter().map(|j| j.job.slot).collect();
        let ahead = if self.queue.is_some() { REQUEUE_WITHIN } else { nextier_outbound::RESERVE_AHEAD };
        let prepared = self.gate.prepare_ahead(&tx, &reqs, &held, ahead).await?;
        drop(reqs);

        let mut dispatches = Vec::new();
        let mut decided = Vec::new();
        let mut later = Vec::new();
        for (j, p) in ready.iter().zip(prepared) {
            match p {
                Batched::Now(Prepared::Decided(v)) => decided.push((j, v)),
                Batched::Now(Prepared::Ready(d)) => dispatches.push((j, d)),
                Batched::Later { slot } => later.push((j, slot)),
            }
        }
        // A message drawn from the opener library is marked with its variant, which counts it.
        try_join_all(
            dispatches
                .iter()
                .map(|(j, _)| *j)
                .chain(decided.iter().filter(|(_, v)| matches!(v, Verdict::Sent { .. })).map(|(j, _)| *j))
                .filter_map(|j| j.opener.as_deref().map(|o| (j, o)))
                .map(|(j, o)| {
                    let key = j.body_key();
                    let tx = &tx;
                    async move { nextier_store::openers::count_sent(tx, &j.job.team_id, &key, o).await }
                }),
        )
        .await?;
        // Slots further ahead: back on the queue holding them, claims kept until then.
        if !later.is_empty() {
            let ids: Vec<EnrolmentId> = later.iter().map(|(j, _)| j.work.enrolment.clone()).collect();
            let holds: Vec<DateTime<Utc>> = later.iter().map(|(_, slot)| *slot + REQUEUE_GRACE).collect();
            campaigns::extend_claims(&tx, &ids, &holds).await?;
            for (j, slot) in later {
                out[j.pos] = Some(Processed::Deferred);
                let job = SequenceJob { slot: Some(slot), ..j.job.clone() };
                requeue.push(Requeue { job, at: (slot - EARLY).max(now) });
            }
        }
        // Settle what the gate decided without sending, in one pipelined round.
        let applied = try_join_all(decided.iter().map(|(j, v)| self.apply(&tx, j, v.clone(), now))).await?;
        for ((j, _), (processed, back)) in decided.iter().zip(applied) {
            out[j.pos] = Some(processed);
            requeue.extend(back);
        }
        try_join_all(endings.iter().map(|e| async {
            let x = Execution { status: e.status, reason: Some(&e.note), ..base(e.job, e.work, e.idx, now) };
            campaigns::record_execution(&tx, &x).await?;
            campaigns::settle(&tx, &e.work.enrolment, &e.next, now).await
        }))
        .await?;
        try_join_all(settles.iter().map(|(e, n)| campaigns::settle(&tx, e, n, now))).await?;
        // The messages are recorded as queued under their send keys: commit before any provider
        // is called, so a crash from here on retries the same messages.
        tx.commit().await?;
        // No connection is held while the texts wait for their slots.
        drop(conn);
        // Steps holding later slots go back now, not after this batch's waits.
        self.requeue(std::mem::take(&mut requeue)).await;

        if !dispatches.is_empty() {
            // Delivered concurrently, each at its rate-limit slot; one that waited for its slot
            // is checked for consent again first (an opt-out may have come in meanwhile).
            let outcomes = join_all(dispatches.iter_mut().map(|(j, d)| async move {
                let wait = d.slot_wait();
                if wait > Duration::zero() {
                    self.clock.sleep_until(self.clock.now() + wait).await;
                    d.waited();
                    match self.still_clear(team, j, d).await {
                        Ok(None) => {}
                        Ok(Some(reason)) => return Delivery::Stopped(reason),
                        Err(e) => return Delivery::Unchecked(format!("{e:#}")),
                    }
                }
                Delivery::Done(self.gate.deliver(d).await)
            }))
            .await;
            let mut conn = self.db.conn().await?;
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let ids: Vec<&EnrolmentId> = dispatches.iter().map(|(j, _)| &j.work.enrolment).collect();
            let positions: HashMap<EnrolmentId, (String, i32)> = campaigns::lock_positions(&tx, &ids)
                .await?
                .into_iter()
                .map(|(id, status, step)| (id, (status, step)))
                .collect();
            let settled = try_join_all(dispatches.iter().zip(outcomes).map(|((j, d), outcome)| {
                let still = positions.get(&j.work.enrolment) == Some(&("active".to_owned(), j.job.step));
                let tx = &tx;
                async move {
                    let verdict = match outcome {
                        // Sent when its slot came (it was handed over then, not when the batch began).
                        Delivery::Done(outcome) => self.gate.settle(tx, d, outcome, d.not_before().max(now)).await?,
                        Delivery::Stopped(reason) => {
                            let at = d.not_before().max(now);
                            nextier_store::messages::set_status(
                                tx,
                                team,
                                d.message(),
                                nextier_domain::message::MessageStatus::Failed,
                                None,
                                Some(&reason),
                                at,
                            )
                            .await?;
                            Verdict::Blocked { reason }
                        }
                        // Not sent and still queued under its send key: the step goes again shortly.
                        Delivery::Unchecked(why) => Verdict::Deferred {
                            until: now + Duration::minutes(1),
                            reason: format!("consent could not be checked again: {why}"),
                        },
                    };
                    if !still {
                        // A duplicate delivery finished this step meanwhile (the provider replayed).
                        return Ok((Processed::Stale, None));
                    }
                    self.apply(tx, j, verdict, now).await
                }
            }))
            .await?;
            tx.commit().await?;
            for ((j, _), (processed, back)) in dispatches.iter().zip(settled) {
                out[j.pos] = Some(processed);
                requeue.extend(back);
            }
        }

        self.requeue(requeue).await;
        Ok(out.into_iter().map(|p| p.unwrap_or(Processed::Stale)).collect())
    }

    /// After a wait for a slot: what now stops the text, if anything (its own short transaction).
    async fn still_clear(&self, team: &TeamId, j: &Job<'_>, d: &Dispatch) -> anyhow::Result<Option<String>> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let found = nextier_outbound::revoked_since(&tx, team, &j.contact, d.to(), self.clock.now()).await?;
        tx.commit().await?;
        Ok(found.map(|s| s.block_reason()))
    }

    /// Records a verdict on the enrolment; a short deferral also answers the job to requeue.
    async fn apply(
        &self,
        tx: &Tx<'_>,
        j: &Job<'_>,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Processed, Option<Requeue>)> {
        let base = j.base(now);
        let end = |status: &'static str, reason: String| Next::End { status, reason };
        let step = &j.work.steps[j.idx];
        Ok(match verdict {
            Verdict::Sent { message } => {
                campaigns::record_execution(tx, &Execution { status: "sent", message: Some(message.as_str()), ..base })
                    .await?;
                let next = match j.work.steps.get(j.idx + 1) {
                    Some(n) => Next::Advance { step: n.position, at: n.delay.after(now) },
                    None => Next::Complete,
                };
                campaigns::settle(tx, &j.work.enrolment, &next, now).await?;
                (Processed::Sent { next }, None)
            }
            Verdict::Deferred { until, reason } => {
                let until = until.max(now);
                if self.queue.is_some() && until - now <= REQUEUE_WITHIN {
                    // Back on the queue, claim kept: no execution row for a wait of seconds.
                    let hold = until + REQUEUE_GRACE;
                    campaigns::extend_claims(tx, std::slice::from_ref(&j.work.enrolment), &[hold]).await?;
                    let job = SequenceJob { slot: None, ..j.job.clone() };
                    return Ok((Processed::Deferred, Some(Requeue { job, at: until })));
                }
                campaigns::record_execution(tx, &Execution { status: "deferred", reason: Some(&reason), ..base })
                    .await?;
                campaigns::settle(tx, &j.work.enrolment, &Next::Retry { at: until }, now).await?;
                (Processed::Deferred, None)
            }
            Verdict::Blocked { reason } => {
                campaigns::record_execution(tx, &Execution { status: "blocked", reason: Some(&reason), ..base })
                    .await?;
                campaigns::settle(tx, &j.work.enrolment, &end("exited", reason.clone()), now).await?;
                (Processed::Ended { status: "exited", reason }, None)
            }
            Verdict::Failed { reason } => {
                campaigns::record_execution(tx, &Execution { status: "failed", reason: Some(&reason), ..base }).await?;
                let failures = campaigns::failed_attempts(tx, &j.work.enrolment, step.position).await?;
                if failures >= MAX_FAILED_ATTEMPTS {
                    let why = format!("step {} failed {failures} times: {reason}", step.position);
                    campaigns::settle(tx, &j.work.enrolment, &end("failed", why.clone()), now).await?;
                    (Processed::Ended { status: "failed", reason: why }, None)
                } else {
                    let at = now + Duration::minutes(5 * failures);
                    campaigns::settle(tx, &j.work.enrolment, &Next::Retry { at }, now).await?;
                    (Processed::Retrying, None)
                }
            }
        })
    }

    /// Sends deferred steps back to the queue, due when their wait ends. One that cannot be
    /// sent is not lost: its claim lapses shortly after its time and a tick claims it again.
    async fn requeue(&self, jobs: Vec<Requeue>) {
        let Some(queue) = &self.queue else { return };
        if jobs.is_empty() {
            return;
        }
        // Delays from the time they are sent, which may be after this batch's waits.
        let now = self.clock.now();
        let correlation_id = nextier_runtime::correlation::current().unwrap_or_default().to_string();
        for chunk in jobs.chunks(nextier_platform::MAX_BATCH) {
            let msgs = chunk
                .iter()
                .map(|r| OutgoingMessage {
                    body: serde_json::to_string(&r.job).unwrap_or_default(),
                    correlation_id: correlation_id.clone(),
                    team_id: Some(r.job.team_id.to_string()),
                    delay: (r.at - now).to_std().unwrap_or_default(),
                    ..Default::default()
                })
                .collect();
            match queue.send_batch(SEQUENCE_QUEUE, msgs).await {
                Ok(results) => {
                    for (r, res) in chunk.iter().zip(results) {
                        if let Err(e) = res {
                            tracing::warn!(enrolment_id = %r.job.enrolment_id, error = %e, "deferred step not requeued; a tick will claim it");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, count = chunk.len(), "deferred steps not requeued; a tick will claim them")
                }
            }
        }
    }
}

/// A step's send key for an enrolment: the same on every retry.
fn send_key(work: &Work, idx: usize) -> String {
    format!("{}:{}", work.enrolment, work.steps[idx].position)
}

/// The step's subject and body for a contact, and the opener variant the body was drawn from
/// (a step from the opener library picks one by weight, the same one on every retry).
fn render(
    step: &campaigns::Step,
    contact: &Contact,
    property: Option<&campaigns::MergeProperty>,
    send_key: &str,
) -> Result<(Option<String>, String, Option<String>), String> {
    let lookup = |f: &str| campaigns::merge_value(contact, property, f);
    let (text, opener) = match step.variant_for(send_key) {
        Some(v) => (v.body.as_str(), Some(v.opener_id.clone())),
        None => (step.body.as_str(), None),
    };
    let body = Template::parse(text).map_err(|e| e.to_string())?.render(lookup).map_err(|e| e.to_string())?;
    let subject = match &step.subject {
        Some(s) => Some(Template::parse(s).map_err(|e| e.to_string())?.render(lookup).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok((subject, body, opener))
}

fn request<'a>(j: &'a Job<'a>, now: DateTime<Utc>) -> OutboundRequest<'a> {
    let step = &j.work.steps[j.idx];
    OutboundRequest {
        team: &j.job.team_id,
        contact: &j.contact,
        channel: step.channel,
        subject: j.subject.clone(),
        body: j.body.clone(),
        send_key: send_key(j.work, j.idx),
        campaign: Some(FromCampaign {
            campaign: &j.work.campaign,
            enrolment: &j.work.enrolment,
            step: &step.id,
            per_minute: j.work.sends_per_minute.max(1) as u32,
        }),
        sent_by: "campaign",
        purpose: nextier_outbound::Purpose::Outreach,
        to: None,
        now,
    }
}

/// A message body as a job, or why it is not one.
pub fn parse_job(m: &Message) -> Result<SequenceJob, String> {
    let job: SequenceJob = serde_json::from_str(&m.body).map_err(|e| format!("not a campaign-sequence job: {e}"))?;
    if let Some(attr) = &m.team_id {
        if attr != job.team_id.as_str() {
            return Err("the team_id attribute does not match the body".into());
        }
    }
    Ok(job)
}

/// The `consumer-campaign-sequence` handler, with partial batch failures. The batch is
/// processed together ([`Sequencer::process_all`]). A malformed message is logged and
/// acknowledged (retrying cannot fix it); a database or gate error fails its team's jobs,
/// which SQS retries and, after the redrive limit, moves to the DLQ.
pub async fn handle(seq: &Sequencer, event: SqsEvent) -> SqsBatchResponse {
    process_whole_batch(SEQUENCE_QUEUE, event, |msgs: Vec<Message>| async move {
        let parsed: Vec<Result<SequenceJob, String>> = msgs.iter().map(parse_job).collect();
        let jobs: Vec<SequenceJob> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let mut results = seq.process_all(&jobs).await.into_iter();
        parsed
            .into_iter()
            .map(|p| match p {
                Err(why) => {
                    tracing::warn!(reason = %why, "dropping malformed message");
                    Outcome::Done
                }
                Ok(job) => match results.next() {
                    Some(Ok(p)) => {
                        tracing::info!(enrolment_id = %job.enrolment_id, step = job.step, outcome = ?p, "step processed");
                        Outcome::Done
                    }
                    Some(Err(e)) => Outcome::Retry(e),
                    None => Outcome::Retry(anyhow::anyhow!("no outcome")),
                },
            })
            .collect()
    })
    .await
}
