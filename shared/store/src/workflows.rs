//! Workflows, their runs and each run's steps (migration 0029). The rules are in
//! `nextier_domain::workflow`; running them is `nextier_workflows`.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, TeamId};
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
    #[schema(value_type = Object)]
    pub conditions: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub actions: serde_json::Value,
    pub active: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const WF: &str =
    "SELECT id, name, trigger, conditions, actions, active, created_by, created_at, updated_at FROM workflows";

fn workflow(r: &Row) -> Workflow {
    Workflow {
        id: r.get("id"),
        name: r.get("name"),
        trigger: r.get("trigger"),
        conditions: r.get("conditions"),
        actions: r.get("actions"),
        active: r.get("active"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// What a workflow is made of, checked.
pub struct Definition<'a> {
    pub name: &'a str,
    pub trigger: &'a serde_json::Value,
    pub trigger_event: Option<&'a str>,
    pub conditions: &'a serde_json::Value,
    pub actions: &'a serde_json::Value,
    pub active: bool,
}

fn named(e: tokio_postgres::Error, name: &str) -> StoreError {
    StoreError::unique(e, "workflows_team_id_name_key", &format!("a workflow named {name:?} exists"))
}

pub async fn create(tx: &Tx<'_>, team: &TeamId, d: &Definition<'_>, actor: &str) -> Result<Workflow> {
    let id = nextier_domain::ids::WorkflowId::new().to_string();
    tx.execute_typed(
        "INSERT INTO workflows (id, team_id, name, trigger, trigger_event, conditions, actions, active, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        params![id => TEXT, team.as_str() => TEXT, d.name => TEXT, d.trigger => JSONB, d.trigger_event => TEXT,
                d.conditions => JSONB, d.actions => JSONB, d.active => BOOL, actor => TEXT],
    )
    .await
    .map_err(|e| named(e, d.name))?;
    get(tx, &id).await
}

pub async fn update(tx: &Tx<'_>, id: &str, d: &Definition<'_>) -> Result<Workflow> {
    let n = tx
        .execute_typed(
            "UPDATE workflows SET name = $2, trigger = $3, trigger_event = $4, conditions = $5, actions = $6,
                    active = $7, updated_at = now() WHERE id = $1",
            params![id => TEXT, d.name => TEXT, d.trigger => JSONB, d.trigger_event => TEXT, d.conditions => JSONB,
                    d.actions => JSONB, d.active => BOOL],
        )
        .await
        .map_err(|e| named(e, d.name))?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    // Runs waiting on the old definition would resume at an index into the new one: they stop.
    tx.execute_typed(
        "UPDATE workflow_runs SET status = 'stopped', wake_at = NULL, updated_at = now(),
                note = 'the workflow was changed while this run waited; it stopped rather than run the new actions'
          WHERE workflow_id = $1 AND status = 'waiting'",
        params![id => TEXT],
    )
    .await?;
    get(tx, id).await
}

pub async fn get(tx: &Tx<'_>, id: &str) -> Result<Workflow> {
    let rows = tx.query_typed(&format!("{WF} WHERE id = $1"), params![id => TEXT]).await?;
    rows.first().map(workflow).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>) -> Result<Vec<Workflow>> {
    let rows = tx.query_typed(&format!("{WF} ORDER BY name LIMIT 500"), &[]).await?;
    Ok(rows.iter().map(workflow).collect())
}

pub async fn delete(tx: &Tx<'_>, id: &str) -> Result<()> {
    if tx.execute_typed("DELETE FROM workflows WHERE id = $1", params![id => TEXT]).await? == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The team's active workflows started by this bus event.
pub async fn for_event(tx: &Tx<'_>, detail_type: &str) -> Result<Vec<Workflow>> {
    let rows = tx
        .query_typed(&format!("{WF} WHERE active AND trigger_event = $1 ORDER BY id"), params![detail_type => TEXT])
        .await?;
    Ok(rows.iter().map(workflow).collect())
}

// Runs --------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub workflow_id: String,
    pub contact_id: ContactId,
    /// running, waiting, done, failed or stopped (a loop, a deleted contact).
    pub status: String,
    /// The index of the next action to do.
    pub next_action: i32,
    pub wake_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// The workflows whose actions led to this run's event.
    pub chain: Vec<String>,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub index: i32,
    pub action: String,
    /// done, skipped, failed or waiting.
    pub status: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

const RUN: &str =
    "SELECT r.id, r.workflow_id, r.contact_id, r.status, r.next_action, r.wake_at, r.note, r.chain, r.event,
        r.created_at, r.updated_at,
        coalesce((SELECT json_agg(json_build_object('index', s.idx, 'action', s.action, 'status', s.status,
                  'detail', s.detail, 'at', s.at) ORDER BY s.id) FROM workflow_run_steps s WHERE s.run_id = r.id), '[]')
          AS steps
   FROM workflow_runs r";

fn run(r: &Row) -> Run {
    let steps: serde_json::Value = r.get("steps");
    Run {
        id: r.get("id"),
        workflow_id: r.get("workflow_id"),
        contact_id: ContactId::from_trusted(r.get("contact_id")),
        status: r.get("status"),
        next_action: r.get("next_action"),
        wake_at: r.get("wake_at"),
        note: r.get("note"),
        chain: r.get("chain"),
        event: r.get("event"),
        steps: serde_json::from_value(steps).unwrap_or_default(),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// A new run, once per (workflow, event key): `None` when that event already started it.
#[allow(clippy::too_many_arguments)]
pub async fn start_run(
    tx: &Tx<'_>,
    team: &TeamId,
    workflow: &str,
    event_key: &str,
    contact: &ContactId,
    event: &serde_json::Value,
    chain: &[String],
    status: &str,
    note: Option<&str>,
) -> Result<Option<String>> {
    let id = nextier_domain::ids::WorkflowRunId::new().to_string();
    let n = tx
        .execute_typed(
            "INSERT INTO workflow_runs (id, team_id, workflow_id, event_key, contact_id, event, chain, status, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (workflow_id, event_key) DO NOTHING",
            params![id => TEXT, team.as_str() => TEXT, workflow => TEXT, event_key => TEXT, contact.as_str() => TEXT,
                    event => JSONB, chain => TEXT_ARRAY, status => TEXT, note => TEXT],
        )
        .await?;
    Ok((n == 1).then_some(id))
}

pub async fn get_run(tx: &Tx<'_>, id: &str) -> Result<Run> {
    let rows = tx.query_typed(&format!("{RUN} WHERE r.id = $1"), params![id => TEXT]).await?;
    rows.first().map(run).ok_or(StoreError::NotFound)
}

/// Locks a run for its executor (`None`: another holds it; it is skipped, not waited for).
pub async fn lock_run(tx: &Tx<'_>, id: &str) -> Result<Option<Run>> {
    let rows = tx
        .query_typed(
            &format!(
                "{RUN} WHERE r.id = $1 AND r.id IN (SELECT id FROM workflow_runs WHERE id = $1 FOR UPDATE SKIP LOCKED)"
            ),
            params![id => TEXT],
        )
        .await?;
    Ok(rows.first().map(run))
}

pub async fn runs(tx: &Tx<'_>, workflow: &str, limit: i64) -> Result<Vec<Run>> {
    let rows = tx
        .query_typed(
            &format!("{RUN} WHERE r.workflow_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2"),
            params![workflow => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(run).collect())
}

#[allow(clippy::too_many_arguments)]
pub async fn record_step(
    tx: &Tx<'_>,
    team: &TeamId,
    run: &str,
    idx: i32,
    action: &str,
    status: &str,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO workflow_run_steps (team_id, run_id, idx, action, status, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![team.as_str() => TEXT, run => TEXT, idx => INT4, action => TEXT, status => TEXT, detail => TEXT,
                at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Where a run is now.
pub async fn set_run(
    tx: &Tx<'_>,
    id: &str,
    status: &str,
    next_action: i32,
    wake_at: Option<DateTime<Utc>>,
    note: Option<&str>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE workflow_runs SET status = $2, next_action = $3, wake_at = $4, note = $5, updated_at = now() WHERE id = $1",
        params![id => TEXT, status => TEXT, next_action => INT4, wake_at => TIMESTAMPTZ, note => TEXT],
    )
    .await?;
    Ok(())
}

/// Waiting runs due at `at`, of every team (the worker's).
pub async fn due(tx: &Tx<'_>, at: DateTime<Utc>, limit: i32) -> Result<Vec<(String, TeamId)>> {
    let rows = tx
        .query_typed("SELECT id, team_id FROM workflow_runs_due($1, $2)", params![at => TIMESTAMPTZ, limit => INT4])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), TeamId::from_trusted(r.get(1)))).collect())
}

/// The timer-started workflows of every team (the worker's).
pub async fn timed(tx: &Tx<'_>) -> Result<Vec<(String, TeamId)>> {
    let rows = tx.query_typed("SELECT id, team_id FROM workflows_timed()", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), TeamId::from_trusted(r.get(1)))).collect())
}

