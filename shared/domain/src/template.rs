//! Message templates with merge fields: `Hi {{firstName}}` or, with an explicit fallback,
//! `Hi {{firstName|there}}`. A field without a fallback is *required*: a campaign cannot be
//! staged while an enrolled contact lacks it, and a send that finds it missing is refused.
//! Nothing ever renders a blank where a name should be (the original's `{{var}}` replacement
//! left empty strings; DOMAIN.md C.3).

use std::fmt;

/// The contact fields a template may name, besides `custom.<key>`.
pub const KNOWN_FIELDS: &[&str] =
    &["firstName", "lastName", "fullName", "company", "title", "city", "state", "zip", "email", "phone"];

/// The fields of the contact's property (the one they own with the highest distress score,
/// the most recently linked on a tie): its street line, place, equity in dollars and percent,
/// estimated value and distress score. A contact who owns none has no value for them, so a
/// template gives a fallback (`{{propertyAddress|your property}}`) or staging names who lacks it.
pub const PROPERTY_FIELDS: &[&str] = &[
    "propertyAddress",
    "propertyCity",
    "propertyState",
    "propertyZip",
    "equity",
    "equityPercent",
    "estimatedValue",
    "distressScore",
];

/// Whether a field is one of the contact's property's.
pub fn is_property_field(name: &str) -> bool {
    PROPERTY_FIELDS.contains(&name)
}

/// Whole dollars as people write them: `$1,250,000` (`-$5,000` below zero).
pub fn dollars(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{}${out}", if v < 0 { "-" } else { "" })
}

const MAX_FALLBACK: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { name: String, fallback: Option<String> },
}

/// A parsed template. Parsing checks every field name, so rendering can only fail on data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {at})")]
pub struct TemplateError {
    /// The character offset where the problem starts.
    pub at: usize,
    pub message: String,
}

/// A required field had no value for this contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merge field {{{{{0}}}}} has no value and no fallback")]
pub struct MissingField(pub String);

fn valid_name(name: &str) -> bool {
    if KNOWN_FIELDS.contains(&name) || is_property_field(name) {
        return true;
    }
    match name.strip_prefix("custom.") {
        Some(key) => {
            !key.is_empty()
                && key.len() <= 64
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        }
        None => false,
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut offset = 0usize; // in characters, for people
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let at = offset + rest[..open].chars().count();
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError { at, message: "'{{' is never closed with '}}'".into() });
            };
            let inner = &after[..close];
            if inner.contains("{{") {
                return Err(TemplateError { at, message: "'{{' is never closed with '}}'".into() });
            }
            let (name, fallback) = match inner.split_once('|') {
                Some((n, f)) => (n.trim(), Some(f.trim())),
                None => (inner.trim(), None),
            };
            if !valid_name(name) {
                return Err(TemplateError {
                    at,
                    message: format!(
                        "unknown merge field {name:?}; use one of {} or custom.<key>",
                        KNOWN_FIELDS.join(", ")
                    ),
                });
            }
            if let Some(f) = fallback {
                if f.is_empty() {
                    return Err(TemplateError { at, message: format!("the fallback for {name} is empty") });
                }
                if f.chars().count() > MAX_FALLBACK {
                    return Err(TemplateError {
                        at,
                        message: format!("the fallback for {name} is longer than {MAX_FALLBACK} characters"),
                    });
                }
            }
            parts.push(Part::Field { name: name.to_owned(), fallback: fallback.map(str::to_owned) });
            let consumed = open + 2 + close + 2;
            offset += rest[..consumed].chars().count();
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Fields that have no fallback, each once, in order of first use.
    pub fn required_fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let Part::Field { name, fallback: None } = p {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Every field named, each once.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.parts {
            if let Part::Field { name, .. } = p {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Renders with `lookup`; a blank value counts as missing.
    pub fn render<F>(&self, lookup: F) -> Result<String, MissingField>
    where
        F: Fn(&str) -> Option<String>,
    {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { name, fallback } => match (lookup(name).filter(|v| !v.trim().is_empty()), fallback) {
                    (Some(v), _) => out.push_str(v.trim()),
                    (None, Some(f)) => out.push_str(f),
                    (None, None) => return Err(MissingField(name.clone())),
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                Part::Text(t) => f.write_str(t)?,
                Part::Field { name, fallback: Some(fb) } => write!(f, "{{{{{name}|{fb}}}}}")?,
                Part::Field { name, fallback: None } => write!(f, "{{{{{name}}}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "firstName" => Some("Ada".into()),
            "company" => Some("   ".into()),
            "custom.roof_age" => Some("12".into()),
            _ => None,
        }
    }

    #[test]
    fn renders_values_and_fallbacks() {
        let t =
            Template::parse("Hi {{firstName}}, is {{ company | your company }} still at {{city|your town}}?").unwrap();
        assert_eq!(t.render(lookup).unwrap(), "Hi Ada, is your company still at your town?");
        assert_eq!(t.required_fields(), vec!["firstName"]);
        assert_eq!(t.fields(), vec!["firstName", "company", "city"]);
    }

    #[test]
    fn a_missing_required_field_refuses_instead_of_leaving_a_blank() {
        let t = Template::parse("Hi {{lastName}}").unwrap();
        assert_eq!(t.render(lookup), Err(MissingField("lastName".into())));
        let blank = Template::parse("At {{company}}").unwrap();
        assert_eq!(blank.render(lookup), Err(MissingField("company".into())), "blank counts as missing");
    }

    #[test]
    fn custom_fields_and_unicode_offsets() {
        let t = Template::parse("Dachalter: {{custom.roof_age}} Jahre").unwrap();
        assert_eq!(t.render(lookup).unwrap(), "Dachalter: 12 Jahre");
        let err = Template::parse("Grüße {{vorname}}").unwrap_err();
        assert_eq!(err.at, 6);
        assert!(err.message.contains("unknown merge field \"vorname\""), "{}", err.message);
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in
            ["Hi {{firstName", "Hi {{firstName|}}", "{{}}", "{{custom.}}", "{{ {{firstName}} }}", "{{custom.a b}}"]
        {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{{{{firstName|{}}}}}", "x".repeat(101));
        assert!(Template::parse(&long).is_err());
        assert!(Template::parse("No fields, just { braces }").is_ok());
    }

    #[test]
    fn property_fields_parse_and_money_reads_like_money() {
        let t = Template::parse("About {{propertyAddress|your property}}: {{equity}} of {{estimatedValue}}").unwrap();
        assert_eq!(t.required_fields(), vec!["equity", "estimatedValue"]);
        assert!(t.fields().iter().all(|f| is_property_field(f)));
        assert_eq!(dollars(0), "$0");
        assert_eq!(dollars(999), "$999");
        assert_eq!(dollars(1_000), "$1,000");
        assert_eq!(dollars(1_250_000), "$1,250,000");
        assert_eq!(dollars(-5_000), "-$5,000");
        assert_eq!(dollars(i64::MIN), "-$9,223,372,036,854,775,808");
    }

    #[test]
    fn display_round_trips() {
        let src = "Hi {{firstName|there}} at {{company}}!";
        assert_eq!(Template::parse(src).unwrap().to_string(), src);
    }
}
