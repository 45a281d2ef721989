//! Request bodies of the contacts group and their validation into store values. Every
//! problem names its field by JSON path; all problems of a request are reported together.

use nextier_domain::email::Email;
use nextier_domain::lead_state::LeadState;
use nextier_domain::phone::E164;
use nextier_domain::validation::text;
use nextier_domain::FieldError;
use nextier_store::contacts::{Fields, Filter, NewAddress, NewPhone};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

pub const PHONE_TYPES: [&str; 4] = ["mobile", "landline", "voip", "unknown"];
pub const PIPELINE: [&str; 6] = ["raw", "ready", "queued", "sent", "replied", "booked"];

/// Distinguishes an absent field (keep) from `null` (clear) in PATCH bodies.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PhoneInput {
    /// Any common US format; stored as E.164.
    pub number: String,
    /// mobile, landline, voip or unknown (default).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressInput {
    pub line1: Option<String>,
    pub city: Option<String>,
    /// Two-letter state code.
    pub state: Option<String>,
    /// Five-digit ZIP (ZIP+4 is cut to five).
    pub zip: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    #[serde(default)]
    pub phones: Vec<PhoneInput>,
    #[serde(default)]
    pub emails: Vec<String>,
    pub address: Option<AddressInput>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source: Option<String>,
    pub score: Option<i32>,
    pub pipeline_status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateContact {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    /// active or archived.
    pub status: Option<String>,
    pub pipeline_status: Option<String>,
    pub score: Option<i32>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    #[serde(default)]
    pub add_phones: Vec<PhoneInput>,
    #[serde(default)]
    pub add_emails: Vec<String>,
}

/// Collects every field problem of one request.
#[derive(Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    /// A list of 1 to `max` ids in `field`, in order and without repeats; a bad one is
    /// named `field[i]`.
    pub fn ids<T: PartialEq>(
        &mut self,
        field: &str,
        raw: &[String],
        max: usize,
        parse: impl Fn(&str, &str) -> Result<T, FieldError>,
    ) -> Vec<T> {
        if raw.is_empty() || raw.len() > max {
            self.0.push(FieldError::new(field, format!("must hold 1 to {max} ids")));
        }
        let mut ids = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            if let Some(id) = self.take(parse(&format!("{field}[{i}]"), r)) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    pub fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), nextier_http::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(nextier_http::ApiError::Validation(self.0))
        }
    }
}

pub fn opt_text(p: &mut Problems, field: &str, v: &Option<String>, max: usize) -> Option<String> {
    match v.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => p.take(text(field, s, 1, max)),
    }
}

pub fn tags(p: &mut Problems, field: &str, raw: &[String]) -> Vec<String> {
    if raw.len() > 50 {
        p.0.push(FieldError::new(field, "at most 50 tags"));
        return vec![];
    }
    let mut out: Vec<String> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let t = t.trim().to_lowercase();
            let ok = !t.is_empty()
                && t.len() <= 50
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
            if ok {
                Some(t)
            } else {
                p.0.push(FieldError::new(format!("{field}[{i}]"), "tags are 1-50 of a-z, 0-9, '_', '-', ':', '.'"));
                None
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn phones(p: &mut Problems, field: &str, raw: &[PhoneInput]) -> Vec<NewPhone> {
    let mut out: Vec<NewPhone> = Vec::new();
    for (i, ph) in raw.iter().enumerate() {
        let e164 = p.take(E164::parse_field(&format!("{field}[{i}].number"), &ph.number));
        let kind = ph.kind.clone().unwrap_or_else(|| "unknown".into());
        if !PHONE_TYPES.contains(&kind.as_str()) {
            p.0.push(FieldError::new(format!("{field}[{i}].type"), "must be mobile, landline, voip or unknown"));
            continue;
        }
        if let Some(e164) = e164 {
            if out.iter().any(|o| o.e164 == e164) {
                p.0.push(FieldError::new(format!("{field}[{i}].number"), "is listed twice"));
                continue;
            }
            out.push(NewPhone { e164, kind, is_primary: ph.primary });
        }
    }
    if !out.is_empty() && !out.iter().any(|ph| ph.is_primary) && field == "phones" {
        out[0].is_primary = true;
    }
    out
}

pub fn emails(p: &mut Problems, field: &str, raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, e) in raw.iter().enumerate() {
        if let Some(email) = p.take(Email::parse(&format!("{field}[{i}]"), e)) {
            let lower = email.as_str().to_lowercase();
            if !out.contains(&lower) {
                out.push(lower);
            }
        }
    }
    out
}

pub fn state_code(p: &mut Problems, field: &str, raw: &Option<String>) -> Option<String> {
    let s = raw.as_deref()?.trim().to_uppercase();
    if s.is_empty() {
        return None;
    }
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Some(s)
    } else {
        p.0.push(FieldError::new(field, "must be a two-letter state code"));
        None
    }
}

