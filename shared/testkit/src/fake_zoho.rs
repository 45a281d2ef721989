//! A local fake of Zoho CRM speaking its contract (issue 19) on one port: the accounts server
//! under `{base}/accounts` and the API domain under `{base}/api`.
//!
//! - `GET /accounts/oauth/v2/auth` (`response_type=code`, `client_id`, `redirect_uri`,
//!   `state`): consents at once, redirecting to `redirect_uri?code=…&location=us&
//!   accounts-server=…&state=…` as Zoho does.
//! - `POST /accounts/oauth/v2/token`, form-encoded (or in the query):
//!   `grant_type=authorization_code` (`code` single use, `redirect_uri`) answers
//!   `{access_token, refresh_token, scope, api_domain, token_type, expires_in}`;
//!   `grant_type=refresh_token` answers a new access token. A wrong client id or secret is
//!   `{"error":"invalid_client"}`, an unknown code or revoked refresh token HTTP 200
//!   `{"error":"invalid_code"}`.
//! - `POST /api/crm/v3/{Module}/upsert` (`Authorization: Zoho-oauthtoken …`, `{data,
//!   duplicate_check_fields}`, ≤ 100): updates the record whose duplicate check field equals the
//!   incoming value, else inserts (`Last_Name` mandatory for Leads and Contacts, `Email` must
//!   look like one); one outcome per record in order; 200/201 all saved, 202 mixed, 400 all
//!   refused.
//! - `GET /api/crm/v3/{Module}?fields=…&page=…&per_page=…&sort_by=…&sort_order=…` with
//!   `If-Modified-Since` (records modified strictly after): `{data, info{per_page, count, page,
//!   more_records}}`; 204 for an empty page, 304 when nothing changed since; `fields` required;
//!   `per_page` at most 200; no page past the 2000th record (`DISCRETE_PAGINATION_LIMIT_EXCEEDED`).
//! - `GET /api/crm/v3/{Module}/deleted?type=all|recycle|permanent&page=…` with
//!   `If-Modified-Since`: `{data: [{id, deleted_time, type, display_name, deleted_by}], info}`
//!   or 204.
//!
//! An unknown or expired access token is 401 `INVALID_TOKEN`; a missing or odd `Authorization`
//! 401 `AUTHENTICATION_FAILURE`. A test scripts failures ([`ZohoState::fail_next`]), an API
//! credit limit ([`ZohoState::limit_per_minute`]), latency ([`ZohoState::set_delay`]) and
//! the clock ([`ZohoState::set_now`], [`ZohoState::advance`]); it edits and deletes records as a
//! person in the CRM would ([`ZohoState::edit`], [`ZohoState::delete`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub const CLIENT_ID: &str = "zoho-client";
pub const CLIENT_SECRET: &str = "zoho-secret";
/// The scope the fake's token answers name.
pub const SCOPE: &str = "ZohoCRM.modules.leads.ALL ZohoCRM.modules.contacts.ALL ZohoCRM.settings.fields.READ";
/// Zoho's limit on records per upsert call and per page.
pub const MAX_UPSERT: usize = 100;
pub const MAX_PER_PAGE: usize = 200;
/// The records a list can reach with `page` (beyond it Zoho wants a `page_token`).
pub const DISCRETE_LIMIT: usize = 2000;

/// The user the fake's records are created and modified by.
fn fake_user() -> Value {
    json!({"name": "Fake Owner", "id": "5725767000000411001", "email": "owner@fake-zoho.test"})
}

/// Zoho's time format: ISO 8601 with an offset, to the second.
pub fn zoho_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc))
}

fn modified(v: &Value) -> Option<DateTime<Utc>> {
    v.get("Modified_Time").and_then(Value::as_str).and_then(parse_time)
}

struct AccessToken {
    expires: DateTime<Utc>,
    refresh: Option<String>,
}

