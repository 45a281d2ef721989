//! Extractors whose failures are problem+json naming the field, never axum's plain text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use nextier_domain::ids;
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

/// A value a route names in its path (`teamId` in `/teams/{teamId}`): the parameter's name
/// and how to read it. Every id type knows its route name (`TeamId` is `teamId`); a value a
/// route names otherwise (a sending number's `RowId` is `numberId`) or that is not an id (a
/// setting's scope, an inbox bucket, a lifecycle action) is a type of the API's own that
/// implements this.
pub trait PathParam: Sized {
    /// The parameter's name in the route, which is also the field a problem names.
    const NAME: &'static str;

    /// Reads the (percent-decoded) segment. An [`ApiError::Validation`] is answered together
    /// with every other bad parameter's field errors; any other error (a 404 for an action the
    /// route does not know) is answered only when no parameter is malformed.
    fn parse_param(raw: &str) -> Result<Self, ApiError>;
}

macro_rules! id_params {
    ($($id:ident => $name:literal),* $(,)?) => {$(
        impl PathParam for ids::$id {
            const NAME: &'static str = $name;

            fn parse_param(raw: &str) -> Result<Self, ApiError> {
                Ok(ids::$id::parse($name, raw)?)
            }
        }
    )*};
}

// The ids routes name. `RowId` is not here: it is any child row, so each route names it
// through a newtype (`numberId`).
id_params!(
    TeamId => "teamId",
    UserId => "userId",
    InvitationId => "invitationId",
    ApiKeyId => "keyId",
    ContactId => "contactId",
    ImportId => "importId",
    CampaignId => "campaignId",
    StepId => "stepId",
    TemplateId => "templateId",
    FilterId => "filterId",
    MessageId => "messageId",
    InboxItemId => "itemId",
    CallId => "callId",
    DialerSessionId => "sessionId",
    SuggestionId => "suggestionId",
    SkipTraceId => "jobId",
    BusinessId => "businessId",
    EnrichmentJobId => "enrichmentJobId",
    WorkerId => "workerId",
    OpenerId => "openerId",
    MeetingId => "meetingId",
    NurtureId => "nurtureId",
    PropertyId => "propertyId",
    PropertySearchId => "searchId",
    WorkflowId => "workflowId",
    WorkflowRunId => "runId",
    IntegrationTaskId => "taskId",
    ExportId => "exportId",
    WebhookEndpointId => "endpointId",
    WebhookDeliveryId => "deliveryId",
);

/// Several path parameters read at once: implemented for tuples of [`PathParam`]s.
pub trait FromPath: Sized {
    fn from_path(params: &HashMap<String, String>) -> Result<Self, ApiError>;
}

/// What was wrong with a route's parameters, gathered so one answer names them all.
#[derive(Default)]
struct BadParams {
    fields: Vec<FieldError>,
    other: Option<ApiError>,
}

impl BadParams {
    fn read<T: PathParam>(&mut self, params: &HashMap<String, String>) -> Option<T> {
        match T::parse_param(params.get(T::NAME).map(String::as_str).unwrap_or("")) {
            Ok(v) => Some(v),
            Err(ApiError::Validation(errs)) => {
                self.fields.extend(errs);
                None
            }
            Err(e) => {
                self.other.get_or_insert(e);
                None
            }
        }
    }

    fn into_error(self) -> ApiError {
        match (self.fields.is_empty(), self.other) {
            (false, _) | (true, None) => ApiError::Validation(self.fields),
            (true, Some(e)) => e,
        }
    }
}

macro_rules! tuple_from_path {
    ($($t:ident $v:ident),+) => {
        impl<$($t: PathParam),+> FromPath for ($($t,)+) {
            fn from_path(params: &HashMap<String, String>) -> Result<Self, ApiError> {
                let mut bad = BadParams::default();
                $(let $v = bad.read::<$t>(params);)+
                match ($($v,)+) {
                    ($(Some($v),)+) => Ok(($($v,)+)),
                    _ => Err(bad.into_error()),
                }
            }
        }
    };
}

