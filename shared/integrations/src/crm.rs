//! The CRM sync (Zoho): the access token kept fresh, contacts pushed (upsert by our id, only
//! what changed, within the team's call rate), and CRM changes pulled since the last cursor
//! (a person's newer edit on our side wins, and the conflict is recorded; a record deleted
//! on either side is recorded and never resurrected).
//!
//! Every push or pull is a recorded task, leased while it runs. A 429, a provider outage or
//! the team's own rate puts it back with its wait; an expired access token is refreshed once
//! and the call repeated; a dead grant marks the connection `needs_reconnect`, fails the task
//! with that reason and tells the team.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nextier_domain::crm as rules;
use nextier_domain::ids::{ContactId, TeamId};
use nextier_domain::rate::{Bucket, Limit};
use nextier_platform::ports::crm::{is_zoho_host, CrmError, ProviderError, TokenError, UpsertOutcome};
use nextier_store::integrations::{self as store, Integration, NewConflict};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, Scope, Tx};
use serde::Serialize;
use serde_json::{json, Value};

use crate::Worker;

/// How long a runner holds a task without renewing.
const LEASE_SECS: i32 = 600;
/// Contacts a push task takes from the change feed before handing on to a new task.
const PUSH_BATCH: i64 = 1000;
/// A contact's `updated_at` is its transaction's start, so a long transaction (an import)
/// can commit changes older than the cursor already is: the cursor never passes what is
/// younger than this, and such contacts are read again (unchanged ones cost no call).
const PUSH_SETTLE: chrono::Duration = chrono::Duration::minutes(10);
/// Records per upsert (Zoho's most).
const UPSERT_MAX: usize = 100;
/// Pages a pull task reads per module before handing on.
const PULL_PAGES: u32 = 10;
/// Attempts of a task that keeps meeting an outage.
const MAX_ATTEMPTS: i32 = 8;
/// A token that expires within this is refreshed.
pub const REFRESH_AHEAD: chrono::Duration = chrono::Duration::minutes(10);
/// The team's calls per minute to its CRM unless its setting `crm/calls_per_minute` says.
pub const DEFAULT_CALLS_PER_MINUTE: u32 = 100;

/// Why a CRM step stopped.
#[derive(Debug)]
enum Stop {
    /// The grant is dead: a person must reconnect.
    Revoked(String),
    /// Try again at this time (429, our own rate, an outage).
    Later(DateTime<Utc>, String),
    /// Retrying will not help.
    Fatal(String),
    Store(anyhow::Error),
}

impl From<nextier_store::StoreError> for Stop {
    fn from(e: nextier_store::StoreError) -> Self {
        Stop::Store(e.into())
    }
}

impl From<nextier_store::tokio_postgres::Error> for Stop {
    fn from(e: nextier_store::tokio_postgres::Error) -> Self {
        Stop::Store(e.into())
    }
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Store(e)
    }
}

/// A connection's working state inside a task.
struct Session<'a> {
    w: &'a Worker,
    team: TeamId,
    integration: Integration,
    access: String,
    calls_per_minute: u32,
}

fn provider_stop(now: DateTime<Utc>, e: ProviderError) -> Stop {
    match e {
        ProviderError::RateLimited(d) => Stop::Later(
            now + chrono::Duration::from_std(d.max(Duration::from_secs(1))).unwrap_or_default(),
            e.to_string(),
        ),
        ProviderError::Unavailable(_) => Stop::Later(now + chrono::Duration::seconds(60), e.to_string()),
        ProviderError::Unauthorized(m) => Stop::Fatal(format!("the CRM refused our client credentials: {m}")),
        ProviderError::Malformed(m) => Stop::Fatal(format!("the CRM's answer is unusable: {m}")),
    }
}

