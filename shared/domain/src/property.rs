//! Property distress (DOMAIN.md C.2): the original's matrix, +10 for each signal a property
//! shows, capped at 100, with the weights in the team's settings (`property` /
//! `weight.<signal>`). A score keeps every signal it looked at, its value and the points it
//! gave, so a person sees why.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

crate::text_enum! {
    /// A distress signal.
    pub enum Signal {
        /// A notice of default or lis pendens is recorded.
        PreForeclosure = "pre_foreclosure",
        /// A reverse mortgage: an older owner.
        SeniorOwner = "senior_owner",
        /// The property is vacant.
        Vacant = "vacant",
        /// The owner does not live there (absentee).
        NonOccupant = "non_occupant",
        /// Equity above 80%.
        HighEquity = "high_equity",
        /// Equity above 0 and below 30%.
        LowEquity = "low_equity",
        /// Negative equity.
        Underwater = "underwater",
        /// A loan matures within a year.
        LoanMaturityRisk = "loan_maturity_risk",
        /// Zoned so that more can be built.
        BuildableZoning = "buildable_zoning",
    }
}

/// What a property record says, as far as distress goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub pre_foreclosure: Option<bool>,
    pub reverse_mortgage: Option<bool>,
    pub vacant: Option<bool>,
    pub owner_occupied: Option<bool>,
    pub equity_percent: Option<f64>,
    pub loan_maturity_date: Option<NaiveDate>,
    pub buildable_zoning: Option<bool>,
}

/// One signal as scored: whether it is present, what it was read from, and its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    pub signal: Signal,
    pub present: bool,
    /// The value it was read from (`true`, `85.5`, `2027-03-01`), absent when the record says
    /// nothing.
    pub value: Option<String>,
    pub points: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Distress {
    /// 0-100.
    pub score: i32,
    pub signals: Vec<Scored>,
}

/// The team's weights (10 each by default; 0 switches a signal off).
pub fn weights(settings: &HashMap<String, String>) -> HashMap<Signal, i32> {
    Signal::ALL
        .iter()
        .map(|s| {
            let w = settings
                .get(&format!("weight.{}", s.as_str()))
                .and_then(|v| v.trim().parse::<i32>().ok())
                .filter(|w| (0..=100).contains(w))
                .unwrap_or(10);
            (*s, w)
        })
        .collect()
}

/// Scores a property's facts on `today`.
pub fn score(f: &Facts, weights: &HashMap<Signal, i32>, today: NaiveDate) -> Distress {
    let flag = |v: Option<bool>| v.map(|b| b.to_string());
    let equity = f.equity_percent.map(|e| format!("{e}"));
    let rows: Vec<(Signal, bool, Option<String>)> = vec![
        (Signal::PreForeclosure, f.pre_foreclosure == Some(true), flag(f.pre_foreclosure)),
        (Signal::SeniorOwner, f.reverse_mortgage == Some(true), flag(f.reverse_mortgage)),
        (Signal::Vacant, f.vacant == Some(true), flag(f.vacant)),
        (Signal::NonOccupant, f.owner_occupied == Some(false), flag(f.owner_occupied.map(|o| !o))),
        (Signal::HighEquity, f.equity_percent.is_some_and(|e| e > 80.0), equity.clone()),
        (Signal::LowEquity, f.equity_percent.is_some_and(|e| e > 0.0 && e < 30.0), equity.clone()),
        (Signal::Underwater, f.equity_percent.is_some_and(|e| e < 0.0), equity),
        (
            Signal::LoanMaturityRisk,
            f.loan_maturity_date.is_some_and(|d| d >= today && (d - today).num_days() < 365),
            f.loan_maturity_date.map(|d| d.to_string()),
        ),
        (Signal::BuildableZoning, f.buildable_zoning == Some(true), flag(f.buildable_zoning)),
    ];
    let signals: Vec<Scored> = rows
        .into_iter()
        .map(|(signal, present, value)| Scored {
            signal,
            present,
            value,
            points: if present { weights.get(&signal).copied().unwrap_or(10) } else { 0 },
        })
        .collect();
    let score = signals.iter().map(|s| s.points).sum::<i32>().clamp(0, 100);
    Distress { score, signals }
}

