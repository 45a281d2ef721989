//! Cursor pagination: lists are ordered by a unique sortable key (our ULID ids), and the
//! cursor is the last key returned, opaque to clients.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::FieldError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: i64,
}

impl PageRequest {
    pub fn parse(cursor: Option<&str>, limit: Option<&str>) -> Result<Self, FieldError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| FieldError::new("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
        };
        let after = cursor.filter(|c| !c.is_empty()).map(decode).transpose()?;
        Ok(Self { after, limit })
    }

    /// Ask the database for one extra row to learn whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit + 1
    }

    /// Trims the extra row and returns the next cursor, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            let next = rows.last().map(|r| encode(&key(r)));
            (rows, next)
        } else {
            (rows, None)
        }
    }
}

pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode(raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new("cursor", "is not a cursor returned by this API");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_report_a_next_cursor_only_when_more_rows_exist() {
        let req = PageRequest::parse(None, Some("2")).unwrap();
        let (rows, next) = req.finish(vec!["a", "b", "c"], |s| s.to_string());
        assert_eq!(rows, vec!["a", "b"]);
        let next = next.unwrap();
        assert_eq!(PageRequest::parse(Some(&next), Some("2")).unwrap().after.as_deref(), Some("b"));
        let (rows, next) = req.finish(vec!["a", "b"], |s| s.to_string());
        assert_eq!((rows.len(), next), (2, None));
    }

    #[test]
    fn bad_limits_and_cursors_name_their_field() {
        for bad in ["0", "-1", "201", "ten", "1.5"] {
            assert_eq!(PageRequest::parse(None, Some(bad)).unwrap_err().field, "limit");
        }
        assert_eq!(PageRequest::parse(Some("%%%"), None).unwrap_err().field, "cursor");
    }
}
