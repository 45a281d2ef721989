//! CSV import rules, free of I/O: which column feeds which field (by a saved mapping or by
//! header names), how a cell is decoded (UTF-8, else Latin-1; a BOM is dropped), and how a
//! row becomes a normalised record or a list of problems for the error report.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::email::Email;
use crate::phone::E164;

/// What an import creates: people, or businesses with their owners (B2B / SIC lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportKind {
    Contacts,
    B2b,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Contacts => "contacts",
            ImportKind::B2b => "b2b",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "contacts" => Some(ImportKind::Contacts),
            "b2b" => Some(ImportKind::B2b),
            _ => None,
        }
    }
}

/// The fields a column can feed.
pub const FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "fullName",
    "company",
    "title",
    "phone",
    "phoneType",
    "email",
    "line1",
    "city",
    "state",
    "zip",
    "tags",
    "source",
    "sicCode",
    "sector",
    "employees",
    "revenue",
    "website",
];

/// Header spellings recognised without a mapping (compared lower-case, without spaces, `_`, `-`).
fn field_for_header(header: &str) -> Option<&'static str> {
    let h: String = header.chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.')).collect::<String>().to_lowercase();
    Some(match h.as_str() {
        "firstname" | "first" | "fname" | "givenname" | "ownerfirstname" => "firstName",
        "lastname" | "last" | "lname" | "surname" | "familyname" | "ownerlastname" => "lastName",
        "name" | "fullname" | "contactname" | "ownername" => "fullName",
        "company" | "companyname" | "business" | "businessname" | "organization" => "company",
        "title" | "jobtitle" | "position" | "role" => "title",
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "cell" | "cellphone" | "telephone" | "primaryphone" => {
            "phone"
        }
        "phonetype" | "linetype" => "phoneType",
        "email" | "emailaddress" | "mail" => "email",
        "address" | "address1" | "street" | "streetaddress" | "line1" => "line1",
        "city" | "town" => "city",
        "state" | "st" | "province" => "state",
        "zip" | "zipcode" | "postalcode" | "postcode" => "zip",
        "tags" | "tag" | "labels" => "tags",
        "source" | "leadsource" => "source",
        "sic" | "siccode" => "sicCode",
        "sector" | "industry" | "sicdescription" => "sector",
        "employees" | "employeecount" | "numberofemployees" => "employees",
        "revenue" | "annualrevenue" | "annualsales" | "sales" => "revenue",
        "website" | "url" | "web" => "website",
        _ => return None,
    })
}

/// Column index → field, resolved once from the header row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Columns(pub Vec<(usize, String)>);

/// A mapping problem found before any row is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem(pub String);

impl Columns {
    /// Resolves columns from the header row and an optional explicit mapping
    /// (header text → field). Unknown headers are ignored; a file must feed a phone or an email.
    pub fn resolve(headers: &[String], mapping: Option<&HashMap<String, String>>) -> Result<Self, MappingProblem> {
        let mut out = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let field = match mapping {
                Some(m) => m.get(h.trim()).map(|f| f.as_str()),
                None => field_for_header(h),
            };
            if let Some(f) = field {
                if !FIELDS.contains(&f) {
                    return Err(MappingProblem(format!("mapping names an unknown field {f:?}")));
                }
                if out.iter().any(|(_, g)| g == f) {
                    return Err(MappingProblem(format!("two columns map to {f}")));
                }
                out.push((i, f.to_owned()));
            }
        }
        if !out.iter().any(|(_, f)| f == "phone" || f == "email") {
            return Err(MappingProblem(
                "no column holds a phone or an email (name them, or send a mapping)".to_owned(),
            ));
        }
        Ok(Columns(out))
    }
}

/// Decodes a raw cell: UTF-8 if it is valid, else Latin-1 (every byte is a character).
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // NUL carries nothing in a CSV cell and PostgreSQL stores none in text: a cell with one
    // would otherwise fail its chunk (and its error-report row) on every retry.
    match std::str::from_utf8(bytes) {
        Ok(s) => s.replace('\0', ""),
        Err(_) => bytes.iter().filter(|&&b| b != 0).map(|&b| b as char).collect(),
    }
}

/// True when a header row looks like binary data rather than CSV text.
pub fn looks_binary(raw_header: &[&[u8]]) -> bool {
    raw_header.iter().any(|c| c.iter().any(|&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n'))))
}

/// A row ready to stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub phone_type: Option<String>,
    pub email: Option<String>,
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub tags: Vec<String>,
    pub source: Option<String>,
    pub sic_code: Option<String>,
    pub sector: Option<String>,
    pub employees: Option<i32>,
    pub revenue: Option<i64>,
    pub website: Option<String>,
}

/// One problem of one row, for the error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub column: String,
    pub reason: String,
    pub value: String,
}