impl Session<'_> {
    fn scope(&self) -> Scope {
        Scope::team(self.team.clone())
    }

    fn api(&self) -> Result<String, Stop> {
        let api = self.integration.api_domain.clone().ok_or_else(|| Stop::Revoked("no API domain".into()))?;
        if !is_zoho_host(&api, &self.w.crm_hosts) {
            return Err(Stop::Fatal(format!("the API domain {api} is not Zoho's")));
        }
        Ok(api)
    }

    /// One unit of the team's CRM rate, or when to come back.
    async fn take_call(&self) -> Result<(), Stop> {
        // A burst of one: no 60-second window ever holds more calls than the rate (a larger
        // burst would overrun a CRM that counts per rolling minute).
        let bucket = Bucket::new(format!("crm:{}", self.integration.id), Limit::per_minute(self.calls_per_minute, 1));
        let now = self.w.clock.now();
        // A slot within the next five seconds is reserved (the unit is ours) and waited for; a
        // later one hands the task back with when to come.
        let ask = nextier_domain::rate::Ask { buckets: vec![bucket], cost: 1 };
        let slots = self
            .w
            .limiter
            .reserve(std::slice::from_ref(&ask), now, chrono::Duration::seconds(5))
            .await
            .map_err(|e| Stop::Store(e.into()))?;
        match slots.into_iter().next() {
            Some(nextier_domain::rate::Slot::At(at)) => {
                tokio::time::sleep((at - now).to_std().unwrap_or_default()).await;
                Ok(())
            }
            Some(nextier_domain::rate::Slot::Refused { retry_at, .. }) => {
                Err(Stop::Later(retry_at, "the team's CRM call rate".into()))
            }
            None => Err(Stop::Store(anyhow::anyhow!("the limiter answered nothing"))),
        }
    }

    /// Refreshes the access token (once per 401): the new token, or the grant is dead.
    async fn refresh(&mut self) -> Result<(), Stop> {
        let (access, expires) = refresh_tokens(self.w, &self.team, &self.integration).await?;
        self.access = access;
        self.integration.access_expires_at = Some(expires);
        Ok(())
    }

    /// Runs a CRM call with the rate taken, a refresh on an expired token, and provider
    /// failures turned into when to come back.
    async fn call<T, F, Fut>(&mut self, f: F) -> Result<T, Stop>
    where
        F: Fn(String, String) -> Fut,
        Fut: std::future::Future<Output = Result<T, CrmError>>,
    {
        let api = self.api()?;
        for attempt in 0..2 {
            self.take_call().await?;
            match f(api.clone(), self.access.clone()).await {
                Ok(v) => return Ok(v),
                Err(CrmError::TokenExpired(m)) if attempt == 0 => {
                    tracing::info!(integration = %self.integration.id, reason = %m, "access token refused; refreshing");
                    self.refresh().await?;
                }
                Err(CrmError::TokenExpired(m)) => return Err(Stop::Revoked(format!("a fresh token was refused: {m}"))),
                Err(CrmError::Provider(e)) => return Err(provider_stop(self.w.clock.now(), e)),
            }
        }
        Err(Stop::Fatal("unreachable".into()))
    }
}

/// Refreshes a connection's access token and stores it; a dead grant marks it
/// `needs_reconnect` and tells the team.
async fn refresh_tokens(w: &Worker, team: &TeamId, i: &Integration) -> Result<(String, DateTime<Utc>), Stop> {
    let scope = Scope::team(team.clone());
    if !is_zoho_host(&i.accounts_server, &w.crm_hosts) {
        return Err(Stop::Fatal(format!("the accounts server {} is not Zoho's", i.accounts_server)));
    }
    let mut conn = w.db.conn().await.map_err(|e| Stop::Store(e.into()))?;
    let tx = scope::begin(&mut conn, &scope).await?;
    let tokens = store::tokens(&tx, &i.id).await?;
    tx.commit().await?;
    let Some((refresh, _)) = tokens else {
        return Err(Stop::Revoked("no refresh token is stored".into()));
    };
    let now = w.clock.now();
    match w.crm.refresh(&i.accounts_server, &refresh).await {
        Ok(t) => {
            let api = t.api_domain.as_deref().filter(|a| is_zoho_host(a, &w.crm_hosts));
            let expires = now + chrono::Duration::seconds(t.expires_in_secs.clamp(60, 24 * 3600));
            let tx = scope::begin(&mut conn, &scope).await?;
            store::refreshed(&tx, &i.id, &t.access_token, expires, api).await?;
            tx.commit().await?;
            tracing::info!(integration = %i.id, "access token refreshed");
            Ok((t.access_token, expires))
        }
        Err(TokenError::Revoked(m)) => {
            mark_revoked(w, team, i, &m).await.map_err(Stop::Store)?;
            Err(Stop::Revoked(m))
        }
        Err(TokenError::Provider(e)) => Err(provider_stop(now, e)),
    }
}