/// A postal address as the provider gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
}

/// One property as the provider describes it (every field may be missing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The provider's id (what `/PropertyDetail` takes).
    pub external_id: String,
    pub address: PostalAddress,
    pub county: Option<String>,
    pub property_type: Option<String>,
    /// Up to two owners as (first name, last name), in that order.
    pub owners: Vec<(Option<String>, Option<String>)>,
    /// `individual`, `corporate`, `trust`, `estate` or `joint`.
    pub owner_type: Option<String>,
    pub mail_address: Option<PostalAddress>,
    pub owner_occupied: Option<bool>,
    pub vacant: Option<bool>,
    pub pre_foreclosure: Option<bool>,
    pub reverse_mortgage: Option<bool>,
    pub equity_percent: Option<f64>,
    pub estimated_value: Option<i64>,
    pub estimated_equity: Option<i64>,
    pub mortgage_balance: Option<i64>,
    pub loan_maturity_date: Option<NaiveDate>,
    pub year_built: Option<i32>,
    pub buildable_zoning: Option<bool>,
    /// The provider's answer, kept as it came.
    pub raw: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
    }

    #[test]
    fn each_signal_adds_its_weight_and_the_score_is_capped() {
        let w = weights(&HashMap::new());
        let f = Facts {
            pre_foreclosure: Some(true),
            vacant: Some(true),
            owner_occupied: Some(false),
            equity_percent: Some(85.0),
            loan_maturity_date: NaiveDate::from_ymd_opt(2027, 6, 1),
            ..Facts::default()
        };
        let d = score(&f, &w, today());
        assert_eq!(d.score, 50);
        let hi = d.signals.iter().find(|s| s.signal == Signal::HighEquity).unwrap();
        assert_eq!((hi.present, hi.value.as_deref(), hi.points), (true, Some("85"), 10));
        let low = d.signals.iter().find(|s| s.signal == Signal::LowEquity).unwrap();
        assert_eq!((low.present, low.points), (false, 0));
        let heavy: HashMap<String, String> =
            Signal::ALL.iter().map(|s| (format!("weight.{}", s.as_str()), "40".to_owned())).collect();
        assert_eq!(score(&f, &weights(&heavy), today()).score, 100, "capped at 100");
    }

    #[test]
    fn equity_bands_and_maturity_are_exact() {
        let w = weights(&HashMap::new());
        let at = |e: f64| score(&Facts { equity_percent: Some(e), ..Facts::default() }, &w, today());
        let present = |d: &Distress| d.signals.iter().filter(|s| s.present).map(|s| s.signal).collect::<Vec<_>>();
        assert_eq!(present(&at(-5.0)), vec![Signal::Underwater]);
        assert!(present(&at(0.0)).is_empty());
        assert_eq!(present(&at(29.9)), vec![Signal::LowEquity]);
        assert!(present(&at(80.0)).is_empty());
        assert_eq!(present(&at(80.1)), vec![Signal::HighEquity]);
        let past = Facts { loan_maturity_date: NaiveDate::from_ymd_opt(2026, 1, 1), ..Facts::default() };
        assert_eq!(score(&past, &w, today()).score, 0, "a loan that matured already is not a risk ahead");
        let off: HashMap<String, String> = [("weight.vacant".to_owned(), "0".to_owned())].into_iter().collect();
        assert_eq!(score(&Facts { vacant: Some(true), ..Facts::default() }, &weights(&off), today()).score, 0);
        let none = score(&Facts::default(), &w, today());
        assert_eq!(none.score, 0);
        assert!(none.signals.iter().all(|s| s.value.is_none()), "a record that says nothing shows nothing");
    }
}
