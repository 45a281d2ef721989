//! The enrichment pipeline (issue 15, the original's LUCI data engine): a job walks each of its
//! contacts raw → traced → graded → ready or rejected, with the reason, on the `enrichment`
//! queue.
//!
//! - **Trace** (one message per job at a time): the job's contacts without a textable number
//!   go to the skip tracer in batches (Tracerfy allows 10 submissions in 5 minutes, so never
//!   one call per person). An answer cached for the same normalised input is used instead of
//!   paying again. A queue-based tracer's batch is **polled** until it is done.
//! - **Grade** (one message per contact): each number not graded lately gets phone
//!   intelligence (line type, carrier, activity, grade, name match), then the team's rules
//!   decide, the contact is re-scored, and a changed score goes to the campaign queue for
//!   score-band auto-enrolment.
//!
//! Every paid call first takes its unit from the team's daily cap for that provider, on the same
//! limiter as the SMS buckets (DynamoDB deployed). A cap reached mid-job makes the job wait
//! until the cap's day ends (`waiting`, with the reason): its message comes back, delayed, until
//! then; nothing is dropped. Provider answers are cached before they are applied, so a retry
//! after a crash reads the cache instead of paying twice. Enrichment adds numbers and addresses
//! with their source; it never takes one from another contact nor overwrites a person's value.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use nextier_domain::email::Email;
use nextier_domain::enrichment::{self as rules, PhoneFacts, Provider, Rules, Status};
use nextier_domain::ids::{BusinessId, ContactId, EnrichmentJobId, OutboxId, TeamId};
use nextier_domain::phone::E164;
use nextier_domain::rate::Take;
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::Clock;
use nextier_platform::ports::enrichment::{
    Companies, Organization, Person, PhoneIntel, PhoneReport, ProviderError, Submitted, TraceQuery, TraceResult, Tracer,
};
use nextier_platform::ports::{OutgoingMessage, Queue, RateLimiter};
use nextier_runtime::serve::QueueConsumer;
use nextier_runtime::sqs::{process_batch, Message, Outcome};
use nextier_store::contacts::{self, Contact};
use nextier_store::enrichment::{self as store, Cost, JobStatus, SourceKind, Stage};
use nextier_store::outbox::{self, Destination};
use nextier_store::{scope, settings, Db, Scope, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The queue's logical name.
pub const QUEUE: &str = "enrichment";
/// Provider calls are slow and the steps are small: a few messages a batch, two at once.
pub const CONSUMER: QueueConsumer =
    QueueConsumer { queue: QUEUE, batch_size: 5, visibility_secs: 360, max_receives: 8, concurrency: 2 };
/// The team settings scope: rules (`ready_grades`, ...), caps (`daily_cap_<provider>`), keys
/// (`<provider>_api_key`, secret) and `auto_after_import`.
pub const SCOPE: &str = "enrichment";
/// Yes to start a job over each completed import's contacts.
pub const AUTO_AFTER_IMPORT: &str = "auto_after_import";
/// The most contacts one job over ids or a filter covers.
pub const MAX_CONTACTS: i64 = 10_000;
/// The most of an import's new contacts one job covers (an import's job has no other bound).
pub const MAX_IMPORT_CONTACTS: i64 = 200_000;
/// The longest delay SQS gives a message.
const MAX_DELAY: Duration = Duration::from_secs(900);

/// One message on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "camelCase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Trace the job's next batch.
    Trace { team_id: TeamId, job_id: EnrichmentJobId },
    /// Ask whether the batch queued under `reference` is done.
    Poll { team_id: TeamId, job_id: EnrichmentJobId, reference: String },
    /// Grade one contact's numbers and decide.
    Grade { team_id: TeamId, job_id: EnrichmentJobId, contact_id: ContactId },
    /// Enrich a business from Apollo and add its decision makers to the job.
    Business { team_id: TeamId, job_id: EnrichmentJobId, business_id: BusinessId },
}

impl Step {
    fn team(&self) -> &TeamId {
        match self {
            Step::Trace { team_id, .. }
            | Step::Poll { team_id, .. }
            | Step::Grade { team_id, .. }
            | Step::Business { team_id, .. } => team_id,
        }
    }
}

fn correlation() -> String {
    nextier_runtime::correlation::current().unwrap_or_default().to_string()
}

fn stage_step(step: &Step) -> outbox::OutboxMessage {
    outbox::OutboxMessage {
        team: Some(step.team().clone()),
        destination: Destination::Queue(QUEUE.into()),
        payload: serde_json::to_value(step).unwrap_or_default(),
        correlation_id: correlation(),
        dedupe_key: None,
    }
}

/// What [`start`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The job, its first step (publish it after commit) and the contacts it took.
    Job { job: EnrichmentJobId, first: OutboxId, contacts: usize },
    /// Every contact is being enriched by another running job: nothing was started.
    Busy,
    /// The import already has its job.
    Duplicate,
}

