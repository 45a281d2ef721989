//! Cells we write into CSV files people open in spreadsheets (error reports, exports). A cell
//! that starts with `=`, `+`, `-`, `@`, tab or carriage return would run as a formula in
//! Excel or Sheets (OWASP "CSV injection"); it is prefixed with `'` so it shows as text.

pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_text_is_kept() {
        assert_eq!(neutralise("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(neutralise("+1 516 407 9249"), "'+1 516 407 9249");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("Ana"), "Ana");
        assert_eq!(neutralise(""), "");
    }
}
