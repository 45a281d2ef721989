//! A local fake of the enrichment providers, speaking each one's documented contract (DOMAIN.md
//! B2, C.9) on one port, including their failures:
//!
//! - Tracerfy under `/tracerfy`: `POST /trace/` (Bearer) takes `json_data` rows and the names of
//!   their columns, answers `{queue_id}`; `GET /queue/{id}` answers `[]` while pending, then one
//!   record per row with `primary_phone`, `mobile_1..5`, `landline_1..3`, `email_1..5` (unknown
//!   fields as empty strings).
//! - Trestle under `/trestle`: `GET /3.0/phone_intel?phone=` (`x-api-key`).
//! - RealEstateAPI under `/realestate`: `POST /SkipTrace` (`x-api-key`), one person, answered
//!   at once with `output.phones` and `output.emails`, 404 when nobody matches.
//! - RealEstateAPI's `POST /PropertySearch` (the search fields `state`, `city`, `zip` and the
//!   flags `pre_foreclosure`, `vacant`, `absentee_owner` filter; `size` at most 250 and
//!   `resultIndex` page; `{data, resultCount, resultIndex, recordCount}`) and
//!   `POST /PropertyDetail` (`{id}`: `{data: {id, propertyInfo, ownerInfo, ...}}`, 404 unknown).
//! - Apollo under `/apollo`: `POST /organizations/enrich`, `POST /mixed_people/search`
//!   (`x-api-key`).
//!
//! A test scripts the people a trace finds, what each number is, and the next answers'
//! failures (a status, optionally with `Retry-After`, or a body that is not JSON).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TRACERFY_TOKEN: &str = "tf-test-token";
pub const TRESTLE_KEY: &str = "trestle-test-key";
pub const APOLLO_KEY: &str = "apollo-test-key";
pub const REALESTATE_KEY: &str = "rea-test-key";

/// A scripted failure for the next call to a provider.
#[derive(Debug, Clone)]
pub enum Failure {
    Status(u16),
    /// 429 with `Retry-After` seconds.
    RateLimited(u64),
    /// 200 with a body that is not JSON.
    Garbage,
}

/// What a trace finds for a person (matched by first and last name, case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub mobiles: Vec<String>,
    pub landlines: Vec<String>,
    pub emails: Vec<String>,
}

#[derive(Default)]
pub struct FakeState {
    pub people: Mutex<HashMap<String, Found>>,
    /// Trestle answers by the number's ten digits (without the country code).
    pub numbers: Mutex<HashMap<String, Value>>,
    queues: Mutex<HashMap<u64, (Vec<Value>, u32)>>,
    next_queue: Mutex<u64>,
    /// How many polls answer `[]` before a queue is done.
    pub pending_polls: Mutex<u32>,
    /// Every call: (provider, path).
    pub calls: Mutex<Vec<(String, String)>>,
    pub failures: Mutex<HashMap<&'static str, VecDeque<Failure>>>,
    /// RealEstateAPI's property records, as `/PropertySearch` lists them (flat, `id` first).
    pub properties: Mutex<Vec<Value>>,
}

impl FakeState {
    /// A property RealEstateAPI knows (its search record: `id`, `address{street, city, state,
    /// zip}`, `owner1FirstName`..., flags and values).
    pub fn property(&self, record: Value) {
        self.properties.lock().unwrap().push(record);
    }

    pub fn find(&self, first: &str, last: &str, f: Found) {
        self.people.lock().unwrap().insert(format!("{} {}", first.to_lowercase(), last.to_lowercase()), f);
    }

    /// What Trestle says of a number (`+1` and ten digits, or ten digits).
    pub fn number(&self, e164: &str, line_type: &str, grade: &str, activity: i64, carrier: &str) {
        let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
        let ten = digits.trim_start_matches('1').to_owned();
        self.numbers.lock().unwrap().insert(
            ten,
            json!({"id": format!("Phone.{digits}"), "phone_number": format!("+1{}", &digits[digits.len() - 10..]),
                   "is_valid": true, "activity_score": activity, "country_code": "US", "line_type": line_type,
                   "carrier": carrier, "is_prepaid": false, "contact_grade": grade, "name_match": true,
                   "error": null, "warnings": []}),
        );
    }

