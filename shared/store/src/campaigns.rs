//! Campaigns, their steps, enrolments, executions, message templates and saved audiences.
//! The lifecycle rules live in `nextier_domain::campaign`; this module makes each move one
//! conditional statement, so of two concurrent requests only one can win.

use chrono::{DateTime, Utc};
use nextier_domain::campaign::{CampaignStatus, Delay};
use nextier_domain::ids::{CampaignId, ContactId, EnrolmentId, FilterId, StepId, TeamId, TemplateId, UserId};
use nextier_domain::page::PageRequest;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::contacts::{Contact, Selection, Where};
use crate::error::{Result, StoreError};
use crate::Tx;

// Campaigns ---------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub description: Option<String>,
    pub status: CampaignStatus,
    pub created_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sends_per_minute: i32,
    pub exit_on_reply: bool,
    pub exit_on_meeting: bool,
    /// The score band whose contacts are enrolled automatically while the campaign runs.
    pub auto_enrol: Option<ScoreBand>,
    pub steps: i64,
    pub active_enrolments: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub author_user_id: Option<UserId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreBand {
    pub min_score: i32,
    pub max_score: i32,
}

/// The editable settings of a campaign.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub description: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sends_per_minute: i32,
    pub exit_on_reply: bool,
    pub exit_on_meeting: bool,
    pub auto_enrol: Option<ScoreBand>,
}

const SELECT: &str = "SELECT c.id, c.name, c.description, c.status, c.author_user_id, c.created_by, c.approved_by,
    c.approved_at, c.starts_at, c.ends_at, c.sends_per_minute, c.exit_on_reply, c.exit_on_meeting,
    c.auto_min_score, c.auto_max_score, c.created_at, c.updated_at,
    (SELECT count(*) FROM campaign_steps s WHERE s.campaign_id = c.id) AS steps,
    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = c.id AND e.status = 'active') AS active
  FROM campaigns c";

fn campaign(row: &Row) -> Campaign {
    let band = match (row.get::<_, Option<i32>>("auto_min_score"), row.get::<_, Option<i32>>("auto_max_score")) {
        (Some(min_score), Some(max_score)) => Some(ScoreBand { min_score, max_score }),
        _ => None,
    };
    Campaign {
        id: CampaignId::from_trusted(row.get("id")),
        name: row.get("name"),
        description: row.get("description"),
        status: row.get::<_, &str>("status").parse().unwrap_or(CampaignStatus::Draft),
        created_by: row.get("created_by"),
        approved_by: row.get("approved_by"),
        approved_at: row.get("approved_at"),
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        sends_per_minute: row.get("sends_per_minute"),
        exit_on_reply: row.get("exit_on_reply"),
        exit_on_meeting: row.get("exit_on_meeting"),
        auto_enrol: band,
        steps: row.get("steps"),
        active_enrolments: row.get("active"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        author_user_id: row.get::<_, Option<String>>("author_user_id").map(UserId::from_trusted),
    }
}

pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    s: &Settings,
    author: Option<&UserId>,
    actor: &str,
) -> Result<CampaignId> {
    let id = CampaignId::new();
    let (min, max) = band_parts(s.auto_enrol);
    tx.query_typed(
        "INSERT INTO campaigns (id, team_id, name, description, author_user_id, created_by, starts_at, ends_at,
                sends_per_minute, exit_on_reply, exit_on_meeting, auto_min_score, auto_max_score)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        params![id.as_str() => TEXT, team.as_str() => TEXT, s.name => TEXT, s.description => TEXT,
                author.map(|a| a.as_str()) => TEXT, actor => TEXT, s.starts_at => TIMESTAMPTZ, s.ends_at => TIMESTAMPTZ,
                s.sends_per_minute => INT4, s.exit_on_reply => BOOL, s.exit_on_meeting => BOOL, min => INT4, max => INT4],
    )
    .await?;
    Ok(id)
}

fn band_parts(b: Option<ScoreBand>) -> (Option<i32>, Option<i32>) {
    (b.map(|b| b.min_score), b.map(|b| b.max_score))
}

pub async fn get(tx: &Tx<'_>, id: &CampaignId) -> Result<Campaign> {
    let row = tx
        .query_typed(&format!("{SELECT} WHERE c.id = $1"), params![id.as_str() => TEXT])
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)?;
    Ok(campaign(&row))
}

/// Locks the campaign row for the rest of the transaction (edits serialise with moves).
pub async fn lock(tx: &Tx<'_>, id: &CampaignId) -> Result<Campaign> {
    let found =
        tx.query_typed("SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE", params![id.as_str() => TEXT]).await?;
    if found.is_empty() {
        return Err(StoreError::NotFound);
    }
    get(tx, id).await
}

pub async fn list(tx: &Tx<'_>, status: Option<CampaignStatus>, page: &PageRequest) -> Result<Vec<Campaign>> {
    let status = status.map(|s| s.as_str());
    let rows = tx
        .query_typed(
            &format!("{SELECT} WHERE ($1::text IS NULL OR c.status = $1) AND c.id > $2 ORDER BY c.id LIMIT $3"),
            params![status => TEXT, page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(campaign).collect())
}

pub async fn update(tx: &Tx<'_>, id: &CampaignId, s: &Settings) -> Result<()> {
    let (min, max) = band_parts(s.auto_enrol);
    tx.query_typed(
        "UPDATE campaigns SET name = $2, description = $3, starts_at = $4, ends_at = $5, sends_per_minute = $6,
                exit_on_reply = $7, exit_on_meeting = $8, auto_min_score = $9, auto_max_score = $10
          WHERE id = $1",
        params![id.as_str() => TEXT, s.name => TEXT, s.description => TEXT, s.starts_at => TIMESTAMPTZ,
                s.ends_at => TIMESTAMPTZ, s.sends_per_minute => INT4, s.exit_on_reply => BOOL, s.exit_on_meeting => BOOL,
                min => INT4, max => INT4],
    )
    .await?;
    Ok(())
}

/// Deletes a campaign that never left DRAFT; anything further along is cancelled instead,
/// so its history survives.
pub async fn delete_draft(tx: &Tx<'_>, id: &CampaignId) -> Result<()> {
    let n = tx
        .query_typed(
            "DELETE FROM campaigns WHERE id = $1 AND status = 'DRAFT' RETURNING 1",
            params![id.as_str() => TEXT],
        )
        .await?;
    if n.is_empty() {
        let c = get(tx, id).await?;
        return Err(StoreError::Conflict(format!(
            "only a DRAFT campaign can be deleted; this one is {} (cancel it instead)",
            c.status
        )));
    }
    Ok(())
}

/// What a move needs besides from and to.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// Recorded as the approver when moving to APPROVED.
    pub approver: Option<&'a UserId>,
}

