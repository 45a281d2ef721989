//! Team settings: (scope, name) -> value, with secrets masked on every read.

use crate::FieldError;

/// Validates a settings scope or name: lower-case ASCII, digits, `_ . -`, 1-64 characters.
pub fn key_part(field: &str, raw: &str) -> Result<String, FieldError> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(field, "must be 1-64 characters of a-z, 0-9, '_', '.', '-'"))
    }
}

pub const MAX_VALUE_CHARS: usize = 4096;

pub fn value(field: &str, raw: &str) -> Result<String, FieldError> {
    if raw.chars().count() > MAX_VALUE_CHARS {
        return Err(FieldError::new(field, format!("must be at most {MAX_VALUE_CHARS} characters")));
    }
    if raw.contains('\0') {
        return Err(FieldError::new(field, "must not contain NUL characters"));
    }
    Ok(raw.to_owned())
}

/// What a secret looks like when read back: enough to recognise it, never enough to use it.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "••••".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_the_last_four_of_long_secrets() {
        assert_eq!(mask("sk_live_1234567890abcd"), "••••abcd");
        assert_eq!(mask("short"), "••••");
    }

    #[test]
    fn key_parts_are_restricted() {
        assert!(key_part("name", "auth_token").is_ok());
        assert_eq!(key_part("name", "Auth Token").unwrap_err().field, "name");
        assert!(key_part("scope", "").is_err());
    }
}
