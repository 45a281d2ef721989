//! A small word-pattern language, so the revocation phrases read as phrases rather than code.
//!
//! A pattern is slots separated by spaces, matched against a clause's words:
//! - `a|b|c` one of these words; `do_not` (an underscore) a run of words; `@set` a named set;
//!   the forms mix (`@you|them`); in a set, `x+y` is each of `x` followed by each of `y`;
//! - `~` any one word;
//! - a slot ending in `?` may be absent, one ending in `*` may repeat up to four times;
//! - `^` and `$` the clause's start and end;
//! - `!x` first: the words just before the match must not be `x` ("don't stop texting me" is
//!   not "stop texting me"); `!x` last: the word just after must not be `x` ("stop by").

use std::collections::HashSet;

/// One alternative of a slot: a run of words.
type Run = Vec<String>;

#[derive(Debug)]
enum Slot {
    Words(Vec<Run>),
    Any,
    Start,
    End,
}

#[derive(Debug)]
struct Step {
    slot: Slot,
    min: usize,
    max: usize,
}

#[derive(Debug)]
pub(super) struct Pattern {
    not_after: Vec<Run>,
    not_before: Vec<Run>,
    steps: Vec<Step>,
    /// The words a match can start with, when the first slot must be there (a quick filter).
    first: Option<HashSet<String>>,
}

/// The runs `a|b_c|@set` stands for, sets expanded (a set may name other sets); `x+y` is
/// every run of `x` followed by every run of `y` (`from|off+the|my+@paper`).
fn runs(spec: &str, sets: &[(&str, &str)]) -> Vec<Run> {
    if spec.contains('+') {
        return spec.split('+').fold(vec![vec![]], |heads: Vec<Run>, part| {
            let tails = runs(part, sets);
            heads.iter().flat_map(|h| tails.iter().map(move |t| [h.clone(), t.clone()].concat())).collect()
        });
    }
    let mut out = Vec::new();
    for alt in spec.split('|') {
        if let Some(name) = alt.strip_prefix('@') {
            let Some((_, body)) = sets.iter().find(|(n, _)| *n == name) else {
                panic!("pattern names an unknown set @{name}")
            };
            out.extend(runs(body, sets));
        } else {
            out.push(alt.split('_').map(str::to_owned).collect());
        }
    }
    out
}

impl Pattern {
    pub(super) fn compile(source: &str, sets: &[(&str, &str)]) -> Pattern {
        let mut p = Pattern { not_after: vec![], not_before: vec![], steps: vec![], first: None };
        let tokens: Vec<&str> = source.split(' ').filter(|t| !t.is_empty()).collect();
        for (i, token) in tokens.iter().enumerate() {
            if let Some(spec) = token.strip_prefix('!') {
                if i == 0 {
                    p.not_after = runs(spec, sets);
                } else {
                    p.not_before = runs(spec, sets);
                }
                continue;
            }
            let (body, min, max) = match token.as_bytes().last() {
                Some(b'?') => (&token[..token.len() - 1], 0, 1),
                Some(b'*') => (&token[..token.len() - 1], 0, 4),
                _ => (*token, 1, 1),
            };
            let slot = match body {
                "~" => Slot::Any,
                "^" => Slot::Start,
                "$" => Slot::End,
                spec => Slot::Words(runs(spec, sets)),
            };
            p.steps.push(Step { slot, min, max });
        }
        p.first = match p.steps.first() {
            Some(Step { slot: Slot::Words(runs), min: 1.., .. }) => Some(runs.iter().map(|r| r[0].clone()).collect()),
            _ => None,
        };
        p
    }

    /// The words a match can start with; `None` when it can start with any.
    pub(super) fn first_words(&self) -> Option<&HashSet<String>> {
        self.first.as_ref()
    }

    /// Whether the pattern occurs in `words` (a clause's words).
    #[cfg(test)]
    pub(super) fn found_in(&self, words: &[&str]) -> bool {
        (0..=words.len()).any(|start| self.found_at(words, start))
    }

    /// Whether the pattern occurs in `words` starting at `start`.
    pub(super) fn found_at(&self, words: &[&str], start: usize) -> bool {
        self.run(&self.steps, words, start) && !self.not_after.iter().any(|run| words[..start].ends_with_run(run))
    }

    fn run(&self, steps: &[Step], words: &[&str], at: usize) -> bool {
        match steps.split_first() {
            None => !self.not_before.iter().any(|run| words[at..].starts_with_run(run)),
            Some((step, rest)) => self.repeat(step, 0, rest, words, at),
        }
    }

    fn repeat(&self, step: &Step, done: usize, rest: &[Step], words: &[&str], at: usize) -> bool {
        if done >= step.min && self.run(rest, words, at) {
            return true;
        }
        if done == step.max {
            return false;
        }
        let next = |len: usize| self.repeat(step, done + 1, rest, words, at + len);
        match &step.slot {
            Slot::Start => at == 0 && next(0),
            Slot::End => at == words.len() && next(0),
            Slot::Any => at < words.len() && next(1),
            Slot::Words(runs) => runs.iter().any(|run| words[at..].starts_with_run(run) && next(run.len())),
        }
    }
}

trait RunMatch {
    fn starts_with_run(&self, run: &Run) -> bool;
    fn ends_with_run(&self, run: &Run) -> bool;
}

impl RunMatch for [&str] {
    fn starts_with_run(&self, run: &Run) -> bool {
        self.len() >= run.len() && self.iter().zip(run).all(|(w, r)| w == r)
    }

    fn ends_with_run(&self, run: &Run) -> bool {
        self.len() >= run.len() && self[self.len() - run.len()..].iter().zip(run).all(|(w, r)| w == r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETS: &[(&str, &str)] = &[
        ("neg", "don't|do_not|never"),
        ("verb", "texting|calling"),
        ("all", "@neg|not"),
        ("doc", "from|off_of+the|my+deed|title"),
    ];

    fn found(pattern: &str, text: &str) -> bool {
        let words: Vec<&str> = text.split(' ').collect();
        Pattern::compile(pattern, SETS).found_in(&words)
    }

    #[test]
    fn slots_sets_and_guards() {
        assert!(found("!@neg stop @verb", "please stop texting me"));
        assert!(!found("!@neg stop @verb", "do not stop texting me"));
        assert!(found("!@neg stop @verb", "why don't you stop calling"));
        assert!(found("leave my ~ alone", "leave my mom alone"));
        assert!(!found("leave my ~ alone", "leave my alone"));
        assert!(found("^ stop @verb? $", "stop"));
        assert!(!found("^ stop @verb? $", "i stop"));
        assert!(found("take ~* off", "take this number off"));
        assert!(found("said stop !by", "i said stop"));
        assert!(!found("said stop !by", "he said stop by"));
        assert!(found("@all want", "not want"));
        assert!(found("no_more texts", "no more texts please"));
        assert!(found("remove me !@doc", "remove me from your list"));
        assert!(!found("remove me !@doc", "remove me from the title"));
        assert!(!found("remove me !@doc", "remove me off of my deed"));
    }
}