/// Moves the campaign if, and only if, it is still in `m.from`, and records the change, in
/// one statement. Returns false when the campaign was not in `m.from` (someone else moved it
/// first). Leaving APPROVED for an earlier state clears the approval.
pub async fn apply_move(tx: &Tx<'_>, team: &TeamId, id: &CampaignId, m: &Move<'_>) -> Result<bool> {
    let rows = tx
        .query_typed(
            "WITH moved AS (
                UPDATE campaigns SET status = $3,
                       approved_by = CASE WHEN $3 = 'APPROVED' THEN $6
                                          WHEN $3 IN ('DRAFT', 'STAGED') THEN NULL ELSE approved_by END,
                       approved_at = CASE WHEN $3 = 'APPROVED' THEN now()
                                          WHEN $3 IN ('DRAFT', 'STAGED') THEN NULL ELSE approved_at END
                 WHERE id = $1 AND status = $2
             RETURNING id)
             INSERT INTO campaign_state_changes (team_id, campaign_id, from_status, to_status, actor, reason)
             SELECT $7, id, $2, $3, $4, $5 FROM moved RETURNING id",
            params![id.as_str() => TEXT, m.from.as_str() => TEXT, m.to.as_str() => TEXT, m.actor => TEXT,
                    m.reason => TEXT, m.approver.map(|u| u.as_str()) => TEXT, team.as_str() => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    pub id: i64,
    pub from: CampaignStatus,
    pub to: CampaignStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The state history, oldest first.
pub async fn history(tx: &Tx<'_>, id: &CampaignId, page: &PageRequest) -> Result<Vec<StateChange>> {
    let after: i64 = page.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let rows = tx
        .query_typed(
            "SELECT id, from_status, to_status, actor, reason, at FROM campaign_state_changes
              WHERE campaign_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            params![id.as_str() => TEXT, after => INT8, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StateChange {
            id: r.get("id"),
            from: r.get::<_, &str>("from_status").parse().unwrap_or(CampaignStatus::Draft),
            to: r.get::<_, &str>("to_status").parse().unwrap_or(CampaignStatus::Draft),
            actor: r.get("actor"),
            reason: r.get("reason"),
            at: r.get("at"),
        })
        .collect())
}

// Steps -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    Sms,
    Email,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Email => "EMAIL",
            Channel::Voice => "VOICE",
        }
    }

    pub fn parse(raw: &str) -> Option<Channel> {
        match raw {
            "SMS" => Some(Channel::Sms),
            "EMAIL" => Some(Channel::Email),
            "VOICE" => Some(Channel::Voice),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: StepId,
    pub position: i32,
    pub channel: Channel,
    pub delay: Delay,
    pub subject: Option<String>,
    pub body: String,
    pub template_id: Option<TemplateId>,
}

/// A step's content, validated by the caller.
#[derive(Debug, Clone)]
pub struct StepContent {
    pub channel: Channel,
    pub delay: Delay,
    pub subject: Option<String>,
    pub body: String,
    pub template_id: Option<TemplateId>,
}

fn delay_parts(d: Delay) -> (&'static str, i32) {
    let (unit, n) = match d {
        Delay::Minutes(n) => ("minutes", n),
        Delay::Hours(n) => ("hours", n),
        Delay::Days(n) => ("days", n),
        Delay::BusinessDays(n) => ("business_days", n),
    };
    (unit, n as i32)
}

fn delay_from(unit: &str, n: i32) -> Delay {
    let n = n.max(0) as u32;
    match unit {
        "minutes" => Delay::Minutes(n),
        "hours" => Delay::Hours(n),
        "business_days" => Delay::BusinessDays(n),
        _ => Delay::Days(n),
    }
}

fn step(r: &Row) -> Step {
    Step {
        id: StepId::from_trusted(r.get("id")),
        position: r.get("position"),
        channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
        delay: delay_from(r.get("delay_unit"), r.get("delay_amount")),
        subject: r.get("subject"),
        body: r.get("body"),
        template_id: r.get::<_, Option<String>>("template_id").map(TemplateId::from_trusted),
    }
}

const STEP_COLS: &str = "id, position, channel, delay_unit, delay_amount, subject, body, template_id";

pub async fn steps(tx: &Tx<'_>, campaign: &CampaignId) -> Result<Vec<Step>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {STEP_COLS} FROM campaign_steps WHERE campaign_id = $1 ORDER BY position"),
            params![campaign.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(step).collect())
}

/// Inserts a step at `position` (1-based; past the end appends), shifting later steps down.
pub async fn insert_step(
    tx: &Tx<'_>,
    team: &TeamId,
    campaign: &CampaignId,
    position: Option<i32>,
    c: &StepContent,
) -> Result<Step> {
    let id = StepId::new();
    let (unit, n) = delay_parts(c.delay);
    let rows = tx
        .query_typed(
            &format!(
                "WITH n AS (SELECT count(*)::int AS steps FROM campaign_steps WHERE campaign_id = $2),
                      pos AS (SELECT least(greatest(coalesce($3, steps + 1), 1), steps + 1) AS p FROM n),
                      shifted AS (UPDATE campaign_steps SET position = position + 1, updated_at = now()
                                   WHERE campaign_id = $2 AND position >= (SELECT p FROM pos) RETURNING 1)
                 INSERT INTO campaign_steps (id, team_id, campaign_id, position, channel, delay_unit, delay_amount,
                                             subject, body, template_id)
                 SELECT $1, $4, $2, p, $5, $6, $7, $8, $9, $10 FROM pos
                 RETURNING {STEP_COLS}"
            ),
            params![id.as_str() => TEXT, campaign.as_str() => TEXT, position => INT4, team.as_str() => TEXT,
                    c.channel.as_str() => TEXT, unit => TEXT, n => INT4, c.subject => TEXT, c.body => TEXT,
                    c.template_id.as_ref().map(|t| t.as_str()) => TEXT],
        )
        .await?;
    rows.first().map(step).ok_or(StoreError::NotFound)
}

pub async fn update_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId, c: &StepContent) -> Result<Step> {
    let (unit, n) = delay_parts(c.delay);
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE campaign_steps SET channel = $3, delay_unit = $4, delay_amount = $5, subject = $6, body = $7,
                        template_id = $8, updated_at = now()
                  WHERE campaign_id = $1 AND id = $2 RETURNING {STEP_COLS}"
            ),
            params![campaign.as_str() => TEXT, id.as_str() => TEXT, c.channel.as_str() => TEXT, unit => TEXT, n => INT4,
                    c.subject => TEXT, c.body => TEXT, c.template_id.as_ref().map(|t| t.as_str()) => TEXT],
        )
        .await?;
    rows.first().map(step).ok_or(StoreError::NotFound)
}

