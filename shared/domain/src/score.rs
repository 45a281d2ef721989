//! The contact score, 0-100, and why (issue 15, DOMAIN.md C.2): a weighted sum of data
//! quality, reachability, role value, property opportunity and business fit, each 0-100 with
//! its reasons. Weights are the team's (settings scope `scoring`, in percent), the original's
//! 25/25/20/15/15 by default. Pure; the store gathers the inputs and saves the breakdown.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the score is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub has_name: bool,
    pub has_email: bool,
    pub has_address: bool,
    pub has_company_or_title: bool,
    /// Numbers not marked do-not-contact: (line type, grade, activity).
    pub phones: Vec<(String, Option<char>, Option<i32>)>,
    /// The contact's business roles: (role, decision maker).
    pub roles: Vec<(String, bool)>,
    /// The highest distress score among the properties the contact owns.
    pub property_distress: Option<i32>,
    /// The contact's businesses: (sector, employees, annual revenue).
    pub businesses: Vec<(Option<String>, Option<i32>, Option<i64>)>,
}

/// The weights, in percent (normalised when they do not sum to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    pub data_quality: i32,
    pub reachability: i32,
    pub role_value: i32,
    pub property_opportunity: i32,
    pub business_fit: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights { data_quality: 25, reachability: 25, role_value: 20, property_opportunity: 15, business_fit: 15 }
    }
}

impl Weights {
    /// From settings `weight_data_quality`, `weight_reachability`, `weight_role_value`,
    /// `weight_property_opportunity`, `weight_business_fit` (0-100 each); any other value,
    /// or all zero, keeps the defaults.
    pub fn from_settings(s: &HashMap<String, i64>) -> Weights {
        let d = Weights::default();
        let w = |name: &str, default: i32| {
            s.get(name).copied().filter(|v| (0..=100).contains(v)).map(|v| v as i32).unwrap_or(default)
        };
        let out = Weights {
            data_quality: w("weight_data_quality", d.data_quality),
            reachability: w("weight_reachability", d.reachability),
            role_value: w("weight_role_value", d.role_value),
            property_opportunity: w("weight_property_opportunity", d.property_opportunity),
            business_fit: w("weight_business_fit", d.business_fit),
        };
        if out.sum() == 0 {
            d
        } else {
            out
        }
    }

    fn sum(&self) -> i32 {
        self.data_quality + self.reachability + self.role_value + self.property_opportunity + self.business_fit
    }
}

/// One part of the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// `dataQuality`, `reachability`, `roleValue`, `propertyOpportunity` or `businessFit`.
    pub name: String,
    /// 0-100.
    pub score: i32,
    /// Its weight, percent of the total.
    pub weight: f64,
    /// What it adds to the total (`score × weight`).
    pub points: f64,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// The score and its explanation, as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub total: i32,
    pub components: Vec<Component>,
}

/// A role's value (owner 100 … unknown 10; DOMAIN.md C.2).
pub fn role_value(role: &str) -> i32 {
    match role {
        "owner" => 100,
        "ceo" => 95,
        "partner" => 85,
        "investor" => 75,
        "executive" => 70,
        "sales_manager" => 55,
        "manager" => 50,
        "professional" => 35,
        _ => 10,
    }
}

/// The decision-maker bonus.
pub const DECISION_MAKER_BONUS: i32 = 15;

fn grade_value(g: char) -> i32 {
    match g {
        'A' => 100,
        'B' => 85,
        'C' => 60,
        'D' => 30,
        _ => 10,
    }
}

fn data_quality(i: &Inputs) -> (i32, Vec<String>) {
    let parts = [
        (i.has_name, 25, "a full name"),
        (!i.phones.is_empty(), 25, "a phone"),
        (i.has_email, 20, "an email"),
        (i.has_address, 20, "an address"),
        (i.has_company_or_title, 10, "a company or title"),
    ];
    let score = parts.iter().filter(|p| p.0).map(|p| p.1).sum();
    let missing: Vec<&str> = parts.iter().filter(|p| !p.0).map(|p| p.2).collect();
    let reasons =
        if missing.is_empty() { vec!["complete".to_owned()] } else { vec![format!("missing {}", missing.join(", "))] };
    (score, reasons)
}