/// The result of normalising a row: the record (if the row is usable) and its problems.
/// A row is usable when it has a valid phone or a valid email; other bad cells are
/// reported and left empty.
pub fn normalise(cells: &[String], columns: &Columns, expected_len: usize) -> (Option<Record>, Vec<RowProblem>) {
    let mut r = Record::default();
    let mut problems = Vec::new();
    if cells.len() != expected_len {
        problems.push(RowProblem {
            column: "(row)".into(),
            reason: format!("has {} cells where the header has {expected_len}", cells.len()),
            value: String::new(),
        });
    }
    let mut bad = |column: &str, reason: &str, value: &str| {
        problems.push(RowProblem {
            column: column.into(),
            reason: reason.into(),
            value: value.chars().take(200).collect(),
        })
    };
    for (i, field) in &columns.0 {
        let Some(raw) = cells.get(*i) else { continue };
        let v = raw.trim();
        if v.is_empty() {
            continue;
        }
        let clip =
            |s: &str, n: usize| -> Option<String> { Some(s.chars().filter(|c| !c.is_control()).take(n).collect()) };
        match field.as_str() {
            "firstName" => r.first_name = clip(v, 100),
            "lastName" => r.last_name = clip(v, 100),
            "fullName" => {
                let v: String = v.chars().filter(|c| !c.is_control()).collect();
                let mut parts = v.split_whitespace();
                let first = parts.next().map(str::to_owned);
                let rest: Vec<&str> = parts.collect();
                r.first_name = r.first_name.take().or(first);
                if !rest.is_empty() {
                    r.last_name = r.last_name.take().or(Some(rest.join(" ")));
                }
            }
            "company" => r.company = clip(v, 200),
            "title" => r.title = clip(v, 100),
            "phone" => match E164::parse(v) {
                Ok(p) => r.phone = Some(p.to_string()),
                Err(p) => bad(field, p.message(), v),
            },
            "phoneType" => {
                let t = v.to_lowercase();
                let t = match t.as_str() {
                    "mobile" | "cell" | "wireless" => "mobile",
                    "landline" | "fixed" | "land" => "landline",
                    "voip" => "voip",
                    _ => "unknown",
                };
                r.phone_type = Some(t.to_owned());
            }
            "email" => match Email::parse("email", v) {
                Ok(e) => r.email = Some(e.as_str().to_lowercase()),
                Err(e) => bad(field, &e.message, v),
            },
            "line1" => r.line1 = clip(v, 200),
            "city" => r.city = clip(v, 100),
            "state" => {
                let s = v.to_uppercase();
                if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
                    r.state = Some(s);
                } else {
                    bad(field, "must be a two-letter state code", v);
                }
            }
            "zip" => {
                let five = v.split('-').next().unwrap_or("");
                // Spreadsheets drop leading zeros: 2134 is 02134.
                let padded = if five.len() == 4 && five.bytes().all(|b| b.is_ascii_digit()) {
                    format!("0{five}")
                } else {
                    five.to_owned()
                };
                if padded.len() == 5 && padded.bytes().all(|b| b.is_ascii_digit()) {
                    r.zip = Some(padded);
                } else {
                    bad(field, "must be a 5-digit ZIP", v);
                }
            }
            "tags" => {
                r.tags = v
                    .split([',', ';', '|'])
                    .map(|t| t.trim().to_lowercase())
                    .filter(|t| !t.is_empty() && t.len() <= 50)
                    .filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.')))
                    .take(50)
                    .collect();
                r.tags.sort();
                r.tags.dedup();
            }
            "source" => r.source = clip(v, 100),
            "sicCode" => r.sic_code = clip(v, 10),
            "sector" => r.sector = clip(v, 200),
            "employees" => match v.replace(',', "").parse::<i32>() {
                Ok(n) if n >= 0 => r.employees = Some(n),
                _ => bad(field, "must be a whole number", v),
            },
            "revenue" => match v.replace([',', '$'], "").parse::<f64>() {
                Ok(n) if (0.0..9e15).contains(&n) => r.revenue = Some(n as i64),
                _ => bad(field, "must be an amount", v),
            },
            "website" => r.website = clip(v, 300),
            _ => {}
        }
    }
    if r.phone.is_none() && r.email.is_none() {
        problems.push(RowProblem {
            column: "(row)".into(),
            reason: "rejected: no valid phone or email to reach this person".into(),
            value: String::new(),
        });
        return (None, problems);
    }
    (Some(r), problems)
}