/// Moves a step to a new position, shifting the ones between.
pub async fn move_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId, to: i32) -> Result<()> {
    let rows = tx
        .query_typed(
            "WITH cur AS (SELECT position AS p, (SELECT count(*)::int FROM campaign_steps WHERE campaign_id = $1) AS n
                            FROM campaign_steps WHERE campaign_id = $1 AND id = $2),
                  tgt AS (SELECT p, least(greatest($3, 1), n) AS t FROM cur)
             UPDATE campaign_steps s
                SET position = CASE WHEN s.id = $2 THEN tgt.t
                                    WHEN tgt.t < tgt.p THEN s.position + 1
                                    ELSE s.position - 1 END,
                    updated_at = now()
               FROM tgt
              WHERE s.campaign_id = $1
                AND (s.id = $2 OR s.position BETWEEN least(tgt.p, tgt.t) AND greatest(tgt.p, tgt.t))
             RETURNING 1",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT, to => INT4],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn delete_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId) -> Result<()> {
    let rows = tx
        .query_typed(
            "WITH gone AS (DELETE FROM campaign_steps WHERE campaign_id = $1 AND id = $2 RETURNING position)
             UPDATE campaign_steps s SET position = s.position - 1, updated_at = now()
               FROM gone WHERE s.campaign_id = $1 AND s.position > gone.position
             RETURNING 1",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?;
    // The UPDATE returns nothing when the last step was deleted; check the step is gone.
    let _ = rows;
    let still = tx.query_typed("SELECT 1 FROM campaign_steps WHERE id = $1", params![id.as_str() => TEXT]).await?;
    if !still.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn step_exists(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId) -> Result<bool> {
    Ok(!tx
        .query_typed(
            "SELECT 1 FROM campaign_steps WHERE campaign_id = $1 AND id = $2",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?
        .is_empty())
}

// Merge fields ------------------------------------------------------------------------

/// A merge field's value for a contact, as a send renders it.
pub fn merge_value(c: &Contact, field: &str) -> Option<String> {
    let addr = c.addresses.first();
    match field {
        "firstName" => c.first_name.clone(),
        "lastName" => c.last_name.clone(),
        "fullName" => {
            let full = [c.first_name.as_deref(), c.last_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Some(full)
        }
        "company" => c.company.clone(),
        "title" => c.title.clone(),
        "city" => addr.and_then(|a| a.city.clone()),
        "state" => addr.and_then(|a| a.state.clone()),
        "zip" => addr.and_then(|a| a.zip.clone()),
        "email" => c.emails.first().map(|e| e.email.clone()),
        "phone" => c.phones.first().map(|p| p.e164.clone()),
        other => other.strip_prefix("custom.").and_then(|k| match c.custom_fields.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(v) => Some(v.to_string()),
        }),
    }
}

/// The same value as SQL over `contacts c` (used to count who lacks it before staging).
/// Field names are validated by the template parser; custom keys are `[A-Za-z0-9_-]`.
fn merge_sql(field: &str) -> String {
    let addr = |col: &str| {
        format!("(SELECT a.{col} FROM contact_addresses a WHERE a.contact_id = c.id ORDER BY a.is_current DESC, a.id LIMIT 1)")
    };
    match field {
        "firstName" => "c.first_name".into(),
        "lastName" => "c.last_name".into(),
        "fullName" => "concat_ws(' ', nullif(btrim(c.first_name), ''), nullif(btrim(c.last_name), ''))".into(),
        "company" => "c.company".into(),
        "title" => "c.title".into(),
        "city" => addr("city"),
        "state" => addr("state"),
        "zip" => addr("zip"),
        "email" => {
            "(SELECT e.email FROM contact_emails e WHERE e.contact_id = c.id ORDER BY e.is_primary DESC, e.id LIMIT 1)"
                .into()
        }
        "phone" => {
            "(SELECT p.e164 FROM contact_phones p WHERE p.contact_id = c.id ORDER BY p.is_primary DESC, p.id LIMIT 1)"
                .into()
        }
        other => {
            let key: String = other
                .strip_prefix("custom.")
                .unwrap_or("")
                .chars()
                .filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-'))
                .collect();
            format!("(c.custom_fields ->> '{key}')")
        }
    }
}

fn missing_sql(field: &str) -> String {
    format!("coalesce(btrim({}::text), '') = ''", merge_sql(field))
}

/// For each field, how many active enrolments of the campaign lack a value.
pub async fn count_missing(tx: &Tx<'_>, campaign: &CampaignId, fields: &[&str]) -> Result<Vec<(String, i64)>> {
    if fields.is_empty() {
        return Ok(vec![]);
    }
    let cols: Vec<String> = fields.iter().map(|f| format!("count(*) FILTER (WHERE {})", missing_sql(f))).collect();
    let sql = format!(
        "SELECT {} FROM campaign_enrolments en JOIN contacts c ON c.id = en.contact_id
          WHERE en.campaign_id = $1 AND en.status = 'active'",
        cols.join(", ")
    );
    let row = tx.query_typed(&sql, params![campaign.as_str() => TEXT]).await?;
    let row = row.first().ok_or(StoreError::NotFound)?;
    Ok(fields.iter().enumerate().map(|(i, f)| ((*f).to_owned(), row.get::<_, i64>(i))).collect())
}

// Enrolments --------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub id: EnrolmentId,
    pub contact_id: ContactId,
    pub status: String,
    pub current_step: i32,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub exit_reason: Option<String>,
    pub enrolled_by: String,
    pub enrolled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub contact_id: ContactId,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub enrolled: u64,
    /// Contacts not enrolled, each with why (at most 1,000 listed).
    pub skipped: Vec<Skipped>,
    pub skipped_total: u64,
}

pub const MAX_ENROL: i64 = 100_000;

/// What an enrolment request needs to know of the campaign.
pub struct EnrolRules<'a> {
    pub team: &'a TeamId,
    pub campaign: &'a CampaignId,
    /// Merge fields the steps require (no fallback): contacts lacking one are skipped.
    pub required_fields: &'a [&'a str],
    /// False when the team allows a contact in several live campaigns.
    pub exclusive: bool,
    /// When the first step is due, if the campaign is running.
    pub first_run_at: Option<DateTime<Utc>>,
    pub actor: &'a str,
}