struct Inner {
    base: String,
    client_id: String,
    client_secret: String,
    codes: HashSet<String>,
    refresh_tokens: HashSet<String>,
    revoked: HashSet<String>,
    access_tokens: HashMap<String, AccessToken>,
    expires_in: i64,
    records: BTreeMap<String, BTreeMap<String, Value>>,
    deleted: BTreeMap<String, Vec<Value>>,
    counts: HashMap<String, usize>,
    last_authorization: Option<String>,
    last_token_request: Option<BTreeMap<String, String>>,
    failures: VecDeque<(u16, Option<u64>)>,
    token_failures: VecDeque<(u16, Option<u64>)>,
    per_minute: Option<usize>,
    recent: VecDeque<DateTime<Utc>>,
    delay: Duration,
    clock: Option<DateTime<Utc>>,
    next_id: u64,
    next_token: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            base: String::new(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            codes: HashSet::new(),
            refresh_tokens: HashSet::new(),
            revoked: HashSet::new(),
            access_tokens: HashMap::new(),
            expires_in: 3600,
            records: BTreeMap::new(),
            deleted: BTreeMap::new(),
            counts: HashMap::new(),
            last_authorization: None,
            last_token_request: None,
            failures: VecDeque::new(),
            token_failures: VecDeque::new(),
            per_minute: None,
            recent: VecDeque::new(),
            delay: Duration::ZERO,
            clock: None,
            next_id: 5_725_767_000_000_500_001,
            next_token: 1,
        }
    }
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        let t = self.clock.unwrap_or_else(Utc::now);
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }

    fn bump(&mut self, kind: &str) {
        *self.counts.entry(kind.to_owned()).or_default() += 1;
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    fn new_access_token(&mut self, refresh: Option<String>) -> String {
        self.next_token += 1;
        let token = format!("1000.fake-access.{}", self.next_token);
        let expires = self.now() + chrono::Duration::seconds(self.expires_in);
        self.access_tokens.insert(token.clone(), AccessToken { expires, refresh });
        token
    }

    fn new_refresh_token(&mut self) -> String {
        self.next_token += 1;
        let token = format!("1000.fake-refresh.{}", self.next_token);
        self.refresh_tokens.insert(token.clone());
        token
    }

    fn insert(&mut self, module: &str, fields: &Map<String, Value>) -> Value {
        let id = self.new_id();
        let now = zoho_time(self.now());
        let mut v = fields.clone();
        v.insert("id".into(), json!(id));
        v.insert("Created_Time".into(), json!(now));
        v.insert("Modified_Time".into(), json!(now));
        v.insert("Created_By".into(), fake_user());
        v.insert("Modified_By".into(), fake_user());
        let v = Value::Object(v);
        self.records.entry(module.to_owned()).or_default().insert(id, v.clone());
        v
    }

    fn update(&mut self, module: &str, id: &str, fields: &Map<String, Value>) -> Option<Value> {
        let now = zoho_time(self.now());
        let record = self.records.get_mut(module)?.get_mut(id)?.as_object_mut()?;
        for (k, v) in fields {
            if !matches!(k.as_str(), "id" | "Created_Time" | "Created_By" | "Modified_Time" | "Modified_By") {
                record.insert(k.clone(), v.clone());
            }
        }
        record.insert("Modified_Time".into(), json!(now));
        record.insert("Modified_By".into(), fake_user());
        Some(Value::Object(record.clone()))
    }
}

/// What the fake knows and what it was asked. Every method takes `&self`.
#[derive(Default)]
pub struct ZohoState {
    inner: Mutex<Inner>,
}

