//! RFC 9457 problem details. Every error a client sees has a stable `type`, a `title`, the
//! HTTP status, a human `detail`, the correlation id and, for invalid input, the fields.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nextier_domain::FieldError;
use nextier_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized(String),
    #[error("forbidden")]
    Forbidden(String),
    #[error("not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("gone: {0}")]
    Gone(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("service unavailable")]
    Unavailable(String),
    /// Throttled: the caller may try again after `retry_after_secs` (sent as `Retry-After`).
    #[error("too many requests")]
    TooManyRequests { detail: String, retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The problem document, as documented in the OpenAPI spec.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn field(field: &str, message: &str) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str, String) {
        use ApiError::*;
        match self {
            Validation(errs) => (
                StatusCode::BAD_REQUEST,
                "validation",
                "Your request has invalid fields",
                errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
            ),
            BadRequest(d) => (StatusCode::BAD_REQUEST, "bad-request", "Malformed request", d.clone()),
            Unauthorized(d) => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", d.clone()),
            Forbidden(d) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed", d.clone()),
            NotFound(d) => (StatusCode::NOT_FOUND, "not-found", "Not found", d.clone()),
            Conflict(d) => (StatusCode::CONFLICT, "conflict", "Conflict with the current state", d.clone()),
            Gone(d) => (StatusCode::GONE, "gone", "No longer available", d.clone()),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this method is not allowed on this path".into(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
                format!("request bodies are limited to {} bytes", crate::MAX_BODY_BYTES),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json".into(),
            ),
            Unavailable(d) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Temporarily unavailable", d.clone()),
            TooManyRequests { detail, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests", detail.clone())
            }
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "something went wrong on our side; quote the correlation id when reporting it".into(),
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

pub fn problem_type(slug: &str) -> String {
    format!("https://docs.nextier.app/problems/{slug}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title, detail) = self.parts();
        match &self {
            // The cause is logged once, here, and never returned.
            ApiError::Internal(e) => tracing::error!(error = %format!("{e:#}"), "internal error"),
            ApiError::Unavailable(d) => tracing::warn!(detail = %d, "unavailable"),
            _ => {
                tracing::info!(status = status.as_u16(), problem = slug, detail = %detail, "request refused")
            }
        }
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        };
        let errors = match self {
            ApiError::Validation(errs) => {
                errs.into_iter().map(|e| ProblemField { field: e.field, message: e.message }).collect()
            }
            _ => vec![],
        };
        let body = Problem {
            kind: problem_type(slug),
            title: title.into(),
            status: status.as_u16(),
            detail,
            correlation_id: nextier_runtime::correlation::current().map(|c| c.to_string()),
            errors,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(vec![e])
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("no such resource".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Pool(p) => ApiError::Unavailable(format!("database busy: {p}")),
            e if e.is_transient() => ApiError::Unavailable("database busy, retry".into()),
            StoreError::Db(e) => ApiError::Internal(e.into()),
        }
    }
}

/// A statement or a commit that failed outside the store's functions (`tx.commit().await?`).
impl From<deadpool_postgres::tokio_postgres::Error> for ApiError {
    fn from(e: deadpool_postgres::tokio_postgres::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<nextier_domain::team::MembershipRule> for ApiError {
    fn from(e: nextier_domain::team::MembershipRule) -> Self {
        match e {
            nextier_domain::team::MembershipRule::LastOwner => ApiError::Conflict(e.to_string()),
            nextier_domain::team::MembershipRule::OwnerOnly => ApiError::Forbidden(e.to_string()),
        }
    }
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no route matches this path".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A panic in a handler is a bug; the client still gets a problem document, never a hang.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    ApiError::Internal(anyhow::anyhow!("handler panicked: {msg}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_throttled_request_is_a_429_problem_with_retry_after() {
        let err = ApiError::TooManyRequests { detail: "slow down".into(), retry_after_secs: 7 };
        let resp = err.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "7");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], problem_type("too-many-requests"));
        assert_eq!((v["status"].as_u64(), v["detail"].as_str()), (Some(429), Some("slow down")));
    }
}
