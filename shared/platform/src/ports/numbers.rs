//! Number provisioning (DOMAIN.md B2): each team has its own SignalHouse subgroup, and a
//! number is the team's only when the provider lists it there. The provider behind
//! [`NumberProvider`] is SignalHouse when configured (`nextier_providers::signalhouse_numbers`),
//! else [`SandboxNumbers`], which answers plausibly so local runs need no SignalHouse.
//! Purchases complete by webhook event (`NUMBER_PURCHASE_SUCCESSFUL` / `_FAILED`), handled by
//! the inbound consumer.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

/// A team's subgroup at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subgroup {
    pub id: String,
    pub name: Option<String>,
}

/// A number the provider offers for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumber {
    /// E.164 (`+14155551234`).
    pub number: String,
    pub state: Option<String>,
    pub city: Option<String>,
}

/// What to search for (`GET /number/available`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub state: Option<String>,
    pub npa: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// The provider refused our credentials (401/403): a configuration fault an operator
    /// must fix, never the caller's.
    #[error("the provider refused our credentials: {0}")]
    Unauthorized(String),
    /// Timeouts, 429, 5xx: worth a retry later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this request (another 4xx).
    #[error("the provider refused: {0}")]
    Refused(String),
}

#[async_trait]
pub trait NumberProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// `POST /subgroup {groupId, subgroupName}`; the key makes a retry replay the first answer.
    async fn create_subgroup(&self, name: &str, idempotency_key: &str) -> Result<Subgroup, ProvisionError>;
    /// `GET /subgroup?id=`; `None` when the provider does not know it.
    async fn subgroup(&self, id: &str) -> Result<Option<Subgroup>, ProvisionError>;
    /// Whether the provider lists `e164` in `subgroup` (`GET /number?subgroupId=&phoneNumber=`,
    /// an exact match of the number, not the provider's partial one).
    async fn owns(&self, subgroup: &str, e164: &str) -> Result<bool, ProvisionError>;
    /// `GET /number/health?phoneNumber=`: the 1-10 score of an owned number, if scored.
    async fn health(&self, e164: &str) -> Result<Option<f64>, ProvisionError>;
    /// `GET /number/available?state=&npa=&smsEnabled=true`.
    async fn available(&self, search: &Search) -> Result<Vec<AvailableNumber>, ProvisionError>;
    /// `POST /number {phoneNumbers, subgroupId, country}`; each number completes or fails
    /// later, by webhook event.
    async fn purchase(&self, subgroup: &str, numbers: &[String], idempotency_key: &str) -> Result<(), ProvisionError>;
}

/// The local stand-in. A permissive sandbox (the local runtime) lists any number in the first
/// subgroup that asks for it, so a developer can register any number; a strict one (tests)
/// lists only what [`SandboxNumbers::place`] put there. Purchases are remembered and complete
/// only when a `NUMBER_PURCHASE_SUCCESSFUL` event is posted to the webhook, as in production.
#[derive(Default)]
pub struct SandboxNumbers {
    permissive: bool,
    subgroups: Mutex<Vec<Subgroup>>,
    /// Number → the subgroup that owns it.
    owned: Mutex<HashMap<String, String>>,
    purchases: Mutex<Vec<(String, Vec<String>)>>,
}

impl SandboxNumbers {
    /// Lists only what [`place`](Self::place) put in a subgroup.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Lists any unowned number in the first subgroup that asks (local runs).
    pub fn permissive() -> Self {
        Self { permissive: true, ..Self::default() }
    }

    /// The provider now lists `e164` in `subgroup` (as after a purchase in its portal).
    pub fn place(&self, subgroup: &str, e164: &str) {
        self.owned.lock().unwrap_or_else(|p| p.into_inner()).insert(e164.to_owned(), subgroup.to_owned());
    }

    /// Every purchase asked for: (subgroup, numbers).
    pub fn purchases(&self) -> Vec<(String, Vec<String>)> {
        self.purchases.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn subgroups(&self) -> Vec<Subgroup> {
        self.subgroups.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl NumberProvider for SandboxNumbers {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_subgroup(&self, name: &str, idempotency_key: &str) -> Result<Subgroup, ProvisionError> {
        let mut all = self.subgroups.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("sbx-subgroup-{idempotency_key}");
        if let Some(s) = all.iter().find(|s| s.id == id) {
            return Ok(s.clone());
        }
        let s = Subgroup { id, name: Some(name.to_owned()) };
        all.push(s.clone());
        Ok(s)
    }

    async fn subgroup(&self, id: &str) -> Result<Option<Subgroup>, ProvisionError> {
        Ok(self.subgroups.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|s| s.id == id).cloned())
    }

    async fn owns(&self, subgroup: &str, e164: &str) -> Result<bool, ProvisionError> {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        match owned.get(e164) {
            Some(s) => Ok(s == subgroup),
            None if self.permissive => {
                owned.insert(e164.to_owned(), subgroup.to_owned());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn health(&self, e164: &str) -> Result<Option<f64>, ProvisionError> {
        Ok(self.owned.lock().unwrap_or_else(|p| p.into_inner()).contains_key(e164).then_some(10.0))
    }

    async fn available(&self, search: &Search) -> Result<Vec<AvailableNumber>, ProvisionError> {
        let npa = search.npa.clone().unwrap_or_else(|| "212".into());
        Ok((1..=search.limit.clamp(1, 20))
            .map(|i| AvailableNumber {
                number: format!("+1{npa}{}", 2_000_100 + i),
                state: search.state.clone(),
                city: None,
            })
            .collect())
    }

    async fn purchase(&self, subgroup: &str, numbers: &[String], _key: &str) -> Result<(), ProvisionError> {
        self.purchases.lock().unwrap_or_else(|p| p.into_inner()).push((subgroup.to_owned(), numbers.to_vec()));
        Ok(())
    }
}