    pub fn fail_next(&self, provider: &'static str, f: Failure) {
        self.failures.lock().unwrap().entry(provider).or_default().push_back(f);
    }

    pub fn count(&self, provider: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|(p, _)| p == provider).count()
    }

    fn record(&self, provider: &'static str, path: &str) -> Option<Response> {
        self.calls.lock().unwrap().push((provider.into(), path.into()));
        let f = self.failures.lock().unwrap().get_mut(provider).and_then(VecDeque::pop_front)?;
        Some(match f {
            Failure::Status(s) => {
                (StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), "fake failure").into_response()
            }
            Failure::RateLimited(secs) => {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], "slow down").into_response()
            }
            Failure::Garbage => (StatusCode::OK, "<html>upstream error</html>").into_response(),
        })
    }
}

fn key(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn tracerfy_trace(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("tracerfy", "/trace/") {
        return r;
    }
    if key(&headers, "authorization").as_deref() != Some(&format!("Bearer {TRACERFY_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"detail": "Invalid token."}))).into_response();
    }
    let Some(rows) = body["json_data"].as_array().filter(|r| !r.is_empty()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "json_data is required"}))).into_response();
    };
    for col in ["address_column", "city_column", "state_column", "first_name_column", "last_name_column"] {
        if body[col].as_str().is_none() {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("{col} is required")}))).into_response();
        }
    }
    let col = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let (fc, lc, ac, cc, sc, zc) = (
        col("first_name_column"),
        col("last_name_column"),
        col("address_column"),
        col("city_column"),
        col("state_column"),
        col("zip_column"),
    );
    let people = s.people.lock().unwrap().clone();
    let records: Vec<Value> = rows
        .iter()
        .map(|r| {
            let get = |c: &str| r[c].as_str().unwrap_or_default().to_owned();
            let (first, last) = (get(&fc), get(&lc));
            let f =
                people.get(&format!("{} {}", first.to_lowercase(), last.to_lowercase())).cloned().unwrap_or_default();
            let nth = |v: &Vec<String>, i: usize| v.get(i).cloned().unwrap_or_default();
            let mut rec = json!({"first_name": first, "last_name": last, "address": get(&ac), "city": get(&cc),
                                 "state": get(&sc), "zip": get(&zc),
                                 "primary_phone": nth(&f.mobiles, 0),
                                 "primary_phone_type": if f.mobiles.is_empty() { "" } else { "Mobile" }});
            for i in 0..5 {
                rec[format!("mobile_{}", i + 1)] = json!(nth(&f.mobiles, i));
                rec[format!("email_{}", i + 1)] = json!(nth(&f.emails, i));
            }
            for i in 0..3 {
                rec[format!("landline_{}", i + 1)] = json!(nth(&f.landlines, i));
            }
            rec
        })
        .collect();
    let id = {
        let mut n = s.next_queue.lock().unwrap();
        *n += 1;
        *n
    };
    let pending = *s.pending_polls.lock().unwrap();
    s.queues.lock().unwrap().insert(id, (records, pending));
    Json(json!({"message": "Trace queued", "queue_id": id, "status": "pending", "rows_uploaded": rows.len()}))
        .into_response()
}

async fn tracerfy_queue(State(s): State<Arc<FakeState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(r) = s.record("tracerfy", "/queue/") {
        return r;
    }
    if key(&headers, "authorization").as_deref() != Some(&format!("Bearer {TRACERFY_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"detail": "Invalid token."}))).into_response();
    }
    let Ok(id) = id.parse::<u64>() else { return (StatusCode::NOT_FOUND, "no such queue").into_response() };
    let mut queues = s.queues.lock().unwrap();
    let Some((records, pending)) = queues.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response();
    };
    if *pending > 0 {
        *pending -= 1;
        return Json(json!([])).into_response();
    }
    Json(Value::Array(records.clone())).into_response()
}

