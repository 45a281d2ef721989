//! A team's CRM connection (migration 0031): the connection and its tokens, the connect's
//! single-use state, the field mapping, each contact's link to its CRM record, every task and
//! every conflict. The sync rules are `nextier_domain::crm`; running it is
//! `nextier_integrations::crm`.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ContactId, IntegrationId, IntegrationTaskId, TeamId};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    pub id: String,
    pub provider: String,
    /// connected, needs_reconnect or disconnected.
    pub status: String,
    pub status_reason: Option<String>,
    pub accounts_server: String,
    pub api_domain: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub modules: Vec<String>,
    pub push_enabled: bool,
    pub pull_enabled: bool,
    pub pulled_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub pull_cursor: serde_json::Value,
    pub connected_by: String,
    pub connected_at: DateTime<Utc>,
    #[serde(skip)]
    pub team_id: String,
    #[serde(skip)]
    pub push_after: (DateTime<Utc>, String),
}

const INTEGRATION: &str = "SELECT id, team_id, provider, status, status_reason, accounts_server, api_domain,
        access_expires_at, refreshed_at, modules, push_enabled, pull_enabled, pulled_at, pull_cursor, connected_by,
        connected_at, push_after_at, push_after_id FROM integrations";

fn integration(r: &Row) -> Integration {
    Integration {
        id: r.get("id"),
        provider: r.get("provider"),
        status: r.get("status"),
        status_reason: r.get("status_reason"),
        accounts_server: r.get("accounts_server"),
        api_domain: r.get("api_domain"),
        access_expires_at: r.get("access_expires_at"),
        refreshed_at: r.get("refreshed_at"),
        modules: r.get("modules"),
        push_enabled: r.get("push_enabled"),
        pull_enabled: r.get("pull_enabled"),
        pulled_at: r.get("pulled_at"),
        pull_cursor: r.get("pull_cursor"),
        connected_by: r.get("connected_by"),
        connected_at: r.get("connected_at"),
        team_id: r.get("team_id"),
        push_after: (r.get("push_after_at"), r.get("push_after_id")),
    }
}

/// The scoped team's connection to `provider`.
pub async fn by_provider(tx: &Tx<'_>, provider: &str) -> Result<Integration> {
    let rows = tx.query_typed(&format!("{INTEGRATION} WHERE provider = $1"), params![provider => TEXT]).await?;
    rows.first().map(integration).ok_or(StoreError::NotFound)
}

pub async fn get(tx: &Tx<'_>, id: &str) -> Result<Integration> {
    let rows = tx.query_typed(&format!("{INTEGRATION} WHERE id = $1"), params![id => TEXT]).await?;
    rows.first().map(integration).ok_or(StoreError::NotFound)
}

/// Locks the connection for a change of its tokens or cursors.
pub async fn lock(tx: &Tx<'_>, id: &str) -> Result<Integration> {
    let rows = tx.query_typed(&format!("{INTEGRATION} WHERE id = $1 FOR UPDATE"), params![id => TEXT]).await?;
    rows.first().map(integration).ok_or(StoreError::NotFound)
}