/// The grant is dead: `needs_reconnect`, the team's feed, and mail to its owners and admins
/// (once: only the change of status does it).
async fn mark_revoked(w: &Worker, team: &TeamId, i: &Integration, reason: &str) -> anyhow::Result<()> {
    let mut conn = w.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let mut staged = vec![];
    if store::needs_reconnect(&tx, &i.id, &format!("the CRM refused the grant: {reason}")).await? {
        let data = json!({"integrationId": i.id, "provider": i.provider, "reason": reason});
        staged.push(
            outbox::stage_for_team(
                &tx,
                team,
                Destination::Event("IntegrationNeedsReconnect".into()),
                data,
                format!("crm-{}", i.id),
            )
            .await?,
        );
        let mail = json!({
            "teamId": team.as_str(),
            "key": format!("crm-reconnect:{}:{}", i.id, w.clock.now().timestamp()),
            "subject": "Reconnect your CRM",
            "text": format!("Zoho CRM refused our access ({reason}), so contacts are not syncing. \
                             Connect it again from Settings → Integrations; nothing is lost while it waits."),
        });
        staged.extend(
            outbox::stage(
                &tx,
                &OutboxMessage {
                    team: Some(team.clone()),
                    destination: Destination::Queue("mail".into()),
                    payload: mail,
                    correlation_id: format!("crm-{}", i.id),
                    dedupe_key: None,
                },
            )
            .await?,
        );
    }
    tx.commit().await?;
    if let Some(p) = &w.publisher {
        p.publish(&staged).await;
    }
    tracing::warn!(integration = %i.id, reason, "CRM grant revoked; the team must reconnect");
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushResult {
    pub pushed: usize,
    pub created: usize,
    pub unchanged: usize,
    pub refused: Vec<Value>,
    pub deleted_locally: usize,
    pub skipped_remote_deleted: usize,
    /// More changes wait: a new task takes them.
    pub more: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullResult {
    pub records: usize,
    pub applied: usize,
    pub conflicts: usize,
    pub unlinked: usize,
    pub deleted_remotely: usize,
    /// Seconds in which more records changed than Zoho pages through (rest passed over).
    pub passed_over_seconds: usize,
    pub more: bool,
}

/// Runs one task (a push or a pull) as far as it goes now.
pub async fn run_task(w: &Worker, team: &TeamId, id: &str) -> anyhow::Result<String> {
    let scope = Scope::team(team.clone());
    let mut conn = w.db.conn().await?;
    let tx = scope::begin(&mut conn, &scope).await?;
    let Some(task) = store::claim_task(&tx, id, w.clock.now(), LEASE_SECS, MAX_ATTEMPTS).await? else {
        // Committed: a claim that ended a stuck task must stick.
        tx.commit().await?;
        return Ok("skipped".into());
    };
    let integration = store::get(&tx, &task.integration_id).await?;
    let calls_per_minute = nextier_store::settings::get(&tx, team, "crm", "calls_per_minute", true)
        .await
        .ok()
        .and_then(|s| s.value.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .unwrap_or(DEFAULT_CALLS_PER_MINUTE);
    let tokens = store::tokens(&tx, &integration.id).await?;
    tx.commit().await?;
    drop(conn);
    let finish = |result: Value, error: Option<(String, Option<DateTime<Utc>>)>| async move {
        let mut conn = w.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        match &error {
            None => store::finish_task(&tx, id, &result).await?,
            Some((e, retry)) => store::fail_task(&tx, id, e, &result, *retry).await?,
        }
        tx.commit().await?;
        if let Some((_, Some(at))) = &error {
            let m = crate::TaskMessage::task(team, id);
            let wait = (*at - w.clock.now()).to_std().unwrap_or_default();
            crate::send_task(w.queue.as_ref(), &m, wait).await?;
        }
        anyhow::Ok(())
    };
    if integration.status != "connected" {
        finish(json!({}), Some((format!("the connection is {}; reconnect it to sync", integration.status), None)))
            .await?;
        return Ok("not connected".into());
    }
    let Some((_, access)) = tokens else {
        finish(json!({}), Some(("no tokens are stored; reconnect".into(), None))).await?;
        return Ok("no tokens".into());
    };
    let mut s = Session { w, team: team.clone(), integration, access: access.unwrap_or_default(), calls_per_minute };
    if s.integration.access_expires_at.is_none_or(|e| e <= w.clock.now() + chrono::Duration::seconds(60))
        || s.access.is_empty()
    {
        if let Err(stop) = s.refresh().await {
            return settle(w, team, &s.integration, &task, stop, json!({}), finish).await;
        }
    }
    let (outcome, result) = match task.kind.as_str() {
        "push" => {
            let mut r = PushResult::default();
            let o = push(&mut s, &task.payload, &mut r).await;
            (o, serde_json::to_value(&r)?)
        }
        _ => {
            let mut r = PullResult::default();
            let o = pull(&mut s, &mut r).await;
            (o, serde_json::to_value(&r)?)
        }
    };
    match outcome {
        Ok(more) => {
            finish(result, None).await?;
            if more {
                // The rest is a new task, so each task's record stays small.
                let mut conn = w.db.conn().await?;
                let tx = scope::begin(&mut conn, &scope).await?;
                let next = store::create_task(&tx, team, &s.integration.id, &task.kind, &task.payload, "sync").await?;
                let staged = crate::stage_task(&tx, team, &crate::TaskMessage::task(team, &next.id)).await?;
                tx.commit().await?;
                if let Some(p) = &w.publisher {
                    p.publish(&staged.into_iter().collect::<Vec<_>>()).await;
                }
            }
            Ok("done".into())
        }
        Err(stop) => settle(w, team, &s.integration, &task, stop, result, finish).await,
    }
}

async fn settle<F, Fut>(
    w: &Worker,
    _team: &TeamId,
    i: &Integration,
    task: &store::Task,
    stop: Stop,
    result: Value,
    finish: F,
) -> anyhow::Result<String>
where
    F: FnOnce(Value, Option<(String, Option<DateTime<Utc>>)>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    match stop {
        Stop::Revoked(m) => {
            finish(result, Some((format!("the CRM refused our access ({m}); reconnect to sync"), None))).await?;
            Ok("revoked".into())
        }
        Stop::Later(at, why) if task.attempts < MAX_ATTEMPTS => {
            tracing::info!(integration = %i.id, task = %task.id, %at, why, "CRM task waits");
            finish(result, Some((format!("waiting: {why}"), Some(at)))).await?;
            Ok("later".into())
        }
        Stop::Later(_, why) => {
            finish(result, Some((format!("gave up after {} attempts: {why}", task.attempts), None))).await?;
            Ok("failed".into())
        }
        Stop::Fatal(m) => {
            let _ = w;
            finish(result, Some((m, None))).await?;
            Ok("failed".into())
        }
        // The database: SQS retries the message; the lease lets the next delivery claim it.
        Stop::Store(e) => Err(e),
    }
}

/// Pushes contacts: the ids the task names, or the changes after the push cursor. Whether
/// more changes wait.
async fn push(s: &mut Session<'_>, payload: &Value, r: &mut PushResult) -> Result<bool, Stop> {
    let w = s.w;
    let scope = s.scope();
    let mut conn = w.db.conn().await.map_err(|e| Stop::Store(e.into()))?;
    let named: Option<Vec<String>> = payload.get("contactIds").and_then(|v| serde_json::from_value(v.clone()).ok());
    let (ids, deleted, cursor_to, more) = match &named {
        Some(ids) => (ids.clone(), vec![], None, false),
        None => {
            let tx = scope::begin(&mut conn, &scope).await?;
            let changed = store::changed_contacts(&tx, &s.integration.push_after, PUSH_BATCH).await?;
            tx.commit().await?;
            let more = changed.len() as i64 == PUSH_BATCH;
            let settled = w.clock.now() - PUSH_SETTLE;
            let last = changed
                .last()
                .map(|(id, at, _)| if *at < settled { (*at, id.to_string()) } else { (settled, String::new()) });
            let (gone, live): (Vec<_>, Vec<_>) = changed.into_iter().partition(|(_, _, d)| *d);
            (
                live.into_iter().map(|(id, _, _)| id.to_string()).collect(),
                gone.into_iter().map(|(id, _, _)| id.to_string()).collect::<Vec<_>>(),
                last,
                more,
            )
        }
    };
    let modules = s.integration.modules.clone();
    for module in &modules {
        let tx = scope::begin(&mut conn, &scope).await?;
        let mapping = store::mapping(&tx, &s.integration.id, module).await?;
        // A contact deleted here: its record stays in the CRM, the link says so, once.
        for c in store::links_of(&tx, &s.integration.id, module, &deleted).await? {
            if store::mark_link(&tx, &s.integration.id, module, &c.contact_id, "local_deleted").await? {
                store::conflict(
                    &tx,
                    &s.team,
                    &s.integration.id,
                    &NewConflict {
                        contact: Some(&c.contact_id),
                        module,
                        external_id: &c.external_id,
                        kind: "local_deleted",
                        field: None,
                        ours: None,
                        theirs: None,
                        our_edited_at: None,
                        their_modified_at: None,
                        resolution: "kept_in_crm",
                    },
                )
                .await?;
                r.deleted_locally += 1;
            }
        }
        tx.commit().await?;
        let dup = vec![mapping
            .iter()
            .find(|(src, _)| src == "id")
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| rules::EXTERNAL_ID_FIELD.into())];
        for chunk in ids.chunks(UPSERT_MAX) {
            let tx = scope::begin(&mut conn, &scope).await?;
            let sources = store::push_sources(&tx, chunk).await?;
            let links: HashMap<String, store::Link> = store::links_of(&tx, &s.integration.id, module, chunk)
                .await?
                .into_iter()
                .map(|l| (l.contact_id.clone(), l))
                .collect();
            tx.commit().await?;
            let mut batch: Vec<(String, Value, String)> = vec![];
            for (id, src) in sources {
                let record = rules::record(&src, &mapping);
                let hash = rules::digest(&record);
                match links.get(&id) {
                    Some(l) if l.state == "remote_deleted" => r.skipped_remote_deleted += 1,
                    Some(l) if l.pushed_hash.as_deref() == Some(hash.as_str()) && l.state == "linked" => {
                        r.unchanged += 1
                    }
                    _ => batch.push((id, record, hash)),
                }
            }
            if batch.is_empty() {
                continue;
            }
            let records: Vec<Value> = batch.iter().map(|(_, rec, _)| rec.clone()).collect();
            let crm = w.crm.clone();
            let (m, d) = (module.clone(), dup.clone());
            let outcomes = s
                .call(|api, token| {
                    let (crm, records, m, d) = (crm.clone(), records.clone(), m.clone(), d.clone());
                    async move { crm.upsert(&api, &token, &m, &records, &d).await }
                })
                .await?;
            let now = w.clock.now();
            let tx = scope::begin(&mut conn, &scope).await?;
            for ((id, _, hash), outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    UpsertOutcome::Saved { id: external, created } => {
                        store::linked(&tx, &s.team, &s.integration.id, module, id, &external, hash, now).await?;
                        r.pushed += 1;
                        r.created += usize::from(created);
                    }
                    UpsertOutcome::Refused { code, message } => {
                        r.refused.push(json!({"contactId": id, "module": module, "code": code, "message": message}));
                    }
                }
            }
            tx.commit().await?;
        }
    }
    if let Some((at, id)) = cursor_to {
        let tx = scope::begin(&mut conn, &scope).await?;
        store::advance_push(&tx, &s.integration.id, at, &id).await?;
        tx.commit().await?;
    }
    Ok(more)
}

fn modified_time(record: &Value) -> Option<DateTime<Utc>> {
    record
        .get("Modified_Time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Pulls the CRM's changes since each module's cursor. Whether more pages wait.
async fn pull(s: &mut Session<'_>, r: &mut PullResult) -> Result<bool, Stop> {
    let w = s.w;
    let scope = s.scope();
    let mut conn = w.db.conn().await.map_err(|e| Stop::Store(e.into()))?;
    let mut more = false;
    let modules = s.integration.modules.clone();
    for module in &modules {
        let cursor = s
            .integration
            .pull_cursor
            .get(module)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|d| d.with_timezone(&Utc));
        // The CRM's times are whole seconds and `If-Modified-Since` means after: a change in
        // the cursor's own second would be missed, so the pull reads one second back (what it
        // saw already is skipped by the link's `remote_modified_at`).
        let since = cursor.map(|c| c - chrono::Duration::seconds(1));
        let tx = scope::begin(&mut conn, &scope).await?;
        let mapping = store::mapping(&tx, &s.integration.id, module).await?;
        tx.commit().await?;
        let id_field = mapping
            .iter()
            .find(|(src, _)| src == "id")
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| rules::EXTERNAL_ID_FIELD.into());
        let mut fields: Vec<String> = mapping.iter().map(|(_, t)| t.clone()).collect();
        fields.push("Modified_Time".into());
        let mut newest = cursor;
        // Keyset by time: each window starts one second before the newest change seen, page 1
        // (numbered pages shift as records change, and Zoho pages no further than 2000 records);
        // only a window whose page sits wholly in its first second goes on to its next page.
        let (mut window, mut page) = (since, 1u32);
        for round in 1..=PULL_PAGES {
            let crm = w.crm.clone();
            let (m, f, at) = (module.clone(), fields.clone(), window);
            let got = s
                .call(|api, token| {
                    let (crm, m, f) = (crm.clone(), m.clone(), f.clone());
                    async move { crm.changed(&api, &token, &m, &f, at, page).await }
                })
                .await?;
            let tx = scope::begin(&mut conn, &scope).await?;
            let mut page_newest: Option<DateTime<Utc>> = None;
            for record in &got.records {
                r.records += 1;
                let their_at = modified_time(record);
                if let Some(at) = their_at {
                    newest = Some(newest.map_or(at, |n| n.max(at)));
                    page_newest = Some(page_newest.map_or(at, |n| n.max(at)));
                }
                apply(&tx, s, module, &mapping, &id_field, record, their_at, r).await?;
            }
            if let Some(n) = newest {
                store::set_pull_cursor(&tx, &s.integration.id, module, n).await?;
            }
            tx.commit().await?;
            if !got.more {
                break;
            }
            match page_newest.map(|n| n - chrono::Duration::seconds(1)) {
                Some(next) if window.is_none_or(|w| next > w) => (window, page) = (Some(next), 1),
                // More than Zoho pages through in one second (a mass update): the rest of that
                // second is passed over, and the result says so.
                Some(_) if page * 200 >= 2000 => {
                    r.passed_over_seconds += 1;
                    (window, page) = (page_newest, 1);
                }
                _ => page += 1,
            }
            if round == PULL_PAGES {
                more = true;
            }
        }
        // Records deleted in the CRM: the link says so and the contact stays ours.
        let crm = w.crm.clone();
        let m = module.clone();
        let mut deleted = vec![];
        for page in 1..=PULL_PAGES {
            let (crm, m) = (crm.clone(), m.clone());
            let (got, more_deleted) = s
                .call(|api, token| {
                    let (crm, m) = (crm.clone(), m.clone());
                    async move { crm.deleted(&api, &token, &m, since, page).await }
                })
                .await?;
            deleted.extend(got);
            if !more_deleted {
                break;
            }
        }
        let tx = scope::begin(&mut conn, &scope).await?;
        for d in deleted {
            let Some(link) = store::link_by_external(&tx, &s.integration.id, module, &d.id).await? else { continue };
            if store::mark_link(&tx, &s.integration.id, module, &link.contact_id, "remote_deleted").await? {
                store::conflict(
                    &tx,
                    &s.team,
                    &s.integration.id,
                    &NewConflict {
                        contact: Some(&link.contact_id),
                        module,
                        external_id: &d.id,
                        kind: "remote_deleted",
                        field: None,
                        ours: None,
                        theirs: None,
                        our_edited_at: None,
                        their_modified_at: d.deleted_at,
                        resolution: "kept_contact",
                    },
                )
                .await?;
                r.deleted_remotely += 1;
            }
        }
        tx.commit().await?;
    }
    let tx = scope::begin(&mut conn, &scope).await?;
    store::pulled(&tx, &s.integration.id, w.clock.now()).await?;
    tx.commit().await?;
    Ok(more)
}

/// Applies one CRM record to its contact: each pullable field that differs is taken, unless a
/// person edited the contact after the CRM's change (ours stays; the conflict is recorded).
#[allow(clippy::too_many_arguments)]
async fn apply(
    tx: &Tx<'_>,
    s: &Session<'_>,
    module: &str,
    mapping: &[(String, String)],
    id_field: &str,
    record: &Value,
    their_at: Option<DateTime<Utc>>,
    r: &mut PullResult,
) -> Result<(), Stop> {
    let Some(external) =
        record.get("id").and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())))
    else {
        return Ok(());
    };
    let link = match store::link_by_external(tx, &s.integration.id, module, &external).await? {
        Some(l) => Some(l),
        // A record we pushed but whose answer we lost, or made by our id elsewhere: our id
        // field names the contact.
        // Only a contact with no record in the module yet: a copy of a record (Zoho copies
        // custom fields) or a form that sets the field takes over nothing.
        None => match record.get(id_field).and_then(Value::as_str).and_then(|c| ContactId::parse("id", c).ok()) {
            Some(c)
                if store::lock_contact(tx, c.as_str()).await?.is_some_and(|(_, _, deleted)| !deleted)
                    && store::links_of(tx, &s.integration.id, module, &[c.to_string()]).await?.is_empty() =>
            {
                store::linked(tx, &s.team, &s.integration.id, module, c.as_str(), &external, "", s.w.clock.now())
                    .await?;
                store::link_by_external(tx, &s.integration.id, module, &external).await?
            }
            Some(c) => {
                let conflict = NewConflict {
                    contact: Some(c.as_str()),
                    module,
                    external_id: &external,
                    kind: "duplicate_record",
                    field: None,
                    ours: None,
                    theirs: None,
                    our_edited_at: None,
                    their_modified_at: their_at,
                    resolution: "ignored",
                };
                store::conflict(tx, &s.team, &s.integration.id, &conflict).await?;
                None
            }
            None => None,
        },
    };
    let Some(link) = link else {
        r.unlinked += 1;
        return Ok(());
    };
    if link.state != "linked" {
        return Ok(());
    }
    // An older version than one already applied: nothing to do. The same version again (the
    // pull re-reads its cursor's second, where a later change can share the time) is applied
    // again, harmlessly, but its conflicts were recorded the first time.
    if their_at.is_some() && link.remote_modified_at.is_some() && their_at < link.remote_modified_at {
        return Ok(());
    }
    let seen = their_at.is_some() && their_at == link.remote_modified_at;
    let Some((ours, edited_at, deleted)) = store::lock_contact(tx, &link.contact_id).await? else { return Ok(()) };
    if deleted {
        if store::mark_link(tx, &s.integration.id, module, &link.contact_id, "local_deleted").await? {
            store::conflict(
                tx,
                &s.team,
                &s.integration.id,
                &NewConflict {
                    contact: Some(&link.contact_id),
                    module,
                    external_id: &external,
                    kind: "local_deleted",
                    field: None,
                    ours: None,
                    theirs: None,
                    our_edited_at: None,
                    their_modified_at: their_at,
                    resolution: "kept_deleted",
                },
            )
            .await?;
        }
        return Ok(());
    }
    let theirs = rules::pulled(record, mapping);
    let mut take: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (field, value) in &theirs {
        let our = ours.get(field).cloned().flatten();
        if &our == value {
            continue;
        }
        let ours_newer =
            matches!((edited_at, their_at), (Some(e), Some(t)) if e > t) || (edited_at.is_some() && their_at.is_none());
        if ours_newer && seen {
            continue;
        }
        if ours_newer {
            store::conflict(
                tx,
                &s.team,
                &s.integration.id,
                &NewConflict {
                    contact: Some(&link.contact_id),
                    module,
                    external_id: &external,
                    kind: "field",
                    field: Some(field),
                    ours: our.as_deref(),
                    theirs: value.as_deref(),
                    our_edited_at: edited_at,
                    their_modified_at: their_at,
                    resolution: "kept_ours",
                },
            )
            .await?;
            r.conflicts += 1;
        } else {
            take.insert(field.clone(), value.clone());
        }
    }
    if !take.is_empty() {
        store::apply_pulled(tx, &link.contact_id, &take).await?;
        r.applied += 1;
    }
    if let Some(at) = their_at {
        store::set_remote_modified(tx, &s.integration.id, module, &link.contact_id, at).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncSummary {
    pub connections: usize,
    pub refreshed: usize,
    pub revoked: usize,
    pub refresh_failed: usize,
    pub push_tasks: usize,
    pub pull_tasks: usize,
    pub resent: usize,
    /// Connections whose round failed (the next round tries again).
    pub failed: usize,
}

/// The CRM schedule (every 5 minutes): tokens that expire within [`REFRESH_AHEAD`] are
/// refreshed; each connection with changes to push, or pulling on, gets its task (one open
/// task of a kind at a time); work whose queue message was lost is sent again.
pub async fn sync(w: &Worker) -> anyhow::Result<SyncSummary> {
    let now = w.clock.now();
    let mut sum = SyncSummary::default();
    let mut conn = w.db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let all = store::connected(&tx).await?;
    let stalled = nextier_store::exports::stalled(&tx, now, 100).await?;
    tx.commit().await?;
    drop(conn);
    // Lost work first: a slow CRM below must not keep it waiting.
    for (kind, id, team) in stalled {
        let m = crate::TaskMessage {
            team_id: team.to_string(),
            task_id: (kind == "task").then(|| id.clone()),
            export_id: (kind == "export").then(|| id.clone()),
        };
        crate::send_task(w.queue.as_ref(), &m, Duration::ZERO).await?;
        sum.resent += 1;
    }
    sum.connections = all.len();
    for (id, team, expires) in all {
        // One connection's trouble is its own: the others still sync.
        if let Err(e) = sync_one(w, &id, &team, expires, now, &mut sum).await {
            tracing::warn!(integration = %id, error = %format!("{e:#}"), "CRM sync of a connection failed");
            sum.failed += 1;
        }
    }
    tracing::info!(?sum, "CRM sync round");
    Ok(sum)
}

async fn sync_one(
    w: &Worker,
    id: &str,
    team: &TeamId,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    sum: &mut SyncSummary,
) -> anyhow::Result<()> {
    let scope = Scope::team(team.clone());
    let mut conn = w.db.conn().await?;
    if expires.is_none_or(|e| e <= now + REFRESH_AHEAD) {
        let tx = scope::begin(&mut conn, &scope).await?;
        let i = store::get(&tx, id).await?;
        tx.commit().await?;
        match refresh_tokens(w, team, &i).await {
            Ok(_) => sum.refreshed += 1,
            Err(Stop::Revoked(_)) => {
                sum.revoked += 1;
                return Ok(());
            }
            Err(Stop::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(integration = %id, error = ?e, "token refresh failed; the next run tries again");
                sum.refresh_failed += 1;
            }
        }
    }
    let tx = scope::begin(&mut conn, &scope).await?;
    let i = store::get(&tx, id).await?;
    let mut staged = vec![];
    if i.push_enabled
        && !store::task_open(&tx, id, "push").await?
        && !store::changed_contacts(&tx, &i.push_after, 1).await?.is_empty()
    {
        let t = store::create_task(&tx, team, id, "push", &json!({}), "schedule").await?;
        let m = crate::TaskMessage::task(team, &t.id);
        staged.extend(crate::stage_task(&tx, team, &m).await?);
        sum.push_tasks += 1;
    }
    if i.pull_enabled && !store::task_open(&tx, id, "pull").await? {
        let t = store::create_task(&tx, team, id, "pull", &json!({}), "schedule").await?;
        let m = crate::TaskMessage::task(team, &t.id);
        staged.extend(crate::stage_task(&tx, team, &m).await?);
        sum.pull_tasks += 1;
    }
    tx.commit().await?;
    if let Some(p) = &w.publisher {
        p.publish(&staged).await;
    }
    Ok(())
}