async fn trestle_phone(
    State(s): State<Arc<FakeState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = s.record("trestle", "/3.0/phone_intel") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(TRESTLE_KEY) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "Invalid API key"}))).into_response();
    }
    let Some(phone) = q.get("phone") else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "phone is required"}))).into_response();
    };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let ten = if digits.len() == 11 { digits[1..].to_owned() } else { digits.clone() };
    match s.numbers.lock().unwrap().get(&ten) {
        Some(v) => Json(v.clone()).into_response(),
        None => Json(json!({"id": null, "phone_number": phone, "is_valid": false, "activity_score": null,
                            "line_type": null, "carrier": null, "is_prepaid": null,
                            "error": {"name": "InternalError", "message": "Could not validate"}, "warnings": ["Invalid Input"]}))
        .into_response(),
    }
}

async fn realestate_trace(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("realestateapi", "/SkipTrace") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(REALESTATE_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid API key"}))).into_response();
    }
    let name = |f: &str| body[f].as_str().unwrap_or_default().to_lowercase();
    let found = s.people.lock().unwrap().get(&format!("{} {}", name("first_name"), name("last_name"))).cloned();
    let Some(f) = found else {
        return (StatusCode::NOT_FOUND, Json(json!({"statusCode": 404, "message": "No match found"}))).into_response();
    };
    let phones: Vec<Value> = f
        .mobiles
        .iter()
        .map(|n| json!({"phone_number": n, "phone_type": "Mobile", "is_connected": true, "carrier": null}))
        .chain(f.landlines.iter().map(|n| json!({"phone_number": n, "phone_type": "LandLine", "is_connected": true})))
        .collect();
    let emails: Vec<Value> = f.emails.iter().map(|e| json!({"email": e})).collect();
    Json(json!({"input": body, "output": {"identity": {"names": [{"first_name": name("first_name")}]},
                "phones": phones, "emails": emails}, "match": true, "statusCode": 200}))
    .into_response()
}

async fn realestate_search(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("realestateapi", "/PropertySearch") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(REALESTATE_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid API key"}))).into_response();
    }
    let size = body["size"].as_i64().unwrap_or(50);
    if !(1..=250).contains(&size) {
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "size must be 1-250"})))
            .into_response();
    }
    let index = body["resultIndex"].as_i64().unwrap_or(0).max(0);
    let text = |v: &Value, k: &str| v["address"][k].as_str().map(str::to_lowercase);
    let all: Vec<Value> = s
        .properties
        .lock()
        .unwrap()
        .iter()
        .filter(|p| {
            ["state", "city", "zip"].iter().all(|f| match body[*f].as_str() {
                Some(w) => text(p, f).as_deref() == Some(w.to_lowercase().as_str()),
                None => true,
            }) && [("pre_foreclosure", "preForeclosure"), ("vacant", "vacant"), ("absentee_owner", "absenteeOwner")]
                .iter()
                .all(|(q, f)| match body[*q].as_bool() {
                    Some(w) => p[*f].as_bool() == Some(w),
                    None => true,
                })
        })
        .cloned()
        .collect();
    let page: Vec<Value> = all.iter().skip(index as usize).take(size as usize).cloned().collect();
    Json(json!({"live": true, "input": body, "data": page, "resultCount": all.len(), "resultIndex": index + page.len() as i64,
                "recordCount": page.len(), "statusCode": 200, "statusMessage": "success"}))
    .into_response()
}

