//! The per-row error report: a CSV people open in a spreadsheet, so every cell that could
//! run as a formula is neutralised.

use nextier_domain::csv_cell::neutralise;
use nextier_domain::import::RowProblem;

fn cell(out: &mut String, v: &str) {
    let v = neutralise(v);
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

pub fn render(problems: &[(i32, RowProblem)], total: i64) -> String {
    let mut out = String::from("row,column,reason,value\n");
    for (row, p) in problems {
        out.push_str(&row.to_string());
        out.push(',');
        cell(&mut out, &p.column);
        out.push(',');
        cell(&mut out, &p.reason);
        out.push(',');
        cell(&mut out, &p.value);
        out.push('\n');
    }
    if total > problems.len() as i64 {
        out.push_str(&format!(",,{} more problems are not listed,\n", total - problems.len() as i64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_and_separators_come_back_as_plain_text() {
        let p = RowProblem { column: "phone".into(), reason: "has letters".into(), value: "=cmd|' /C calc'!A0".into() };
        let q = RowProblem { column: "email".into(), reason: "bad, really".into(), value: "a\"b".into() };
        let csv = render(&[(2, p), (3, q)], 3);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[1], "2,phone,has letters,'=cmd|' /C calc'!A0");
        assert_eq!(lines[2], "3,email,\"bad, really\",\"a\"\"b\"");
        assert_eq!(lines[3], ",,1 more problems are not listed,");
    }
}