/// Records a job over `contacts` and stages its first step in the caller's transaction.
/// Contacts another running job is working on are left to it (nobody pays twice).
pub async fn start(
    tx: &Tx<'_>,
    team: &TeamId,
    kind: SourceKind,
    source: &serde_json::Value,
    contacts: &[ContactId],
    actor: &str,
) -> Result<Started, StoreError> {
    let Some((job, taken)) = store::create(tx, team, kind, source, contacts, actor).await? else {
        return Ok(Started::Duplicate);
    };
    if taken == 0 {
        store::delete_empty(tx, &job).await?;
        return Ok(Started::Busy);
    }
    let staged = outbox::stage(tx, &stage_step(&Step::Trace { team_id: team.clone(), job_id: job.clone() })).await?;
    let first = staged.ok_or_else(|| StoreError::Conflict("the job's first step was not staged".into()))?;
    Ok(Started::Job { job, first, contacts: taken })
}

/// How often to poll, how long to wait between batches, when a claim is stale.
#[derive(Debug, Clone)]
pub struct Timing {
    pub poll_every: Duration,
    pub max_polls: i32,
    /// Between two submissions of one job (Tracerfy: 10 in 5 minutes for the account).
    pub between_batches: Duration,
    /// A batch claimed for a provider call and not settled after this was interrupted: its
    /// contacts are traced again (the cache answers if the provider had answered).
    pub stale_claim: Duration,
    /// After a provider failure that is worth retrying.
    pub retry_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_every: Duration::from_secs(30),
            max_polls: 120,
            between_batches: Duration::from_secs(30),
            stale_claim: Duration::from_secs(300),
            retry_after: Duration::from_secs(60),
        }
    }
}

/// What the consumer needs.
pub struct Pipeline {
    pub db: Db,
    pub outbox: OutboxPublisher,
    /// Where delayed steps go back (polls, waits for a cap).
    pub queue: Arc<dyn Queue>,
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    /// The skip tracer teams use unless they choose another (setting `enrichment/tracer`).
    pub tracer: Arc<dyn Tracer>,
    /// The others a team may choose (RealEstateAPI's single trace).
    pub other_tracers: Vec<Arc<dyn Tracer>>,
    pub phone_intel: Arc<dyn PhoneIntel>,
    pub companies: Arc<dyn Companies>,
    pub timing: Timing,
}

/// The `consumer-enrichment` handler.
pub async fn handle(p: &Pipeline, event: SqsEvent) -> SqsBatchResponse {
    process_batch(QUEUE, event, |m| p.run(m)).await
}