async fn realestate_detail(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("realestateapi", "/PropertyDetail") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(REALESTATE_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Invalid API key"}))).into_response();
    }
    let id = match &body["id"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let found = s.properties.lock().unwrap().iter().find(|p| p["id"].as_str() == Some(id.as_str())).cloned();
    let Some(p) = found else {
        return (StatusCode::NOT_FOUND, Json(json!({"statusCode": 404, "message": "Property not found"})))
            .into_response();
    };
    // The detail nests what the search lists flat.
    let data = json!({"id": p["id"], "propertyInfo": {"address": p["address"], "propertyUse": p["propertyType"],
            "yearBuilt": p["yearBuilt"]},
        "ownerInfo": {"owner1FirstName": p["owner1FirstName"], "owner1LastName": p["owner1LastName"],
            "owner2FirstName": p["owner2FirstName"], "owner2LastName": p["owner2LastName"],
            "mailAddress": p["mailAddress"], "ownerOccupied": p["ownerOccupied"]},
        "preForeclosure": p["preForeclosure"], "vacant": p["vacant"], "absenteeOwner": p["absenteeOwner"],
        "equityPercent": p["equityPercent"], "estimatedValue": p["estimatedValue"], "estimatedEquity": p["estimatedEquity"],
        "currentMortgages": p.get("currentMortgages").cloned().unwrap_or(json!([]))});
    Json(json!({"input": body, "data": data, "statusCode": 200, "statusMessage": "Success"})).into_response()
}

async fn apollo_enrich(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("apollo", "/organizations/enrich") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(APOLLO_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "Invalid access credentials."}))).into_response();
    }
    let name = body["name"].as_str().unwrap_or_default();
    if name.to_lowercase().contains("unknown") {
        return Json(json!({})).into_response();
    }
    Json(json!({"organization": {"id": "org-1", "name": name, "primary_domain": body["domain"],
        "industry": "construction", "estimated_num_employees": 42, "annual_revenue": 3_500_000.0}}))
    .into_response()
}

async fn apollo_people(State(s): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = s.record("apollo", "/mixed_people/search") {
        return r;
    }
    if key(&headers, "x-api-key").as_deref() != Some(APOLLO_KEY) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "Invalid access credentials."}))).into_response();
    }
    let wants = |s: &str| body["person_seniorities"].as_array().is_some_and(|a| a.iter().any(|v| v == s));
    let mut people = vec![];
    if wants("owner") {
        people.push(json!({"first_name": "Rita", "last_name": "Moss", "title": "Owner", "seniority": "owner",
            "email": "rita@mossbuild.example", "phone_numbers": [{"raw_number": "(312) 555-2040", "sanitized_number": "+13125552040"}]}));
    }
    if wants("manager") {
        people.push(json!({"first_name": "Dev", "last_name": "Patel", "title": "Site Manager", "seniority": "manager",
            "email": "email_not_unlocked@domain.com", "phone_numbers": []}));
    }
    Json(json!({"people": people, "pagination": {"page": 1, "per_page": 25, "total_entries": people.len()}}))
        .into_response()
}

/// A running fake: `base` is `http://127.0.0.1:<port>`; the providers' base URLs are
/// `{base}/tracerfy`, `{base}/trestle`, `{base}/apollo`.
pub struct FakeProviders {
    pub base: String,
    pub state: Arc<FakeState>,
}

impl FakeProviders {
    pub async fn start() -> FakeProviders {
        let state = Arc::new(FakeState::default());
        let app = Router::new()
            .route("/tracerfy/trace/", post(tracerfy_trace))
            .route("/tracerfy/queue/{id}", get(tracerfy_queue))
            .route("/trestle/3.0/phone_intel", get(trestle_phone))
            .route("/realestate/SkipTrace", post(realestate_trace))
            .route("/realestate/PropertySearch", post(realestate_search))
            .route("/realestate/PropertyDetail", post(realestate_detail))
            .route("/apollo/organizations/enrich", post(apollo_enrich))
            .route("/apollo/mixed_people/search", post(apollo_people))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake providers");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeProviders { base, state }
    }
}
