//! SQL of CSV imports: the job row, staging in checkpointed chunks, and the one-transaction
//! merge into contacts (and businesses for B2B lists).

use chrono::{DateTime, Utc};
use nextier_domain::ids::{BusinessId, ContactId, ImportId, RowId, TeamId};
use nextier_domain::import::{business_role, Columns, ImportKind, Record, RowProblem};
use nextier_domain::page::PageRequest;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa::ToSchema;

use crate::error::{Result, StoreError};
use crate::Tx;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Import {
    pub id: ImportId,
    #[schema(value_type = String)]
    pub kind: ImportKind,
    /// awaiting_upload, running, completed or failed.
    pub status: String,
    pub file_name: String,
    pub rows_read: i32,
    pub rows_created: i32,
    pub rows_merged: i32,
    pub rows_unchanged: i32,
    pub rows_duplicate: i32,
    pub rows_rejected: i32,
    /// Cells reported in the error report (a usable row can still have some).
    pub problems: i32,
    pub error: Option<String>,
    #[serde(skip)]
    pub object_key: String,
    #[serde(skip)]
    pub report_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    /// When the file was fully read and staged (the merge began).
    pub staged_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes of the file read so far, of `sizeBytes`.
    pub bytes_read: i64,
    /// The uploaded file's size, once the import has looked at it.
    pub size_bytes: Option<i64>,
    /// 0-100: the bytes read of the file's size (100 only when completed; absent until known).
    pub progress_percent: Option<i32>,
}

const COLUMNS: &str = "id, kind, status, file_name, rows_read, rows_created, rows_merged, rows_unchanged,
    rows_duplicate, rows_rejected, problems, error, object_key, report_key, created_at, started_at, staged_at, finished_at,
    checkpoint_bytes, size_bytes";

/// How far an import is, 0-100: bytes read of the size, 100 only once it completed.
pub fn progress(status: &str, bytes_read: i64, size: Option<i64>) -> Option<i32> {
    if status == "completed" {
        return Some(100);
    }
    let size = size.filter(|s| *s > 0)?;
    Some(((bytes_read.max(0) as i128 * 100 / size as i128).min(99)) as i32)
}

