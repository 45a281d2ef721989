//! CSV for spreadsheet users: UTF-8 with a byte-order mark (so Excel reads it as UTF-8), CRLF
//! line ends, RFC 4180 quoting, and every cell made formula-safe
//! (`nextier_domain::csv_cell::neutralise`).

/// The byte-order mark a file starts with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Appends one row to `out`.
pub fn row<S: AsRef<str>>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = Option<S>>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let Some(cell) = cell else { continue };
        let safe = nextier_domain::csv_cell::neutralise(cell.as_ref());
        if safe.contains([',', '"', '\r', '\n']) {
            out.push(b'"');
            out.extend_from_slice(safe.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(safe.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formula_safe() {
        let mut out = Vec::new();
        row(&mut out, [Some("Ana"), None, Some("=HYPERLINK(\"x\")"), Some("a,b"), Some("line\nbreak"), Some("😀 ñ")]);
        assert_eq!(String::from_utf8(out).unwrap(), "Ana,,\"'=HYPERLINK(\"\"x\"\")\",\"a,b\",\"line\nbreak\",😀 ñ\r\n");
    }
}