pub fn zip(p: &mut Problems, field: &str, raw: &Option<String>) -> Option<String> {
    let s = raw.as_deref()?.trim();
    if s.is_empty() {
        return None;
    }
    let five = s.split('-').next().unwrap_or("");
    if five.len() == 5 && five.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 5 || s.len() == 10) {
        Some(five.to_owned())
    } else {
        p.0.push(FieldError::new(field, "must be a 5-digit ZIP or ZIP+4"));
        None
    }
}

pub fn address(p: &mut Problems, raw: &AddressInput) -> Option<NewAddress> {
    let a = NewAddress {
        line1: opt_text(p, "address.line1", &raw.line1, 200),
        city: opt_text(p, "address.city", &raw.city, 100),
        state: state_code(p, "address.state", &raw.state),
        zip: zip(p, "address.zip", &raw.zip),
    };
    (a.line1.is_some() || a.city.is_some() || a.state.is_some() || a.zip.is_some()).then_some(a)
}

pub fn score(p: &mut Problems, field: &str, v: Option<i32>) -> Option<i32> {
    match v {
        Some(s) if !(0..=100).contains(&s) => {
            p.0.push(FieldError::new(field, "must be from 0 to 100"));
            None
        }
        other => other,
    }
}

pub fn one_of(p: &mut Problems, field: &str, v: &Option<String>, allowed: &[&str]) -> Option<String> {
    let s = v.as_deref()?;
    if allowed.contains(&s) {
        Some(s.to_owned())
    } else {
        p.0.push(FieldError::new(field, format!("must be one of {}", allowed.join(", "))));
        None
    }
}

pub fn custom(p: &mut Problems, field: &str, v: &Option<serde_json::Value>) -> Option<serde_json::Value> {
    let v = v.as_ref()?;
    if !v.is_object() {
        p.0.push(FieldError::new(field, "must be a JSON object"));
        return None;
    }
    let text = v.to_string();
    if text.len() > 16 * 1024 {
        p.0.push(FieldError::new(field, "must be at most 16 KiB"));
        return None;
    }
    if text.contains("\\u0000") {
        p.0.push(FieldError::new(field, "must not contain NUL characters"));
        return None;
    }
    Some(v.clone())
}

impl CreateContact {
    pub fn validate(&self) -> Result<nextier_store::contacts::NewContact, nextier_http::ApiError> {
        let mut p = Problems::default();
        let fields = Fields {
            first_name: opt_text(&mut p, "firstName", &self.first_name, 100),
            last_name: opt_text(&mut p, "lastName", &self.last_name, 100),
            company: opt_text(&mut p, "company", &self.company, 200),
            title: opt_text(&mut p, "title", &self.title, 100),
            status: "active".into(),
            pipeline_status: one_of(&mut p, "pipelineStatus", &self.pipeline_status, &PIPELINE).unwrap_or("raw".into()),
            score: score(&mut p, "score", self.score).unwrap_or(0),
            tags: tags(&mut p, "tags", &self.tags),
            source: opt_text(&mut p, "source", &self.source, 100),
            custom_fields: custom(&mut p, "customFields", &self.custom_fields).unwrap_or_else(|| serde_json::json!({})),
        };
        let phones = phones(&mut p, "phones", &self.phones);
        let emails = emails(&mut p, "emails", &self.emails);
        let address = self.address.as_ref().and_then(|a| address(&mut p, a));
        let someone = fields.first_name.is_some()
            || fields.last_name.is_some()
            || fields.company.is_some()
            || !phones.is_empty()
            || !emails.is_empty();
        if p.0.is_empty() && !someone {
            p.0.push(FieldError::new("body", "a contact needs a name, a company, a phone or an email"));
        }
        p.finish()?;
        Ok(nextier_store::contacts::NewContact { fields, phones, emails, address, needs_review: false })
    }
}

/// The business roles (`business_owners.role`).
pub const ROLES: &[&str] =
    &["owner", "ceo", "partner", "investor", "sales_manager", "executive", "manager", "professional", "unknown"];