fn import(r: &Row) -> Import {
    Import {
        id: ImportId::from_trusted(r.get("id")),
        kind: ImportKind::parse(r.get("kind")).unwrap_or(ImportKind::Contacts),
        status: r.get("status"),
        file_name: r.get("file_name"),
        rows_read: r.get("rows_read"),
        rows_created: r.get("rows_created"),
        rows_merged: r.get("rows_merged"),
        rows_unchanged: r.get("rows_unchanged"),
        rows_duplicate: r.get("rows_duplicate"),
        rows_rejected: r.get("rows_rejected"),
        problems: r.get("problems"),
        error: r.get("error"),
        object_key: r.get("object_key"),
        report_key: r.get("report_key"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        staged_at: r.get("staged_at"),
        finished_at: r.get("finished_at"),
        bytes_read: r.get("checkpoint_bytes"),
        size_bytes: r.get("size_bytes"),
        progress_percent: progress(r.get("status"), r.get("checkpoint_bytes"), r.get("size_bytes")),
    }
}

/// Records the uploaded file's size (for progress).
pub async fn set_size(tx: &Tx<'_>, id: &ImportId, size: u64) -> Result<()> {
    tx.execute_typed(
        "UPDATE imports SET size_bytes = $2 WHERE id = $1",
        params![id.as_str() => TEXT, i64::try_from(size).unwrap_or(i64::MAX) => INT8],
    )
    .await?;
    Ok(())
}

/// Where an import's upload lives: the team and job are readable from the key alone, which is
/// all an S3 event notification carries.
pub fn object_key(team: &TeamId, id: &ImportId) -> String {
    format!("imports/{team}/{id}.csv")
}

/// Reads team and import id back from an object key (`None` for any other key).
pub fn parse_object_key(key: &str) -> Option<(TeamId, ImportId)> {
    let rest = key.strip_prefix("imports/")?;
    let (team, file) = rest.split_once('/')?;
    let id = file.strip_suffix(".csv")?;
    Some((TeamId::parse("team", team).ok()?, ImportId::parse("import", id).ok()?))
}

pub async fn create(
    tx: &Tx<'_>,
    team: &TeamId,
    kind: ImportKind,
    file_name: &str,
    mapping: Option<&serde_json::Value>,
    source: Option<&str>,
    actor: &str,
) -> Result<Import> {
    let id = ImportId::new();
    let rows = tx
        .query_typed(
            &format!(
                "INSERT INTO imports (id, team_id, kind, file_name, object_key, mapping, source, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
            ),
            params![id.as_str() => TEXT, team.as_str() => TEXT, kind.as_str() => TEXT, file_name => TEXT,
                    object_key(team, &id) => TEXT, mapping => JSONB, source => TEXT, actor => TEXT],
        )
        .await?;
    rows.first().map(import).ok_or(StoreError::NotFound)
}

/// The team's imports in progress: running, or waiting for an upload that may still come
/// (created after `since`). Taken under the team's import lock, held to the end of the
/// transaction, so two requests at once cannot both see room for one more.
pub async fn in_progress(tx: &Tx<'_>, team: &TeamId, since: DateTime<Utc>) -> Result<i64> {
    tx.query_typed(
        "SELECT pg_advisory_xact_lock(hashtextextended('imports:' || $1, 0))",
        params![team.as_str() => TEXT],
    )
    .await?;
    let rows = tx
        .query_typed(
            "SELECT count(*) FROM imports
              WHERE status = 'running' OR (status = 'awaiting_upload' AND created_at > $1)",
            params![since => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

pub async fn get(tx: &Tx<'_>, id: &ImportId) -> Result<Import> {
    let rows =
        tx.query_typed(&format!("SELECT {COLUMNS} FROM imports WHERE id = $1"), params![id.as_str() => TEXT]).await?;
    rows.first().map(import).ok_or(StoreError::NotFound)
}

pub async fn list(tx: &Tx<'_>, page: &PageRequest) -> Result<Vec<Import>> {
    let before = page.after.as_deref().unwrap_or("imp_~");
    let rows = tx
        .query_typed(
            &format!("SELECT {COLUMNS} FROM imports WHERE id < $1 ORDER BY id DESC LIMIT $2"),
            params![before => TEXT, page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows.iter().map(import).collect())
}

/// A job as its worker sees it.
#[derive(Debug, Clone)]
pub struct Work {
    pub kind: ImportKind,
    pub object_key: String,
    pub mapping: Option<serde_json::Value>,
    pub columns: Option<Columns>,
    pub header_len: usize,
    pub rows_read: i32,
    pub checkpoint_bytes: u64,
}

/// What claiming found.
pub enum Claim {
    /// The job is ours for the lease.
    Work(Work),
    /// Already completed or failed: nothing to do (a duplicate delivery).
    Finished,
    /// Another worker holds the lease; try again after it expires.
    Busy,
}

/// Leases a job for `lease_secs`.
pub async fn claim(tx: &Tx<'_>, id: &ImportId, lease_secs: i32) -> Result<Claim> {
    let rows = tx
        .query_typed(
            "UPDATE imports SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now(),
                    lease_until = now() + make_interval(secs => $2)
              WHERE id = $1 AND status IN ('awaiting_upload', 'running')
                AND (lease_until IS NULL OR lease_until < now())
          RETURNING kind, object_key, mapping, columns, header_len, rows_read, checkpoint_bytes",
            params![id.as_str() => TEXT, f64::from(lease_secs) => FLOAT8],
        )
        .await?;
    if let Some(r) = rows.first() {
        return Ok(Claim::Work(Work {
            kind: ImportKind::parse(r.get(0)).unwrap_or(ImportKind::Contacts),
            object_key: r.get(1),
            mapping: r.get(2),
            columns: r.get::<_, Option<serde_json::Value>>(3).and_then(|c| serde_json::from_value(c).ok()),
            header_len: r.get::<_, Option<i32>>(4).unwrap_or(0) as usize,
            rows_read: r.get(5),
            checkpoint_bytes: r.get::<_, i64>(6) as u64,
        }));
    }
    let status = tx.query_typed("SELECT status FROM imports WHERE id = $1", params![id.as_str() => TEXT]).await?;
    match status.first().map(|r| r.get::<_, String>(0)) {
        None => Err(StoreError::NotFound),
        Some(s) if s == "completed" || s == "failed" => Ok(Claim::Finished),
        Some(_) => Ok(Claim::Busy),
    }
}

/// Extends the lease while working.
pub async fn renew(tx: &Tx<'_>, id: &ImportId, lease_secs: i32) -> Result<()> {
    tx.query_typed(
        "UPDATE imports SET lease_until = now() + make_interval(secs => $2) WHERE id = $1",
        params![id.as_str() => TEXT, f64::from(lease_secs) => FLOAT8],
    )
    .await?;
    Ok(())
}

/// Gives the lease up, so the next delivery (a continuation) can claim the job at once.
pub async fn release(tx: &Tx<'_>, id: &ImportId) -> Result<()> {
    tx.query_typed("UPDATE imports SET lease_until = NULL WHERE id = $1", params![id.as_str() => TEXT]).await?;
    Ok(())
}

pub async fn save_columns(
    tx: &Tx<'_>,
    id: &ImportId,
    columns: &Columns,
    header_len: usize,
    header_bytes: u64,
) -> Result<()> {
    tx.query_typed(
        "UPDATE imports SET columns = $2, header_len = $3, checkpoint_bytes = $4 WHERE id = $1",
        params![id.as_str() => TEXT, serde_json::to_value(columns).unwrap_or_default() => JSONB,
                header_len as i32 => INT4, header_bytes as i64 => INT8],
    )
    .await?;
    Ok(())
}

/// One staged row.
pub struct Staged {
    pub row_no: i32,
    pub record: Record,
}

/// Normalised company name, the business's identity with its ZIP.
pub fn business_key(company: &str) -> String {
    let mut out = String::new();
    for w in company.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if matches!(w, "inc" | "llc" | "ltd" | "co" | "corp" | "corporation" | "company" | "the") {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Stages a chunk of rows and problems and moves the checkpoint, in the caller's transaction,
/// so a resumed job never stages a row twice.
#[allow(clippy::too_many_arguments)] // one chunk's parts, written in one statement
pub async fn stage_chunk(
    tx: &Tx<'_>,
    team: &TeamId,
    id: &ImportId,
    rows: &[Staged],
    problems: &[(i32, RowProblem)],
    rejected: i32,
    rows_read: i32,
    checkpoint_bytes: u64,
) -> Result<()> {
    if !rows.is_empty() {
        let col = |f: &dyn Fn(&Record) -> Option<String>| rows.iter().map(|s| f(&s.record)).collect::<Vec<_>>();
        let ids = |n: usize| (0..n).map(|_| RowId::new().to_string()).collect::<Vec<_>>();
        let n = rows.len();
        let row_no: Vec<i32> = rows.iter().map(|s| s.row_no).collect();
        let contact_ids: Vec<String> = (0..n).map(|_| ContactId::new().to_string()).collect();
        let business_ids: Vec<String> = (0..n).map(|_| BusinessId::new().to_string()).collect();
        let keys = col(&|r| r.company.as_deref().map(business_key).filter(|k| !k.is_empty()));
        let roles: Vec<(&str, bool)> = rows.iter().map(|s| business_role(s.record.title.as_deref())).collect();
        let role: Vec<String> = roles.iter().map(|r| r.0.to_owned()).collect();
        let dm: Vec<bool> = roles.iter().map(|r| r.1).collect();
        let tags: Vec<String> = rows.iter().map(|s| format!("{{{}}}", s.record.tags.join(","))).collect();
        let employees: Vec<Option<i32>> = rows.iter().map(|s| s.record.employees).collect();
        let revenue: Vec<Option<i64>> = rows.iter().map(|s| s.record.revenue).collect();
        tx.query_typed(
            "INSERT INTO import_rows (import_id, team_id, row_no, new_contact_id, new_phone_id, new_email_id,
                 new_address_id, new_event_id, new_business_id, business_key, role, decision_maker, first_name,
                 last_name, company, title, phone, phone_type, email, line1, city, state, zip, tags, sic_code,
                 sector, employees, revenue, website)
             SELECT $1, $2, u.rn, u.cid, u.pid, u.eid, u.aid, u.vid, u.bid, u.bkey, u.role, u.dm, u.fname, u.lname,
                    u.company, u.title, u.phone, u.ptype, u.email, u.line1, u.city, u.state, u.zip, u.tags::text[],
                    u.sic, u.sector, u.employees, u.revenue, u.website
               FROM unnest($3::int4[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                    $10::text[], $11::text[], $12::bool[], $13::text[], $14::text[], $15::text[], $16::text[],
                    $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
                    $24::text[], $25::text[], $26::text[], $27::int4[], $28::int8[], $29::text[])
                 AS u(rn, cid, pid, eid, aid, vid, bid, bkey, role, dm, fname, lname, company, title, phone, ptype,
                      email, line1, city, state, zip, tags, sic, sector, employees, revenue, website)",
            params![id.as_str() => TEXT, team.as_str() => TEXT, row_no => INT4_ARRAY, contact_ids => TEXT_ARRAY,
                    ids(n) => TEXT_ARRAY, ids(n) => TEXT_ARRAY, ids(n) => TEXT_ARRAY, ids(n) => TEXT_ARRAY,
                    business_ids => TEXT_ARRAY, keys => TEXT_ARRAY, role => TEXT_ARRAY, dm => BOOL_ARRAY,
                    col(&|r| r.first_name.clone()) => TEXT_ARRAY, col(&|r| r.last_name.clone()) => TEXT_ARRAY,
                    col(&|r| r.company.clone()) => TEXT_ARRAY, col(&|r| r.title.clone()) => TEXT_ARRAY,
                    col(&|r| r.phone.clone()) => TEXT_ARRAY, col(&|r| r.phone_type.clone()) => TEXT_ARRAY,
                    col(&|r| r.email.clone()) => TEXT_ARRAY, col(&|r| r.line1.clone()) => TEXT_ARRAY,
                    col(&|r| r.city.clone()) => TEXT_ARRAY, col(&|r| r.state.clone()) => TEXT_ARRAY,
                    col(&|r| r.zip.clone()) => TEXT_ARRAY, tags => TEXT_ARRAY,
                    col(&|r| r.sic_code.clone()) => TEXT_ARRAY, col(&|r| r.sector.clone()) => TEXT_ARRAY,
                    employees => INT4_ARRAY, revenue => INT8_ARRAY, col(&|r| r.website.clone()) => TEXT_ARRAY],
        )
        .await?;
    }
    if !problems.is_empty() {
        let row_no: Vec<i32> = problems.iter().map(|p| p.0).collect();
        let cols: Vec<&str> = problems.iter().map(|p| p.1.column.as_str()).collect();
        let reasons: Vec<&str> = problems.iter().map(|p| p.1.reason.as_str()).collect();
        let values: Vec<&str> = problems.iter().map(|p| p.1.value.as_str()).collect();
        tx.query_typed(
            "INSERT INTO import_errors (import_id, team_id, row_no, col, reason, value)
             SELECT $1, $2, u.* FROM unnest($3::int4[], $4::text[], $5::text[], $6::text[]) AS u",
            params![id.as_str() => TEXT, team.as_str() => TEXT, row_no => INT4_ARRAY, cols => TEXT_ARRAY,
                    reasons => TEXT_ARRAY, values => TEXT_ARRAY],
        )
        .await?;
    }
    tx.query_typed(
        "UPDATE imports SET rows_read = $2, rows_rejected = rows_rejected + $3, problems = problems + $4,
                checkpoint_bytes = $5, updated_at = now() WHERE id = $1",
        params![id.as_str() => TEXT, rows_read => INT4, rejected => INT4, problems.len() as i32 => INT4,
                checkpoint_bytes as i64 => INT8],
    )
    .await?;
    Ok(())
}

/// What the merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MergeCounts {
    pub created: i32,
    pub merged: i32,
    pub unchanged: i32,
    pub duplicate: i32,
}

/// Merges the staged rows into the team's contacts in the caller's transaction: rows that
/// repeat an earlier row's phone or email are duplicates; rows whose phone (then email) a
/// contact already has fill that contact's blanks; the rest become contacts. Running it twice
/// over the same rows changes nothing the second time.
pub async fn merge(tx: &Tx<'_>, team: &TeamId, id: &ImportId, kind: ImportKind) -> Result<MergeCounts> {
    let imp = id.as_str();
    let t = team.as_str();
    tx.query_typed("UPDATE imports SET staged_at = clock_timestamp() WHERE id = $1", params![imp => TEXT]).await?;
    tx.query_typed("SELECT analyze_import_rows()", &[]).await?;
    // In-file duplicates, by phone then by email.
    for key in ["phone", "email"] {
        tx.query_typed(
            &format!(
                "UPDATE import_rows r SET dup_of = d.first_row
                   FROM (SELECT row_no, min(row_no) OVER (PARTITION BY {key}) AS first_row
                           FROM import_rows WHERE import_id = $1 AND {key} IS NOT NULL AND dup_of IS NULL) d
                  WHERE r.import_id = $1 AND r.row_no = d.row_no AND d.first_row <> d.row_no"
            ),
            params![imp => TEXT],
        )
        .await?;
    }
    // Existing contacts, by phone then by email.
    tx.query_typed(
        "UPDATE import_rows r SET match_id = p.contact_id FROM contact_phones p
          WHERE r.import_id = $1 AND r.dup_of IS NULL AND p.team_id = $2 AND p.e164 = r.phone",
        params![imp => TEXT, t => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE import_rows r SET match_id = e.contact_id FROM contact_emails e
          WHERE r.import_id = $1 AND r.dup_of IS NULL AND r.match_id IS NULL AND e.team_id = $2 AND e.email = r.email",
        params![imp => TEXT, t => TEXT],
    )
    .await?;
    let live = "import_id = $1 AND dup_of IS NULL";
    // Counts stay in the database: a million-row file must not become a million rows here.
    let count = |rows: Vec<Row>| rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0) as i32;
    let created = count(
        tx.query_typed(
            &format!(
                "WITH ins AS (
                   INSERT INTO contacts (id, team_id, first_name, last_name, company, title, tags, source)
                   SELECT new_contact_id, team_id, first_name, last_name, company, title, tags,
                          (SELECT coalesce(source, 'import') FROM imports WHERE id = $1)
                     FROM import_rows WHERE {live} AND match_id IS NULL RETURNING 1)
                 SELECT count(*) FROM ins"
            ),
            params![imp => TEXT],
        )
        .await?,
    );
    // Numbers and emails: new contacts get theirs; matched ones gain any they lacked, which
    // counts as a change to them.
    for (table, col, id_col, cond) in [
        (
            "contact_phones (id, team_id, contact_id, e164, type, is_primary, source)",
            "phone",
            "new_phone_id",
            "phone, coalesce(phone_type, 'unknown')::phone_type, match_id IS NULL, 'import'",
        ),
        (
            "contact_emails (id, team_id, contact_id, email, is_primary, source)",
            "email",
            "new_email_id",
            "email, match_id IS NULL, 'import'",
        ),
    ] {
        let conflict = if col == "phone" { "(team_id, e164)" } else { "(team_id, email)" };
        tx.query_typed(
            &format!(
                "WITH ins AS (
                   INSERT INTO {table}
                   SELECT {id_col}, team_id, coalesce(match_id, new_contact_id), {cond}
                     FROM import_rows WHERE {live} AND {col} IS NOT NULL
                   ON CONFLICT {conflict} DO NOTHING RETURNING contact_id)
                 UPDATE import_rows r SET touched = true
                  WHERE r.import_id = $1 AND r.match_id IS NOT NULL AND r.match_id IN (SELECT contact_id FROM ins)"
            ),
            params![imp => TEXT],
        )
        .await?;
    }
    tx.query_typed(
        &format!(
            "INSERT INTO contact_addresses (id, team_id, contact_id, line1, city, state, zip)
             SELECT new_address_id, team_id, new_contact_id, line1, city, state, zip
               FROM import_rows WHERE {live} AND match_id IS NULL
                AND (line1 IS NOT NULL OR city IS NOT NULL OR state IS NOT NULL OR zip IS NOT NULL)"
        ),
        params![imp => TEXT],
    )
    .await?;
    tx.query_typed(
        "WITH m AS (SELECT DISTINCT ON (match_id) * FROM import_rows
                     WHERE import_id = $1 AND dup_of IS NULL AND match_id IS NOT NULL ORDER BY match_id, row_no),
              filled AS (
                UPDATE contacts c SET first_name = coalesce(c.first_name, m.first_name),
                       last_name = coalesce(c.last_name, m.last_name), company = coalesce(c.company, m.company),
                       title = coalesce(c.title, m.title),
                       tags = ARRAY(SELECT DISTINCT x FROM unnest(c.tags || m.tags) x ORDER BY x), updated_at = now()
                  FROM m
                 WHERE c.id = m.match_id
                   AND ((c.first_name IS NULL AND m.first_name IS NOT NULL) OR (c.last_name IS NULL AND m.last_name IS NOT NULL)
                     OR (c.company IS NULL AND m.company IS NOT NULL) OR (c.title IS NULL AND m.title IS NOT NULL)
                     OR NOT (c.tags @> m.tags))
             RETURNING c.id)
         UPDATE import_rows r SET touched = true
          WHERE r.import_id = $1 AND r.match_id IS NOT NULL AND r.match_id IN (SELECT id FROM filled)",
        params![imp => TEXT],
    )
    .await?;
    let row = tx
        .query_typed(
            "SELECT count(DISTINCT match_id) FILTER (WHERE touched),
                    count(DISTINCT match_id) FILTER (WHERE match_id IS NOT NULL AND NOT touched
                        AND match_id NOT IN (SELECT match_id FROM import_rows WHERE import_id = $1 AND touched AND match_id IS NOT NULL)),
                    count(*) FILTER (WHERE dup_of IS NOT NULL)
               FROM import_rows WHERE import_id = $1",
            params![imp => TEXT],
        )
        .await?;
    let (merged, unchanged, duplicate): (i64, i64, i64) =
        row.first().map(|r| (r.get(0), r.get(1), r.get(2))).unwrap_or((0, 0, 0));
    tx.query_typed(
        &format!(
            "INSERT INTO contact_events (id, team_id, contact_id, kind, data, actor)
             SELECT new_event_id, team_id, new_contact_id, 'imported', jsonb_build_object('importId', $1, 'row', row_no), 'import'
               FROM import_rows WHERE {live} AND match_id IS NULL"
        ),
        params![imp => TEXT],
    )
    .await?;
    if kind == ImportKind::B2b {
        merge_businesses(tx, imp).await?;
    }
    Ok(MergeCounts { created, merged: merged as i32, unchanged: unchanged as i32, duplicate: duplicate as i32 })
}

/// B2B rows: the business (one per normalised name and ZIP) and the person's role in it.
async fn merge_businesses(tx: &Tx<'_>, imp: &str) -> Result<()> {
    tx.query_typed(
        "INSERT INTO businesses (id, team_id, name, normalized_name, sic_code, sector, line1, city, state, zip,
                                 employee_count, annual_revenue, website)
         SELECT DISTINCT ON (business_key, coalesce(zip, '')) new_business_id, team_id, company, business_key, sic_code,
                sector, line1, city, state, zip, employees, revenue, website
           FROM import_rows WHERE import_id = $1 AND dup_of IS NULL AND business_key IS NOT NULL
          ORDER BY business_key, coalesce(zip, ''), row_no
         ON CONFLICT (team_id, normalized_name, (coalesce(zip, ''))) DO NOTHING",
        params![imp => TEXT],
    )
    .await?;
    tx.query_typed(
        "INSERT INTO business_owners (team_id, business_id, contact_id, role, is_decision_maker)
         SELECT r.team_id, b.id, coalesce(r.match_id, r.new_contact_id), r.role, r.decision_maker
           FROM import_rows r JOIN businesses b
             ON b.team_id = r.team_id AND b.normalized_name = r.business_key AND coalesce(b.zip, '') = coalesce(r.zip, '')
          WHERE r.import_id = $1 AND r.dup_of IS NULL
         ON CONFLICT (business_id, contact_id) DO NOTHING",
        params![imp => TEXT],
    )
    .await?;
    Ok(())
}

/// The staged problems, in row order, for the error report.
pub async fn problems(tx: &Tx<'_>, id: &ImportId, limit: i64) -> Result<Vec<(i32, RowProblem)>> {
    let rows = tx
        .query_typed(
            "SELECT row_no, col, reason, value FROM import_errors WHERE import_id = $1 ORDER BY row_no LIMIT $2",
            params![id.as_str() => TEXT, limit => INT8],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), RowProblem { column: r.get(1), reason: r.get(2), value: r.get(3) })).collect())
}