impl ZohoState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers another client id and secret (the defaults are [`CLIENT_ID`], [`CLIENT_SECRET`]).
    pub fn set_client(&self, id: &str, secret: &str) {
        let mut s = self.lock();
        s.client_id = id.into();
        s.client_secret = secret.into();
    }

    /// A code the token endpoint will accept once.
    pub fn issue_code(&self, code: &str) {
        self.lock().codes.insert(code.into());
    }

    /// Tokens as if a person had connected: `(access_token, refresh_token)`.
    pub fn grant(&self) -> (String, String) {
        let mut s = self.lock();
        let refresh = s.new_refresh_token();
        let access = s.new_access_token(Some(refresh.clone()));
        (access, refresh)
    }

    /// The person disconnected the app: the refresh token and the access tokens it gave are dead.
    pub fn revoke(&self, refresh_token: &str) {
        let mut s = self.lock();
        s.refresh_tokens.remove(refresh_token);
        s.revoked.insert(refresh_token.into());
        s.access_tokens.retain(|_, a| a.refresh.as_deref() != Some(refresh_token));
    }

    /// Every access token issued so far answers 401 `INVALID_TOKEN` from now on.
    pub fn expire_access_tokens(&self) {
        let mut s = self.lock();
        let past = s.now() - chrono::Duration::seconds(1);
        for a in s.access_tokens.values_mut() {
            a.expires = past;
        }
    }

    /// The lifetime of access tokens issued from now on (`expires_in`, default 3600).
    pub fn set_expires_in(&self, secs: i64) {
        self.lock().expires_in = secs;
    }

    /// The fake's clock (to the second): the real time unless set.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().now()
    }

    /// Stops the clock at `t` (records written from now on carry it; tokens expire by it).
    pub fn set_now(&self, t: DateTime<Utc>) {
        self.lock().clock = Some(t);
    }

    /// Moves the (stopped) clock on.
    pub fn advance(&self, secs: i64) {
        let mut s = self.lock();
        let t = s.now() + chrono::Duration::seconds(secs);
        s.clock = Some(t);
    }

    /// A record created in the CRM (`fields` an object): its id.
    pub fn insert(&self, module: &str, fields: Value) -> String {
        let fields = fields.as_object().cloned().unwrap_or_default();
        let v = self.lock().insert(module, &fields);
        v["id"].as_str().unwrap_or_default().to_owned()
    }

    /// A person edits a record in the CRM: `fields` merged, `Modified_Time` now. `false` when
    /// there is no such record.
    pub fn edit(&self, module: &str, id: &str, fields: Value) -> bool {
        let fields = fields.as_object().cloned().unwrap_or_default();
        self.lock().update(module, id, &fields).is_some()
    }

    /// A person deletes a record (to the recycle bin): `/deleted` lists it from now on.
    pub fn delete(&self, module: &str, id: &str) -> bool {
        let mut s = self.lock();
        let Some(record) = s.records.get_mut(module).and_then(|m| m.remove(id)) else { return false };
        let name = ["Full_Name", "Last_Name", "Account_Name", "Deal_Name"]
            .iter()
            .find_map(|k| record.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        let at = zoho_time(s.now());
        s.deleted.entry(module.to_owned()).or_default().push(json!({
            "id": id, "deleted_time": at, "type": "recycle", "display_name": name,
            "deleted_by": fake_user(), "created_by": fake_user()
        }));
        true
    }

    /// The module's records, by id.
    pub fn records(&self, module: &str) -> Vec<Value> {
        self.lock().records.get(module).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    pub fn record(&self, module: &str, id: &str) -> Option<Value> {
        self.lock().records.get(module).and_then(|m| m.get(id)).cloned()
    }

    /// Calls received of a kind, failed ones included: `token`, `auth`, `upsert`, `list`,
    /// `deleted`, or `api` for every API call; `limited`: calls refused by the per-minute limit.
    pub fn count(&self, kind: &str) -> usize {
        self.lock().counts.get(kind).copied().unwrap_or(0)
    }

    /// The `Authorization` header of the last API call.
    pub fn last_authorization(&self) -> Option<String> {
        self.lock().last_authorization.clone()
    }

    /// The last token request's parameters, `client_secret` replaced by `<redacted>` when it
    /// was right and `<wrong>` when it was not.
    pub fn last_token_request(&self) -> Option<BTreeMap<String, String>> {
        self.lock().last_token_request.clone()
    }

    /// The next `n` API calls answer `status` (429: `TOO_MANY_REQUESTS`; 5xx: an internal
    /// error), with `Retry-After` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().failures.extend(std::iter::repeat_n((status, retry_after), n));
    }

    /// The same for the next `n` token requests.
    pub fn fail_token_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().token_failures.extend(std::iter::repeat_n((status, retry_after), n));
    }

    /// API credits: after `n` API calls within a rolling minute (of the fake's clock), 429
    /// `TOO_MANY_REQUESTS` without `Retry-After`.
    pub fn limit_per_minute(&self, n: usize) {
        let mut s = self.lock();
        s.per_minute = Some(n);
        s.recent.clear();
    }

    /// Every answer (token and API) waits this long first.
    pub fn set_delay(&self, ms: u64) {
        self.lock().delay = Duration::from_millis(ms);
    }

    fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// Counts an API call and decides whether it is served: scripted failures, then the
    /// token, then the credit limit.
    fn admit(&self, kind: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let mut s = self.lock();
        s.bump(kind);
        s.bump("api");
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        s.last_authorization = auth.clone();
        if let Some((status, retry_after)) = s.failures.pop_front() {
            return Err(Box::new(failure(status, retry_after)));
        }
        let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Zoho-oauthtoken ")) else {
            return Err(Box::new(api_error(
                StatusCode::UNAUTHORIZED,
                "AUTHENTICATION_FAILURE",
                "Authentication failed",
                json!({}),
            )));
        };
        let now = s.now();
        if s.access_tokens.get(token.trim()).is_none_or(|a| a.expires <= now) {
            return Err(Box::new(api_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "invalid oauth token",
                json!({}),
            )));
        }
        if let Some(limit) = s.per_minute {
            let window = now - chrono::Duration::seconds(60);
            while s.recent.front().is_some_and(|t| *t <= window) {
                s.recent.pop_front();
            }
            if s.recent.len() >= limit {
                *s.counts.entry("limited".into()).or_default() += 1;
                return Err(Box::new(api_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOO_MANY_REQUESTS",
                    "API credits exhausted for the minute",
                    json!({}),
                )));
            }
            s.recent.push_back(now);
        }
        Ok(())
    }
}

