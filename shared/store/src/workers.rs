//! AI workers: their configuration, the numbers they own, routing decisions, versioned
//! prompts, the intelligence log and per-worker metrics. Every function runs in a
//! tenant-scoped transaction.

use chrono::{DateTime, Utc};
use nextier_domain::ai::{self, ActiveHours, AutoSend, Faq, Policy, Role, RouteReason};
use nextier_domain::ids::{ContactId, InboxItemId, SuggestionId, TeamId, WorkerId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

/// A worker's response delay range, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    pub min_seconds: i32,
    pub max_seconds: i32,
}

/// What a worker is: everything but its identity and history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fields {
    pub name: String,
    pub role: Role,
    pub persona: String,
    pub tone: String,
    pub goal: String,
    pub industry: String,
    pub faqs: Vec<Faq>,
    pub sign_off: String,
    /// "HH:MM" in the team's zone (setting `ai` / `time_zone`).
    pub active_from: String,
    pub active_until: String,
    /// ISO weekdays, 1 = Monday.
    pub active_days: Vec<i16>,
    pub response_delay: Delay,
    /// AI messages this worker sends a day (team-zone day), all leads together.
    pub daily_cap: i32,
    /// AI messages one lead receives from this worker a day.
    pub per_lead_cap: i32,
    pub auto_send: AutoSend,
    pub auto_threshold: i16,
    pub auto_classes: Vec<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub id: WorkerId,
    /// A stable handle (`gianna`, `cathy`, `sabrina`, `neva` for the defaults).
    pub key: String,
    #[serde(flatten)]
    pub fields: Fields,
    /// The auto-send policy's version: every change makes a new one.
    pub policy_version: i32,
    /// The sending numbers it owns (replies to them come to it).
    pub numbers: Vec<String>,
    pub updated_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Worker {
    pub fn policy(&self) -> Policy {
        Policy {
            mode: self.fields.auto_send,
            threshold: self.fields.auto_threshold.clamp(0, 100) as u8,
            classes: self.fields.auto_classes.clone(),
            version: self.policy_version,
        }
    }

    pub fn hours(&self, zone: ai::Tz) -> ActiveHours {
        let minutes = |s: &str| ai::parse_clock("", s).unwrap_or(0);
        ActiveHours {
            from: ai::clock_time(minutes(&self.fields.active_from)),
            until: ai::clock_time(minutes(&self.fields.active_until)),
            days: self.fields.active_days.iter().filter_map(|d| u8::try_from(*d).ok()).collect(),
            zone,
        }
    }
}

/// The four workers every team starts with (DOMAIN.md C.8).
pub fn defaults() -> Vec<(&'static str, Fields)> {
    let base = |name: &str, role, persona: &str, tone: &str, goal: &str| Fields {
        name: name.into(),
        role,
        persona: persona.into(),
        tone: tone.into(),
        goal: goal.into(),
        industry: "real estate".into(),
        faqs: vec![],
        sign_off: String::new(),
        active_from: "09:00".into(),
        active_until: "19:00".into(),
        active_days: vec![1, 2, 3, 4, 5],
        response_delay: Delay { min_seconds: 60, max_seconds: 300 },
        daily_cap: 200,
        per_lead_cap: 3,
        auto_send: AutoSend::Never,
        auto_threshold: 90,
        auto_classes: vec![],
        active: true,
    };
    vec![
        (
            "gianna",
            base(
                "GIANNA",
                Role::Opener,
                "A warm, curious opener who asks one simple question at a time.",
                "friendly",
                "Start a conversation and learn whether the owner would consider an offer.",
            ),
        ),
        (
            "cathy",
            Fields {
                daily_cap: 300,
                per_lead_cap: 1,
                ..base(
                    "CATHY",
                    Role::Nurture,
                    "Light-touch follow-ups every few days, with a little humour and no pressure.",
                    "playful",
                    "Keep the conversation alive until the lead is ready to talk.",
                )
            },
        ),
        (
            "sabrina",
            base(
                "SABRINA",
                Role::Closer,
                "Direct and helpful; proposes concrete times and confirms them.",
                "professional",
                "Book a call with the lead.",
            ),
        ),
        (
            "neva",
            Fields {
                daily_cap: 0,
                per_lead_cap: 0,
                ..base(
                    "NEVA",
                    Role::Research,
                    "A careful researcher: company, role, property and recent signals, with sources.",
                    "neutral",
                    "Brief the team before they talk to a lead. Advisory only.",
                )
            },
        ),
    ]
}

