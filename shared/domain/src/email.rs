use std::fmt;

use serde::{Serialize, Serializer};

use crate::FieldError;

/// A syntactically valid email address, trimmed, with the domain lower-cased.
/// Deliverability is not our business here; a plausible shape is.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new(field, "must be an email address like name@example.com");
        let value = raw.trim();
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !labels_ok {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        assert_eq!(Email::parse("email", " Ana.Ruiz+x@Example.COM ").unwrap().as_str(), "Ana.Ruiz+x@example.com");
        assert!(Email::parse("email", "o'brien@mail.example.ie").is_ok());
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in
            ["", "plain", "@example.com", "a@", "a@b", "a@@b.com", "a b@c.com", "a@-x.com", "a@x..com", "a@b\n.com"]
        {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
        }
    }
}