/// Campaign messages sent to contacts `days` days ago (within the day since) and not answered
/// since, sent after `since`: (message id, contact).
pub async fn unanswered(
    tx: &Tx<'_>,
    workflow: &str,
    days: i64,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, ContactId)>> {
    let rows = tx
        .query_typed(
            "SELECT m.id, m.contact_id FROM messages m
              WHERE m.direction = 'outbound' AND m.campaign_id IS NOT NULL AND m.contact_id IS NOT NULL
                AND m.status IN ('sent', 'delivered') AND m.created_at >= $2
                AND m.created_at <= $3 - make_interval(days => $1::int)
                AND m.created_at > $3 - make_interval(days => $1::int + 1)
                AND NOT EXISTS (SELECT 1 FROM messages r WHERE r.contact_id = m.contact_id AND r.direction = 'inbound'
                                  AND r.created_at > m.created_at)
                AND NOT EXISTS (SELECT 1 FROM workflow_runs w WHERE w.workflow_id = $5 AND w.event_key = 'noreply:' || m.id)
              ORDER BY m.created_at LIMIT $4",
            params![days => INT8, since => TIMESTAMPTZ, at => TIMESTAMPTZ, limit => INT8, workflow => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), ContactId::from_trusted(r.get(1)))).collect())
}

/// The live contacts an import created, after `after` in id order, at most `limit`.
pub async fn import_contacts(
    tx: &Tx<'_>,
    import: &nextier_domain::ids::ImportId,
    after: Option<&ContactId>,
    limit: i64,
) -> Result<Vec<ContactId>> {
    let rows = tx
        .query_typed(
            "SELECT DISTINCT e.contact_id FROM contact_events e JOIN contacts c ON c.id = e.contact_id
              WHERE e.kind = 'imported' AND e.data->>'importId' = $1 AND e.contact_id > $2
                AND c.deleted_at IS NULL AND c.merged_into IS NULL
              ORDER BY e.contact_id LIMIT $3",
            params![import.as_str() => TEXT, after.map(|a| a.as_str()).unwrap_or("") => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| ContactId::from_trusted(r.get(0))).collect())
}
