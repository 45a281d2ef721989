//! CSV export jobs (migration 0031) and the pages of rows they write: contacts (with the
//! contact list's filter), inbox items and messages. Each page is read by keyset (`id >
//! after`), so an export of any size holds one page at a time.

use chrono::{DateTime, Utc};
use nextier_domain::ids::{ExportId, TeamId};
use nextier_domain::page::PageRequest;
use serde::{Deserialize, Serialize};
use tokio_postgres::types::Type;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::contacts::{Filter, Where};
use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    pub id: String,
    /// contacts, inbox or messages.
    pub kind: String,
    #[schema(value_type = Object)]
    pub filter: serde_json::Value,
    /// queued, running, done or failed.
    pub status: String,
    pub rows_written: i64,
    /// How many rows the export will have (counted when it starts).
    pub rows_total: Option<i64>,
    /// 0-100.
    pub progress_percent: i32,
    pub bytes: i64,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A time-limited link to the file, when it is done (on a single export's read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip)]
    pub blob_key: Option<String>,
    #[serde(skip)]
    pub team_id: String,
}

const EXPORT: &str = "SELECT id, team_id, kind, filter, status, rows_written, rows_total, bytes, error, blob_key,
        created_by, created_at, started_at, finished_at FROM exports";

fn export(r: &Row) -> Export {
    let status: String = r.get("status");
    let written: i64 = r.get("rows_written");
    let total: Option<i64> = r.get("rows_total");
    let progress_percent = match (status.as_str(), total) {
        ("done", _) => 100,
        (_, Some(t)) if t > 0 => ((written.min(t) * 100) / t) as i32,
        _ => 0,
    };
    Export {
        id: r.get("id"),
        kind: r.get("kind"),
        filter: r.get("filter"),
        status,
        rows_written: written,
        rows_total: total,
        progress_percent,
        bytes: r.get("bytes"),
        error: r.get("error"),
        created_by: r.get("created_by"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        download_url: None,
        blob_key: r.get("blob_key"),
        team_id: r.get("team_id"),
    }
}

pub async fn create(tx: &Tx<'_>, team: &TeamId, kind: &str, filter: &serde_json::Value, actor: &str) -> Result<Export> {
    let id = ExportId::new().to_string();
    tx.execute_typed(
        "INSERT INTO exports (id, team_id, kind, filter, status, created_by) VALUES ($1, $2, $3, $4, 'queued', $5)",
        params![id => TEXT, team.as_str() => TEXT, kind => TEXT, filter => JSONB, actor => TEXT],
    )
    .await?;
    get(tx, &id).await
}

pub async fn get(tx: &Tx<'_>, id: &str) -> Result<Export> {
    let rows = tx.query_typed(&format!("{EXPORT} WHERE id = $1"), params![id => TEXT]).await?;
    rows.first().map(export).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Export>> {
    let rows = tx
        .query_typed(
            &format!("{EXPORT} WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2"),
            params![page.after.clone().unwrap_or_default() => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(export).collect())
}

/// Leases a queued export (or one whose runner's lease ran out) for `lease_secs`, counting
/// the attempt; `None` when it is done, failed or leased.
pub async fn claim(
    tx: &Tx<'_>,
    id: &str,
    now: DateTime<Utc>,
    lease_secs: i32,
    max_attempts: i32,
) -> Result<Option<Export>> {
    // An export whose runner kept dying (a timeout, memory) is not tried for ever.
    tx.execute_typed(
        "UPDATE exports SET status = 'failed', lease_until = NULL, finished_at = now(),
                error = format('stopped %s times without finishing', attempts)
          WHERE id = $1 AND attempts >= $3 AND (status = 'queued' OR (status = 'running' AND lease_until <= $2))",
        params![id => TEXT, now => TIMESTAMPTZ, max_attempts => INT4],
    )
    .await?;
    let rows = tx
        .query_typed(
            "UPDATE exports SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, $2),
                    lease_until = $2 + make_interval(secs => $3), rows_written = 0, bytes = 0
              WHERE id = $1 AND (status = 'queued' OR (status = 'running' AND lease_until <= $2))
              RETURNING id",
            params![id => TEXT, now => TIMESTAMPTZ, lease_secs => INT4],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    get(tx, id).await.map(Some)
}

/// How many attempts an export has had.
pub async fn attempts(tx: &Tx<'_>, id: &str) -> Result<i32> {
    let rows = tx.query_typed("SELECT attempts FROM exports WHERE id = $1", params![id => TEXT]).await?;
    rows.first().map(|r| r.get(0)).ok_or(StoreError::NotFound)
}

/// Progress, and the lease renewed.
pub async fn progress(
    tx: &Tx<'_>,
    id: &str,
    total: Option<i64>,
    rows: i64,
    bytes: i64,
    lease_until: DateTime<Utc>,
) -> Result<()> {
    tx.execute_typed(
        "UPDATE exports SET rows_total = coalesce($2, rows_total), rows_written = $3, bytes = $4, lease_until = $5
          WHERE id = $1 AND status = 'running'",
        params![id => TEXT, total => INT8, rows => INT8, bytes => INT8, lease_until => TIMESTAMPTZ],
    )
    .await?;
    Ok(())
}

pub async fn finish(tx: &Tx<'_>, id: &str, key: &str, rows: i64, bytes: i64) -> Result<()> {
    tx.execute_typed(
        "UPDATE exports SET status = 'done', blob_key = $2, rows_written = $3, rows_total = $3, bytes = $4,
                finished_at = now(), lease_until = NULL, error = NULL WHERE id = $1",
        params![id => TEXT, key => TEXT, rows => INT8, bytes => INT8],
    )
    .await?;
    Ok(())
}

/// Ends an export as failed, or (`retry`) puts it back in the queue for another attempt.
pub async fn fail(tx: &Tx<'_>, id: &str, error: &str, retry: bool) -> Result<()> {
    tx.execute_typed(
        "UPDATE exports SET status = CASE WHEN $3 THEN 'queued' ELSE 'failed' END, error = $2, lease_until = NULL,
                finished_at = CASE WHEN $3 THEN NULL ELSE now() END WHERE id = $1",
        params![id => TEXT, error => TEXT, retry => BOOL],
    )
    .await?;
    Ok(())
}

/// An inbox or message export's filter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityFilter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub campaign_id: Option<String>,
    /// Messages: SMS, EMAIL or VOICE.
    pub channel: Option<String>,
    /// Messages: outbound or inbound.
    pub direction: Option<String>,
    /// Inbox: the bucket (`positive`, `dnc`...).
    pub bucket: Option<String>,
    /// Inbox: the classification (`POSITIVE`, `DNC_REQUEST`...).
    pub classification: Option<String>,
}

pub const CONTACT_COLUMNS: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "phone_type",
    "email",
    "address",
    "city",
    "state",
    "zip",
    "lead_state",
    "score",
    "tags",
    "status",
    "source",
    "enrichment_status",
    "created_at",
    "updated_at",
];
pub const INBOX_COLUMNS: &[&str] = &[
    "id",
    "contact_id",
    "first_name",
    "last_name",
    "phone",
    "response",
    "classification",
    "confidence",
    "priority",
    "score",
    "bucket",
    "requires_review",
    "is_read",
    "assigned_to",
    "campaign_id",
    "created_at",
];
pub const MESSAGE_COLUMNS: &[&str] = &[
    "id",
    "contact_id",
    "campaign_id",
    "channel",
    "direction",
    "to",
    "from",
    "subject",
    "body",
    "status",
    "segments",
    "error",
    "created_at",
    "sent_at",
    "delivered_at",
];

/// A page of rows: the cells of each row in the columns' order, and the last id.
pub struct Page {
    pub rows: Vec<Vec<Option<String>>>,
    pub last: Option<String>,
}

fn cells(r: &Row) -> Vec<Option<String>> {
    (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()
}

fn page(rows: Vec<Row>) -> Page {
    let last = rows.last().map(|r| r.get::<_, Option<String>>(0).unwrap_or_default());
    Page { rows: rows.iter().map(cells).collect(), last }
}

const TS: &str = "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"";

/// The contacts the filter matches, after `after` in id order, `limit` at most.
pub async fn contacts_page(tx: &Tx<'_>, filter: &Filter, after: &str, limit: i64) -> Result<Page> {
    let mut w = Where::from_filter(filter);
    let a = w.bind(after.to_owned(), Type::TEXT);
    let l = w.bind(limit, Type::INT8);
    let sql = format!(
        "SELECT c.id, c.first_name, c.last_name, c.company, c.title, p.e164, p.type::text, e.email, ad.line1, ad.city,
                ad.state, ad.zip, c.lead_state::text, c.score::text, array_to_string(c.tags, ';'), c.status, c.source,
                c.enrichment_status, to_char(c.created_at AT TIME ZONE 'UTC', '{TS}'),
                to_char(c.updated_at AT TIME ZONE 'UTC', '{TS}')
           FROM contacts c
           LEFT JOIN LATERAL (SELECT e164, type FROM contact_phones WHERE contact_id = c.id
                              ORDER BY is_primary DESC, id LIMIT 1) p ON true
           LEFT JOIN LATERAL (SELECT email FROM contact_emails WHERE contact_id = c.id
                              ORDER BY is_primary DESC, id LIMIT 1) e ON true
           LEFT JOIN LATERAL (SELECT line1, city, state, zip FROM contact_addresses WHERE contact_id = c.id
                              ORDER BY is_current DESC, id LIMIT 1) ad ON true
          WHERE {} AND c.id > {a} ORDER BY c.id LIMIT {l}",
        w.sql()
    );
    Ok(page(tx.query_typed(&sql, &w.params()).await?))
}

/// How many contacts the filter matches.
pub async fn contacts_count(tx: &Tx<'_>, filter: &Filter) -> Result<i64> {
    let w = Where::from_filter(filter);
    let rows = tx.query_typed(&format!("SELECT count(*) FROM contacts c WHERE {}", w.sql()), &w.params()).await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

const INBOX_WHERE: &str =
    "($1::timestamptz IS NULL OR i.created_at >= $1) AND ($2::timestamptz IS NULL OR i.created_at < $2)
    AND ($3::text IS NULL OR i.campaign_id = $3) AND ($4::text IS NULL OR i.bucket = $4)
    AND ($5::text IS NULL OR i.classification = $5)";

pub async fn inbox_page(tx: &Tx<'_>, f: &ActivityFilter, after: &str, limit: i64) -> Result<Page> {
    let rows = tx
        .query_typed(
            &format!(
                "SELECT i.id, i.contact_id, c.first_name, c.last_name, i.phone, i.response_text, i.classification,
                        i.confidence::text, i.priority, i.score::text, i.bucket, i.requires_review::text,
                        i.is_read::text, i.assigned_to, i.campaign_id,
                        to_char(i.created_at AT TIME ZONE 'UTC', '{TS}')
                   FROM inbox_items i LEFT JOIN contacts c ON c.id = i.contact_id
                  WHERE {INBOX_WHERE} AND i.id > $6 ORDER BY i.id LIMIT $7"
            ),
            params![f.since => TIMESTAMPTZ, f.until => TIMESTAMPTZ, f.campaign_id => TEXT, f.bucket => TEXT,
                    f.classification => TEXT, after => TEXT, limit => INT8],
        )
        .await?;
    Ok(page(rows))
}

pub async fn inbox_count(tx: &Tx<'_>, f: &ActivityFilter) -> Result<i64> {
    let rows = tx
        .query_typed(
            &format!("SELECT count(*) FROM inbox_items i WHERE {INBOX_WHERE}"),
            params![f.since => TIMESTAMPTZ, f.until => TIMESTAMPTZ, f.campaign_id => TEXT, f.bucket => TEXT,
                    f.classification => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

const MESSAGE_WHERE: &str =
    "($1::timestamptz IS NULL OR m.created_at >= $1) AND ($2::timestamptz IS NULL OR m.created_at < $2)
    AND ($3::text IS NULL OR m.campaign_id = $3) AND ($4::text IS NULL OR m.channel = $4)
    AND ($5::text IS NULL OR m.direction = $5)";

pub async fn messages_page(tx: &Tx<'_>, f: &ActivityFilter, after: &str, limit: i64) -> Result<Page> {
    let rows = tx
        .query_typed(
            &format!(
                "SELECT m.id, m.contact_id, m.campaign_id, m.channel, m.direction, m.to_address, m.from_address,
                        m.subject, m.body, m.status, m.segments::text, m.error,
                        to_char(m.created_at AT TIME ZONE 'UTC', '{TS}'),
                        to_char(m.sent_at AT TIME ZONE 'UTC', '{TS}'),
                        to_char(m.delivered_at AT TIME ZONE 'UTC', '{TS}')
                   FROM messages m WHERE {MESSAGE_WHERE} AND m.id > $6 ORDER BY m.id LIMIT $7"
            ),
            params![f.since => TIMESTAMPTZ, f.until => TIMESTAMPTZ, f.campaign_id => TEXT, f.channel => TEXT,
                    f.direction => TEXT, after => TEXT, limit => INT8],
        )
        .await?;
    Ok(page(rows))
}

pub async fn messages_count(tx: &Tx<'_>, f: &ActivityFilter) -> Result<i64> {
    let rows = tx
        .query_typed(
            &format!("SELECT count(*) FROM messages m WHERE {MESSAGE_WHERE}"),
            params![f.since => TIMESTAMPTZ, f.until => TIMESTAMPTZ, f.campaign_id => TEXT, f.channel => TEXT,
                    f.direction => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Exports, queued or leased, whose queue message was lost, and integration tasks likewise
/// (the cron's; definer function): (kind `export` or `task`, id, team).
pub async fn stalled(tx: &Tx<'_>, now: DateTime<Utc>, limit: i32) -> Result<Vec<(String, String, TeamId)>> {
    let rows = tx
        .query_typed(
            "SELECT kind, id, team_id FROM integration_work_stalled($1, $2)",
            params![now => TIMESTAMPTZ, limit => INT4],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), TeamId::from_trusted(r.get(2)))).collect())
}