/// Enrols the selected contacts. Skips, with a reason each: contacts that opted out, lack a
/// required merge field, are already in this campaign, or are in another live campaign of
/// the team (unless the team allows it). Race-free: the unique indexes decide.
pub async fn enrol(tx: &Tx<'_>, sel: Selection<'_>, rules: &EnrolRules<'_>) -> Result<Enrolled> {
    let mut w = match sel {
        Selection::Filter(f) => Where::from_filter(f),
        Selection::Ids(ids) => {
            let mut w = Where::new();
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let p = w.bind(ids, Type::TEXT_ARRAY);
            w.clauses.push(format!("c.id = ANY({p})"));
            w
        }
    };
    let limit = w.bind(MAX_ENROL + 1, Type::INT8);
    let missing: Vec<String> =
        rules.required_fields.iter().map(|f| format!("CASE WHEN {} THEN '{f}' END", missing_sql(f))).collect();
    let missing =
        if missing.is_empty() { "ARRAY[]::text[]".to_owned() } else { format!("ARRAY[{}]", missing.join(", ")) };
    let sql = format!(
        "SELECT c.id, c.lead_state = 'suppressed' AS opted_out, array_remove({missing}, NULL) AS missing
           FROM contacts c WHERE {} ORDER BY c.id LIMIT {limit}",
        w.sql()
    );
    let rows = tx.query_typed(&sql, &w.params()).await?;
    if rows.len() as i64 > MAX_ENROL {
        return Err(StoreError::Conflict(format!(
            "the selection has more than {MAX_ENROL} contacts; narrow it or enrol in parts"
        )));
    }
    let mut out = Enrolled::default();
    let mut candidates: Vec<String> = Vec::with_capacity(rows.len());
    let skip = |out: &mut Enrolled, id: String, reason: String| {
        out.skipped_total += 1;
        if out.skipped.len() < 1000 {
            out.skipped.push(Skipped { contact_id: ContactId::from_trusted(id), reason });
        }
    };
    for r in &rows {
        let id: String = r.get("id");
        let missing: Vec<String> = r.get("missing");
        if r.get::<_, bool>("opted_out") {
            skip(&mut out, id, "the contact opted out".into());
        } else if !missing.is_empty() {
            skip(&mut out, id, format!("missing merge field(s) with no fallback: {}", missing.join(", ")));
        } else {
            candidates.push(id);
        }
    }
    // Ids that were asked for but are not contacts of this team (or are deleted).
    if let Selection::Ids(ids) = sel {
        let found: std::collections::HashSet<&str> = rows.iter().map(|r| r.get::<_, &str>("id")).collect();
        for id in ids.iter().filter(|i| !found.contains(i.as_str())) {
            skip(&mut out, id.to_string(), "no such contact".into());
        }
    }
    if candidates.is_empty() {
        return Ok(out);
    }
    let enrolment_ids: Vec<String> = candidates.iter().map(|_| EnrolmentId::new().to_string()).collect();
    let inserted = tx
        .query_typed(
            "INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, exclusive, next_run_at, enrolled_by)
             SELECT e, $3, $4, c, $5, $6, $7 FROM unnest($1::text[], $2::text[]) AS u(e, c)
             ON CONFLICT DO NOTHING RETURNING contact_id",
            params![enrolment_ids => TEXT_ARRAY, candidates => TEXT_ARRAY, rules.team.as_str() => TEXT,
                    rules.campaign.as_str() => TEXT, rules.exclusive => BOOL, rules.first_run_at => TIMESTAMPTZ,
                    rules.actor => TEXT],
        )
        .await?;
    out.enrolled = inserted.len() as u64;
    if inserted.len() < candidates.len() {
        let done: std::collections::HashSet<String> = inserted.iter().map(|r| r.get::<_, String>(0)).collect();
        let left: Vec<String> = candidates.into_iter().filter(|c| !done.contains(c)).collect();
        let here = tx
            .query_typed(
                "SELECT u.c, e.contact_id, (SELECT f.campaign_id FROM campaign_enrolments f
                                      WHERE f.contact_id = u.c AND f.status = 'active' AND f.exclusive
                                        AND f.campaign_id <> $2 LIMIT 1) AS other
                   FROM unnest($1::text[]) AS u(c)
                   LEFT JOIN campaign_enrolments e ON e.contact_id = u.c AND e.campaign_id = $2",
                params![left => TEXT_ARRAY, rules.campaign.as_str() => TEXT],
            )
            .await?;
        for r in &here {
            let id: String = r.get("c");
            let reason = match (r.get::<_, Option<String>>("contact_id"), r.get::<_, Option<String>>("other")) {
                (Some(_), _) => "already enrolled in this campaign".to_owned(),
                (None, Some(other)) => format!("already enrolled in live campaign {other}"),
                (None, None) => "enrolled concurrently by another request".to_owned(),
            };
            skip(&mut out, id, reason);
        }
    }
    Ok(out)
}

