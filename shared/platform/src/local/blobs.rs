use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ports::{check_key, BlobStore, ByteReader, Result};
use crate::PlatformError;

/// Where the local runtime serves signed blob URLs.
pub const ROUTE_PREFIX: &str = "/_local/blobs";

/// Blobs in a folder. Presigned URLs point at the local runtime (`base_url`) and carry an
/// expiry and an HMAC over method, key and expiry, so they behave like S3's: time-limited,
/// bound to one object and one method, useless once tampered with.
pub struct FolderBlobStore {
    root: PathBuf,
    base_url: String,
    secret: Vec<u8>,
}

impl FolderBlobStore {
    pub fn new(root: impl Into<PathBuf>, base_url: &str, secret: &[u8]) -> Self {
        Self { root: root.into(), base_url: base_url.trim_end_matches('/').to_owned(), secret: secret.to_vec() }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn signature(&self, method: &str, key: &str, expires: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, method: &str, key: &str, expires: u64, sig: &str) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(u64::MAX);
        let Ok(given) = hex::decode(sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{method}\n{key}\n{expires}").as_bytes());
        now <= expires && mac.verify_slice(&given).is_ok()
    }

    fn presign(&self, method: &str, key: &str, ttl: Duration) -> Result<String> {
        check_key(key)?;
        let expires = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + ttl.as_secs();
        let sig = self.signature(method, key, expires);
        Ok(format!("{}{ROUTE_PREFIX}/{key}?expires={expires}&signature={sig}", self.base_url))
    }
}

fn io(e: std::io::Error) -> PlatformError {
    PlatformError::Unavailable(format!("local blob store: {e}"))
}

#[async_trait]
impl BlobStore for FolderBlobStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // Write then rename, so a reader never sees half an object.
        let tmp = path.with_extension(format!("partial-{}", ulid::Ulid::new()));
        tokio::fs::write(&tmp, &body).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn open(&self, key: &str, offset: u64) -> Result<Option<ByteReader>> {
        use tokio::io::AsyncSeekExt;
        let mut file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        file.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
        Ok(Some(Box::pin(tokio::io::BufReader::with_capacity(256 * 1024, file))))
    }

    async fn presign_put(&self, key: &str, ttl: Duration, _content_type: &str) -> Result<String> {
        self.presign("PUT", key, ttl)
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String> {
        self.presign("GET", key, ttl)
    }

    async fn upload_start(&self, key: &str, _content_type: &str) -> Result<String> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let upload = ulid::Ulid::new().to_string();
        tokio::fs::write(path.with_extension(format!("upload-{upload}")), b"").await.map_err(io)?;
        Ok(upload)
    }

    async fn upload_part(&self, key: &str, upload: &str, number: i32, body: Bytes) -> Result<String> {
        use tokio::io::AsyncWriteExt;
        let tmp = self.upload_path(key, upload)?;
        let mut f = tokio::fs::OpenOptions::new().append(true).open(&tmp).await.map_err(io)?;
        f.write_all(&body).await.map_err(io)?;
        f.flush().await.map_err(io)?;
        Ok(format!("part-{number}"))
    }

    async fn upload_complete(&self, key: &str, upload: &str, _parts: &[(i32, String)]) -> Result<()> {
        let tmp = self.upload_path(key, upload)?;
        tokio::fs::rename(&tmp, self.path(key)?).await.map_err(io)
    }

    async fn upload_abort(&self, key: &str, upload: &str) -> Result<()> {
        match tokio::fs::remove_file(self.upload_path(key, upload)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

impl FolderBlobStore {
    /// An upload in progress: beside its object, never at its key.
    fn upload_path(&self, key: &str, upload: &str) -> Result<PathBuf> {
        if upload.is_empty() || !upload.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PlatformError::Invalid("invalid upload id".into()));
        }
        Ok(self.path(key)?.with_extension(format!("upload-{upload}")))
    }
}

#[derive(Deserialize)]
struct Signed {
    expires: u64,
    signature: String,
}

/// Called with the key of every object uploaded through a presigned URL: the local stand-in
/// for S3 event notifications.
pub type UploadHook = Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
struct Blobs {
    store: Arc<FolderBlobStore>,
    on_upload: Option<UploadHook>,
}

/// The routes that answer the folder store's presigned URLs (mounted by the local runtime).
pub fn blob_router(store: Arc<FolderBlobStore>, on_upload: Option<UploadHook>) -> Router {
    Router::new()
        .route(&format!("{ROUTE_PREFIX}/{{*key}}"), get(download).put(upload))
        .layer(axum::extract::DefaultBodyLimit::max(512 * 1024 * 1024))
        .with_state(Blobs { store, on_upload })
}

/// The body S3 sends to a queue when an object is created.
pub fn s3_event(bucket: &str, key: &str, size: usize) -> serde_json::Value {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "local",
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": key, "size": size}}
    }]})
}

fn denied() -> Response {
    (StatusCode::FORBIDDEN, "signature invalid or expired").into_response()
}

async fn download(
    State(Blobs { store, .. }): State<Blobs>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    if !store.verify("GET", &key, q.expires, &q.signature) {
        return denied();
    }
    match store.get(&key).await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such object").into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "invalid key").into_response(),
    }
}

async fn upload(
    State(Blobs { store, on_upload }): State<Blobs>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !store.verify("PUT", &key, q.expires, &q.signature) {
        return denied();
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    match store.put(&key, body, ct).await {
        Ok(()) => {
            if let Some(hook) = on_upload {
                hook(key).await;
            }
            StatusCode::OK.into_response()
        }
        Err(PlatformError::Invalid(m)) => (StatusCode::BAD_REQUEST, m).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
