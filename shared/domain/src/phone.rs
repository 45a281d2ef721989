//! Phone numbers as E.164. We text under US carrier rules (10DLC), so numbers are North
//! American Numbering Plan numbers: `+1` + area code + exchange + line, with the NANP's own
//! validity rules. Everything else is rejected with a reason, never silently dropped.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::FieldError;

/// A valid NANP number in E.164 form, e.g. `+15164079249`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

/// Why a value is not a usable number (shown in import reports and API errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneProblem {
    Empty,
    NotANumber,
    WrongLength,
    NotNorthAmerican,
    InvalidAreaCode,
    InvalidExchange,
    ServiceCode,
    Fictional,
}

impl PhoneProblem {
    pub fn message(self) -> &'static str {
        match self {
            PhoneProblem::Empty => "is empty",
            PhoneProblem::NotANumber => "has letters or symbols that are not part of a phone number",
            PhoneProblem::WrongLength => "must have 10 digits (or 11 starting with 1)",
            PhoneProblem::NotNorthAmerican => "must be a North American (+1) number",
            PhoneProblem::InvalidAreaCode => "has an area code that cannot exist (it starts with 0 or 1)",
            PhoneProblem::InvalidExchange => "has an exchange that cannot exist (it starts with 0 or 1)",
            PhoneProblem::ServiceCode => "is a service code (N11), not a subscriber number",
            PhoneProblem::Fictional => "is in the 555-01XX range reserved for fiction",
        }
    }
}

impl E164 {
    /// Parses the ways people write US numbers: `(516) 407-9249`, `516.407.9249`,
    /// `+1 516 407 9249`, `1-516-407-9249`, `15164079249`, with an optional extension
    /// (`x123`, `ext. 123`), which is dropped.
    pub fn parse(raw: &str) -> Result<Self, PhoneProblem> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneProblem::Empty);
        }
        let main = strip_extension(trimmed).trim();
        let (plus, body) = match main.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, main),
        };
        let mut digits = String::with_capacity(15);
        for c in body.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                _ => return Err(PhoneProblem::NotANumber),
            }
        }
        let national = match (plus, digits.len()) {
            (_, 11) if digits.starts_with('1') => &digits[1..],
            (true, _) if !digits.starts_with('1') => return Err(PhoneProblem::NotNorthAmerican),
            (false, 10) => &digits[..],
            (_, n) if n > 11 && !plus && digits.starts_with("011") => return Err(PhoneProblem::NotNorthAmerican),
            _ => return Err(PhoneProblem::WrongLength),
        };
        let b = national.as_bytes();
        if b[0] < b'2' {
            return Err(PhoneProblem::InvalidAreaCode);
        }
        if b[3] < b'2' {
            return Err(PhoneProblem::InvalidExchange);
        }
        if (b[1] == b'1' && b[2] == b'1') || (b[4] == b'1' && b[5] == b'1') {
            return Err(PhoneProblem::ServiceCode);
        }
        if &national[3..6] == "555" && national[6..8] == *"01" {
            return Err(PhoneProblem::Fictional);
        }
        Ok(Self(format!("+1{national}")))
    }

    /// Parses for an API field, naming it in the error.
    pub fn parse_field(field: &str, raw: &str) -> Result<Self, FieldError> {
        Self::parse(raw).map_err(|p| FieldError::new(field, p.message()))
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-digit area code, for time-zone lookups.
    pub fn area_code(&self) -> &str {
        &self.0[2..5]
    }
}

fn strip_extension(s: &str) -> &str {
    let lower = s.to_ascii_lowercase();
    for marker in ["ext.", "ext", " x", "#"] {
        if let Some(i) = lower.find(marker) {
            if i > 0 {
                return &s[..i];
            }
        }
    }
    s
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ways_people_write_us_numbers_all_normalise() {
        for raw in [
            "(516) 407-9249",
            "516.407.9249",
            "516-407-9249",
            "5164079249",
            "15164079249",
            "1-516-407-9249",
            "+1 516 407 9249",
            "+15164079249",
            " 516 407 9249 ",
            "516/407-9249",
            "(516) 407-9249 x123",
            "516-407-9249 ext. 55",
            "+1 (516) 407-9249",
        ] {
            assert_eq!(E164::parse(raw).map(|p| p.0), Ok("+15164079249".to_string()), "{raw}");
        }
    }

    #[test]
    fn impossible_and_foreign_numbers_are_rejected_with_a_reason() {
        use PhoneProblem::*;
        let cases = [
            ("", Empty),
            ("call me", NotANumber),
            ("516-407-924", WrongLength),
            ("516-407-92499", WrongLength),
            ("+44 20 7946 0958", NotNorthAmerican),
            ("011 44 20 7946 0958", NotNorthAmerican),
            ("(016) 407-9249", InvalidAreaCode),
            ("(116) 407-9249", InvalidAreaCode),
            ("(516) 107-9249", InvalidExchange),
            ("(911) 407-9249", ServiceCode),
            ("(516) 411-9249", ServiceCode),
            ("(516) 555-0123", Fictional),
            ("=cmd|' /C calc'!A0", NotANumber),
        ];
        for (raw, problem) in cases {
            assert_eq!(E164::parse(raw), Err(problem), "{raw}");
        }
        assert!(E164::parse("(516) 555-1234").is_ok(), "555 outside 01XX is a real exchange");
    }
}