fn api_error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    (status, Json(json!({"code": code, "details": details, "message": message, "status": "error"}))).into_response()
}

fn failure(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        429 => ("TOO_MANY_REQUESTS", "too many requests"),
        s if s >= 500 => ("INTERNAL_ERROR", "Internal Server Error"),
        _ => ("FAKE_FAILURE", "scripted failure"),
    };
    let mut r = api_error(status, code, message, json!({}));
    if let Some(secs) = retry_after {
        if let Ok(v) = secs.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

async fn auth(State(s): State<Arc<ZohoState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut st = s.lock();
    st.bump("auth");
    let param = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if param("client_id") != st.client_id {
        return (StatusCode::BAD_REQUEST, "Invalid Client").into_response();
    }
    if param("response_type") != "code" || param("redirect_uri").is_empty() {
        return (StatusCode::BAD_REQUEST, "Invalid Request").into_response();
    }
    st.next_token += 1;
    let code = format!("1000.fake-code.{}", st.next_token);
    st.codes.insert(code.clone());
    let redirect = param("redirect_uri");
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let location = format!(
        "{redirect}{sep}code={}&location=us&accounts-server={}&state={}",
        percent_encode(&code),
        percent_encode(&format!("{}/accounts", st.base)),
        percent_encode(param("state"))
    );
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(State(s): State<Arc<ZohoState>>, Query(q): Query<HashMap<String, String>>, body: String) -> Response {
    s.lock().bump("token");
    tokio::time::sleep(s.delay()).await;
    let mut params = q;
    params.extend(parse_form(&body));
    let mut st = s.lock();
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default().to_owned();
    let secret_ok = param("client_secret") == st.client_secret;
    let mut recorded: BTreeMap<String, String> = params.clone().into_iter().collect();
    if recorded.contains_key("client_secret") {
        recorded.insert("client_secret".into(), if secret_ok { "<redacted>" } else { "<wrong>" }.into());
    }
    st.last_token_request = Some(recorded);
    if let Some((status, retry_after)) = st.token_failures.pop_front() {
        return failure(status, retry_after);
    }
    let error = |e: &str| Json(json!({"error": e})).into_response();
    if param("client_id") != st.client_id || !secret_ok {
        return error("invalid_client");
    }
    let answer = |access: String, refresh: Option<String>, expires_in: i64, base: &str| {
        let mut v = json!({"access_token": access, "scope": SCOPE, "api_domain": format!("{base}/api"),
                           "token_type": "Bearer", "expires_in": expires_in});
        if let Some(r) = refresh {
            v["refresh_token"] = json!(r);
        }
        Json(v).into_response()
    };
    match param("grant_type").as_str() {
        "authorization_code" => {
            if param("redirect_uri").is_empty() {
                return error("invalid_redirect_uri");
            }
            if !st.codes.remove(&param("code")) {
                return error("invalid_code");
            }
            let refresh = st.new_refresh_token();
            let access = st.new_access_token(Some(refresh.clone()));
            answer(access, Some(refresh), st.expires_in, &st.base)
        }
        "refresh_token" => {
            let refresh = param("refresh_token");
            if !st.refresh_tokens.contains(&refresh) {
                return error("invalid_code");
            }
            let access = st.new_access_token(Some(refresh));
            answer(access, None, st.expires_in, &st.base)
        }
        _ => error("unsupported_grant_type"),
    }
}

/// One incoming record's outcome.
fn upsert_one(st: &mut Inner, module: &str, record: &Value, dup: &[String]) -> Value {
    let Some(fields) = record.as_object() else {
        return json!({"code": "INVALID_DATA", "details": {}, "message": "invalid data", "status": "error"});
    };
    if let Some(email) = fields.get("Email").filter(|e| !e.is_null()) {
        if !email.as_str().is_some_and(|e| e.contains('@') && !e.contains(' ')) {
            return json!({"code": "INVALID_DATA", "details": {"expected_data_type": "email", "api_name": "Email"},
                          "message": "invalid data", "status": "error"});
        }
    }
    let existing = st.records.get(module).and_then(|m| {
        dup.iter().find_map(|f| {
            let want = fields.get(f).filter(|v| !v.is_null() && v.as_str() != Some(""))?;
            m.iter().find(|(_, r)| r.get(f) == Some(want)).map(|(id, _)| (id.clone(), f.clone()))
        })
    });
    let saved = |v: &Value, action: &str, message: &str, dup_field: Option<String>| {
        json!({"code": "SUCCESS", "duplicate_field": dup_field, "action": action,
               "details": {"Modified_Time": v["Modified_Time"], "Modified_By": v["Modified_By"],
                           "Created_Time": v["Created_Time"], "id": v["id"], "Created_By": v["Created_By"]},
               "message": message, "status": "success"})
    };
    if let Some((id, field)) = existing {
        let v = st.update(module, &id, fields).unwrap_or_default();
        return saved(&v, "update", "record updated", Some(field));
    }
    if matches!(module, "Leads" | "Contacts")
        && fields.get("Last_Name").and_then(Value::as_str).is_none_or(|n| n.trim().is_empty())
    {
        return json!({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name"},
                      "message": "required field not found", "status": "error"});
    }
    let v = st.insert(module, fields);
    saved(&v, "insert", "record added", None)
}

async fn upsert(
    State(s): State<Arc<ZohoState>>,
    Path(module): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    // Counted on arrival, answered after the delay (a client that gave up was still counted).
    let admitted = s.admit("upsert", &headers);
    tokio::time::sleep(s.delay()).await;
    if let Err(r) = admitted {
        return *r;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "INVALID_DATA", "body is not JSON", json!({}));
    };
    let Some(records) = body.get("data").and_then(Value::as_array).filter(|d| !d.is_empty()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "data is missing",
            json!({"api_name": "data"}),
        );
    };
    if records.len() > MAX_UPSERT {
        return api_error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "the number of records exceeds the limit",
            json!({"by": "count", "limit": MAX_UPSERT}),
        );
    }
    let dup: Vec<String> = match body.get("duplicate_check_fields").and_then(Value::as_array) {
        Some(f) => f.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        // Zoho's system duplicate check fields.
        None => vec!["Email".to_owned()],
    };
    let mut st = s.lock();
    let outcomes: Vec<Value> = records.iter().map(|r| upsert_one(&mut st, &module, r, &dup)).collect();
    let ok = outcomes.iter().filter(|o| o["status"] == "success").count();
    let status = if ok == 0 {
        StatusCode::BAD_REQUEST
    } else if ok < outcomes.len() {
        StatusCode::ACCEPTED
    } else if outcomes.iter().all(|o| o["action"] == "insert") {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(json!({"data": outcomes}))).into_response()
}