const SELECT: &str = "SELECT w.id, w.key, w.name, w.role, w.persona, w.tone, w.goal, w.industry, w.faqs, w.sign_off,
        w.active_from, w.active_until, w.active_days, w.delay_min_secs, w.delay_max_secs, w.daily_cap, w.per_lead_cap,
        w.auto_send, w.auto_threshold, w.auto_classes, w.policy_version, w.active, w.updated_by, w.created_at,
        w.updated_at,
        ARRAY(SELECT n.number FROM ai_worker_numbers n WHERE n.worker_id = w.id ORDER BY n.number) AS numbers
   FROM ai_workers w";

/// The defaults in their order, then the team's own by age (the defaults share a creation time).
const ORDER: &str =
    "w.created_at, array_position(ARRAY['gianna', 'cathy', 'sabrina', 'neva'], w.key::text) NULLS LAST, w.key";

fn worker(r: &Row) -> Worker {
    let faqs: serde_json::Value = r.get("faqs");
    Worker {
        id: WorkerId::from_trusted(r.get("id")),
        key: r.get("key"),
        fields: Fields {
            name: r.get("name"),
            // The database allows only these (a CHECK).
            role: Role::parse(r.get("role")).unwrap_or(Role::Research),
            persona: r.get("persona"),
            tone: r.get("tone"),
            goal: r.get("goal"),
            industry: r.get("industry"),
            faqs: serde_json::from_value(faqs).unwrap_or_default(),
            sign_off: r.get("sign_off"),
            active_from: ai::format_clock(r.get::<_, i16>("active_from") as u16),
            active_until: ai::format_clock(r.get::<_, i16>("active_until") as u16),
            active_days: r.get("active_days"),
            response_delay: Delay { min_seconds: r.get("delay_min_secs"), max_seconds: r.get("delay_max_secs") },
            daily_cap: r.get("daily_cap"),
            per_lead_cap: r.get("per_lead_cap"),
            auto_send: AutoSend::parse(r.get("auto_send")).unwrap_or(AutoSend::Never),
            auto_threshold: r.get("auto_threshold"),
            auto_classes: r.get("auto_classes"),
            active: r.get("active"),
        },
        policy_version: r.get("policy_version"),
        numbers: r.get("numbers"),
        updated_by: r.get("updated_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

fn minutes(field: &str, s: &str) -> Result<i16> {
    ai::parse_clock(field, s).map(|m| m as i16).map_err(|e| StoreError::Conflict(e.message))
}

/// Creates the default workers the team does not have yet (by key). Idempotent.
pub async fn ensure_defaults(tx: &Tx<'_>, team: &TeamId) -> Result<()> {
    let exists =
        tx.query_typed("SELECT count(*) FROM ai_workers WHERE key = ANY('{gianna,cathy,sabrina,neva}')", &[]).await?;
    if exists.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0) >= 4 {
        return Ok(());
    }
    for (key, f) in defaults() {
        insert(tx, team, key, &f, "system", true).await?;
    }
    Ok(())
}

/// Inserts a worker; with `quiet`, an existing key is left as it is (`None`).
pub async fn insert(
    tx: &Tx<'_>,
    team: &TeamId,
    key: &str,
    f: &Fields,
    actor: &str,
    quiet: bool,
) -> Result<Option<Worker>> {
    let id = WorkerId::new();
    let faqs = serde_json::to_value(&f.faqs).unwrap_or_default();
    let from = minutes("activeFrom", &f.active_from)?;
    let until = minutes("activeUntil", &f.active_until)?;
    let conflict = if quiet { "ON CONFLICT (team_id, key) DO NOTHING" } else { "" };
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO ai_workers (id, team_id, key, name, role, persona, tone, goal, industry, faqs, sign_off,
                    active_from, active_until, active_days, delay_min_secs, delay_max_secs, daily_cap, per_lead_cap,
                    auto_send, auto_threshold, auto_classes, active, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
                         $22, $23) {conflict} RETURNING id"
            ),
            params![id.as_str() => TEXT, team.as_str() => TEXT, key => TEXT, f.name => TEXT, f.role.as_str() => TEXT,
                    f.persona => TEXT, f.tone => TEXT, f.goal => TEXT, f.industry => TEXT, faqs => JSONB,
                    f.sign_off => TEXT, from => INT2, until => INT2, f.active_days => INT2_ARRAY,
                    f.response_delay.min_seconds => INT4, f.response_delay.max_seconds => INT4, f.daily_cap => INT4,
                    f.per_lead_cap => INT4, f.auto_send.as_str() => TEXT, f.auto_threshold => INT2,
                    f.auto_classes => TEXT_ARRAY, f.active => BOOL, actor => TEXT],
        )
        .await
        .map_err(|e| {
            StoreError::unique(e, "ai_workers_team_id_key_key", &format!("a worker with key {key:?} already exists"))
        })?;
    if rows.is_empty() {
        return Ok(None);
    }
    get(tx, &id).await.map(Some)
}

