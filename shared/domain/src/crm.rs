//! CRM sync rules (issue 19): the contact fields a team can map, each module's default
//! mapping, the record a contact becomes, and which fields a CRM change may write back.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::Digest;

use crate::validation::FieldError;

/// The modules we sync.
pub const MODULES: &[&str] = &["Leads", "Contacts"];

/// Our side of a mapping: the contact's fields as a push reads them.
pub const SOURCE_FIELDS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "company",
    "title",
    "email",
    "phone",
    "mobile",
    "street",
    "city",
    "state",
    "zip",
    "leadState",
    "score",
    "tags",
    "source",
];

/// What a CRM change may write back to a contact (the rest are ours: a number or address comes
/// in through the consent-checked paths, a lead state through its transitions).
pub const PULLABLE: &[&str] = &["firstName", "lastName", "company", "title"];

/// The field our id travels in: the upsert's duplicate check (a unique custom field).
pub const EXTERNAL_ID_FIELD: &str = "Nextier_Id";

/// A module's default mapping, source → target.
pub fn default_mapping(module: &str) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match module {
        "Contacts" => &[
            ("id", EXTERNAL_ID_FIELD),
            ("firstName", "First_Name"),
            ("lastName", "Last_Name"),
            ("title", "Title"),
            ("email", "Email"),
            ("mobile", "Mobile"),
            ("phone", "Phone"),
            ("street", "Mailing_Street"),
            ("city", "Mailing_City"),
            ("state", "Mailing_State"),
            ("zip", "Mailing_Zip"),
            ("leadState", "Nextier_Lead_State"),
            ("score", "Nextier_Score"),
        ],
        _ => &[
            ("id", EXTERNAL_ID_FIELD),
            ("firstName", "First_Name"),
            ("lastName", "Last_Name"),
            ("company", "Company"),
            ("title", "Designation"),
            ("email", "Email"),
            ("mobile", "Mobile"),
            ("phone", "Phone"),
            ("street", "Street"),
            ("city", "City"),
            ("state", "State"),
            ("zip", "Zip_Code"),
            ("leadState", "Nextier_Lead_State"),
            ("score", "Nextier_Score"),
            ("source", "Lead_Source"),
        ],
    };
    pairs.iter().map(|(s, t)| ((*s).to_owned(), (*t).to_owned())).collect()
}

/// Checks a team's mapping for a module: known sources, API-name targets (letters, digits,
/// `_`, at most 100), each used once, and our id mapped to [`EXTERNAL_ID_FIELD`] (the upsert
/// needs it).
pub fn check_mapping(field: &str, module: &str, pairs: &[(String, String)]) -> Result<(), Vec<FieldError>> {
    let mut errors = vec![];
    if !MODULES.contains(&module) {
        errors.push(FieldError::new("module", format!("must be one of {}", MODULES.join(", "))));
    }
    let (mut sources, mut targets) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    for (i, (s, t)) in pairs.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !SOURCE_FIELDS.contains(&s.as_str()) {
            errors
                .push(FieldError::new(format!("{at}.source"), format!("must be one of {}", SOURCE_FIELDS.join(", "))));
        }
        let ok = !t.is_empty() && t.len() <= 100 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            errors.push(FieldError::new(format!("{at}.target"), "must be a CRM field's API name (letters, digits, _)"));
        }
        if !sources.insert(s.clone()) {
            errors.push(FieldError::new(format!("{at}.source"), "is mapped twice"));
        }
        if !targets.insert(t.clone()) {
            errors.push(FieldError::new(format!("{at}.target"), "is mapped twice"));
        }
    }
    if !pairs.iter().any(|(s, t)| s == "id" && t == EXTERNAL_ID_FIELD) {
        errors
            .push(FieldError::new(field, format!("must map id to {EXTERNAL_ID_FIELD} (the upsert's duplicate check)")));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The CRM record for a contact (its fields by source name): each mapped source that has a
/// value, under its target. Absent values are left out, so the CRM keeps what it had.
pub fn record(source: &Map<String, Value>, mapping: &[(String, String)]) -> Value {
    let mut out = Map::new();
    for (s, t) in mapping {
        match source.get(s) {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v.is_empty() => {}
            Some(v) => {
                out.insert(t.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// A stable digest of a record, so a contact whose record did not change is not sent again.
pub fn digest(record: &Value) -> String {
    // serde_json's Map is ordered (BTreeMap without `preserve_order`): the same record, the
    // same text.
    hex::encode(sha2::Sha256::digest(record.to_string().as_bytes()))
}

/// What a CRM record says about the fields it may write back: source → value (a missing or
/// null target means nothing; an empty string clears).
pub fn pulled(record: &Value, mapping: &[(String, String)]) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for (s, t) in mapping {
        if !PULLABLE.contains(&s.as_str()) {
            continue;
        }
        match record.get(t) {
            Some(Value::String(v)) => {
                let v = v.trim();
                out.insert(s.clone(), (!v.is_empty()).then(|| v.chars().take(200).collect()));
            }
            Some(Value::Number(n)) => {
                out.insert(s.clone(), Some(n.to_string()));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_defaults_are_valid_and_carry_our_id() {
        for m in MODULES {
            let map = default_mapping(m);
            assert!(check_mapping("fields", m, &map).is_ok(), "{m}");
        }
        let bad = vec![("id".to_owned(), "Email".to_owned()), ("nope".to_owned(), "Bad Name".to_owned())];
        let errors = check_mapping("fields", "Deals", &bad).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"module") && fields.contains(&"fields[1].source") && fields.contains(&"fields[1].target")
        );
        assert!(fields.contains(&"fields"), "our id must be the duplicate check: {fields:?}");
    }

    #[test]
    fn a_record_leaves_out_what_is_empty_and_pulls_only_names() {
        let map = default_mapping("Leads");
        let src = json!({"id": "con_1", "firstName": "Ana", "lastName": "", "score": 80, "email": null});
        let r = record(src.as_object().unwrap(), &map);
        assert_eq!(r, json!({"Nextier_Id": "con_1", "First_Name": "Ana", "Nextier_Score": 80}));
        assert_eq!(digest(&r), digest(&json!({"Nextier_Score": 80, "First_Name": "Ana", "Nextier_Id": "con_1"})));
        let back =
            pulled(&json!({"First_Name": " Anabel ", "Last_Name": "", "Email": "x@y.z", "Nextier_Score": 5}), &map);
        assert_eq!(back.get("firstName"), Some(&Some("Anabel".to_owned())));
        assert_eq!(back.get("lastName"), Some(&None));
        assert!(!back.contains_key("email") && !back.contains_key("score"));
    }
}
