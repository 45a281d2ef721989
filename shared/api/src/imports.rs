//! Imports: ask for an upload URL, upload the CSV straight to storage, watch the job.
//! Served by the contacts Lambda.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use nextier_domain::access::Permission;
use nextier_domain::ids::{ImportId, RowId, TeamId};
use nextier_domain::import::{ImportKind, FIELDS};
use nextier_domain::validation::text;
use nextier_domain::FieldError;
use nextier_http::{open_team, ApiError, Credential, Id, Ids, JsonBody, Page, PageQuery};
use nextier_store::imports::{self, Import, Preset};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);
/// Imports a team may have in progress at once, unless its settings say otherwise.
const MAX_CONCURRENT: i64 = 3;
const REPORT_TTL: Duration = Duration::from_secs(60 * 60);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_imports, create_import))
        .routes(routes!(get_import))
        .routes(routes!(list_presets, create_preset))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateImport {
    /// The file's name, for people; it must end in `.csv`.
    file_name: String,
    /// `contacts` (default) or `b2b` (businesses and their owners).
    kind: Option<String>,
    /// Header text → field (`firstName`, `lastName`, `fullName`, `company`, `title`, `phone`,
    /// `phoneType`, `email`, `line1`, `city`, `state`, `zip`, `tags`, `source`, `sicCode`,
    /// `sector`, `employees`, `revenue`, `website`). Without it, usual header names are recognised.
    mapping: Option<HashMap<String, String>>,
    /// Recorded as the contacts' source (default `import`).
    source: Option<String>,
    /// A saved preset's mapping (instead of `mapping`).
    preset_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    method: &'static str,
    url: String,
    /// Send these headers with the PUT.
    #[schema(value_type = Object)]
    headers: HashMap<&'static str, &'static str>,
    expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedImport {
    import: Import,
    upload: Upload,
}

/// Creates an import and returns where to PUT the file; the job starts when the upload lands.
#[utoipa::path(post, path = "/teams/{teamId}/imports", tag = "contacts", request_body = CreateImport,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "PUT the CSV to `upload.url` within 15 minutes", body = CreatedImport)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_import(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<CreateImport>,
) -> Result<(StatusCode, Json<CreatedImport>), ApiError> {
    let mut problems = Vec::new();
    let file_name = match text("fileName", &body.file_name, 1, 200) {
        Ok(n) if n.to_lowercase().ends_with(".csv") => Some(n),
        Ok(_) => {
            problems.push(FieldError::new("fileName", "must be a .csv file"));
            None
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let kind = match body.kind.as_deref() {
        None => ImportKind::Contacts,
        Some(k) => ImportKind::parse(k).unwrap_or_else(|| {
            problems.push(FieldError::new("kind", "must be contacts or b2b"));
            ImportKind::Contacts
        }),
    };
    if let Some(m) = &body.mapping {
        problems.extend(check_mapping(m));
    }
    let preset_id = match &body.preset_id {
        Some(raw) if body.mapping.is_some() => {
            problems.push(FieldError::new("presetId", format!("give a mapping or a preset, not both ({raw})")));
            None
        }
        Some(raw) => RowId::parse("presetId", raw).map_err(|e| problems.push(e)).ok(),
        None => None,
    };
    let source = match body.source.as_deref() {
        Some(s) => text("source", s, 1, 100).map_err(|e| problems.push(e)).ok(),
        None => None,
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let mut mapping = body.mapping.as_ref().map(|m| serde_json::to_value(m).unwrap_or_default());
    let mut conn = app.db.conn().await?;
    let (tx, access) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    // A team runs a few imports at once (setting imports/max_concurrent, default 3), so one
    // team's lists cannot take the import workers from everyone else.
    let max = nextier_store::settings::numbers_in(&tx, "imports")
        .await?
        .get("max_concurrent")
        .copied()
        .filter(|n| (1..=50).contains(n))
        .unwrap_or(MAX_CONCURRENT);
    let since = app.clock.now() - chrono::Duration::from_std(UPLOAD_TTL).unwrap_or_default();
    let busy = imports::in_progress(&tx, &team, since).await?;
    if busy >= max {
        return Err(ApiError::TooManyRequests {
            detail: format!("the team already has {busy} imports in progress (at most {max}); wait for one to finish"),
            retry_after_secs: 60,
        });
    }
    if let Some(id) = &preset_id {
        let preset = imports::get_preset(&tx, id).await.map_err(|e| match e {
            StoreError::NotFound => ApiError::field("presetId", "no such preset in this team"),
            other => other.into(),
        })?;
        mapping = Some(preset.mapping);
    }
    let job = imports::create(
        &tx,
        &team,
        kind,
        &file_name.unwrap_or_default(),
        mapping.as_ref(),
        source.as_deref(),
        &access.actor.label(),
    )
    .await?;
    // Sign before committing: if storage is unreachable, no orphan job is left behind.
    let url = app
        .blobs
        .presign_put(&job.object_key, UPLOAD_TTL, "text/csv")
        .await
        .map_err(|e| ApiError::Unavailable(format!("upload storage: {e}")))?;
    tx.commit().await.map_err(StoreError::from)?;
    let upload = Upload {
        method: "PUT",
        url,
        headers: HashMap::from([("content-type", "text/csv")]),
        expires_at: app.clock.now() + chrono::Duration::from_std(UPLOAD_TTL).unwrap_or_default(),
    };
    Ok((StatusCode::CREATED, Json(CreatedImport { import: job, upload })))
}

#[utoipa::path(get, path = "/teams/{teamId}/imports", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), PageQuery),
    responses((status = 200, description = "Imports, newest first", body = Page<Import>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_imports(
    State(app): State<AppState>,
    cred: Credential,
    q: PageQuery,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Import>>, ApiError> {
    let page = q.page()?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let rows = imports::list(&tx, &page).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page::from_rows(&page, rows, |i| i.id.to_string())))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportView {
    #[serde(flatten)]
    import: Import,
    /// A time-limited link to the per-row error report, when there is one.
    report_url: Option<String>,
}

/// The job's progress (rows read / created / merged / rejected) and its error report.
#[utoipa::path(get, path = "/teams/{teamId}/imports/{importId}", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>"), ("importId" = String, Path, description = "imp_<ULID>")),
    responses((status = 200, description = "The import", body = ImportView)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_import(
    State(app): State<AppState>,
    cred: Credential,
    Ids((team, id)): Ids<(TeamId, ImportId)>,
) -> Result<Json<ImportView>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let import = imports::get(&tx, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let report_url = match &import.report_key {
        Some(key) => Some(
            app.blobs
                .presign_get(key, REPORT_TTL)
                .await
                .map_err(|e| ApiError::Unavailable(format!("report storage: {e}")))?,
        ),
        None => None,
    };
    Ok(Json(ImportView { import, report_url }))
}

fn check_mapping(m: &HashMap<String, String>) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if m.len() > 100 {
        problems.push(FieldError::new("mapping", "at most 100 columns"));
    }
    for (header, field) in m {
        if !FIELDS.contains(&field.as_str()) {
            problems.push(FieldError::new(format!("mapping.{header}"), format!("{field:?} is not a field")));
        }
    }
    if !m.values().any(|f| f == "phone" || f == "email") {
        problems.push(FieldError::new("mapping", "must map a column to phone or email"));
    }
    problems
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreatePreset {
    name: String,
    /// contacts (default) or b2b.
    kind: Option<String>,
    /// Header text → field, as for an import.
    mapping: HashMap<String, String>,
}

/// Saves a column mapping for repeated list formats.
#[utoipa::path(post, path = "/teams/{teamId}/import-presets", tag = "contacts", request_body = CreatePreset,
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 201, description = "Saved", body = Preset), (status = 409, description = "The name is taken")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_preset(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    JsonBody(body): JsonBody<CreatePreset>,
) -> Result<(StatusCode, Json<Preset>), ApiError> {
    let mut problems = check_mapping(&body.mapping);
    let name = text("name", &body.name, 1, 100).map_err(|e| problems.push(e)).ok();
    let kind = match body.kind.as_deref() {
        None => ImportKind::Contacts,
        Some(k) => ImportKind::parse(k).unwrap_or_else(|| {
            problems.push(FieldError::new("kind", "must be contacts or b2b"));
            ImportKind::Contacts
        }),
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsWrite).await?;
    let mapping = serde_json::to_value(&body.mapping).unwrap_or_default();
    let preset = imports::create_preset(&tx, &team, &name.unwrap_or_default(), kind, &mapping).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((StatusCode::CREATED, Json(preset)))
}

#[utoipa::path(get, path = "/teams/{teamId}/import-presets", tag = "contacts",
    params(("teamId" = String, Path, description = "team_<ULID>")),
    responses((status = 200, description = "Presets by name", body = Page<Preset>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_presets(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
) -> Result<Json<Page<Preset>>, ApiError> {
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::ContactsRead).await?;
    let items = imports::presets(&tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Json(Page { items, next_cursor: None }))
}