/// Removes contacts from a campaign (the enrolment stays, as `removed`, for the record).
pub async fn unenrol(tx: &Tx<'_>, campaign: &CampaignId, contacts: &[ContactId], actor: &str) -> Result<u64> {
    let ids: Vec<String> = contacts.iter().map(|c| c.to_string()).collect();
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET status = 'removed', exit_reason = 'removed by ' || $3,
                    claimed_until = NULL, updated_at = now()
              WHERE campaign_id = $1 AND contact_id = ANY($2) AND status = 'active' RETURNING 1",
            params![campaign.as_str() => TEXT, ids => TEXT_ARRAY, actor => TEXT],
        )
        .await?;
    Ok(rows.len() as u64)
}

pub async fn enrolments(
    tx: &Tx<'_>,
    campaign: &CampaignId,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<Enrolment>> {
    let rows = tx
        .query_typed(
            "SELECT id, contact_id, status, current_step, next_run_at, last_run_at, exit_reason, enrolled_by, enrolled_at
               FROM campaign_enrolments
              WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2) AND id > $3 ORDER BY id LIMIT $4",
            params![campaign.as_str() => TEXT, status => TEXT, page.after.clone().unwrap_or_default() => TEXT,
                    page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Enrolment {
            id: EnrolmentId::from_trusted(r.get("id")),
            contact_id: ContactId::from_trusted(r.get("contact_id")),
            status: r.get("status"),
            current_step: r.get("current_step"),
            next_run_at: r.get("next_run_at"),
            last_run_at: r.get("last_run_at"),
            exit_reason: r.get("exit_reason"),
            enrolled_by: r.get("enrolled_by"),
            enrolled_at: r.get("enrolled_at"),
        })
        .collect())
}

/// On start: every active enrolment not yet scheduled becomes due at `at`.
pub async fn schedule_unscheduled(tx: &Tx<'_>, campaign: &CampaignId, at: DateTime<Utc>) -> Result<u64> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET next_run_at = $2, updated_at = now()
              WHERE campaign_id = $1 AND status = 'active' AND next_run_at IS NULL RETURNING 1",
            params![campaign.as_str() => TEXT, at => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// On COMPLETED or CANCELLED: every active enrolment ends, freeing its contact.
pub async fn close_enrolments(tx: &Tx<'_>, campaign: &CampaignId, status: &str, reason: &str) -> Result<u64> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET status = $2, exit_reason = $3, claimed_until = NULL, updated_at = now()
              WHERE campaign_id = $1 AND status = 'active' RETURNING 1",
            params![campaign.as_str() => TEXT, status => TEXT, reason => TEXT],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// Ends the contact's active enrolments whose campaigns exit on `reason` (`reply`,
/// `meeting_booked`; `opt_out` and `suppressed: …` always). Returns the campaigns affected.
pub async fn exit_contact(tx: &Tx<'_>, contact: &ContactId, reason: &str) -> Result<Vec<CampaignId>> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments e SET status = 'exited', exit_reason = $2, claimed_until = NULL,
                    updated_at = now()
               FROM campaigns c
              WHERE e.contact_id = $1 AND e.status = 'active' AND c.id = e.campaign_id
                AND ($2 = 'opt_out' OR $2 LIKE 'suppressed:%' OR ($2 = 'reply' AND c.exit_on_reply)
                     OR ($2 = 'meeting_booked' AND c.exit_on_meeting))
             RETURNING e.campaign_id",
            params![contact.as_str() => TEXT, reason => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| CampaignId::from_trusted(r.get(0))).collect())
}

/// Moves a merged contact's enrolments to the survivor; where the survivor is already
/// enrolled in the same campaign (or a live exclusive one), the merged one's is removed.
pub async fn move_enrolments(tx: &Tx<'_>, survivor: &ContactId, merged: &ContactId) -> Result<()> {
    tx.query_typed(
        "UPDATE campaign_enrolments e SET status = 'removed', exit_reason = 'merged into ' || $1,
                claimed_until = NULL, updated_at = now()
          WHERE e.contact_id = $2 AND (
                EXISTS (SELECT 1 FROM campaign_enrolments s WHERE s.contact_id = $1 AND s.campaign_id = e.campaign_id)
             OR (e.status = 'active' AND e.exclusive AND EXISTS (SELECT 1 FROM campaign_enrolments s
                     WHERE s.contact_id = $1 AND s.status = 'active' AND s.exclusive)))",
        params![survivor.as_str() => TEXT, merged.as_str() => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE campaign_enrolments e SET contact_id = $1, updated_at = now()
          WHERE e.contact_id = $2
            AND NOT EXISTS (SELECT 1 FROM campaign_enrolments s WHERE s.contact_id = $1 AND s.campaign_id = e.campaign_id)",
        params![survivor.as_str() => TEXT, merged.as_str() => TEXT],
    )
    .await?;
    Ok(())
}

// The sequence: claim, process, record -----------------------------------------------

/// An enrolment claimed by the tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub enrolment: EnrolmentId,
    pub team: TeamId,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub step: i32,
}

/// Claims due enrolments across teams (see `campaign_claim_due` in migration 0005).
pub async fn claim_due(
    client: &tokio_postgres::Client,
    now: DateTime<Utc>,
    budget: i32,
    limit: i32,
    lease_secs: f64,
) -> Result<Vec<Claimed>> {
    let rows = client
        .query_typed(
            "SELECT enrolment_id, team_id, campaign_id, contact_id, step
               FROM campaign_claim_due($1, $2, $3, make_interval(secs => $4))",
            params![now => TIMESTAMPTZ, budget => INT4, limit => INT4, lease_secs => FLOAT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            enrolment: EnrolmentId::from_trusted(r.get(0)),
            team: TeamId::from_trusted(r.get(1)),
            campaign: CampaignId::from_trusted(r.get(2)),
            contact: ContactId::from_trusted(r.get(3)),
            step: r.get(4),
        })
        .collect())
}

/// Keeps claims while their steps wait in the queue for a rate-limit slot or quiet hours to
/// pass: each held until its time (and never shortened), so no tick claims them twice.
pub async fn extend_claims(tx: &Tx<'_>, ids: &[EnrolmentId], until: &[DateTime<Utc>]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    Ok(tx
        .execute_typed(
            "UPDATE campaign_enrolments e SET claimed_until = greatest(e.claimed_until, x.until)
               FROM unnest($1::text[], $2::timestamptz[]) AS x(id, until)
              WHERE e.id = x.id AND e.status = 'active' AND e.claimed_until IS NOT NULL",
            params![ids => TEXT_ARRAY, until => TIMESTAMPTZ_ARRAY],
        )
        .await?)
}