/// Records a connect in progress (the state's SHA-256, never the state).
pub async fn begin_connect(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    state_hash: &str,
    actor: &str,
    redirect_uri: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO oauth_states (state_hash, team_id, provider, actor, redirect_uri, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        params![state_hash => TEXT, team.as_str() => TEXT, provider => TEXT, actor => TEXT, redirect_uri => TEXT,
                expires_at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Uses a connect's state once: its redirect URI, if the state is the scoped team's, for this
/// provider, asked by `actor`, unused and unexpired.
pub async fn take_state(
    tx: &Tx<'_>,
    provider: &str,
    state_hash: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let rows = tx
        .query_typed(
            "UPDATE oauth_states SET used_at = $4 WHERE state_hash = $1 AND provider = $2 AND actor = $3
                AND used_at IS NULL AND expires_at > $4 RETURNING redirect_uri",
            params![state_hash => TEXT, provider => TEXT, actor => TEXT, now => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// Connects (or reconnects) the scoped team to `provider` and stores its tokens.
#[allow(clippy::too_many_arguments)]
pub async fn connect(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    accounts: &str,
    api_domain: &str,
    refresh_token: &str,
    access_token: &str,
    access_expires_at: DateTime<Utc>,
    actor: &str,
) -> Result<Integration> {
    let rows = tx
        .query_typed(
            "INSERT INTO integrations (id, team_id, provider, status, accounts_server, api_domain, access_expires_at,
                                       refreshed_at, connected_by)
             VALUES ($1, $2, $3, 'connected', $4, $5, $6, now(), $7)
             ON CONFLICT (team_id, provider) DO UPDATE SET status = 'connected', status_reason = NULL,
                accounts_server = excluded.accounts_server, api_domain = excluded.api_domain,
                access_expires_at = excluded.access_expires_at, refreshed_at = now(),
                connected_by = excluded.connected_by, connected_at = now(), updated_at = now()
             RETURNING id",
            params![IntegrationId::new().as_str() => TEXT, team.as_str() => TEXT, provider => TEXT, accounts => TEXT,
                    api_domain => TEXT, access_expires_at => TIMESTAMPTZ, actor => TEXT],
        )
        .await?;
    let id: String = rows.first().ok_or(StoreError::NotFound)?.get(0);
    tx.execute_typed(
        "SELECT integration_store_tokens($1, $2, $3)",
        params![id => TEXT, refresh_token => TEXT, access_token => TEXT],
    )
    .await?;
    get(tx, &id).await
}

/// Disconnects: the tokens are forgotten; links, tasks and conflicts stay for the record.
pub async fn disconnect(tx: &Tx<'_>, id: &str, reason: &str) -> Result<Integration> {
    let n = tx
        .execute_typed(
            "UPDATE integrations SET status = 'disconnected', status_reason = $2, access_expires_at = NULL,
                    updated_at = now() WHERE id = $1",
            params![id => TEXT, reason => TEXT],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    tx.execute_typed("SELECT integration_forget_tokens($1)", params![id => TEXT]).await?;
    tx.execute_typed(
        "UPDATE integration_tasks SET status = 'failed', error = 'disconnected', finished_at = now()
          WHERE integration_id = $1 AND status IN ('queued', 'running')",
        params![id => TEXT],
    )
    .await?;
    get(tx, id).await
}

/// Which modules sync and in which directions.
pub async fn configure(
    tx: &Tx<'_>,
    id: &str,
    modules: Option<&[String]>,
    push: Option<bool>,
    pull: Option<bool>,
) -> Result<Integration> {
    tx.execute_typed(
        "UPDATE integrations SET modules = coalesce($2, modules), push_enabled = coalesce($3, push_enabled),
                pull_enabled = coalesce($4, pull_enabled), updated_at = now() WHERE id = $1",
        params![id => TEXT, modules => TEXT_ARRAY, push => BOOL, pull => BOOL],
    )
    .await?;
    get(tx, id).await
}

/// The tokens (the worker's only): (refresh, access).
pub async fn tokens(tx: &Tx<'_>, id: &str) -> Result<Option<(String, Option<String>)>> {
    let rows = tx
        .query_typed(
            "SELECT refresh_token, access_token FROM integration_secrets WHERE integration_id = $1",
            params![id => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// A refreshed access token (the worker's).
pub async fn refreshed(
    tx: &Tx<'_>,
    id: &str,
    access: &str,
    expires_at: DateTime<Utc>,
    api_domain: Option<&str>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE integration_secrets SET access_token = $2, updated_at = now() WHERE integration_id = $1",
        params![id => TEXT, access => TEXT],
    )
    .await?;
    tx.execute_typed(
        "UPDATE integrations SET access_expires_at = $2, refreshed_at = now(), api_domain = coalesce($3, api_domain),
                updated_at = now() WHERE id = $1",
        params![id => TEXT, expires_at => TIMESTAMPTZ, api_domain => TEXT],
    )
    .await?;
    Ok(())
}

/// The grant is dead: a person must connect again. Whether this changed the status (so the
/// team is told once).
pub async fn needs_reconnect(tx: &Tx<'_>, id: &str, reason: &str) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE integrations SET status = 'needs_reconnect', status_reason = $2, updated_at = now()
              WHERE id = $1 AND status = 'connected'",
            params![id => TEXT, reason => TEXT],
        )
        .await?;
    Ok(n == 1)
}

/// Every connected integration across teams (the cron's; definer function).
pub async fn connected(tx: &Tx<'_>) -> Result<Vec<(String, TeamId, Option<DateTime<Utc>>)>> {
    let rows = tx.query_typed("SELECT id, team_id, access_expires_at FROM integrations_connected()", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), TeamId::from_trusted(r.get(1)), r.get(2))).collect())
}

// --- Field mapping -------------------------------------------------------------------------

/// A module's mapping (source, target); the module's default when the team set none.
pub async fn mapping(tx: &Tx<'_>, id: &str, module: &str) -> Result<Vec<(String, String)>> {
    let rows = tx
        .query_typed(
            "SELECT source, target FROM integration_fields WHERE integration_id = $1 AND module = $2 ORDER BY id",
            params![id => TEXT, module => TEXT],
        )
        .await?;
    if rows.is_empty() {
        return Ok(nextier_domain::crm::default_mapping(module));
    }
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Replaces a module's mapping (already checked).
pub async fn set_mapping(tx: &Tx<'_>, team: &TeamId, id: &str, module: &str, pairs: &[(String, String)]) -> Result<()> {
    tx.execute_typed(
        "DELETE FROM integration_fields WHERE integration_id = $1 AND module = $2",
        params![id => TEXT, module => TEXT],
    )
    .await?;
    for (s, t) in pairs {
        tx.execute_typed(
            "INSERT INTO integration_fields (team_id, integration_id, module, source, target) VALUES ($1, $2, $3, $4, $5)",
            params![team.as_str() => TEXT, id => TEXT, module => TEXT, s => TEXT, t => TEXT],
        )
        .await?;
    }
    Ok(())
}

// --- Tasks ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub integration_id: String,
    /// push or pull.
    pub kind: String,
    /// queued, running, done or failed.
    pub status: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const TASK: &str = "SELECT id, integration_id, kind, status, payload, result, attempts, error, created_by, created_at,
        started_at, finished_at FROM integration_tasks";

fn task(r: &Row) -> Task {
    Task {
        id: r.get("id"),
        integration_id: r.get("integration_id"),
        kind: r.get("kind"),
        status: r.get("status"),
        payload: r.get("payload"),
        result: r.get("result"),
        attempts: r.get("attempts"),
        error: r.get("error"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
    }
}

pub async fn create_task(
    tx: &Tx<'_>,
    team: &TeamId,
    integration: &str,
    kind: &str,
    payload: &serde_json::Value,
    actor: &str,
) -> Result<Task> {
    let id = IntegrationTaskId::new().to_string();
    tx.execute_typed(
        "INSERT INTO integration_tasks (id, team_id, integration_id, kind, status, payload, created_by)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6)",
        params![id => TEXT, team.as_str() => TEXT, integration => TEXT, kind => TEXT, payload => JSONB, actor => TEXT],
    )
    .await?;
    get_task(tx, &id).await
}

pub async fn get_task(tx: &Tx<'_>, id: &str) -> Result<Task> {
    let rows = tx.query_typed(&format!("{TASK} WHERE id = $1"), params![id => TEXT]).await?;
    rows.first().map(task).ok_or(StoreError::NotFound)
}

pub async fn tasks(tx: &Tx<'_>, integration: &str, status: Option<&str>, page: &PageRequest) -> Result<Vec<Task>> {
    let rows = tx
        .query_typed(
            &format!(
                "{TASK} WHERE integration_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3 = '' OR id < $3)
                  ORDER BY id DESC LIMIT $4"
            ),
            params![integration => TEXT, status => TEXT, page.after.clone().unwrap_or_default() => TEXT,
                    page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(task).collect())
}

/// Whether a task of this kind is queued or running already (the cron does not pile them up).
pub async fn task_open(tx: &Tx<'_>, integration: &str, kind: &str) -> Result<bool> {
    let rows = tx
        .query_typed(
            "SELECT 1 FROM integration_tasks WHERE integration_id = $1 AND kind = $2 AND status IN ('queued', 'running')
              LIMIT 1",
            params![integration => TEXT, kind => TEXT],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Leases a queued task (or one whose runner's lease ran out) for `lease_secs`.
pub async fn claim_task(
    tx: &Tx<'_>,
    id: &str,
    now: DateTime<Utc>,
    lease_secs: i32,
    max_attempts: i32,
) -> Result<Option<Task>> {
    // A task whose runner kept dying (a timeout, memory) is not tried for ever.
    tx.execute_typed(
        "UPDATE integration_tasks SET status = 'failed', lease_until = NULL, finished_at = now(),
                error = format('stopped %s times without finishing', attempts)
          WHERE id = $1 AND attempts >= $3
            AND (status = 'queued' AND coalesce(lease_until, '-infinity') <= $2 OR status = 'running' AND lease_until <= $2)",
        params![id => TEXT, now => TIMESTAMPTZ, max_attempts => INT4],
    )
    .await?;
    let rows = tx
        .query_typed(
            "UPDATE integration_tasks SET status = 'running', attempts = attempts + 1,
                    started_at = coalesce(started_at, $2), lease_until = $2 + make_interval(secs => $3)
              WHERE id = $1 AND (status = 'queued' AND coalesce(lease_until, '-infinity') <= $2
                                 OR status = 'running' AND lease_until <= $2)
              RETURNING id",
            params![id => TEXT, now => TIMESTAMPTZ, lease_secs => INT4],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    get_task(tx, id).await.map(Some)
}

pub async fn finish_task(tx: &Tx<'_>, id: &str, result: &serde_json::Value) -> Result<()> {
    tx.execute_typed(
        "UPDATE integration_tasks SET status = 'done', result = $2, error = NULL, lease_until = NULL, finished_at = now()
          WHERE id = $1",
        params![id => TEXT, result => JSONB],
    )
    .await?;
    Ok(())
}

/// Ends a task as failed, or puts it back (`retry_at`): queued, not claimable before then.
pub async fn fail_task(
    tx: &Tx<'_>,
    id: &str,
    error: &str,
    result: &serde_json::Value,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE integration_tasks SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'queued' END,
                error = $2, result = $4, lease_until = $3,
                finished_at = CASE WHEN $3::timestamptz IS NULL THEN now() END
          WHERE id = $1",
        params![id => TEXT, error => TEXT, retry_at => TIMESTAMPTZ, result => JSONB],
    )
    .await?;
    Ok(())
}

/// A person's retry of a failed task: queued again, now.
pub async fn retry_task(tx: &Tx<'_>, id: &str) -> Result<Task> {
    let n = tx
        .execute_typed(
            "UPDATE integration_tasks SET status = 'queued', error = NULL, lease_until = NULL, finished_at = NULL
              WHERE id = $1 AND status = 'failed'",
            params![id => TEXT],
        )
        .await?;
    let t = get_task(tx, id).await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("the task is {}; only a failed task is retried", t.status)));
    }
    Ok(t)
}

// --- Push ----------------------------------------------------------------------------------

/// The contacts changed after the push cursor, oldest change first, at most `limit`: (id,
/// updated_at, deleted).
pub async fn changed_contacts(
    tx: &Tx<'_>,
    after: &(DateTime<Utc>, String),
    limit: i64,
) -> Result<Vec<(ContactId, DateTime<Utc>, bool)>> {
    let rows = tx
        .query_typed(
            "SELECT id, updated_at, deleted_at IS NOT NULL FROM contacts
              WHERE merged_into IS NULL AND (updated_at, id) > ($1, $2) ORDER BY updated_at, id LIMIT $3",
            params![after.0 => TIMESTAMPTZ, after.1 => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| (ContactId::from_trusted(r.get(0)), r.get(1), r.get(2))).collect())
}

/// The next push starts from the beginning (a new mapping or module: every record changes).
pub async fn restart_push(tx: &Tx<'_>, id: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE integrations SET push_after_at = '1970-01-01T00:00:00Z', push_after_id = '' WHERE id = $1",
        params![id => TEXT],
    )
    .await?;
    Ok(())
}

pub async fn advance_push(tx: &Tx<'_>, id: &str, at: DateTime<Utc>, contact: &str) -> Result<()> {
    tx.execute_typed(
        "UPDATE integrations SET push_after_at = $2, push_after_id = $3 WHERE id = $1 AND (push_after_at, push_after_id) < ($2, $3)",
        params![id => TEXT, at => TIMESTAMPTZ, contact => TEXT],
    )
    .await?;
    Ok(())
}

/// The contacts' fields as a push reads them (`nextier_domain::crm::SOURCE_FIELDS`), live
/// contacts only.
pub async fn push_sources(
    tx: &Tx<'_>,
    ids: &[String],
) -> Result<Vec<(String, serde_json::Map<String, serde_json::Value>)>> {
    let rows = tx
        .query_typed(
            "SELECT c.id, json_build_object('id', c.id, 'firstName', c.first_name, 'lastName', c.last_name,
                    'company', c.company, 'title', c.title, 'email', e.email,
                    'mobile', (SELECT e164 FROM contact_phones WHERE contact_id = c.id AND type = 'mobile'
                                ORDER BY is_primary DESC, id LIMIT 1),
                    'phone', (SELECT e164 FROM contact_phones WHERE contact_id = c.id AND type <> 'mobile'
                                ORDER BY is_primary DESC, id LIMIT 1),
                    'street', a.line1, 'city', a.city, 'state', a.state, 'zip', a.zip,
                    'leadState', c.lead_state::text, 'score', c.score, 'tags', array_to_string(c.tags, ';'),
                    'source', c.source)
               FROM contacts c
               LEFT JOIN LATERAL (SELECT email FROM contact_emails WHERE contact_id = c.id
                                  ORDER BY is_primary DESC, id LIMIT 1) e ON true
               LEFT JOIN LATERAL (SELECT line1, city, state, zip FROM contact_addresses WHERE contact_id = c.id
                                  ORDER BY is_current DESC, id LIMIT 1) a ON true
              WHERE c.id = ANY($1) AND c.deleted_at IS NULL ORDER BY c.id",
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let v: serde_json::Value = r.get(1);
            (r.get(0), v.as_object().cloned().unwrap_or_default())
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub module: String,
    pub contact_id: String,
    pub external_id: String,
    /// linked, remote_deleted or local_deleted.
    pub state: String,
    pub pushed_hash: Option<String>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub remote_modified_at: Option<DateTime<Utc>>,
}

fn link(r: &Row) -> Link {
    Link {
        module: r.get("module"),
        contact_id: r.get("contact_id"),
        external_id: r.get("external_id"),
        state: r.get("state"),
        pushed_hash: r.get("pushed_hash"),
        pushed_at: r.get("pushed_at"),
        remote_modified_at: r.get("remote_modified_at"),
    }
}

const LINK: &str = "SELECT module, contact_id, external_id, state, pushed_hash, pushed_at, remote_modified_at
    FROM integration_links";

pub async fn links_of(tx: &Tx<'_>, integration: &str, module: &str, contacts: &[String]) -> Result<Vec<Link>> {
    let rows = tx
        .query_typed(
            &format!("{LINK} WHERE integration_id = $1 AND module = $2 AND contact_id = ANY($3)"),
            params![integration => TEXT, module => TEXT, contacts => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.iter().map(link).collect())
}

pub async fn link_by_external(tx: &Tx<'_>, integration: &str, module: &str, external: &str) -> Result<Option<Link>> {
    let rows = tx
        .query_typed(
            &format!("{LINK} WHERE integration_id = $1 AND module = $2 AND external_id = $3"),
            params![integration => TEXT, module => TEXT, external => TEXT],
        )
        .await?;
    Ok(rows.first().map(link))
}

/// Records a pushed record: the contact is linked to `external` with the digest sent.
#[allow(clippy::too_many_arguments)]
pub async fn linked(
    tx: &Tx<'_>,
    team: &TeamId,
    integration: &str,
    module: &str,
    contact: &str,
    external: &str,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO integration_links (team_id, integration_id, module, contact_id, external_id, pushed_hash, pushed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (integration_id, module, contact_id) DO UPDATE SET external_id = excluded.external_id,
            pushed_hash = excluded.pushed_hash, pushed_at = excluded.pushed_at, state = 'linked', updated_at = now()",
        params![team.as_str() => TEXT, integration => TEXT, module => TEXT, contact => TEXT, external => TEXT,
                hash => TEXT, now => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// Marks a link's record as gone on one side (`remote_deleted` / `local_deleted`); whether it
/// changed (so a conflict is recorded once).
pub async fn mark_link(tx: &Tx<'_>, integration: &str, module: &str, contact: &str, state: &str) -> Result<bool> {
    let n = tx
        .execute_typed(
            "UPDATE integration_links SET state = $4, updated_at = now()
              WHERE integration_id = $1 AND module = $2 AND contact_id = $3 AND state <> $4",
            params![integration => TEXT, module => TEXT, contact => TEXT, state => TEXT],
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_remote_modified(
    tx: &Tx<'_>,
    integration: &str,
    module: &str,
    contact: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE integration_links SET remote_modified_at = $4, updated_at = now()
          WHERE integration_id = $1 AND module = $2 AND contact_id = $3",
        params![integration => TEXT, module => TEXT, contact => TEXT, at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

/// The new pull cursor of a module.
pub async fn set_pull_cursor(tx: &Tx<'_>, id: &str, module: &str, at: DateTime<Utc>) -> Result<()> {
    tx.execute_typed(
        "UPDATE integrations SET pull_cursor = pull_cursor || jsonb_build_object($2::text, $3::timestamptz),
                updated_at = now() WHERE id = $1",
        params![id => TEXT, module => TEXT, at => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

pub async fn pulled(tx: &Tx<'_>, id: &str, now: DateTime<Utc>) -> Result<()> {
    tx.execute_typed("UPDATE integrations SET pulled_at = $2 WHERE id = $1", params![id => TEXT, now => TIMESTAMPTZ])
        .await?;
    Ok(())
}

/// A contact's fields a pull may write, and when a person last edited them (locked).
pub async fn lock_contact(
    tx: &Tx<'_>,
    contact: &str,
) -> Result<Option<(std::collections::BTreeMap<String, Option<String>>, Option<DateTime<Utc>>, bool)>> {
    let rows = tx
        .query_typed(
            "SELECT first_name, last_name, company, title, edited_at, deleted_at IS NOT NULL FROM contacts
              WHERE id = $1 FOR UPDATE",
            params![contact => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| {
        let mut m = std::collections::BTreeMap::new();
        for (i, k) in ["firstName", "lastName", "company", "title"].iter().enumerate() {
            m.insert((*k).to_owned(), r.get::<_, Option<String>>(i));
        }
        (m, r.get(4), r.get(5))
    }))
}

/// Writes the pulled fields (not a person's edit: `edited_at` stays).
pub async fn apply_pulled(
    tx: &Tx<'_>,
    contact: &str,
    fields: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<()> {
    let get = |k: &str| fields.get(k).cloned();
    tx.execute_typed(
        "UPDATE contacts SET
            first_name = CASE WHEN $2 THEN $3 ELSE first_name END,
            last_name = CASE WHEN $4 THEN $5 ELSE last_name END,
            company = CASE WHEN $6 THEN $7 ELSE company END,
            title = CASE WHEN $8 THEN $9 ELSE title END,
            updated_at = now()
          WHERE id = $1 AND deleted_at IS NULL",
        params![contact => TEXT,
                get("firstName").is_some() => BOOL, get("firstName").flatten() => TEXT,
                get("lastName").is_some() => BOOL, get("lastName").flatten() => TEXT,
                get("company").is_some() => BOOL, get("company").flatten() => TEXT,
                get("title").is_some() => BOOL, get("title").flatten() => TEXT],
    )
    .await?;
    Ok(())
}

// --- Conflicts -----------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub id: i64,
    pub contact_id: Option<String>,
    pub module: String,
    pub external_id: String,
    /// field (ours kept over theirs), remote_deleted or local_deleted.
    pub kind: String,
    pub field: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
    pub our_edited_at: Option<DateTime<Utc>>,
    pub their_modified_at: Option<DateTime<Utc>>,
    pub resolution: String,
    pub at: DateTime<Utc>,
}

pub struct NewConflict<'a> {
    pub contact: Option<&'a str>,
    pub module: &'a str,
    pub external_id: &'a str,
    pub kind: &'a str,
    pub field: Option<&'a str>,
    pub ours: Option<&'a str>,
    pub theirs: Option<&'a str>,
    pub our_edited_at: Option<DateTime<Utc>>,
    pub their_modified_at: Option<DateTime<Utc>>,
    pub resolution: &'a str,
}

pub async fn conflict(tx: &Tx<'_>, team: &TeamId, integration: &str, c: &NewConflict<'_>) -> Result<()> {
    tx.execute_typed(
        "INSERT INTO integration_conflicts (team_id, integration_id, contact_id, module, external_id, kind, field, ours,
                                            theirs, our_edited_at, their_modified_at, resolution)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        params![team.as_str() => TEXT, integration => TEXT, c.contact => TEXT, c.module => TEXT, c.external_id => TEXT,
                c.kind => TEXT, c.field => TEXT, c.ours => TEXT, c.theirs => TEXT, c.our_edited_at => TIMESTAMPTZ,
                c.their_modified_at => TIMESTAMPTZ, c.resolution => TEXT],
    )
    .await?;
    Ok(())
}

pub async fn conflicts(tx: &Tx<'_>, integration: &str, after: Option<i64>, limit: i64) -> Result<Vec<Conflict>> {
    let rows = tx
        .query_typed(
            "SELECT id, contact_id, module, external_id, kind, field, ours, theirs, our_edited_at, their_modified_at,
                    resolution, at FROM integration_conflicts
              WHERE integration_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            params![integration => TEXT, after => INT8, limit => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Conflict {
            id: r.get("id"),
            contact_id: r.get("contact_id"),
            module: r.get("module"),
            external_id: r.get("external_id"),
            kind: r.get("kind"),
            field: r.get("field"),
            ours: r.get("ours"),
            theirs: r.get("theirs"),
            our_edited_at: r.get("our_edited_at"),
            their_modified_at: r.get("their_modified_at"),
            resolution: r.get("resolution"),
            at: r.get("at"),
        })
        .collect())
}
