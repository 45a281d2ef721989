//! Skip traces (DOMAIN.md B, RealEstateAPI `/SkipTrace/Bulk` with a `webhookUrl`): a team asks
//! for some contacts' phones and emails; the provider calls back when the job is done, and the
//! numbers and addresses it found join the contacts (never taken from another contact).
//!
//! The provider does not sign its callbacks. Each job's callback URL carries a random 256-bit
//! token, stored only as its SHA-256, so a callback proves which job it is for; its `jobId`
//! must match the one the provider gave us; a job completes once, so a repeated callback
//! changes nothing.

use chrono::{DateTime, Utc};
use nextier_domain::callback_token;
use nextier_domain::email::Email;
use nextier_domain::ids::{ContactId, TeamId};
use nextier_domain::phone::E164;
use nextier_platform::ports::skip_tracer::{SkipTracer, TraceInput};
use nextier_store::contacts::{self, NewPhone};
use nextier_store::skip_trace::{self, Ending, Job};
use nextier_store::{scope, Db, Scope, StoreError};
use serde_json::{json, Value};
use sha2::Digest;

/// Where the provider calls back (`{token}`: the job's own), on the skip-trace webhook's origin.
pub const CALLBACK_PATH: &str = "/webhooks/skip-trace/{token}";

fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("contactIds[{0}]: no such contact")]
    UnknownContact(usize),
}

/// Where the provider calls back: the webhook's public origin, and the key its tokens are
/// signed with (`SKIP_TRACE_CALLBACK_SECRET`; the webhook verifies with the same).
pub struct Callback<'a> {
    pub base_url: &'a str,
    pub key: &'a [u8],
}

/// The setting holding the callback tokens' signing key.
pub const CALLBACK_SECRET: &str = "SKIP_TRACE_CALLBACK_SECRET";

/// The key from [`CALLBACK_SECRET`], or the local platform's secret when unset (local runs and
/// tests). A deployed function (in Lambda, not on the local platform) always has its own
/// secret; without one it gets a random key, so no callback verifies, rather than the public
/// local default, which would let anyone forge one.
pub fn callback_key() -> Vec<u8> {
    use nextier_runtime::config;
    match config::get(CALLBACK_SECRET) {
        Some(key) => key.into_bytes(),
        None if config::in_lambda() && !config::is_local() => {
            tracing::error!("{CALLBACK_SECRET} is unset: no skip-trace callback can be verified");
            rand::random::<[u8; 32]>().to_vec()
        }
        None => config::local_secret().into_bytes(),
    }
}

/// Records a job for `contacts`, then asks the provider (outside any transaction) with a
/// callback URL under `callback_base`. A refusal leaves the job `failed` with the reason.
pub async fn request(
    db: &Db,
    tracer: &dyn SkipTracer,
    team: &TeamId,
    contact_ids: &[ContactId],
    actor: &str,
    callback: &Callback<'_>,
) -> Result<Job, RequestError> {
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    let mut inputs = Vec::with_capacity(contact_ids.len());
    for (i, id) in contact_ids.iter().enumerate() {
        let c = match contacts::get(&tx, id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => return Err(RequestError::UnknownContact(i)),
            Err(e) => return Err(e.into()),
        };
        let a = c.addresses.first();
        inputs.push(TraceInput {
            key: id.to_string(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            address: a.and_then(|a| a.line1.clone()),
            city: a.and_then(|a| a.city.clone()),
            state: a.and_then(|a| a.state.clone()),
            zip: a.and_then(|a| a.zip.clone()),
            phone: c.phones.first().map(|p| p.e164.clone()),
            email: c.emails.first().map(|e| e.email.clone()),
        });
    }
    let random = format!("{}{}", ulid::Ulid::new(), ulid::Ulid::new()).to_lowercase();
    let token = callback_token::sign(callback.key, &random);
    let id = skip_trace::create(&tx, team, tracer.name(), contact_ids, &hash(&random), actor).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let url = format!("{}{}", callback.base_url.trim_end_matches('/'), CALLBACK_PATH.replace("{token}", &token));
    let outcome = tracer.bulk(&inputs, &url).await;
    let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
    match &outcome {
        Ok(job) => skip_trace::requested(&tx, &id, Ok(job)).await?,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "skip trace refused");
            skip_trace::requested(&tx, &id, Err(&format!("{e:#}"))).await?
        }
    }
    let job = skip_trace::get(&tx, &id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(job)
}

fn text(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(x)) => Some(x.to_string()),
        _ => None,
    })
}

fn list<'a>(v: &'a Value, names: &[&str]) -> &'a [Value] {
    names.iter().find_map(|n| v.get(*n).and_then(Value::as_array)).map(Vec::as_slice).unwrap_or(&[])
}