fn reachability(i: &Inputs) -> (i32, Vec<String>) {
    let best = i
        .phones
        .iter()
        .filter(|(t, _, _)| t != "landline")
        .map(|(t, g, a)| {
            let base = match g {
                Some(g) => grade_value(*g),
                None if t == "mobile" => 50,
                None => 40,
            };
            let score = match a {
                Some(a) => (base * 6 + (*a).clamp(0, 100) * 4) / 10,
                None => base,
            };
            let why = match (g, a) {
                (Some(g), Some(a)) => format!("{t} graded {g}, activity {a}"),
                (Some(g), None) => format!("{t} graded {g}"),
                (None, _) => format!("{t}, not graded"),
            };
            (score, why)
        })
        .max_by_key(|(s, _)| *s);
    match best {
        Some((s, why)) => (s, vec![why]),
        None if !i.phones.is_empty() => (10, vec!["landline only: not textable".into()]),
        None => (0, vec!["no phone".into()]),
    }
}

fn role(i: &Inputs) -> (i32, Vec<String>) {
    let best = i
        .roles
        .iter()
        .map(|(r, dm)| {
            let s = (role_value(r) + if *dm { DECISION_MAKER_BONUS } else { 0 }).min(100);
            (s, if *dm { format!("{r}, decision maker") } else { r.clone() })
        })
        .max_by_key(|(s, _)| *s);
    match best {
        Some((s, why)) => (s, vec![why]),
        None => (role_value("unknown"), vec!["no known role".into()]),
    }
}

fn property(i: &Inputs) -> (i32, Vec<String>) {
    match i.property_distress {
        Some(d) => (d.clamp(0, 100), vec![format!("owns a property with distress {d}")]),
        None => (0, vec!["no property on file".into()]),
    }
}

fn business(i: &Inputs, targets: &[String]) -> (i32, Vec<String>) {
    let best = i
        .businesses
        .iter()
        .map(|(sector, employees, revenue)| {
            let mut s = 40;
            let mut why = vec!["linked to a business".to_owned()];
            match sector {
                Some(sec) if targets.iter().any(|t| t.eq_ignore_ascii_case(sec)) => {
                    s += 30;
                    why.push(format!("sector {sec} is a target"));
                }
                Some(sec) if targets.is_empty() => {
                    s += 10;
                    why.push(format!("sector {sec}"));
                }
                _ => {}
            }
            if employees.is_some() {
                s += 15;
                why.push("employee count known".into());
            }
            if revenue.is_some() {
                s += 15;
                why.push("revenue known".into());
            }
            (s.min(100), why)
        })
        .max_by_key(|(s, _)| *s);
    best.unwrap_or((0, vec!["no business".into()]))
}

/// The score of `inputs` under `weights`; `target_sectors` (settings `scoring.target_sectors`)
/// raises the business fit of contacts in those sectors.
pub fn score(inputs: &Inputs, weights: &Weights, target_sectors: &[String]) -> Breakdown {
    let sum = f64::from(weights.sum().max(1));
    let parts = [
        ("dataQuality", weights.data_quality, data_quality(inputs)),
        ("reachability", weights.reachability, reachability(inputs)),
        ("roleValue", weights.role_value, role(inputs)),
        ("propertyOpportunity", weights.property_opportunity, property(inputs)),
        ("businessFit", weights.business_fit, business(inputs, target_sectors)),
    ];
    let components: Vec<Component> = parts
        .into_iter()
        .map(|(name, w, (score, reasons))| {
            let weight = f64::from(w) / sum;
            let points = (f64::from(score) * weight * 10.0).round() / 10.0;
            Component { name: name.into(), score, weight: (weight * 1000.0).round() / 1000.0, points, reasons }
        })
        .collect();
    let total =
        components.iter().map(|c| f64::from(c.score) * f64::from(weight_of(weights, &c.name)) / sum).sum::<f64>();
    Breakdown { total: (total.round() as i32).clamp(0, 100), components }
}

