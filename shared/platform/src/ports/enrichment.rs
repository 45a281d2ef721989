//! The enrichment providers' ports (issue 15): skip trace ([`Tracer`]: Tracerfy, queue-based;
//! RealEstateAPI's single trace), phone intelligence ([`PhoneIntel`]: Trestle) and company
//! data ([`Companies`]: Apollo). Deployed, `nextier_providers::{tracerfy, trestle, apollo,
//! realestate}`; locally the sandboxes here answer plausibly and deterministically (the same
//! input, the same answer), so a local run needs no account.
//!
//! Each call may carry the team's own key (a masked team setting); `None` uses the platform's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nextier_domain::enrichment::Provider;
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Why a provider call did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// 429: try again after the provider's `Retry-After` (or a default).
    #[error("rate limited by the provider (retry after {0:?})")]
    RateLimited(Duration),
    /// Timeouts, connection faults, 5xx: worth a retry.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// 401/403: our key is wrong; an operator must fix it.
    #[error("the provider refused our credentials: {0}")]
    Unauthorized(String),
    /// The provider answered something we cannot read, or refused the input (other 4xx):
    /// retrying the same call will not help.
    #[error("the provider's answer is unusable: {0}")]
    Malformed(String),
}

impl ProviderError {
    /// Worth asking again later.
    pub fn retryable(&self) -> bool {
        matches!(self, ProviderError::RateLimited(_) | ProviderError::Unavailable(_))
    }
}

/// Who to trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceQuery {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
}

impl TraceQuery {
    /// The cache key of this query (normalised; see `nextier_domain::enrichment::input_key`).
    pub fn key(&self) -> String {
        nextier_domain::enrichment::input_key(&[
            ("first_name", self.first_name.as_deref()),
            ("last_name", self.last_name.as_deref()),
            ("address", self.address.as_deref()),
            ("city", self.city.as_deref()),
            ("state", self.state.as_deref()),
            ("zip", self.zip.as_deref()),
        ])
    }

    /// A trace needs a name and something to place it (an address or a zip).
    pub fn traceable(&self) -> bool {
        let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        has(&self.last_name) && (has(&self.address) || has(&self.zip))
    }
}

/// A number a trace found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundPhone {
    /// As the provider wrote it; parsed to E.164 when applied.
    pub number: String,
    /// `mobile`, `landline`, `voip` or `unknown`.
    pub line_type: String,
    pub carrier: Option<String>,
}

/// What a trace found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceResult {
    pub phones: Vec<FoundPhone>,
    pub emails: Vec<String>,
}

/// A submitted batch: answered at once (one result per query, in order), or queued at the
/// provider under a reference to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    Done(Vec<TraceResult>),
    Queued(String),
}

/// A batch skip trace. Tracerfy takes at most 10 submissions in 5 minutes, so queries go in
/// batches, never one call per person.
#[async_trait]
pub trait Tracer: Send + Sync {
    fn provider(&self) -> Provider;
    /// Whether its traces are enhanced (15 credits at Tracerfy).
    fn enhanced(&self) -> bool {
        false
    }
    /// The most queries one submission carries.
    fn max_batch(&self) -> usize {
        250
    }
    async fn submit(&self, key: Option<&str>, queries: &[TraceQuery]) -> Result<Submitted, ProviderError>;
    /// A queued batch: `None` while the provider is still working on it, else one result per
    /// query submitted, in order (empty for a query it found nothing for).
    async fn poll(
        &self,
        key: Option<&str>,
        reference: &str,
        queries: &[TraceQuery],
    ) -> Result<Option<Vec<TraceResult>>, ProviderError>;
}

/// What phone intelligence says of one number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneReport {
    /// `mobile`, `landline`, `voip` or `unknown`.
    pub line_type: String,
    pub carrier: Option<String>,
    pub prepaid: Option<bool>,
    /// 0-100.
    pub activity_score: Option<i32>,
    /// A-F.
    pub contact_grade: Option<char>,
    pub name_match: Option<bool>,
}

#[async_trait]
pub trait PhoneIntel: Send + Sync {
    fn provider(&self) -> Provider;
    /// `e164` with the name we hold for it (for the name match).
    async fn lookup(
        &self,
        key: Option<&str>,
        e164: &str,
        name: Option<&str>,
    ) -> Result<Option<PhoneReport>, ProviderError>;
}

/// An organisation as Apollo enriches it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: Option<String>,
    pub name: Option<String>,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub employees: Option<i32>,
    pub annual_revenue: Option<i64>,
}