/// Why a callback was not applied.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no skip-trace job has this callback")]
    UnknownToken,
    #[error("body: must be a JSON object")]
    NotAnObject,
    #[error("jobId: does not match the job this callback is for")]
    WrongJob,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What a callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The job had already ended: nothing changed.
    Duplicate,
    /// The provider said the job failed.
    Failed,
    /// The results joined the job's contacts.
    Completed,
}

/// The provider's callback for the job whose token is `token`: a job ends once; the results
/// (phones and emails) join its contacts, never another's.
pub async fn complete(
    db: &Db,
    key: &[u8],
    token: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Completion, CallbackError> {
    // A token that is not ours is refused before any database work.
    let Some(token) = callback_token::verify(key, token) else { return Err(CallbackError::UnknownToken) };
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let Some((id, team)) = skip_trace::job_for_token(&tx, &hash(token)).await? else {
        return Err(CallbackError::UnknownToken);
    };
    let payload: Value = serde_json::from_slice(body)
        .ok()
        .map(crate::event::without_nul)
        .filter(Value::is_object)
        .ok_or(CallbackError::NotAnObject)?;
    scope::apply(&tx, &Scope::team(team.clone())).await?;
    let job = skip_trace::lock(&tx, &id).await?;
    if job.status.ended() {
        return Ok(Completion::Duplicate);
    }
    let given = text(&payload, &["jobId", "job_id", "id"]);
    if job.provider_job_id.is_some() && given != job.provider_job_id {
        return Err(CallbackError::WrongJob);
    }
    let status = text(&payload, &["status"]).unwrap_or_default().to_ascii_lowercase();
    if matches!(status.as_str(), "failed" | "error" | "cancelled") {
        let error = text(&payload, &["error", "message"]).unwrap_or_else(|| status.clone());
        skip_trace::finish(&tx, &id, Ending::Failed, &json!({}), Some(&error), now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(Completion::Failed);
    }
    let summary = apply(&tx, &team, &job, &payload).await?;
    skip_trace::finish(&tx, &id, Ending::Completed, &summary, None, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(job = %id, summary = %summary, "skip trace completed");
    Ok(Completion::Completed)
}

/// Adds what the provider found to the job's contacts; returns the counts.
async fn apply(tx: &nextier_store::Tx<'_>, team: &TeamId, job: &Job, payload: &Value) -> Result<Value, StoreError> {
    let (mut phones_added, mut emails_added, mut contacts_found, mut unmatched) = (0, 0, 0, 0);
    for r in list(payload, &["results", "data", "output"]) {
        let key =
            text(r, &["key", "external_id", "externalId"]).or_else(|| r.get("input").and_then(|i| text(i, &["key"])));
        let Some(key) = key.filter(|k| job.contact_ids.contains(k)) else {
            unmatched += 1;
            continue;
        };
        let contact = ContactId::from_trusted(key);
        let output = r.get("output").unwrap_or(r);
        contacts_found += 1;
        let (mut p_added, mut e_added) = (0, 0);
        for p in list(output, &["phones"]) {
            if p.get("is_connected").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(Ok(e164)) = text(p, &["phone_number", "phoneNumber", "number"]).map(|n| E164::parse(&n)) else {
                continue;
            };
            let kind = match text(p, &["phone_type", "phoneType", "type"]).unwrap_or_default().to_ascii_lowercase() {
                t if t.contains("mobile") || t.contains("wireless") || t.contains("cell") => "mobile",
                t if t.contains("land") => "landline",
                t if t.contains("voip") => "voip",
                _ => "unknown",
            };
            let new = NewPhone { e164: e164.clone(), kind: kind.into(), is_primary: false };
            match contacts::add_phone(tx, team, &contact, &new).await {
                Ok(()) => {
                    p_added += 1;
                    if let Some(carrier) = text(p, &["carrier"]) {
                        contacts::set_carrier_if_unknown(tx, &contact, e164.as_str(), &carrier).await?;
                    }
                }
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for e in list(output, &["emails"]) {
            let raw = match e {
                Value::String(s) => Some(s.clone()),
                other => text(other, &["email", "email_address", "address"]),
            };
            let Some(Ok(email)) = raw.map(|r| Email::parse("email", &r)) else { continue };
            let email = email.as_str().to_lowercase();
            match contacts::add_email(tx, team, &contact, &email, false).await {
                Ok(()) => e_added += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        phones_added += p_added;
        emails_added += e_added;
        contacts::record(
            tx,
            team,
            &contact,
            "skip_traced",
            json!({"job": job.id, "phonesAdded": p_added, "emailsAdded": e_added}),
            "skip_trace",
        )
        .await?;
    }
    Ok(
        json!({"contacts": contacts_found, "phonesAdded": phones_added, "emailsAdded": emails_added, "unmatched": unmatched}),
    )
}
