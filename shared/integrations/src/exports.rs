//! CSV exports: contacts (with the contact list's filter), inbox items and messages. An export
//! is a row the API made; the task consumer leases it, reads its rows a page at a time in id
//! order, and streams them into a multipart upload (one part in memory at most), reporting
//! progress on the row. The object appears only when complete; the API answers a presigned
//! link to it.

use std::time::Duration;

use nextier_domain::ids::TeamId;
use nextier_platform::ports::BlobWriter;
use nextier_store::exports::{self as store, ActivityFilter, Page};
use nextier_store::{scope, Scope};
use serde::Serialize;

use crate::{csv, Worker};

/// Rows read per page.
pub const PAGE: i64 = 2000;
/// How long a runner holds an export without reporting.
const LEASE_SECS: i32 = 300;
/// Attempts before an export fails for good.
const MAX_ATTEMPTS: i32 = 3;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcome {
    pub rows: i64,
    pub bytes: u64,
    /// Nothing to do: done already, or another runner holds it.
    pub skipped: bool,
}

/// Where an export's file goes.
pub fn key(team: &TeamId, export: &str) -> String {
    format!("exports/{team}/{export}.csv")
}

enum Kind {
    Contacts(Box<nextier_store::contacts::Filter>),
    Inbox(ActivityFilter),
    Messages(ActivityFilter),
}

fn kind(e: &store::Export) -> anyhow::Result<Kind> {
    Ok(match e.kind.as_str() {
        "contacts" => Kind::Contacts(serde_json::from_value(e.filter.clone())?),
        "inbox" => Kind::Inbox(serde_json::from_value(e.filter.clone())?),
        "messages" => Kind::Messages(serde_json::from_value(e.filter.clone())?),
        other => anyhow::bail!("unknown export kind {other}"),
    })
}

/// Runs an export once to the end (or to a failure it records).
pub async fn run(w: &Worker, team: &TeamId, id: &str) -> anyhow::Result<Outcome> {
    let scope = Scope::team(team.clone());
    let mut conn = w.db.conn().await?;
    let tx = scope::begin(&mut conn, &scope).await?;
    let claimed = store::claim(&tx, id, w.clock.now(), LEASE_SECS, MAX_ATTEMPTS).await?;
    // Committed either way: a claim that ended a stuck export must stick.
    tx.commit().await?;
    let Some(export) = claimed else {
        return Ok(Outcome { skipped: true, ..Default::default() });
    };
    drop(conn);
    match write(w, team, &export).await {
        Ok(o) => Ok(o),
        Err(e) => {
            let mut conn = w.db.conn().await?;
            let tx = scope::begin(&mut conn, &scope).await?;
            let attempts = store::attempts(&tx, id).await?;
            let retry = attempts < MAX_ATTEMPTS;
            store::fail(&tx, id, &format!("{e:#}"), retry).await?;
            tx.commit().await?;
            tracing::warn!(export = id, attempts, retry, error = %format!("{e:#}"), "export failed");
            if retry {
                let m = crate::TaskMessage::export(team, id);
                crate::send_task(w.queue.as_ref(), &m, Duration::from_secs(30)).await?;
            }
            Ok(Outcome::default())
        }
    }
}

async fn write(w: &Worker, team: &TeamId, export: &store::Export) -> anyhow::Result<Outcome> {
    let kind = kind(export)?;
    let scope = Scope::team(team.clone());
    let mut conn = w.db.conn().await?;
    let columns = match &kind {
        Kind::Contacts(_) => store::CONTACT_COLUMNS,
        Kind::Inbox(_) => store::INBOX_COLUMNS,
        Kind::Messages(_) => store::MESSAGE_COLUMNS,
    };
    let total = {
        let tx = scope::begin(&mut conn, &scope).await?;
        let n = match &kind {
            Kind::Contacts(f) => store::contacts_count(&tx, f).await?,
            Kind::Inbox(f) => store::inbox_count(&tx, f).await?,
            Kind::Messages(f) => store::messages_count(&tx, f).await?,
        };
        let lease = w.clock.now() + chrono::Duration::seconds(i64::from(LEASE_SECS));
        store::progress(&tx, &export.id, Some(n), 0, 0, lease).await?;
        tx.commit().await?;
        n
    };
    let key = key(team, &export.id);
    let mut out = BlobWriter::start(w.blobs.as_ref(), &key, "text/csv; charset=utf-8", w.export_part_bytes).await?;
    let mut buf = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(csv::BOM);
    csv::row(&mut buf, columns.iter().map(|c| Some(*c)));
    let (mut after, mut rows) = (String::new(), 0i64);
    let result: anyhow::Result<()> = async {
        loop {
            let tx = scope::begin(&mut conn, &scope).await?;
            let Page { rows: page, last } = match &kind {
                Kind::Contacts(f) => store::contacts_page(&tx, f, &after, PAGE).await?,
                Kind::Inbox(f) => store::inbox_page(&tx, f, &after, PAGE).await?,
                Kind::Messages(f) => store::messages_page(&tx, f, &after, PAGE).await?,
            };
            let n = page.len() as i64;
            for r in page {
                csv::row(&mut buf, r);
            }
            out.write(&buf).await?;
            buf.clear();
            rows += n;
            let lease = w.clock.now() + chrono::Duration::seconds(i64::from(LEASE_SECS));
            store::progress(&tx, &export.id, None, rows, out.written() as i64, lease).await?;
            tx.commit().await?;
            match last {
                Some(l) if n == PAGE => after = l,
                _ => break,
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = out.abort().await;
        return Err(e);
    }
    let bytes = out.finish().await?;
    let tx = scope::begin(&mut conn, &scope).await?;
    store::finish(&tx, &export.id, &key, rows, bytes as i64).await?;
    tx.commit().await?;
    tracing::info!(export = %export.id, kind = %export.kind, rows, total, bytes, "export written");
    nextier_runtime::metrics::emit(
        &[("Function", nextier_runtime::telemetry::function())],
        &[("ExportRows", rows as f64, nextier_runtime::metrics::Unit::Count)],
    );
    Ok(Outcome { rows, bytes, skipped: false })
}