/// Maps a job title to a business role (DOMAIN.md C.2 business_owners).
pub fn business_role(title: Option<&str>) -> (&'static str, bool) {
    let t = title.unwrap_or("").to_lowercase();
    let has = |w: &str| t.split(|c: char| !c.is_alphanumeric()).any(|x| x == w);
    if has("owner") || has("founder") || has("proprietor") {
        ("owner", true)
    } else if has("ceo") || has("president") || (has("chief") && has("executive")) {
        ("ceo", true)
    } else if has("partner") || has("principal") {
        ("partner", true)
    } else if has("investor") {
        ("investor", false)
    } else if has("sales") && has("manager") {
        ("sales_manager", false)
    } else if has("vp") || has("director") || has("executive") || has("chief") {
        ("executive", true)
    } else if has("manager") {
        ("manager", false)
    } else if t.is_empty() {
        ("unknown", false)
    } else {
        ("professional", false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_dropped_from_cells() {
        assert_eq!(decode(b"55\x005-0100"), "555-0100");
        assert_eq!(decode(b"caf\xe9\x00"), "caf\u{e9}");
    }

    fn cols(headers: &[&str]) -> Columns {
        Columns::resolve(&headers.iter().map(|s| s.to_string()).collect::<Vec<_>>(), None).unwrap()
    }

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_are_recognised_in_their_usual_spellings() {
        let c = cols(&["First Name", "LAST_NAME", "Phone Number", "E-mail", "Zip Code", "Favourite colour"]);
        let fields: Vec<&str> = c.0.iter().map(|(_, f)| f.as_str()).collect();
        assert_eq!(fields, ["firstName", "lastName", "phone", "email", "zip"]);
        let err = Columns::resolve(&["name".into(), "city".into()], None).unwrap_err();
        assert!(err.0.contains("phone or an email"));
    }

    #[test]
    fn an_explicit_mapping_wins_and_is_checked() {
        let m: HashMap<String, String> = [("Tel".into(), "phone".into()), ("Who".into(), "fullName".into())].into();
        let c = Columns::resolve(&["Who".into(), "Tel".into(), "phone".into()], Some(&m)).unwrap();
        assert_eq!(c.0, vec![(0, "fullName".to_string()), (1, "phone".to_string())]);
        let bad: HashMap<String, String> = [("Tel".into(), "telephone".into())].into();
        assert!(Columns::resolve(&["Tel".into()], Some(&bad)).is_err());
    }

    #[test]
    fn rows_normalise_and_report_every_bad_cell() {
        let c = cols(&["name", "phone", "email", "state", "zip", "tags"]);
        let (rec, problems) = normalise(
            &row(&["Ana Maria Ruiz", "(516) 407-9249", "nope", "Florida", "2134", "VIP; florida,vip"]),
            &c,
            6,
        );
        let rec = rec.unwrap();
        assert_eq!((rec.first_name.as_deref(), rec.last_name.as_deref()), (Some("Ana"), Some("Maria Ruiz")));
        assert_eq!(rec.phone.as_deref(), Some("+15164079249"));
        assert_eq!(rec.zip.as_deref(), Some("02134"));
        assert_eq!(rec.tags, ["florida", "vip"]);
        let cols: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(cols, ["email", "state"]);
    }

    #[test]
    fn a_row_nobody_can_be_reached_at_is_rejected_and_ragged_rows_are_flagged() {
        let c = cols(&["name", "phone", "email"]);
        let (rec, problems) = normalise(&row(&["Bo", "123", ""]), &c, 3);
        assert!(rec.is_none());
        assert_eq!(problems.len(), 2);
        let (rec, problems) = normalise(&row(&["Cy", "5164079249"]), &c, 3);
        assert!(rec.is_some());
        assert!(problems[0].reason.contains("2 cells where the header has 3"));
    }

    #[test]
    fn cells_decode_as_utf8_or_latin1_without_a_bom() {
        assert_eq!(decode(b"\xef\xbb\xbfphone"), "phone");
        assert_eq!(decode("José".as_bytes()), "José");
        assert_eq!(decode(b"Jos\xe9"), "José");
        assert!(looks_binary(&[b"PK\x03\x04\x00"]));
        assert!(!looks_binary(&[b"first name", b"phone"]));
    }

    #[test]
    fn titles_map_to_business_roles() {
        assert_eq!(business_role(Some("Owner/Operator")), ("owner", true));
        assert_eq!(business_role(Some("CEO")), ("ceo", true));
        assert_eq!(business_role(Some("Regional Sales Manager")), ("sales_manager", false));
        assert_eq!(business_role(Some("VP Operations")), ("executive", true));
        assert_eq!(business_role(None), ("unknown", false));
    }
}
