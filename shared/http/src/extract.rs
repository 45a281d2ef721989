//! Extractors whose failures are problem+json naming the field, never axum's plain text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use nextier_domain::page::PageRequest;
use nextier_domain::FieldError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::ApiError;

/// A JSON body. Wrong content type: 415. Too large: 413. Not JSON: 400. Wrong shape: 400
/// with the JSON path of the offending field (e.g. `scopes[1]`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get_all(header::CONTENT_TYPE).iter().collect::<Vec<_>>();
        let json = ct.len() == 1
            && ct[0].to_str().is_ok_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(ref inner) if inner.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: an empty body is `None`; anything else must be what [`JsonBody`]
/// accepts.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let types: Vec<_> = req.headers().get_all(header::CONTENT_TYPE).iter().collect();
        let json_type = types.len() == 1
            && types[0].to_str().is_ok_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(ref inner) if inner.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(other.body_text()),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json_type {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Parses a JSON object, naming the path of the first offending field. serde's derived
/// structs would also accept an array of field values (`["x"]`); a request body must be an
/// object, so anything else is refused up front.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(_) => ApiError::field("body", "must be a JSON object"),
            Err(e) => ApiError::BadRequest(format!("body is not valid JSON: {}", clean(&e.to_string()))),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!("body is not valid JSON: {inner}"));
        }
        let field = if path == "." { missing_field(&inner.to_string()).unwrap_or("body".into()) } else { path };
        ApiError::Validation(vec![FieldError::new(field, clean(&inner.to_string()))])
    })
}

/// serde reports a missing field at the parent path; pull the name out of its message.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Drops serde's " at line 1 column 7" suffix, which means nothing to an API client.
fn clean(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// Path parameters by name, as plain strings; handlers parse them into ids, naming the field.
pub struct PathParams(HashMap<String, String>);

impl PathParams {
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| PathParams(p))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `?cursor=…&limit=…` on every list route.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// 1-200, default 50.
    pub limit: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut q = PageQuery { cursor: None, limit: None };
        for (k, v) in url_pairs(parts.uri.query().unwrap_or("")) {
            match k.as_str() {
                "cursor" if q.cursor.is_none() => q.cursor = Some(v),
                "limit" if q.limit.is_none() => q.limit = Some(v),
                "cursor" | "limit" => return Err(ApiError::field(&k, "must be given once")),
                _ => {}
            }
        }
        Ok(q)
    }
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.cursor.as_deref(), self.limit.as_deref())?)
    }
}

/// The query string's pairs, percent-decoded (lossily: invalid UTF-8 cannot name a field).
pub fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// One page of a list and the cursor of the next, if any.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    pub fn from_rows(req: &PageRequest, rows: Vec<T>, key: impl Fn(&T) -> String) -> Self {
        let (items, next_cursor) = req.finish(rows, key);
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        scopes: Vec<u8>,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(errs)) => errs[0].field.clone(),
            Err(other) => format!("other: {other}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn errors_name_the_field_by_path() {
        assert_eq!(field_of(r#"{"name": 5, "scopes": []}"#), "name");
        assert_eq!(field_of(r#"{"name": "x", "scopes": [1, "two"]}"#), "scopes[1]");
        assert_eq!(field_of(r#"{"scopes": []}"#), "name");
        assert_eq!(field_of(r#"{"name": "x", "scopes": [], "admin": true}"#), "admin");
    }

    #[test]
    fn malformed_json_is_a_bad_request_not_a_field_error() {
        assert!(matches!(parse_json::<Body>(b"{\"name\": "), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse_json::<Body>(b"not json"), Err(ApiError::BadRequest(_))));
        assert!(matches!(parse_json::<Body>(b""), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn a_body_must_be_an_object_not_a_tuple_of_fields() {
        assert_eq!(field_of(r#"["x", []]"#), "body");
        assert_eq!(field_of("42"), "body");
    }

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            url_pairs("a=1&cursor=x%3D%3D&b=c+d&e=%zz"),
            vec![
                ("a".into(), "1".into()),
                ("cursor".into(), "x==".into()),
                ("b".into(), "c d".into()),
                ("e".into(), "%zz".into()),
            ]
        );
    }
}