/// Gives back claims whose queue message could not be sent.
pub async fn release_claims(client: &tokio_postgres::Client, ids: &[EnrolmentId]) -> Result<i32> {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let rows = client.query_typed("SELECT campaign_release_claims($1)", params![ids => TEXT_ARRAY]).await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Campaigns whose scheduled start or end has come: (team, campaign, "start" | "complete").
pub async fn due_schedules(
    client: &tokio_postgres::Client,
    now: DateTime<Utc>,
) -> Result<Vec<(TeamId, CampaignId, String)>> {
    let rows = client
        .query_typed("SELECT team_id, campaign_id, action FROM campaign_due_schedules($1)", params![now => TIMESTAMPTZ])
        .await?;
    Ok(rows.iter().map(|r| (TeamId::from_trusted(r.get(0)), CampaignId::from_trusted(r.get(1)), r.get(2))).collect())
}

/// An enrolment locked for processing, with what the sequence needs of its campaign.
#[derive(Debug, Clone)]
pub struct Work {
    pub enrolment: EnrolmentId,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub status: String,
    pub current_step: i32,
    pub campaign_status: CampaignStatus,
    pub exit_on_meeting: bool,
    pub sends_per_minute: i32,
    pub steps: Vec<Step>,
}

pub async fn lock_work(tx: &Tx<'_>, id: &EnrolmentId) -> Result<Option<Work>> {
    let rows = tx
        .query_typed(
            "SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_step, c.status AS campaign_status,
                    c.exit_on_meeting, c.sends_per_minute
               FROM campaign_enrolments e JOIN campaigns c ON c.id = e.campaign_id
              WHERE e.id = $1 FOR UPDATE OF e",
            params![id.as_str() => TEXT],
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(None) };
    let campaign = CampaignId::from_trusted(r.get("campaign_id"));
    let steps = steps(tx, &campaign).await?;
    Ok(Some(Work {
        enrolment: EnrolmentId::from_trusted(r.get("id")),
        campaign,
        contact: ContactId::from_trusted(r.get("contact_id")),
        status: r.get("status"),
        current_step: r.get("current_step"),
        campaign_status: r.get::<_, &str>("campaign_status").parse().unwrap_or(CampaignStatus::Draft),
        exit_on_meeting: r.get("exit_on_meeting"),
        sends_per_minute: r.get("sends_per_minute"),
        steps,
    }))
}

/// [`lock_work`] for a batch: the enrolments locked in id order (so two batches never
/// deadlock) and every step of their campaigns, in two statements sent together.
pub async fn lock_work_all(tx: &Tx<'_>, ids: &[&EnrolmentId]) -> Result<Vec<Work>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let p = params![ids => TEXT_ARRAY];
    let lock = tx.query_typed(
        "SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_step, c.status AS campaign_status,
                c.exit_on_meeting, c.sends_per_minute
           FROM campaign_enrolments e JOIN campaigns c ON c.id = e.campaign_id
          WHERE e.id = ANY($1) ORDER BY e.id FOR UPDATE OF e",
        p,
    );
    let steps_sql = format!(
        "SELECT campaign_id, {STEP_COLS} FROM campaign_steps
          WHERE campaign_id IN (SELECT campaign_id FROM campaign_enrolments WHERE id = ANY($1))
          ORDER BY campaign_id, position"
    );
    let steps = tx.query_typed(&steps_sql, p);
    let (rows, step_rows) = futures::future::try_join(lock, steps).await?;
    let mut by_campaign: std::collections::HashMap<String, Vec<Step>> = std::collections::HashMap::new();
    for r in &step_rows {
        by_campaign.entry(r.get("campaign_id")).or_default().push(step(r));
    }
    Ok(rows
        .iter()
        .map(|r| {
            let campaign: String = r.get("campaign_id");
            Work {
                enrolment: EnrolmentId::from_trusted(r.get("id")),
                steps: by_campaign.get(&campaign).cloned().unwrap_or_default(),
                campaign: CampaignId::from_trusted(campaign),
                contact: ContactId::from_trusted(r.get("contact_id")),
                status: r.get("status"),
                current_step: r.get("current_step"),
                campaign_status: r.get::<_, &str>("campaign_status").parse().unwrap_or(CampaignStatus::Draft),
                exit_on_meeting: r.get("exit_on_meeting"),
                sends_per_minute: r.get("sends_per_minute"),
            }
        })
        .collect())
}

/// [`lock_position`] for a batch, in id order: each enrolment's status and current step.
pub async fn lock_positions(tx: &Tx<'_>, ids: &[&EnrolmentId]) -> Result<Vec<(EnrolmentId, String, i32)>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let rows = tx
        .query_typed(
            "SELECT id, status, current_step FROM campaign_enrolments WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.iter().map(|r| (EnrolmentId::from_trusted(r.get(0)), r.get(1), r.get(2))).collect())
}

/// Locks an enrolment and answers its status and current step (one round trip).
pub async fn lock_position(tx: &Tx<'_>, id: &EnrolmentId) -> Result<Option<(String, i32)>> {
    let rows = tx
        .query_typed(
            "SELECT status, current_step FROM campaign_enrolments WHERE id = $1 FOR UPDATE",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// One attempt at a step.
#[derive(Debug, Clone)]
pub struct Execution<'a> {
    pub team: &'a TeamId,
    pub campaign: &'a CampaignId,
    pub enrolment: &'a EnrolmentId,
    pub step: Option<&'a StepId>,
    pub position: i32,
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records an attempt; the attempt number is one more than the step's previous attempts.
pub async fn record_execution(tx: &Tx<'_>, x: &Execution<'_>) -> Result<i32> {
    let rows = tx
        .query_typed(
            "INSERT INTO campaign_executions (team_id, campaign_id, enrolment_id, step_id, step_position, attempt,
                                              status, reason, message_id, at)
             SELECT $1, $2, $3, $4, $5,
                    1 + (SELECT count(*) FROM campaign_executions WHERE enrolment_id = $3 AND step_position = $5),
                    $6, $7, $8, $9
             RETURNING attempt",
            params![x.team.as_str() => TEXT, x.campaign.as_str() => TEXT, x.enrolment.as_str() => TEXT,
                    x.step.map(|s| s.as_str()) => TEXT, x.position => INT4, x.status => TEXT, x.reason => TEXT,
                    x.message => TEXT, x.at => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(1))
}

/// How many attempts a step has had that did not send (deferrals excluded).
pub async fn failed_attempts(tx: &Tx<'_>, enrolment: &EnrolmentId, position: i32) -> Result<i64> {
    let rows = tx
        .query_typed(
            "SELECT count(*) FROM campaign_executions WHERE enrolment_id = $1 AND step_position = $2 AND status = 'failed'",
            params![enrolment.as_str() => TEXT, position => INT4],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Where an enrolment goes after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The step ran: on to `step`, due at `at`.
    Advance { step: i32, at: DateTime<Utc> },
    /// Try the same step again at `at`.
    Retry { at: DateTime<Utc> },
    /// The last step ran.
    Complete,
    /// Ended early (`exited` or `failed`) with a reason.
    End { status: &'static str, reason: String },
    /// Not processed (the campaign is not running): let the tick claim it again when due.
    Release,
}

pub async fn settle(tx: &Tx<'_>, enrolment: &EnrolmentId, next: &Next, now: DateTime<Utc>) -> Result<()> {
    let id = enrolment.as_str();
    match next {
        Next::Advance { step, at } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET current_step = $2, next_run_at = $3, last_run_at = $4,
                        claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, step => INT4, at => TIMESTAMPTZ, now => TIMESTAMPTZ],
            )
            .await?
        }
        Next::Retry { at } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET next_run_at = $2, claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, at => TIMESTAMPTZ],
            )
            .await?
        }
        Next::Complete => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET status = 'completed', last_run_at = $2, next_run_at = NULL,
                        claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, now => TIMESTAMPTZ],
            )
            .await?
        }
        Next::End { status, reason } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET status = $2, exit_reason = $3, next_run_at = NULL, claimed_until = NULL,
                        updated_at = now() WHERE id = $1",
                params![id => TEXT, status => TEXT, reason => TEXT],
            )
            .await?
        }
        Next::Release => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT],
            )
            .await?
        }
    };
    Ok(())
}

