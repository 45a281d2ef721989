//! Every reply in the table reads as expected, through the public classifier.

#[path = "replies/table.rs"]
mod table;

use nextier_domain::reply::{read, Intent::*};
use table::CASES;

#[test]
fn the_table_is_large_enough_to_mean_something() {
    assert!(CASES.len() >= 300, "{} cases", CASES.len());
    for intent in [OptOut, Help, OptIn, WrongNumber, Profanity, Positive, Negative, Question, Neutral] {
        assert!(CASES.iter().filter(|(_, i)| *i == intent).count() >= 3, "{intent:?} has too few cases");
    }
}

#[test]
fn every_case_reads_as_expected() {
    let mut wrong = Vec::new();
    for (text, want) in CASES {
        let got = read(text, false).intent;
        if got != *want {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
}

#[test]
fn no_text_is_in_the_table_twice() {
    let mut seen = std::collections::HashSet::new();
    let twice: Vec<&str> = CASES.iter().map(|(t, _)| *t).filter(|t| !seen.insert(*t)).collect();
    assert!(twice.is_empty(), "{twice:?}");
}