pub async fn update(tx: &Tx<'_>, id: &WorkerId, f: &Fields, actor: &str) -> Result<Worker> {
    let faqs = serde_json::to_value(&f.faqs).unwrap_or_default();
    let from = minutes("activeFrom", &f.active_from)?;
    let until = minutes("activeUntil", &f.active_until)?;
    let n = tx
        .execute_typed(
            "UPDATE ai_workers SET name = $2, role = $3, persona = $4, tone = $5, goal = $6, industry = $7, faqs = $8,
                sign_off = $9, active_from = $10, active_until = $11, active_days = $12, delay_min_secs = $13,
                delay_max_secs = $14, daily_cap = $15, per_lead_cap = $16, auto_send = $17, auto_threshold = $18,
                auto_classes = $19, active = $20, updated_by = $21, updated_at = now()
              WHERE id = $1",
            params![id.as_str() => TEXT, f.name => TEXT, f.role.as_str() => TEXT, f.persona => TEXT, f.tone => TEXT,
                    f.goal => TEXT, f.industry => TEXT, faqs => JSONB, f.sign_off => TEXT, from => INT2,
                    until => INT2, f.active_days => INT2_ARRAY, f.response_delay.min_seconds => INT4,
                    f.response_delay.max_seconds => INT4, f.daily_cap => INT4, f.per_lead_cap => INT4,
                    f.auto_send.as_str() => TEXT, f.auto_threshold => INT2, f.auto_classes => TEXT_ARRAY,
                    f.active => BOOL, actor => TEXT],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn get(tx: &Tx<'_>, id: &WorkerId) -> Result<Worker> {
    let rows = tx.query_typed(&format!("{SELECT} WHERE w.id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(worker).ok_or(StoreError::NotFound)
}

/// Locks a worker's row for a change.
pub async fn lock(tx: &Tx<'_>, id: &WorkerId) -> Result<Worker> {
    let rows =
        tx.query_typed("SELECT 1 FROM ai_workers WHERE id = $1 FOR UPDATE", params![id.as_str() => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn list(tx: &Tx<'_>) -> Result<Vec<Worker>> {
    let rows = tx.query_typed(&format!("{SELECT} ORDER BY {ORDER}"), &[]).await?;
    Ok(rows.iter().map(worker).collect())
}

/// The active worker of a role (the oldest when a team has several).
pub async fn by_role(tx: &Tx<'_>, role: Role) -> Result<Option<Worker>> {
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE w.role = $1 AND w.active ORDER BY {ORDER} LIMIT 1"),
            params![role.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(worker))
}

/// Deletes a worker; its waiting suggestions are held for a person (its policy history stays).
pub async fn delete(tx: &Tx<'_>, id: &WorkerId) -> Result<()> {
    tx.execute_typed(
        "UPDATE ai_suggestions SET send_after = NULL, note = 'the worker was deleted; a person decides'
          WHERE worker_id = $1 AND status = 'pending'",
        params![id.as_str() => TEXT],
    )
    .await?;
    let n = tx.execute_typed("DELETE FROM ai_workers WHERE id = $1", params![id.as_str() => TEXT]).await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Gives a worker exactly these numbers. A number another worker owns is a conflict naming it.
pub async fn set_numbers(tx: &Tx<'_>, team: &TeamId, id: &WorkerId, numbers: &[String]) -> Result<()> {
    let taken = tx
        .query_typed(
            "SELECT n.number, w.key FROM ai_worker_numbers n JOIN ai_workers w ON w.id = n.worker_id
              WHERE n.number = ANY($1) AND n.worker_id <> $2 ORDER BY n.number LIMIT 1",
            params![numbers => TEXT_ARRAY, id.as_str() => TEXT],
        )
        .await?;
    if let Some(r) = taken.first() {
        return Err(StoreError::Conflict(format!(
            "{} belongs to worker {}; take it from that worker first",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        )));
    }
    tx.execute_typed(
        "DELETE FROM ai_worker_numbers WHERE worker_id = $1 AND number <> ALL($2)",
        params![id.as_str() => TEXT, numbers => TEXT_ARRAY],
    )
    .await?;
    tx.execute_typed(
        "INSERT INTO ai_worker_numbers (team_id, worker_id, number) SELECT $1, $2, unnest($3::text[])
         ON CONFLICT (team_id, number) DO NOTHING",
        params![team.as_str() => TEXT, id.as_str() => TEXT, numbers => TEXT_ARRAY],
    )
    .await?;
    Ok(())
}

/// Every version of a worker's policy, newest first.
pub async fn policies(tx: &Tx<'_>, id: &WorkerId) -> Result<Vec<PolicyVersion>> {
    let rows = tx
        .query_typed(
            "SELECT version, auto_send, threshold, classes, changed_by, at FROM ai_worker_policies
              WHERE worker_id = $1 ORDER BY version DESC",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| PolicyVersion {
            policy: Policy {
                mode: AutoSend::parse(r.get("auto_send")).unwrap_or(AutoSend::Never),
                threshold: r.get::<_, i16>("threshold").clamp(0, 100) as u8,
                classes: r.get("classes"),
                version: r.get("version"),
            },
            changed_by: r.get("changed_by"),
            at: r.get("at"),
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    #[serde(flatten)]
    pub policy: Policy,
    pub changed_by: String,
    pub at: DateTime<Utc>,
}

// Routing --------------------------------------------------------------------------------

/// The active worker owning a number.
pub async fn owner_of_number(tx: &Tx<'_>, number: &str) -> Result<Option<Worker>> {
    let rows = tx
        .query_typed(
            &format!(
                "{SELECT} WHERE w.active AND w.role <> 'research'
                   AND w.id = (SELECT worker_id FROM ai_worker_numbers WHERE number = $1)"
            ),
            params![number => TEXT],
        )
        .await?;
    Ok(rows.first().map(worker))
}

/// The active worker that wrote the last outbound message to a contact: the worker of its
/// approval-log row, else the owner of the number it was sent from.
pub async fn last_sender(tx: &Tx<'_>, contact: &ContactId) -> Result<Option<Worker>> {
    let rows = tx
        .query_typed(
            "SELECT COALESCE(l.worker_id, n.worker_id) FROM messages m
               LEFT JOIN ai_approval_log l ON l.message_id = m.id
               LEFT JOIN ai_worker_numbers n ON n.number = m.from_address
              WHERE m.contact_id = $1 AND m.direction = 'outbound'
              ORDER BY m.created_at DESC, m.id DESC LIMIT 1",
            params![contact.as_str() => TEXT],
        )
        .await?;
    let Some(id) = rows.first().and_then(|r| r.get::<_, Option<String>>(0)) else { return Ok(None) };
    match get(tx, &WorkerId::from_trusted(id)).await {
        Ok(w) if w.fields.active && w.fields.role != Role::Research => Ok(Some(w)),
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Text messages exchanged with a contact, both ways.
pub async fn exchanged(tx: &Tx<'_>, contact: &ContactId) -> Result<i64> {
    let rows = tx
        .query_typed(
            "SELECT count(*) FROM messages WHERE contact_id = $1 AND channel = 'SMS'",
            params![contact.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteDecision {
    pub worker_id: Option<String>,
    pub reason: RouteReason,
    pub detail: String,
    pub at: DateTime<Utc>,
}

pub async fn record_route(
    tx: &Tx<'_>,
    team: &TeamId,
    item: &InboxItemId,
    contact: &ContactId,
    worker: Option<&WorkerId>,
    reason: RouteReason,
    detail: &str,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO ai_routing_decisions (team_id, inbox_item_id, contact_id, worker_id, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![team.as_str() => TEXT, item.as_str() => TEXT, contact.as_str() => TEXT,
                worker.map(|w| w.as_str()) => TEXT, reason.as_str() => TEXT, detail => TEXT],
    )
    .await?;
    Ok(())
}

pub async fn routes_for_item(tx: &Tx<'_>, item: &InboxItemId) -> Result<Vec<RouteDecision>> {
    let rows = tx
        .query_typed(
            "SELECT worker_id, reason, detail, at FROM ai_routing_decisions WHERE inbox_item_id = $1 ORDER BY id",
            params![item.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| RouteDecision {
            worker_id: r.get("worker_id"),
            reason: RouteReason::parse(r.get("reason")).unwrap_or(RouteReason::Exchanged),
            detail: r.get("detail"),
            at: r.get("at"),
        })
        .collect())
}

// Caps -----------------------------------------------------------------------------------

/// AI messages a worker sent since `since` (all leads, and this lead).
pub async fn sent_since(
    tx: &Tx<'_>,
    worker: &WorkerId,
    contact: &ContactId,
    since: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let rows = tx
        .query_typed(
            "SELECT count(*), count(*) FILTER (WHERE s.contact_id = $2)
               FROM ai_approval_log l JOIN ai_suggestions s ON s.id = l.suggestion_id
              WHERE l.worker_id = $1 AND l.message_id IS NOT NULL AND l.at >= $3",
            params![worker.as_str() => TEXT, contact.as_str() => TEXT, since => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0)))
}

// Prompts --------------------------------------------------------------------------------

/// A versioned prompt: `{{name}}` placeholders are filled by the engine.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    pub key: String,
    pub version: i32,
    pub system_template: String,
    pub user_template: String,
    pub model: Option<String>,
    pub temperature: f32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn prompt(r: &Row) -> Prompt {
    Prompt {
        key: r.get("key"),
        version: r.get("version"),
        system_template: r.get("system_template"),
        user_template: r.get("user_template"),
        model: r.get("model"),
        temperature: r.get("temperature"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    }
}

const PROMPT: &str =
    "SELECT key, version, system_template, user_template, model, temperature, created_by, created_at FROM ai_prompts";

/// The newest version of a prompt.
pub async fn prompt_latest(tx: &Tx<'_>, key: &str) -> Result<Option<Prompt>> {
    let rows =
        tx.query_typed(&format!("{PROMPT} WHERE key = $1 ORDER BY version DESC LIMIT 1"), params![key => TEXT]).await?;
    Ok(rows.first().map(prompt))
}

/// Every version of every prompt (newest first per key).
pub async fn prompts(tx: &Tx<'_>) -> Result<Vec<Prompt>> {
    let rows = tx.query_typed(&format!("{PROMPT} ORDER BY key, version DESC"), &[]).await?;
    Ok(rows.iter().map(prompt).collect())
}

/// Adds the next version of a prompt (the team's prompts are locked for the numbering, so two
/// writers get two versions).
#[allow(clippy::too_many_arguments)]
pub async fn add_prompt(
    tx: &Tx<'_>,
    team: &TeamId,
    key: &str,
    system: &str,
    user: &str,
    model: Option<&str>,
    temperature: f32,
    actor: &str,
) -> Result<Prompt> {
    tx.execute_typed("SELECT pg_advisory_xact_lock(hashtext('ai_prompts:' || $1))", params![team.as_str() => TEXT])
        .await?;
    let rows = tx
        .query_typed(
            "INSERT INTO ai_prompts (team_id, key, version, system_template, user_template, model, temperature, created_by)
             SELECT $1, $2, COALESCE(max(version), 0) + 1, $3, $4, $5, $6, $7 FROM ai_prompts WHERE key = $2
             RETURNING key, version, system_template, user_template, model, temperature, created_by, created_at",
            params![team.as_str() => TEXT, key => TEXT, system => TEXT, user => TEXT, model => TEXT,
                    temperature => FLOAT4, actor => TEXT],
        )
        .await?;
    rows.first().map(prompt).ok_or(StoreError::NotFound)
}

// The intelligence log and metrics --------------------------------------------------------

#[allow(clippy::too_many_arguments)]
pub async fn log_event(
    tx: &Tx<'_>,
    team: &TeamId,
    worker: Option<&str>,
    contact: Option<&ContactId>,
    suggestion: Option<&SuggestionId>,
    event: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO ai_intelligence_log (team_id, worker_id, contact_id, suggestion_id, event, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![team.as_str() => TEXT, worker => TEXT, contact.map(|c| c.as_str()) => TEXT,
                suggestion.map(|s| s.as_str()) => TEXT, event => TEXT, outcome => TEXT, detail => TEXT],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRow {
    pub worker_id: Option<String>,
    pub contact_id: Option<String>,
    pub suggestion_id: Option<String>,
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// The intelligence log, newest first (one worker's, or the team's).
pub async fn log(tx: &Tx<'_>, worker: Option<&WorkerId>, limit: i64) -> Result<Vec<LogRow>> {
    let rows = tx
        .query_typed(
            "SELECT worker_id, contact_id, suggestion_id, event, outcome, detail, at FROM ai_intelligence_log
              WHERE ($1::text IS NULL OR worker_id = $1) ORDER BY id DESC LIMIT $2",
            params![worker.map(|w| w.as_str()) => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LogRow {
            worker_id: r.get(0),
            contact_id: r.get(1),
            suggestion_id: r.get(2),
            event: r.get(3),
            outcome: r.get(4),
            detail: r.get(5),
            at: r.get(6),
        })
        .collect())
}

/// How a worker is doing over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub worker_id: WorkerId,
    pub since: DateTime<Utc>,
    /// Suggestions written.
    pub suggestions: i64,
    pub approved: i64,
    pub edited: i64,
    pub rejected: i64,
    pub auto_sent: i64,
    pub pending: i64,
    /// (approved + edited + auto-sent) / decided.
    pub approval_rate: Option<f64>,
    /// The mean characters a person changed in what they edited.
    pub mean_edit_distance: Option<f64>,
    /// Messages this worker sent, and how many of them the lead answered (a reply before the
    /// next outbound message).
    pub sent: i64,
    pub replied: i64,
    pub reply_rate: Option<f64>,
    pub meetings_booked: i64,
}

pub async fn metrics(tx: &Tx<'_>, worker: &WorkerId, since: DateTime<Utc>) -> Result<Metrics> {
    let r = tx
        .query_typed(
            "WITH s AS (SELECT status FROM ai_suggestions WHERE worker_id = $1 AND created_at >= $2),
                  l AS (SELECT l.action, l.edit_distance, l.message_id FROM ai_approval_log l
                         WHERE l.worker_id = $1 AND l.at >= $2),
                  sent AS (SELECT m.id, m.contact_id, m.created_at FROM l JOIN messages m ON m.id = l.message_id)
             SELECT (SELECT count(*) FROM s),
                    (SELECT count(*) FROM l WHERE action = 'approved'),
                    (SELECT count(*) FROM l WHERE action = 'edited'),
                    (SELECT count(*) FROM l WHERE action = 'rejected'),
                    (SELECT count(*) FROM l WHERE action = 'auto_sent'),
                    (SELECT count(*) FROM s WHERE status = 'pending'),
                    (SELECT avg(edit_distance)::float8 FROM l WHERE action = 'edited'),
                    (SELECT count(*) FROM sent),
                    (SELECT count(*) FROM sent WHERE EXISTS (
                        SELECT 1 FROM messages r WHERE r.contact_id = sent.contact_id AND r.direction = 'inbound'
                           AND r.created_at > sent.created_at
                           AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.contact_id = sent.contact_id
                                              AND o.direction = 'outbound' AND o.created_at > sent.created_at
                                              AND o.created_at < r.created_at))),
                    (SELECT count(*) FROM meetings WHERE worker_id = $1 AND created_at >= $2 AND status = 'booked')",
            params![worker.as_str() => TEXT, since => TIMESTAMPTZ],
        )
        .await?;
    let r = r.first().ok_or(StoreError::NotFound)?;
    let g = |i: usize| r.get::<_, i64>(i);
    let (approved, edited, rejected, auto_sent) = (g(1), g(2), g(3), g(4));
    let decided = approved + edited + rejected + auto_sent;
    let ratio = |a: i64, b: i64| if b > 0 { Some(a as f64 / b as f64) } else { None };
    let (sent, replied) = (g(7), g(8));
    Ok(Metrics {
        worker_id: worker.clone(),
        since,
        suggestions: g(0),
        approved,
        edited,
        rejected,
        auto_sent,
        pending: g(5),
        approval_rate: ratio(approved + edited + auto_sent, decided),
        mean_edit_distance: r.get(6),
        sent,
        replied,
        reply_rate: ratio(replied, sent),
        meetings_booked: g(9),
    })
}

/// Those of `numbers` that are not the team's sending numbers.
pub async fn not_sending_numbers(tx: &Tx<'_>, numbers: &[String]) -> Result<Vec<String>> {
    let rows = tx
        .query_typed(
            "SELECT n FROM unnest($1::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM sending_numbers s WHERE s.e164 = n)",
            params![numbers => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether any of the team's active workers sends on its own.
pub async fn any_auto_sending(tx: &Tx<'_>) -> Result<bool> {
    let rows = tx.query_typed("SELECT 1 FROM ai_workers WHERE active AND auto_send = 'confident' LIMIT 1", &[]).await?;
    Ok(!rows.is_empty())
}
