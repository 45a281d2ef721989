use std::fmt;

/// A rejected input value: which field, and why. Rendered as problem+json by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// Re-homes an error produced by a value parser under the caller's field name.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Trims and checks a free-text field: length in characters, no control characters.
/// Emoji, quotes and SQL metacharacters are ordinary text and are kept as given.
pub fn text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 {
            FieldError::new(field, "must not be empty")
        } else {
            FieldError::new(field, format!("must be at least {min} characters"))
        });
    }
    if len > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// A message body: trimmed, 1 to `max` characters; line breaks and tabs are kept, other
/// control characters (NUL among them, which PostgreSQL cannot store) are refused.
pub fn message_text(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    let len = value.chars().count();
    if len == 0 {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if len > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(FieldError::new(field, "must not contain control characters other than line breaks and tabs"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_keeps_line_breaks_and_refuses_nul() {
        assert_eq!(message_text("body", " Hi Ana,\nstill there?\t ", 1600).unwrap(), "Hi Ana,\nstill there?");
        assert_eq!(message_text("body", "a\u{0}b", 1600).unwrap_err().field, "body");
        assert!(message_text("body", "   ", 1600).is_err());
        assert!(message_text("body", &"x".repeat(1601), 1600).is_err());
    }

    #[test]
    fn text_keeps_emoji_and_sql_metacharacters() {
        let v = text("name", "  Robert'); DROP TABLE teams;-- 🚀 ", 1, 100).unwrap();
        assert_eq!(v, "Robert'); DROP TABLE teams;-- 🚀");
    }

    #[test]
    fn text_counts_characters_not_bytes() {
        assert!(text("name", &"é".repeat(100), 1, 100).is_ok());
        assert_eq!(text("name", &"é".repeat(101), 1, 100).unwrap_err().field, "name");
    }

    #[test]
    fn text_rejects_blank_and_control_characters() {
        assert_eq!(text("name", "   ", 1, 10).unwrap_err().message, "must not be empty");
        assert!(text("name", "a\u{0}b", 1, 10).is_err());
        assert!(text("name", "a\nb", 1, 10).is_err());
    }
}
