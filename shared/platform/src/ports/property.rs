//! Property data (RealEstateAPI `/PropertySearch` and `/PropertyDetail`): a search by criteria,
//! paged, and one property's detail, as records the store keeps. The sandbox answers from a
//! small deterministic set, so the local runtime works without a key.

use async_trait::async_trait;
use serde_json::Value;

pub use super::enrichment::ProviderError;
pub use nextier_domain::property::{PostalAddress, Record};

/// A page of a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// How many properties match in all.
    pub total: i64,
    pub records: Vec<Record>,
}

#[async_trait]
pub trait PropertyData: Send + Sync {
    /// Up to `size` (at most 250) properties from `index` matching `criteria` (the provider's
    /// own search fields: `state`, `city`, `zip`, `pre_foreclosure`, `equity_percent`...).
    async fn search(&self, key: Option<&str>, criteria: &Value, index: i64, size: i64) -> Result<Page, ProviderError>;
    /// One property's detail; `None` when the provider has no such property.
    async fn detail(&self, key: Option<&str>, id: &str) -> Result<Option<Record>, ProviderError>;
}

/// The local default: twelve Florida properties with known owners and signals, filtered by
/// `state`, `city` and `zip` when given.
#[derive(Debug, Default)]
pub struct SandboxPropertyData;

fn sandbox_records() -> Vec<Record> {
    let streets = ["Oak St", "Elm St", "Palm Ave", "Bay Dr"];
    let owners = [("Ana", "Ruiz"), ("Bo", "Stone"), ("Cy", "Diaz"), ("Dee", "Lowe"), ("Eli", "Park"), ("Fay", "Moss")];
    (0..12)
        .map(|i| {
            let (first, last) = owners[i % owners.len()];
            let street = format!("{} {}", 10 + i, streets[i % streets.len()]);
            let address = PostalAddress {
                street: Some(street),
                city: Some(if i % 2 == 0 { "Tampa" } else { "Orlando" }.into()),
                state: Some("FL".into()),
                zip: Some(if i % 2 == 0 { "33602" } else { "32801" }.into()),
            };
            let absentee = i % 3 == 0;
            Record {
                external_id: format!("sandbox-{}", 1000 + i),
                mail_address: Some(if absentee {
                    PostalAddress {
                        street: Some(format!("{} Mail Rd", 500 + i)),
                        city: Some("Miami".into()),
                        state: Some("FL".into()),
                        zip: Some("33101".into()),
                    }
                } else {
                    address.clone()
                }),
                address,
                county: Some("Hillsborough".into()),
                property_type: Some("SFR".into()),
                owners: vec![(Some(first.into()), Some(last.into()))],
                owner_type: Some("individual".into()),
                owner_occupied: Some(!absentee),
                vacant: Some(i % 4 == 0),
                pre_foreclosure: Some(i % 5 == 0),
                reverse_mortgage: Some(false),
                equity_percent: Some([85.0, 20.0, -5.0, 50.0][i % 4]),
                estimated_value: Some(250_000 + 10_000 * i as i64),
                estimated_equity: None,
                mortgage_balance: None,
                loan_maturity_date: None,
                year_built: Some(1970 + i as i32),
                buildable_zoning: Some(false),
                raw: Value::Null,
            }
        })
        .collect()
}

#[async_trait]
impl PropertyData for SandboxPropertyData {
    async fn search(&self, _key: Option<&str>, criteria: &Value, index: i64, size: i64) -> Result<Page, ProviderError> {
        let want = |field: &str, got: &Option<String>| match criteria.get(field).and_then(Value::as_str) {
            Some(w) => got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(w)),
            None => true,
        };
        let all: Vec<Record> = sandbox_records()
            .into_iter()
            .filter(|r| want("state", &r.address.state) && want("city", &r.address.city) && want("zip", &r.address.zip))
            .collect();
        let total = all.len() as i64;
        let records = all.into_iter().skip(index.max(0) as usize).take(size.clamp(0, 250) as usize).collect();
        Ok(Page { total, records })
    }

    async fn detail(&self, _key: Option<&str>, id: &str) -> Result<Option<Record>, ProviderError> {
        Ok(sandbox_records().into_iter().find(|r| r.external_id == id))
    }
}