/// The team's own key for a provider (a secret setting), if it set one.
async fn team_key(tx: &Tx<'_>, team: &TeamId, provider: Provider) -> Result<Option<String>, StoreError> {
    match settings::get(tx, team, SCOPE, &format!("{provider}_api_key"), true).await {
        Ok(s) => Ok(Some(s.value).filter(|v| !v.trim().is_empty())),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Who to trace, from the contact.
pub fn query_of(c: &Contact) -> TraceQuery {
    let a = c.addresses.iter().find(|a| a.is_current).or(c.addresses.first());
    TraceQuery {
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        address: a.and_then(|a| a.line1.clone()),
        city: a.and_then(|a| a.city.clone()),
        state: a.and_then(|a| a.state.clone()),
        zip: a.and_then(|a| a.zip.clone()),
    }
}

/// The end of the UTC day `now` is in: when a daily cap refills.
use rules::end_of_day;

fn delay_until(now: DateTime<Utc>, until: DateTime<Utc>) -> Duration {
    (until - now).to_std().unwrap_or(Duration::ZERO).min(MAX_DELAY)
}

impl Pipeline {
    async fn run(&self, m: Message) -> Outcome {
        let step: Step = match serde_json::from_str(&m.body) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, message_id = %m.id, "not an enrichment step; dropped");
                return Outcome::Done;
            }
        };
        let r = match &step {
            Step::Trace { team_id, job_id } => self.trace(team_id, job_id).await,
            Step::Poll { team_id, job_id, reference } => self.poll(team_id, job_id, reference).await,
            Step::Grade { team_id, job_id, contact_id } => self.grade(team_id, job_id, contact_id).await,
            Step::Business { team_id, job_id, business_id } => self.business(team_id, job_id, business_id).await,
        };
        match r {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry(e),
        }
    }

    /// Puts a step back on the queue after `delay` (at most SQS's 15 minutes: a longer wait
    /// comes back and waits again).
    async fn later(&self, step: &Step, delay: Duration) -> anyhow::Result<()> {
        let msg = OutgoingMessage {
            body: serde_json::to_string(step)?,
            correlation_id: correlation(),
            team_id: Some(step.team().to_string()),
            attributes: Default::default(),
            delay: delay.min(MAX_DELAY),
        };
        self.queue.send(QUEUE, msg).await?;
        Ok(())
    }

    /// Takes up to `want` units of the team's daily cap for `provider` (halving the ask when
    /// refused, so the cap's last units are used); how many, and if short, when it refills.
    async fn take_cap(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        provider: Provider,
        want: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(i64, Option<(DateTime<Utc>, String)>)> {
        let caps = settings::numbers_in(tx, SCOPE).await?;
        let cap =
            caps.get(&format!("daily_cap_{provider}")).copied().unwrap_or_else(|| provider.default_daily_cap()).max(0);
        let end = end_of_day(now);
        let bucket = rules::cap_bucket(team.as_str(), provider, cap, now);
        let mut n = want.min(cap);
        while n > 0 {
            match self.limiter.take(std::slice::from_ref(&bucket), n, now).await? {
                Take::Granted => break,
                Take::Refused { .. } => n /= 2,
            }
        }
        let short = (n < want).then(|| {
            (end, format!("the daily {provider} cap of {cap} is reached; the job resumes at {}", end.to_rfc3339()))
        });
        Ok((n, short))
    }

    /// The team's skip tracer: the one its setting `enrichment/tracer` names, else the default.
    async fn tracer_for(&self, tx: &Tx<'_>) -> Result<Arc<dyn Tracer>, StoreError> {
        let chosen = settings::strings_in(tx, SCOPE).await?.get("tracer").and_then(|t| Provider::parse(t.trim()));
        let mut all = std::iter::once(&self.tracer).chain(&self.other_tracers);
        Ok(chosen.and_then(|p| all.find(|t| t.provider() == p).cloned()).unwrap_or_else(|| self.tracer.clone()))
    }

    /// Trace the job's next batch.
    async fn trace(&self, team: &TeamId, job: &EnrichmentJobId) -> anyhow::Result<()> {
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let tracer = self.tracer_for(&tx).await?;
        let provider = tracer.provider();
        let (status, waiting_until) = match store::lock(&tx, job).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if matches!(status, JobStatus::Completed | JobStatus::Cancelled) {
            return Ok(());
        }
        let step = Step::Trace { team_id: team.clone(), job_id: job.clone() };
        // A job waiting (for a cap, or for an operator to fix a key) waits: one step comes back
        // until then.
        if let Some(until) = waiting_until.filter(|u| *u > now && status == JobStatus::Waiting) {
            tx.commit().await?;
            return self.later(&step, delay_until(now, until)).await;
        }
        let stale = now - chrono::Duration::from_std(self.timing.stale_claim).unwrap_or_default();
        store::release_stale_claims(&tx, job, stale).await?;
        // A queued trace whose poll step was lost is polled again.
        let lost = now - chrono::Duration::from_std(self.timing.stale_claim * 6).unwrap_or_default();
        let mut staged = Vec::new();
        for reference in store::stale_polls(&tx, job, lost).await? {
            let poll = Step::Poll { team_id: team.clone(), job_id: job.clone(), reference };
            staged.extend(outbox::stage(&tx, &stage_step(&poll)).await?);
        }
        let batch = store::at_stage(&tx, job, Stage::Trace, tracer.max_batch() as i64).await?;
        if batch.is_empty() {
            let in_flight = store::claims_in_flight(&tx, job).await?;
            store::complete_if_done(&tx, job, now).await?;
            tx.commit().await?;
            self.outbox.publish(&staged).await;
            if in_flight > 0 {
                // Until every trace in flight has settled, look again now and then: an
                // interrupted call's contacts come back once their claim is stale.
                self.later(&step, self.timing.stale_claim).await?;
            }
            return Ok(());
        }
        let (mut to_grade, mut to_call, mut hits) = (Vec::new(), Vec::new(), 0);
        for id in &batch {
            let c = match contacts::get(&tx, id).await {
                Ok(c) => c,
                Err(StoreError::NotFound) => {
                    store::finish_item(&tx, job, id, Some("failed"), "the contact was deleted").await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Someone who opted out is not paid for.
            if c.lead_state == nextier_domain::lead_state::LeadState::Suppressed {
                store::finish_item(&tx, job, id, Some("rejected"), "the person opted out").await?;
                continue;
            }
            let q = query_of(&c);
            // A contact with a number that may be textable is graded as it is: no trace is paid
            // for. So is one the tracer cannot place (no name, or no address or zip).
            if c.phones.iter().any(|p| p.kind != "landline" && !p.do_not_call) || !q.traceable() {
                to_grade.push(id.clone());
                continue;
            }
            if let Some(found) = store::cached(&tx, provider.as_str(), &q.key(), now)
                .await?
                .and_then(|v| serde_json::from_value::<TraceResult>(v).ok())
            {
                apply_trace(&tx, team, id, &found, provider, now).await?;
                hits += 1;
                to_grade.push(id.clone());
                continue;
            }
            to_call.push((id.clone(), q));
        }
        let mut waiting = None;
        if !to_call.is_empty() {
            let (granted, short) = self.take_cap(&tx, team, provider, to_call.len() as i64, now).await?;
            to_call.truncate(granted as usize);
            waiting = short;
        }
        store::set_waiting(&tx, job, waiting.as_ref().map(|(u, r)| (*u, r.as_str()))).await?;
        let claim = format!("claim:{}", ulid::Ulid::new());
        let asked: Vec<(ContactId, serde_json::Value)> =
            to_call.iter().map(|(c, q)| (c.clone(), serde_json::to_value(q).unwrap_or_default())).collect();
        store::claim_for_trace(&tx, job, &asked, &claim).await?;
        staged.extend(self.to_grade(&tx, team, job, &to_grade).await?);
        store::complete_if_done(&tx, job, now).await?;
        store::charge(&tx, team, job, provider, now, Cost { cache_hits: hits, ..Cost::default() }).await?;
        let key = team_key(&tx, team, provider).await?;
        tx.commit().await?;
        self.outbox.publish(&staged).await;

        if !to_call.is_empty() {
            let queries: Vec<TraceQuery> = to_call.iter().map(|(_, q)| q.clone()).collect();
            let outcome = tracer.submit(key.as_deref(), &queries).await;
            if !self.submitted(tracer.as_ref(), team, job, &claim, &to_call, outcome, now).await? {
                // The submission failed: its own retry is scheduled, and no other.
                return Ok(());
            }
        }
        match waiting {
            Some((until, reason)) => {
                tracing::info!(job = %job, %reason, "enrichment waits for a daily cap");
                self.later(&step, delay_until(now, until)).await?;
            }
            None if batch.len() >= tracer.max_batch() || !to_call.is_empty() => {
                self.later(&step, self.timing.between_batches).await?;
            }
            None => {}
        }
        Ok(())
    }

    /// Settles a submission: applied at once, queued for polling, or put back. False when it
    /// failed and a retry of the trace step is scheduled.
    #[allow(clippy::too_many_arguments)]
    async fn submitted(
        &self,
        tracer: &dyn Tracer,
        team: &TeamId,
        job: &EnrichmentJobId,
        claim: &str,
        batch: &[(ContactId, TraceQuery)],
        outcome: Result<Submitted, ProviderError>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let provider = tracer.provider();
        let credits = provider.credits(tracer.enhanced()) * batch.len() as i32;
        let paid = Cost { calls: 1, credits, ..Cost::default() };
        match outcome {
            Ok(Submitted::Done(results)) => {
                self.traced(provider, team, job, batch, &results, Some(paid), now).await?;
                Ok(true)
            }
            Ok(Submitted::Queued(reference)) => {
                // The reference, the charge and the first poll in one transaction: a crash
                // after it loses nothing.
                let mut conn = self.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                store::rename_claim(&tx, job, claim, &reference).await?;
                store::charge(&tx, team, job, provider, now, paid).await?;
                let step = Step::Poll { team_id: team.clone(), job_id: job.clone(), reference };
                let staged: Vec<OutboxId> = outbox::stage(&tx, &stage_step(&step)).await?.into_iter().collect();
                tx.commit().await?;
                self.outbox.publish(&staged).await;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(job = %job, error = %e, "skip trace submission failed");
                let mut conn = self.db.conn().await?;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                let failed = Cost { failures: 1, ..Cost::default() };
                store::charge(&tx, team, job, provider, now, failed).await?;
                let ids: Vec<ContactId> = batch.iter().map(|(c, _)| c.clone()).collect();
                let staged = match &e {
                    // Worth another try: the batch goes back to be traced.
                    ProviderError::RateLimited(_) | ProviderError::Unavailable(_) => {
                        store::release_claim(&tx, job, claim).await?;
                        vec![]
                    }
                    // Our key or our account (402): the job waits for an operator (it tries
                    // again every 15 minutes).
                    ProviderError::Unauthorized(why) => {
                        store::release_claim(&tx, job, claim).await?;
                        let reason = format!("{provider} refused our credentials: {why}");
                        store::set_waiting(&tx, job, Some((now + chrono::Duration::minutes(15), &reason))).await?;
                        vec![]
                    }
                    // The provider cannot serve this batch: its contacts are graded without a trace.
                    ProviderError::Malformed(_) => self.to_grade(&tx, team, job, &ids).await?,
                };
                tx.commit().await?;
                self.outbox.publish(&staged).await;
                let wait = match e {
                    ProviderError::RateLimited(d) => d,
                    ProviderError::Unauthorized(_) => MAX_DELAY,
                    _ => self.timing.retry_after,
                };
                if matches!(e, ProviderError::Malformed(_)) {
                    return Ok(true);
                }
                self.later(&Step::Trace { team_id: team.clone(), job_id: job.clone() }, wait).await?;
                Ok(false)
            }
        }
    }

    /// A queued batch: done, still pending, or failed.
    async fn poll(&self, team: &TeamId, job: &EnrichmentJobId, reference: &str) -> anyhow::Result<()> {
        let now = self.clock.now();
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        match store::status(&tx, job).await {
            Ok(JobStatus::Completed | JobStatus::Cancelled) | Err(StoreError::NotFound) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let items = store::polling(&tx, job, reference).await?;
        if items.is_empty() {
            return Ok(()); // settled already (a repeated poll)
        }
        let mut batch = Vec::with_capacity(items.len());
        for (id, _, asked) in &items {
            match contacts::get(&tx, id).await {
                // Matched by what was asked, not by what the contact says by now.
                Ok(c) => batch.push((
                    id.clone(),
                    asked.clone().and_then(|a| serde_json::from_value(a).ok()).unwrap_or_else(|| query_of(&c)),
                )),
                Err(StoreError::NotFound) => {
                    store::finish_item(&tx, job, id, Some("failed"), "the contact was deleted").await?
                }
                Err(e) => return Err(e.into()),
            }
        }
        store::complete_if_done(&tx, job, now).await?;
        let polls = items.iter().map(|(_, n, _)| *n).max().unwrap_or(0);
        let tracer = self.tracer_for(&tx).await?;
        let provider = tracer.provider();
        let key = team_key(&tx, team, provider).await?;
        tx.commit().await?;
        let queries: Vec<TraceQuery> = batch.iter().map(|(_, q)| q.clone()).collect();
        let step = Step::Poll { team_id: team.clone(), job_id: job.clone(), reference: reference.to_owned() };
        match tracer.poll(key.as_deref(), reference, &queries).await {
            Ok(Some(results)) => self.traced(provider, team, job, &batch, &results, None, now).await,
            Ok(None) if polls + 1 < self.timing.max_polls => {
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                store::polled(&tx, job, reference).await?;
                tx.commit().await?;
                self.later(&step, self.timing.poll_every).await
            }
            Err(e) if e.retryable() => {
                tracing::warn!(job = %job, error = %e, "poll failed; asking again later");
                let wait = match e {
                    ProviderError::RateLimited(d) => d,
                    _ => self.timing.poll_every,
                };
                self.later(&step, wait).await
            }
            // A key rotated meanwhile: the trace is paid for, so the job waits for the key.
            Err(ProviderError::Unauthorized(why)) => {
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                let reason = format!("{provider} refused our credentials: {why}");
                store::set_waiting(&tx, job, Some((now + chrono::Duration::minutes(15), &reason))).await?;
                tx.commit().await?;
                self.later(&step, MAX_DELAY).await
            }
            // Never finished, or unusable: the contacts are graded without their trace.
            other => {
                let why = match other {
                    Ok(_) => format!("{provider} did not finish the trace after {} polls", polls + 1),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(job = %job, reason = %why, "trace given up");
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                let ids: Vec<ContactId> = batch.iter().map(|(c, _)| c.clone()).collect();
                let failed = Cost { failures: 1, ..Cost::default() };
                store::charge(&tx, team, job, provider, now, failed).await?;
                let staged = self.to_grade(&tx, team, job, &ids).await?;
                tx.commit().await?;
                self.outbox.publish(&staged).await;
                Ok(())
            }
        }
    }

    /// Applies a batch's results: cached first (a crash after this pays nothing again), then
    /// the numbers and addresses join their contacts, which go on to grading.
    #[allow(clippy::too_many_arguments)]
    async fn traced(
        &self,
        provider: Provider,
        team: &TeamId,
        job: &EnrichmentJobId,
        batch: &[(ContactId, TraceQuery)],
        results: &[TraceResult],
        paid: Option<Cost>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        for ((_, q), r) in batch.iter().zip(results) {
            store::cache(&tx, team, provider, &q.key(), &serde_json::to_value(r)?, now).await?;
        }
        if let Some(c) = paid {
            store::charge(&tx, team, job, provider, now, c).await?;
        }
        tx.commit().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let empty = TraceResult::default();
        let mut ids = Vec::with_capacity(batch.len());
        for (i, (id, _)) in batch.iter().enumerate() {
            if store::lock_item(&tx, job, id).await? != Some(Stage::Poll) {
                continue; // settled by another delivery
            }
            apply_trace(&tx, team, id, results.get(i).unwrap_or(&empty), provider, now).await?;
            ids.push(id.clone());
        }
        let staged = self.to_grade(&tx, team, job, &ids).await?;
        tx.commit().await?;
        self.outbox.publish(&staged).await;
        Ok(())
    }

    /// Stages a grade step for each contact.
    async fn to_grade(
        &self,
        tx: &Tx<'_>,
        team: &TeamId,
        job: &EnrichmentJobId,
        ids: &[ContactId],
    ) -> Result<Vec<OutboxId>, StoreError> {
        store::move_to(tx, job, ids, Stage::Grade, None).await?;
        let mut staged = Vec::with_capacity(ids.len());
        for id in ids {
            let step = Step::Grade { team_id: team.clone(), job_id: job.clone(), contact_id: id.clone() };
            staged.extend(outbox::stage(tx, &stage_step(&step)).await?);
        }
        Ok(staged)
    }

    /// Grades the contact's numbers, applies the team's rules and re-scores it.
    async fn grade(&self, team: &TeamId, job: &EnrichmentJobId, contact: &ContactId) -> anyhow::Result<()> {
        let now = self.clock.now();
        let provider = self.phone_intel.provider();
        let fresh_after = now - chrono::Duration::days(provider.cache_days());
        let step = Step::Grade { team_id: team.clone(), job_id: job.clone(), contact_id: contact.clone() };
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        match store::status(&tx, job).await {
            Ok(JobStatus::Completed | JobStatus::Cancelled) | Err(StoreError::NotFound) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        if store::lock_item(&tx, job, contact).await? != Some(Stage::Grade) {
            return Ok(()); // done already, or not this job's
        }
        let c = match contacts::get(&tx, contact).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                store::finish_item(&tx, job, contact, Some("failed"), "the contact was deleted").await?;
                store::complete_if_done(&tx, job, now).await?;
                tx.commit().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if c.lead_state == nextier_domain::lead_state::LeadState::Suppressed {
            store::finish_item(&tx, job, contact, Some("rejected"), "the person opted out").await?;
            store::complete_if_done(&tx, job, now).await?;
            tx.commit().await?;
            return Ok(());
        }
        // One delivery at a time pays for this contact's grades (a repeated step waits).
        if !store::lease(&tx, job, contact, now, Some(now + chrono::Duration::minutes(5))).await? {
            anyhow::bail!("another delivery is grading {contact}");
        }
        let name =
            [c.first_name.as_deref(), c.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let key = team_key(&tx, team, provider).await?;
        let phones = store::phones(&tx, contact).await?;
        tx.commit().await?;

        for p in phones.iter().filter(|p| !p.do_not_call && p.graded_at.is_none_or(|at| at < fresh_after)) {
            let cache_key = rules::input_key(&[("phone", Some(&p.e164)), ("name", Some(&name))]);
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            let cached = store::cached(&tx, provider.as_str(), &cache_key, now)
                .await?
                .and_then(|v| serde_json::from_value::<Option<PhoneReport>>(v).ok());
            let report = match cached {
                Some(r) => {
                    let hit = Cost { cache_hits: 1, ..Cost::default() };
                    store::charge(&tx, team, job, provider, now, hit).await?;
                    tx.commit().await?;
                    r
                }
                None => {
                    let (granted, short) = self.take_cap(&tx, team, provider, 1, now).await?;
                    if granted == 0 {
                        let (until, reason) = short.unwrap_or((end_of_day(now), "the daily cap is reached".into()));
                        store::set_waiting(&tx, job, Some((until, &reason))).await?;
                        store::lease(&tx, job, contact, now, None).await?;
                        tx.commit().await?;
                        return self.later(&step, delay_until(now, until)).await;
                    }
                    tx.commit().await?;
                    let answer = self
                        .phone_intel
                        .lookup(key.as_deref(), &p.e164, Some(name.as_str()).filter(|n| !n.is_empty()))
                        .await;
                    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                    let report = match answer {
                        Ok(r) => {
                            store::cache(&tx, team, provider, &cache_key, &serde_json::to_value(&r)?, now).await?;
                            let paid = Cost { calls: 1, credits: provider.credits(false), ..Cost::default() };
                            store::charge(&tx, team, job, provider, now, paid).await?;
                            r
                        }
                        Err(e) => {
                            let failed = Cost { failures: 1, ..Cost::default() };
                            store::charge(&tx, team, job, provider, now, failed).await?;
                            tracing::warn!(job = %job, contact = %contact, error = %e, "phone intelligence failed");
                            match e {
                                ProviderError::Malformed(_) => {
                                    tx.commit().await?;
                                    continue; // this number stays ungraded
                                }
                                ProviderError::Unauthorized(why) => {
                                    let reason = format!("{provider} refused our credentials: {why}");
                                    let until = now + chrono::Duration::minutes(15);
                                    store::set_waiting(&tx, job, Some((until, &reason))).await?;
                                    store::lease(&tx, job, contact, now, None).await?;
                                    tx.commit().await?;
                                    return self.later(&step, MAX_DELAY).await;
                                }
                                ProviderError::RateLimited(d) => {
                                    store::lease(&tx, job, contact, now, None).await?;
                                    tx.commit().await?;
                                    return self.later(&step, d).await;
                                }
                                ProviderError::Unavailable(_) => {
                                    store::lease(&tx, job, contact, now, None).await?;
                                    tx.commit().await?;
                                    return self.later(&step, self.timing.retry_after).await;
                                }
                            }
                        }
                    };
                    tx.commit().await?;
                    report
                }
            };
            let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
            match report {
                Some(r) => {
                    store::grade_phone(
                        &tx,
                        contact,
                        &p.e164,
                        &r.line_type,
                        r.carrier.as_deref(),
                        r.contact_grade,
                        r.activity_score,
                        r.name_match,
                        r.prepaid,
                        provider.as_str(),
                        now,
                    )
                    .await?
                }
                // Not a valid number: graded F with no activity, so it is never the one texted.
                None => {
                    store::grade_phone(
                        &tx,
                        contact,
                        &p.e164,
                        "unknown",
                        None,
                        Some('F'),
                        Some(0),
                        None,
                        None,
                        provider.as_str(),
                        now,
                    )
                    .await?
                }
            }
            tx.commit().await?;
        }
        self.decide(team, job, contact, now).await
    }

    /// The team's rules on the graded numbers, the score, the job's progress.
    async fn decide(
        &self,
        team: &TeamId,
        job: &EnrichmentJobId,
        contact: &ContactId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        if store::lock_item(&tx, job, contact).await? != Some(Stage::Grade) {
            return Ok(());
        }
        let rules = Rules::from_settings(&settings::strings_in(&tx, SCOPE).await?);
        let facts: Vec<PhoneFacts> = store::phones(&tx, contact)
            .await?
            .into_iter()
            .map(|p| PhoneFacts {
                // A landline by either word is a landline; else what phone intelligence found.
                line_type: if p.kind == "landline" || p.line_type.as_deref() == Some("landline") {
                    "landline".to_owned()
                } else {
                    p.line_type.clone().filter(|t| t != "unknown").unwrap_or(p.kind.clone())
                },
                e164: p.e164,
                grade: p.grade,
                activity: p.activity,
                do_not_call: p.do_not_call,
            })
            .collect();
        let verdict = rules::qualify(&facts, &rules);
        store::set_status(&tx, contact, verdict.status, Some(&verdict.reason), now).await?;
        let outcome = match verdict.status {
            Status::Ready => Some("ready"),
            Status::Rejected => Some("rejected"),
            _ => None,
        };
        store::finish_item(&tx, job, contact, outcome, &verdict.reason).await?;
        let (before, breakdown) = nextier_store::scoring::rescore(&tx, contact, now).await?;
        contacts::record(
            &tx,
            team,
            contact,
            "enriched",
            json!({"job": job, "status": verdict.status, "reason": verdict.reason, "score": breakdown.total}),
            "enrichment",
        )
        .await?;
        let mut staged = vec![];
        if before != breakdown.total {
            // The new score may put the contact in a running campaign's auto-enrol band.
            let msg = outbox::OutboxMessage {
                team: Some(team.clone()),
                destination: Destination::Queue(nextier_campaigns::SYNC_QUEUE.into()),
                payload: json!({"teamId": team, "contactId": contact}),
                correlation_id: correlation(),
                dedupe_key: None,
            };
            staged.extend(outbox::stage(&tx, &msg).await?);
        }
        if store::complete_if_done(&tx, job, now).await? {
            let msg = outbox::OutboxMessage {
                team: Some(team.clone()),
                destination: Destination::Event("EnrichmentJobCompleted".into()),
                payload: json!({"teamId": team, "jobId": job}),
                correlation_id: correlation(),
                dedupe_key: None,
            };
            staged.extend(outbox::stage(&tx, &msg).await?);
        }
        tx.commit().await?;
        self.outbox.publish(&staged).await;
        Ok(())
    }
}

/// The seniorities a decision maker has at Apollo.
pub const SENIORITIES: &[&str] = &["owner", "founder", "c_suite", "partner", "vp", "director", "manager"];

/// Our role for Apollo's seniority (and title), and whether they decide.
pub fn role_of(p: &Person) -> (&'static str, bool) {
    let title = p.title.as_deref().unwrap_or_default().to_ascii_lowercase();
    match p.seniority.as_deref().unwrap_or_default() {
        "owner" | "founder" => ("owner", true),
        "c_suite" if title.contains("ceo") || title.contains("chief executive") => ("ceo", true),
        "c_suite" => ("executive", true),
        "partner" => ("partner", true),
        "vp" | "director" => ("executive", true),
        "manager" => ("manager", false),
        _ => ("professional", false),
    }
}

/// Stages a business's enrichment as a job (its people, once found, are graded in the same
/// job); publish the returned outbox id after commit. `None` when it is being enriched already.
pub async fn start_business(
    tx: &Tx<'_>,
    team: &TeamId,
    business: &BusinessId,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<(EnrichmentJobId, OutboxId)>, StoreError> {
    if !nextier_store::businesses::request_apollo(tx, business, now).await? {
        return Ok(None);
    }
    let source = json!({"businessId": business});
    let (job, _) = store::create(tx, team, SourceKind::Business, &source, &[], actor)
        .await?
        .ok_or_else(|| StoreError::Conflict("the job was not recorded".into()))?;
    let step = Step::Business { team_id: team.clone(), job_id: job.clone(), business_id: business.clone() };
    let id = outbox::stage(tx, &stage_step(&step))
        .await?
        .ok_or_else(|| StoreError::Conflict("the job's first step was not staged".into()))?;
    Ok(Some((job, id)))
}

impl Pipeline {
    /// Apollo's organisation enrich and people search for one business: the fields nobody
    /// filled are filled, its decision makers become (or are linked to) contacts, and they are
    /// graded in the same job.
    async fn business(&self, team: &TeamId, job: &EnrichmentJobId, id: &BusinessId) -> anyhow::Result<()> {
        let now = self.clock.now();
        let provider = self.companies.provider();
        let step = Step::Business { team_id: team.clone(), job_id: job.clone(), business_id: id.clone() };
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        match store::status(&tx, job).await {
            Ok(JobStatus::Completed | JobStatus::Cancelled) | Err(StoreError::NotFound) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let b = match nextier_store::businesses::get(&tx, id).await {
            Ok(b) => b,
            Err(StoreError::NotFound) => {
                store::complete_if_done(&tx, job, now).await?;
                tx.commit().await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if b.apollo_status.as_deref() != Some("requested") {
            return Ok(()); // answered already (a repeated step)
        }
        let cache_key = rules::input_key(&[("name", Some(&b.name)), ("domain", b.website.as_deref())]);
        let cached = store::cached(&tx, provider.as_str(), &cache_key, now)
            .await?
            .and_then(|v| serde_json::from_value::<(Option<Organization>, Vec<Person>)>(v).ok());
        let key = team_key(&tx, team, provider).await?;
        let answer = match cached {
            Some(a) => {
                let hit = Cost { cache_hits: 1, ..Cost::default() };
                store::charge(&tx, team, job, provider, now, hit).await?;
                tx.commit().await?;
                a
            }
            None => {
                let (granted, short) = self.take_cap(&tx, team, provider, 2, now).await?;
                if granted < 2 {
                    let (until, reason) = short.unwrap_or((end_of_day(now), "the daily cap is reached".into()));
                    store::set_waiting(&tx, job, Some((until, &reason))).await?;
                    tx.commit().await?;
                    return self.later(&step, delay_until(now, until)).await;
                }
                tx.commit().await?;
                let fetched = async {
                    let org = self.companies.enrich(key.as_deref(), b.website.as_deref(), Some(&b.name)).await?;
                    let people = match org.as_ref().and_then(|o| o.id.as_deref()) {
                        Some(org_id) => self.companies.people(key.as_deref(), org_id, SENIORITIES).await?,
                        None => vec![],
                    };
                    Ok::<_, ProviderError>((org, people))
                }
                .await;
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
                match fetched {
                    Ok(a) => {
                        store::cache(&tx, team, provider, &cache_key, &serde_json::to_value(&a)?, now).await?;
                        let calls = if a.0.as_ref().and_then(|o| o.id.as_ref()).is_some() { 2 } else { 1 };
                        let paid = Cost { calls, credits: calls * provider.credits(false), ..Cost::default() };
                        store::charge(&tx, team, job, provider, now, paid).await?;
                        tx.commit().await?;
                        a
                    }
                    Err(e) if e.retryable() => {
                        let failed = Cost { failures: 1, ..Cost::default() };
                        store::charge(&tx, team, job, provider, now, failed).await?;
                        tx.commit().await?;
                        let wait = match e {
                            ProviderError::RateLimited(d) => d,
                            _ => self.timing.retry_after,
                        };
                        return self.later(&step, wait).await;
                    }
                    Err(e) => {
                        tracing::warn!(job = %job, business = %id, error = %e, "Apollo could not enrich the business");
                        let failed = Cost { failures: 1, ..Cost::default() };
                        store::charge(&tx, team, job, provider, now, failed).await?;
                        nextier_store::businesses::set_apollo(&tx, id, "failed", Some(&e.to_string()), None, now)
                            .await?;
                        store::complete_if_done(&tx, job, now).await?;
                        tx.commit().await?;
                        return Ok(());
                    }
                }
            }
        };
        let (org, people) = answer;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let Some(org) = org else {
            nextier_store::businesses::set_apollo(&tx, id, "not_found", Some("Apollo does not know it"), None, now)
                .await?;
            store::complete_if_done(&tx, job, now).await?;
            tx.commit().await?;
            return Ok(());
        };
        let source = provider.as_str();
        nextier_store::businesses::fill_from_provider(
            &tx,
            id,
            org.industry.as_deref(),
            org.employees,
            org.annual_revenue,
            org.domain.as_deref(),
            source,
        )
        .await?;
        let mut found = Vec::new();
        for p in people.iter().take(25) {
            let email =
                p.email.as_deref().and_then(|e| Email::parse("email", e).ok()).map(|e| e.as_str().to_lowercase());
            let phone = p.phone.as_deref().and_then(|n| E164::parse(n).ok());
            if p.first_name.is_none() && p.last_name.is_none() && email.is_none() && phone.is_none() {
                continue;
            }
            let (role, decides) = role_of(p);
            let (contact, _) = nextier_store::businesses::add_person(
                &tx,
                team,
                id,
                p.first_name.as_deref(),
                p.last_name.as_deref(),
                p.title.as_deref(),
                email.as_deref(),
                phone.as_ref().map(|e| e.as_str()),
                role,
                decides,
                source,
                now,
            )
            .await?;
            found.push(contact);
        }
        nextier_store::businesses::set_apollo(&tx, id, "enriched", None, org.id.as_deref(), now).await?;
        let added = store::add_items(&tx, team, job, &found, Stage::Grade).await?;
        let staged = self.to_grade(&tx, team, job, &added).await?;
        store::complete_if_done(&tx, job, now).await?;
        tx.commit().await?;
        self.outbox.publish(&staged).await;
        Ok(())
    }
}

/// Adds what a trace found to the contact, with its source; a number or address the team
/// already has (on this contact or another) is left where it is.
async fn apply_trace(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &ContactId,
    found: &TraceResult,
    provider: Provider,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (mut phones, mut emails) = (0, 0);
    // A provider's answer adds at most ten numbers and ten addresses to one person.
    for p in found.phones.iter().take(10) {
        let Ok(e164) = E164::parse(&p.number) else { continue };
        let kind = rules::line_type(&p.line_type);
        if store::add_found_phone(tx, team, contact, e164.as_str(), kind, provider.as_str(), now).await? {
            phones += 1;
            if let Some(carrier) = &p.carrier {
                contacts::set_carrier_if_unknown(tx, contact, e164.as_str(), carrier).await?;
            }
        }
    }
    for e in found.emails.iter().take(10) {
        let Ok(email) = Email::parse("email", e) else { continue };
        if store::add_found_email(tx, team, contact, &email.as_str().to_lowercase(), provider.as_str(), now).await? {
            emails += 1;
        }
    }
    store::set_status(tx, contact, Status::Traced, None, now).await?;
    contacts::record(
        tx,
        team,
        contact,
        "skip_traced",
        json!({"provider": provider, "phonesAdded": phones, "emailsAdded": emails}),
        "enrichment",
    )
    .await
}