/// `page`, `per_page` and `If-Modified-Since`.
struct Paging {
    page: usize,
    per_page: usize,
    since: Option<DateTime<Utc>>,
}

/// A list's [`Paging`], or the answer refusing it.
fn paging(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<Paging, Box<Response>> {
    let number = |k: &str, default: usize| match q.get(k) {
        None => Ok(default),
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Box::new(api_error(StatusCode::BAD_REQUEST, "INVALID_DATA", "invalid data", json!({"param_name": k})))
        }),
    };
    let page = number("page", 1)?;
    let per_page = number("per_page", MAX_PER_PAGE)?;
    if per_page > MAX_PER_PAGE {
        return Err(Box::new(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "per_page can be at most 200",
            json!({"param_name": "per_page", "maximum_length": MAX_PER_PAGE}),
        )));
    }
    let since = match headers.get(header::IF_MODIFIED_SINCE).map(|v| v.to_str().ok().and_then(parse_time)) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            return Err(Box::new(api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "invalid If-Modified-Since",
                json!({"header_name": "If-Modified-Since"}),
            )))
        }
    };
    Ok(Paging { page, per_page, since })
}

async fn list(
    State(s): State<Arc<ZohoState>>,
    Path(module): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // Counted on arrival, answered after the delay (a client that gave up was still counted).
    let admitted = s.admit("list", &headers);
    tokio::time::sleep(s.delay()).await;
    if let Err(r) = admitted {
        return *r;
    }
    let Some(fields) = q.get("fields").filter(|f| !f.trim().is_empty()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            json!({"param_name": "fields"}),
        );
    };
    let fields: Vec<&str> = fields.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    let Paging { page, per_page, since } = match paging(&q, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if page * per_page > DISCRETE_LIMIT {
        return api_error(
            StatusCode::BAD_REQUEST,
            "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
            "you can get only the first 2000 records without a page_token",
            json!({"limit": DISCRETE_LIMIT}),
        );
    }
    let sort_by = q.get("sort_by").map(String::as_str).unwrap_or("id").to_owned();
    let desc = q.get("sort_order").map(String::as_str) == Some("desc");
    let st = s.lock();
    let mut matching: Vec<&Value> = st
        .records
        .get(&module)
        .map(|m| m.values().filter(|r| since.is_none_or(|t| modified(r).is_some_and(|m| m > t))).collect())
        .unwrap_or_default();
    let key = |r: &Value| {
        let time = match sort_by.as_str() {
            "Modified_Time" => modified(r),
            "Created_Time" => r.get("Created_Time").and_then(Value::as_str).and_then(parse_time),
            _ => None,
        };
        (time, r["id"].as_str().unwrap_or_default().to_owned())
    };
    matching.sort_by_key(|r| key(r));
    if desc {
        matching.reverse();
    }
    if since.is_some() && matching.is_empty() {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let start = (page - 1) * per_page;
    let data: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(per_page)
        .map(|r| {
            let mut out = Map::new();
            out.insert("id".into(), r["id"].clone());
            for f in &fields {
                out.insert((*f).to_owned(), r.get(*f).cloned().unwrap_or(Value::Null));
            }
            Value::Object(out)
        })
        .collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let more = matching.len() > start + data.len();
    Json(json!({"data": data, "info": {"per_page": per_page, "count": data.len(), "page": page,
        "sort_by": sort_by, "sort_order": if desc { "desc" } else { "asc" }, "more_records": more}}))
    .into_response()
}

async fn deleted(
    State(s): State<Arc<ZohoState>>,
    Path(module): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // Counted on arrival, answered after the delay (a client that gave up was still counted).
    let admitted = s.admit("deleted", &headers);
    tokio::time::sleep(s.delay()).await;
    if let Err(r) = admitted {
        return *r;
    }
    let kind = q.get("type").map(String::as_str).unwrap_or("all").to_owned();
    if !matches!(kind.as_str(), "all" | "recycle" | "permanent") {
        return api_error(StatusCode::BAD_REQUEST, "INVALID_DATA", "invalid data", json!({"param_name": "type"}));
    }
    let Paging { page, per_page, since } = match paging(&q, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let st = s.lock();
    let matching: Vec<&Value> = st
        .deleted
        .get(&module)
        .map(|d| {
            d.iter()
                .filter(|r| kind == "all" || r["type"] == kind.as_str())
                .filter(|r| {
                    since.is_none_or(|t| r["deleted_time"].as_str().and_then(parse_time).is_some_and(|d| d > t))
                })
                .collect()
        })
        .unwrap_or_default();
    let start = (page - 1) * per_page;
    let data: Vec<Value> = matching.iter().skip(start).take(per_page).map(|v| (*v).clone()).collect();
    if data.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let more = matching.len() > start + data.len();
    Json(json!({"data": data, "info": {"per_page": per_page, "count": data.len(), "page": page,
        "more_records": more}}))
    .into_response()
}

/// A running fake: `base` is `http://127.0.0.1:<port>`.
pub struct FakeZoho {
    pub base: String,
    pub state: Arc<ZohoState>,
}

impl FakeZoho {
    pub async fn start() -> FakeZoho {
        let state = Arc::new(ZohoState::default());
        let app = Router::new()
            .route("/accounts/oauth/v2/auth", get(auth))
            .route("/accounts/oauth/v2/token", post(token))
            .route("/api/crm/v3/{module}", get(list))
            .route("/api/crm/v3/{module}/upsert", post(upsert))
            .route("/api/crm/v3/{module}/deleted", get(deleted))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake Zoho");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        state.lock().base = base.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeZoho { base, state }
    }

    /// The accounts server: `{base}/accounts`.
    pub fn accounts(&self) -> String {
        format!("{}/accounts", self.base)
    }

    /// The API domain the token answers name: `{base}/api`.
    pub fn api(&self) -> String {
        format!("{}/api", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded_and_query_values_encoded() {
        let f = parse_form("grant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=a+b&x=%zz");
        assert_eq!(f["grant_type"], "authorization_code");
        assert_eq!(f["redirect_uri"], "https://app.example/cb");
        assert_eq!(f["scope"], "a b");
        assert_eq!(f["x"], "%zz");
        assert_eq!(percent_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }
}