fn weight_of(w: &Weights, name: &str) -> i32 {
    match name {
        "dataQuality" => w.data_quality,
        "reachability" => w.reachability,
        "roleValue" => w.role_value,
        "propertyOpportunity" => w.property_opportunity,
        _ => w.business_fit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Inputs {
        Inputs {
            has_name: true,
            has_email: true,
            has_address: true,
            has_company_or_title: true,
            phones: vec![("mobile".into(), Some('A'), Some(100))],
            roles: vec![("owner".into(), true)],
            property_distress: Some(100),
            businesses: vec![(Some("plumbing".into()), Some(12), Some(900_000))],
        }
    }

    #[test]
    fn a_perfect_contact_scores_100_and_an_empty_one_scores_the_unknown_role_only() {
        let b = score(&full(), &Weights::default(), &["plumbing".into()]);
        assert_eq!(b.total, 100, "{b:?}");
        let empty = score(&Inputs::default(), &Weights::default(), &[]);
        // Only the unknown role's 10 points, at 20%.
        assert_eq!(empty.total, 2);
        assert_eq!(empty.components.len(), 5);
        assert_eq!(empty.components[1].reasons, vec!["no phone".to_owned()]);
    }

    #[test]
    fn points_add_up_to_the_total_and_reasons_explain_each_part() {
        let mut i = full();
        i.phones = vec![("mobile".into(), Some('C'), Some(50)), ("landline".into(), Some('A'), Some(99))];
        i.roles = vec![("manager".into(), false)];
        i.property_distress = None;
        let b = score(&i, &Weights::default(), &[]);
        let sum: f64 = b.components.iter().map(|c| c.points).sum();
        assert!((sum - f64::from(b.total)).abs() <= 1.0, "{sum} vs {}", b.total);
        let reach = &b.components[1];
        // The landline's A does not count: 60% of C (60) + 40% of 50.
        assert_eq!((reach.score, reach.reasons[0].as_str()), (56, "mobile graded C, activity 50"));
        assert_eq!(b.components[2].score, 50);
        assert_eq!(b.components[3].score, 0);
    }

    #[test]
    fn weights_come_from_settings_and_change_the_total() {
        let s: HashMap<String, i64> =
            [("weight_property_opportunity".to_owned(), 100), ("weight_data_quality".to_owned(), 0)].into();
        let w = Weights::from_settings(&s);
        assert_eq!(w.property_opportunity, 100);
        let i = Inputs { property_distress: Some(90), ..Inputs::default() };
        let heavy = score(&i, &w, &[]).total;
        let default = score(&i, &Weights::default(), &[]).total;
        assert!(heavy > default, "{heavy} > {default}");
        let zero: HashMap<String, i64> = [
            "weight_data_quality",
            "weight_reachability",
            "weight_role_value",
            "weight_property_opportunity",
            "weight_business_fit",
        ]
        .iter()
        .map(|n| (n.to_string(), 0))
        .collect();
        assert_eq!(Weights::from_settings(&zero), Weights::default());
        let bad: HashMap<String, i64> = [("weight_role_value".to_owned(), 900)].into();
        assert_eq!(Weights::from_settings(&bad), Weights::default());
    }

    #[test]
    fn decision_makers_get_the_bonus_capped_at_100() {
        let mut i =
            Inputs { roles: vec![("manager".into(), true), ("professional".into(), false)], ..Inputs::default() };
        assert_eq!(score(&i, &Weights::default(), &[]).components[2].score, 65);
        i.roles = vec![("owner".into(), true)];
        assert_eq!(score(&i, &Weights::default(), &[]).components[2].score, 100);
    }
}