/// Parses the list filters from a query string, naming each bad parameter.
pub fn filter(pairs: &[(String, String)]) -> Result<Filter, nextier_http::ApiError> {
    let mut p = Problems::default();
    let mut f = Filter::default();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in pairs {
        if !seen.insert(k.clone()) && k != "cursor" && k != "limit" {
            p.0.push(FieldError::new(k.clone(), "must be given once"));
            continue;
        }
        match k.as_str() {
            "status" => f.status = one_of(&mut p, "status", &Some(v.clone()), &["active", "archived"]),
            "leadState" => match v.parse::<LeadState>() {
                Ok(s) => f.lead_state = Some(s),
                Err(_) => p.0.push(FieldError::new("leadState", "is not a lead state")),
            },
            "tag" => f.tag = Some(v.trim().to_lowercase()),
            "minScore" | "maxScore" => match v.parse::<i32>() {
                Ok(n) if (0..=100).contains(&n) => {
                    if k == "minScore" {
                        f.min_score = Some(n)
                    } else {
                        f.max_score = Some(n)
                    }
                }
                _ => p.0.push(FieldError::new(k.clone(), "must be a whole number from 0 to 100")),
            },
            "hasMobile" => match v.as_str() {
                "true" => f.has_mobile = Some(true),
                "false" => f.has_mobile = Some(false),
                _ => p.0.push(FieldError::new("hasMobile", "must be true or false")),
            },
            "state" => f.state = state_code(&mut p, "state", &Some(v.clone())),
            "zip" => f.zip = zip(&mut p, "zip", &Some(v.clone())),
            "q" => {
                if v.chars().count() > 100 {
                    p.0.push(FieldError::new("q", "must be at most 100 characters"));
                } else if v.chars().any(char::is_control) {
                    p.0.push(FieldError::new("q", "must not contain control characters"));
                } else {
                    f.q = Some(v.clone());
                }
            }
            "businessId" => {
                f.business_id = p.take(nextier_domain::ids::BusinessId::parse("businessId", v)).map(|b| b.to_string())
            }
            "sector" => {
                if v.trim().is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control) {
                    p.0.push(FieldError::new("sector", "must be 1 to 100 printable characters"));
                } else {
                    f.sector = Some(v.trim().to_owned());
                }
            }
            "role" => f.role = one_of(&mut p, "role", &Some(v.clone()), ROLES),
            "enrichmentStatus" => match nextier_domain::enrichment::Status::parse(v) {
                Some(s) => f.enrichment_status = Some(s.as_str().to_owned()),
                None => p.0.push(FieldError::new("enrichmentStatus", "must be raw, traced, graded, ready or rejected")),
            },
            "minDistress" => match v.parse::<i32>() {
                Ok(n) if (0..=100).contains(&n) => f.min_distress = Some(n),
                _ => p.0.push(FieldError::new("minDistress", "must be a whole number from 0 to 100")),
            },
            "distressSignal" => match nextier_domain::property::Signal::parse(v.trim()) {
                Some(s) => f.distress_signal = Some(s.as_str().to_owned()),
                None => {
                    let all: Vec<&str> = nextier_domain::property::Signal::ALL.iter().map(|s| s.as_str()).collect();
                    p.0.push(FieldError::new("distressSignal", format!("must be one of {}", all.join(", "))))
                }
            },
            "minEquity" => match v.parse::<f64>() {
                Ok(n) if (-1000.0..=1000.0).contains(&n) => f.min_equity = Some(n),
                _ => p.0.push(FieldError::new("minEquity", "must be a percentage")),
            },
            "minValue" | "maxValue" => match v.parse::<i64>() {
                Ok(n) if n >= 0 => {
                    if k == "minValue" {
                        f.min_value = Some(n)
                    } else {
                        f.max_value = Some(n)
                    }
                }
                _ => p.0.push(FieldError::new(k.clone(), "must be a whole number of dollars")),
            },
            "propertyState" => f.property_state = state_code(&mut p, "propertyState", &Some(v.clone())),
            "propertyCity" => {
                if v.trim().is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control) {
                    p.0.push(FieldError::new("propertyCity", "must be 1 to 100 printable characters"));
                } else {
                    f.property_city = Some(v.trim().to_owned());
                }
            }
            "propertyZip" => f.property_zip = zip(&mut p, "propertyZip", &Some(v.clone())),
            "cursor" | "limit" => {}
            other => p.0.push(FieldError::new(other.to_owned(), "is not a filter of this list")),
        }
    }
    p.finish()?;
    Ok(f)
}