// Stats -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStats {
    pub step_id: StepId,
    pub position: i32,
    pub channel: Channel,
    /// Enrolments that reached this step.
    pub enrolled: i64,
    pub sent: i64,
    pub delivered: i64,
    /// Enrolments that ended on a reply after this step was their last send.
    pub replied: i64,
    pub opted_out: i64,
    /// Attempts that failed or were blocked by the outbound gate.
    pub failed: i64,
}

pub async fn stats(tx: &Tx<'_>, campaign: &CampaignId) -> Result<Vec<StepStats>> {
    let rows = tx
        .query_typed(
            "SELECT s.id, s.position, s.channel,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.status <> 'removed'
                        AND (e.current_step >= s.position)) AS enrolled,
                    (SELECT count(*) FROM campaign_executions x WHERE x.campaign_id = $1
                        AND x.step_position = s.position AND x.status = 'sent') AS sent,
                    (SELECT count(*) FROM messages m WHERE m.step_id = s.id AND m.status = 'delivered') AS delivered,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.exit_reason = 'reply'
                        AND greatest(e.current_step - CASE WHEN e.last_run_at IS NULL THEN 0 ELSE 1 END, 1)
                            = s.position) AS replied,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.exit_reason = 'opt_out'
                        AND greatest(e.current_step - CASE WHEN e.last_run_at IS NULL THEN 0 ELSE 1 END, 1)
                            = s.position) AS opted_out,
                    (SELECT count(*) FROM campaign_executions x WHERE x.campaign_id = $1
                        AND x.step_position = s.position AND x.status IN ('failed', 'blocked')) AS failed
               FROM campaign_steps s WHERE s.campaign_id = $1 ORDER BY s.position",
            params![campaign.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StepStats {
            step_id: StepId::from_trusted(r.get("id")),
            position: r.get("position"),
            channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
            enrolled: r.get("enrolled"),
            sent: r.get("sent"),
            delivered: r.get("delivered"),
            replied: r.get("replied"),
            opted_out: r.get("opted_out"),
            failed: r.get("failed"),
        })
        .collect())
}