pub async fn complete(tx: &Tx<'_>, id: &ImportId, c: MergeCounts, report_key: Option<&str>) -> Result<()> {
    tx.query_typed(
        "UPDATE imports SET status = 'completed', rows_created = $2, rows_merged = $3, rows_unchanged = $4,
                rows_duplicate = $5, report_key = $6, finished_at = clock_timestamp(), updated_at = now(), lease_until = NULL
          WHERE id = $1",
        params![id.as_str() => TEXT, c.created => INT4, c.merged => INT4, c.unchanged => INT4, c.duplicate => INT4,
                report_key => TEXT],
    )
    .await?;
    discard_staging(tx, id).await
}

/// Marks the job failed with a reason a person can act on; nothing staged is merged.
pub async fn fail(tx: &Tx<'_>, id: &ImportId, reason: &str, report_key: Option<&str>) -> Result<()> {
    tx.query_typed(
        "UPDATE imports SET status = 'failed', error = $2, report_key = $3, finished_at = clock_timestamp(), updated_at = now(),
                lease_until = NULL
          WHERE id = $1",
        params![id.as_str() => TEXT, reason => TEXT, report_key => TEXT],
    )
    .await?;
    discard_staging(tx, id).await
}

async fn discard_staging(tx: &Tx<'_>, id: &ImportId) -> Result<()> {
    tx.query_typed("DELETE FROM import_rows WHERE import_id = $1", params![id.as_str() => TEXT]).await?;
    tx.query_typed("DELETE FROM import_errors WHERE import_id = $1", params![id.as_str() => TEXT]).await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preset {
    pub id: RowId,
    pub name: String,
    #[schema(value_type = String)]
    pub kind: ImportKind,
    #[schema(value_type = Object)]
    pub mapping: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

fn preset(r: &Row) -> Preset {
    Preset {
        id: RowId::from_trusted(r.get(0)),
        name: r.get(1),
        kind: ImportKind::parse(r.get(2)).unwrap_or(ImportKind::Contacts),
        mapping: r.get(3),
        created_at: r.get(4),
    }
}

pub async fn create_preset(
    tx: &Tx<'_>,
    team: &TeamId,
    name: &str,
    kind: ImportKind,
    mapping: &serde_json::Value,
) -> Result<Preset> {
    let rows = tx
        .query_typed(
            "INSERT INTO import_presets (id, team_id, name, kind, mapping) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (team_id, name) DO NOTHING RETURNING id, name, kind, mapping, created_at",
            params![RowId::new().as_str() => TEXT, team.as_str() => TEXT, name => TEXT, kind.as_str() => TEXT,
                    mapping => JSONB],
        )
        .await?;
    rows.first().map(preset).ok_or_else(|| StoreError::Conflict(format!("a preset named {name:?} already exists")))
}

pub async fn presets(tx: &Tx<'_>) -> Result<Vec<Preset>> {
    let rows = tx
        .query_typed("SELECT id, name, kind, mapping, created_at FROM import_presets ORDER BY name LIMIT 500", &[])
        .await?;
    Ok(rows.iter().map(preset).collect())
}

pub async fn get_preset(tx: &Tx<'_>, id: &RowId) -> Result<Preset> {
    let rows = tx
        .query_typed(
            "SELECT id, name, kind, mapping, created_at FROM import_presets WHERE id = $1",
            params![id.as_str() => TEXT],
        )
        .await?;
    rows.first().map(preset).ok_or(StoreError::NotFound)
}