tuple_from_path!(A a);
tuple_from_path!(A a, B b);
tuple_from_path!(A a, B b, C c);

/// A route's path parameters as their types: `Ids((team, campaign)): Ids<(TeamId, CampaignId)>`.
/// A malformed parameter is 400 naming it, and every malformed one is named at once.
pub struct Ids<T>(pub T);

/// One path parameter as its type: `Id(team): Id<TeamId>` (the same as `Ids<(TeamId,)>`).
pub struct Id<T>(pub T);

async fn path_params<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(p)| p)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

impl<S: Send + Sync, T: FromPath> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        T::from_path(&path_params(parts, state).await?).map(Ids)
    }
}

impl<S: Send + Sync, T: PathParam> FromRequestParts<S> for Id<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        <(T,)>::from_path(&path_params(parts, state).await?).map(|(t,)| Id(t))
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

    /// A path value that is not an id: unknown values are 404, not a field error.
    #[derive(Debug, PartialEq)]
    struct Action(String);

    impl PathParam for Action {
        const NAME: &'static str = "action";

        fn parse_param(raw: &str) -> Result<Self, ApiError> {
            match raw {
                "go" => Ok(Action(raw.into())),
                other => Err(ApiError::NotFound(format!("no action {other:?}"))),
            }
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn bad_fields<T: FromPath>(pairs: &[(&str, &str)]) -> Vec<String> {
        match T::from_path(&params(pairs)) {
            Err(ApiError::Validation(errs)) => errs.into_iter().map(|e| e.field).collect(),
            Err(other) => vec![format!("other: {other}")],
            Ok(_) => vec![],
        }
    }

    const TEAM: &str = "team_01JD8Z6Q3M4N5P6R7S8T9V0W1X";
    const CAMPAIGN: &str = "cmp_01JD8Z6Q3M4N5P6R7S8T9V0W1X";

    #[test]
    fn ids_are_read_by_their_route_names() {
        use nextier_domain::ids::{CampaignId, TeamId};
        let (team, campaign) =
            <(TeamId, CampaignId)>::from_path(&params(&[("teamId", TEAM), ("campaignId", CAMPAIGN)])).unwrap();
        assert_eq!((team.as_str(), campaign.as_str()), (TEAM, CAMPAIGN));
    }

    #[test]
    fn every_malformed_parameter_is_named_at_once() {
        use nextier_domain::ids::{CampaignId, StepId, TeamId};
        type Three = (TeamId, CampaignId, StepId);
        let both = [("teamId", "nope"), ("campaignId", "cmp_nope"), ("stepId", "stp_01JD8Z6Q3M4N5P6R7S8T9V0W1X")];
        assert_eq!(bad_fields::<Three>(&both), ["teamId", "campaignId"]);
        // A parameter the route lacks is named too (as the hand parsing did).
        assert_eq!(bad_fields::<(TeamId, CampaignId)>(&[("teamId", TEAM)]), ["campaignId"]);
        let msg = match <(TeamId,)>::from_path(&params(&[("teamId", "x")])) {
            Err(ApiError::Validation(errs)) => errs[0].message.clone(),
            _ => String::new(),
        };
        assert_eq!(msg, "must be an id of the form team_<ULID>");
    }

    #[test]
    fn other_refusals_come_only_when_every_field_is_well_formed() {
        use nextier_domain::ids::TeamId;
        assert_eq!(bad_fields::<(TeamId, Action)>(&[("teamId", "bad"), ("action", "fly")]), ["teamId"]);
        match <(TeamId, Action)>::from_path(&params(&[("teamId", TEAM), ("action", "fly")])) {
            Err(ApiError::NotFound(m)) => assert_eq!(m, "no action \"fly\""),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let (_, action) = <(TeamId, Action)>::from_path(&params(&[("teamId", TEAM), ("action", "go")])).unwrap();
        assert_eq!(action, Action("go".into()));
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