// Message templates and saved filters ------------------------------------------------

/// Deletes one row of the team's `table` by id; NotFound when there is none.
async fn delete_one(tx: &Tx<'_>, table: &'static str, id: &str) -> Result<()> {
    let rows = tx.query_typed(&format!("DELETE FROM {table} WHERE id = $1 RETURNING 1"), params![id => TEXT]).await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageTemplate {
    pub id: TemplateId,
    pub name: String,
    pub channel: Channel,
    pub subject: Option<String>,
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn template(r: &Row) -> MessageTemplate {
    MessageTemplate {
        id: TemplateId::from_trusted(r.get("id")),
        name: r.get("name"),
        channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
        subject: r.get("subject"),
        body: r.get("body"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

const TEMPLATE_COLS: &str = "id, name, channel, subject, body, created_by, created_at, updated_at";

pub async fn create_template(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    channel: Channel,
    subject: Option<&str>,
    body: &str,
    actor: &str,
) -> Result<MessageTemplate> {
    let id = TemplateId::new();
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO message_templates (id, team_id, name, channel, subject, body, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TEMPLATE_COLS}"
            ),
            params![id.as_str() => TEXT, team.as_str() => TEXT, name => TEXT, channel.as_str() => TEXT,
                    subject => TEXT, body => TEXT, actor => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "message_templates_team_id_name_key", "a template with this name exists"))?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn update_template(
    tx: &Tx<'_>,
    id: &TemplateId,
    name: &str,
    subject: Option<&str>,
    body: &str,
) -> Result<MessageTemplate> {
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE message_templates SET name = $2, subject = $3, body = $4, updated_at = now()
                  WHERE id = $1 RETURNING {TEMPLATE_COLS}"
            ),
            params![id.as_str() => TEXT, name => TEXT, subject => TEXT, body => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "message_templates_team_id_name_key", "a template with this name exists"))?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn get_template(tx: &Tx<'_>, id: &TemplateId) -> Result<MessageTemplate> {
    let rows = tx
        .query_typed(
            &format!("SELECT {TEMPLATE_COLS} FROM message_templates WHERE id = $1"),
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(template).ok_or(StoreError::NotFound)
}

pub async fn list_templates(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<MessageTemplate>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {TEMPLATE_COLS} FROM message_templates WHERE id > $1 ORDER BY id LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(template).collect())
}

pub async fn delete_template(tx: &Tx<'_>, id: &TemplateId) -> Result<()> {
    delete_one(tx, "message_templates", id.as_str()).await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedFilter {
    pub id: FilterId,
    pub name: String,
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

fn saved_filter(r: &Row) -> SavedFilter {
    SavedFilter {
        id: FilterId::from_trusted(r.get("id")),
        name: r.get("name"),
        filter: r.get("filter"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
    }
}

pub async fn create_filter(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    filter: &serde_json::Value,
    actor: &str,
) -> Result<SavedFilter> {
    let id = FilterId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO saved_filters (id, team_id, name, filter, created_by) VALUES ($1, $2, $3, $4, $5)
             RETURNING id, name, filter, created_by, created_at",
            params![id.as_str() => TEXT, team.as_str() => TEXT, name => TEXT, filter => JSONB, actor => TEXT],
        )
        .await
        .map_err(|e| StoreError::unique(e, "saved_filters_team_id_name_key", "a saved filter with this name exists"))?;
    rows.first().map(saved_filter).ok_or(StoreError::NotFound)
}

pub async fn get_filter(tx: &Tx<'_>, id: &FilterId) -> Result<SavedFilter> {
    let rows = tx
        .query_typed(
            "SELECT id, name, filter, created_by, created_at FROM saved_filters WHERE id = $1",
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(saved_filter).ok_or(StoreError::NotFound)
}

pub async fn list_filters(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<SavedFilter>> {
    let rows = tx
        .query_typed(
            "SELECT id, name, filter, created_by, created_at FROM saved_filters WHERE id > $1 ORDER BY id LIMIT $2",
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(saved_filter).collect())
}

pub async fn delete_filter(tx: &Tx<'_>, id: &FilterId) -> Result<()> {
    delete_one(tx, "saved_filters", id.as_str()).await
}

/// Running campaigns of the team whose auto-enrol score band contains `score`.
pub async fn auto_enrol_campaigns(tx: &Tx<'_>, score: i32) -> Result<Vec<CampaignId>> {
    let rows = tx
        .query_typed(
            "SELECT id FROM campaigns WHERE status = 'RUNNING' AND auto_min_score <= $1 AND auto_max_score >= $1
              ORDER BY id",
            params![score => INT4],
        )
        .await?;
    Ok(rows.iter().map(|r| CampaignId::from_trusted(r.get(0))).collect())
}