/// A person a people search found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub seniority: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[async_trait]
pub trait Companies: Send + Sync {
    fn provider(&self) -> Provider;
    /// `None` when the provider does not know the organisation.
    async fn enrich(
        &self,
        key: Option<&str>,
        domain: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Organization>, ProviderError>;
    /// The organisation's people at the given seniorities (owner, founder, c_suite, ...).
    async fn people(
        &self,
        key: Option<&str>,
        organization_id: &str,
        seniorities: &[&str],
    ) -> Result<Vec<Person>, ProviderError>;
}

fn digest(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// A sandbox number: a real area code, the 555 exchange (never dialled locally: the local
/// transport is a sandbox too).
fn sandbox_number(d: &[u8]) -> String {
    const AREAS: [&str; 8] = ["312", "415", "646", "702", "213", "305", "617", "512"];
    format!("+1{}555{:04}", AREAS[usize::from(d[0]) % 8], 1000 + u16::from_le_bytes([d[1], d[2]]) % 9000)
}

/// The local skip trace: a traceable query gets one or two numbers (the 555 exchange), the
/// first a mobile; it answers at once or, every other
/// time for the same query, after one poll (so the local loop exercises both).
#[derive(Default)]
pub struct SandboxTracer {
    calls: AtomicUsize,
}

impl SandboxTracer {
    /// Submissions and polls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(q: &TraceQuery) -> TraceResult {
        if !q.traceable() {
            return TraceResult::default();
        }
        let d = digest(&q.key());
        let n = |i: usize| sandbox_number(&d[i..i + 3]);
        let mut phones = vec![FoundPhone { number: n(0), line_type: "mobile".into(), carrier: None }];
        if d[4].is_multiple_of(2) {
            phones.push(FoundPhone { number: n(2), line_type: "landline".into(), carrier: None });
        }
        let first = q.first_name.as_deref().unwrap_or("someone").to_lowercase();
        let last = q.last_name.as_deref().unwrap_or("").to_lowercase();
        let local: String =
            format!("{first}.{last}").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
        TraceResult { phones, emails: vec![format!("{local}@example.com")] }
    }
}

#[async_trait]
impl Tracer for SandboxTracer {
    fn provider(&self) -> Provider {
        Provider::Sandbox
    }

    async fn submit(&self, _key: Option<&str>, queries: &[TraceQuery]) -> Result<Submitted, ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        // Every other batch is queued, so local runs exercise the poll too.
        if n.is_multiple_of(2) {
            return Ok(Submitted::Queued(format!("sandbox-{n}")));
        }
        Ok(Submitted::Done(queries.iter().map(Self::answer).collect()))
    }

    async fn poll(
        &self,
        _key: Option<&str>,
        _reference: &str,
        queries: &[TraceQuery],
    ) -> Result<Option<Vec<TraceResult>>, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Some(queries.iter().map(Self::answer).collect()))
    }
}

/// The local phone intelligence: grades spread over A-F by the number's digits, the line type
/// as recorded where known, a carrier among the big three.
#[derive(Default)]
pub struct SandboxPhoneIntel {
    calls: AtomicUsize,
}

impl SandboxPhoneIntel {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl PhoneIntel for SandboxPhoneIntel {
    fn provider(&self) -> Provider {
        Provider::Sandbox
    }

    async fn lookup(
        &self,
        _key: Option<&str>,
        e164: &str,
        _name: Option<&str>,
    ) -> Result<Option<PhoneReport>, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let d = digest(e164);
        let grade = ['A', 'A', 'B', 'B', 'C', 'D', 'F'][usize::from(d[0]) % 7];
        let carrier = ["Verizon Wireless", "T-Mobile USA, Inc.", "AT&T Mobility"][usize::from(d[1]) % 3];
        Ok(Some(PhoneReport {
            line_type: if d[2].is_multiple_of(5) { "landline" } else { "mobile" }.into(),
            carrier: Some(carrier.into()),
            prepaid: Some(d[3].is_multiple_of(4)),
            activity_score: Some(i32::from(d[4]) * 100 / 255),
            contact_grade: Some(grade),
            name_match: Some(!d[5].is_multiple_of(3)),
        }))
    }
}

/// The local company data: every organisation is known, with an owner and a manager.
#[derive(Default)]
pub struct SandboxCompanies;

#[async_trait]
impl Companies for SandboxCompanies {
    fn provider(&self) -> Provider {
        Provider::Sandbox
    }

    async fn enrich(
        &self,
        _key: Option<&str>,
        domain: Option<&str>,
        name: Option<&str>,
    ) -> Result<Option<Organization>, ProviderError> {
        let label = name.or(domain).unwrap_or("unknown");
        let d = digest(label);
        Ok(Some(Organization {
            id: Some(format!("sandbox-org-{}", hex::encode(&d[..6]))),
            name: name.map(str::to_owned),
            domain: domain.map(str::to_owned),
            industry: Some(["construction", "real estate", "retail", "health care"][usize::from(d[0]) % 4].into()),
            employees: Some(1 + i32::from(d[1]) % 200),
            annual_revenue: Some(100_000 + i64::from(d[2]) * 50_000),
        }))
    }

    async fn people(
        &self,
        _key: Option<&str>,
        organization_id: &str,
        _seniorities: &[&str],
    ) -> Result<Vec<Person>, ProviderError> {
        let d = digest(organization_id);
        let person = |first: &str, title: &str, seniority: &str, i: usize| Person {
            first_name: Some(first.into()),
            last_name: Some(["Rivera", "Chen", "Okafor", "Novak"][usize::from(d[i]) % 4].into()),
            title: Some(title.into()),
            seniority: Some(seniority.into()),
            email: None,
            phone: None,
        };
        Ok(vec![person("Sam", "Owner", "owner", 0), person("Alex", "Operations Manager", "manager", 1)])
    }
}
