//! Reading a reply (DOMAIN.md A). An opt-out is read first and in the words people use
//! ([`revocation`]): the carriers' keywords (English and Spanish) as the whole message or a
//! sentence of its own, and natural-language requests in any tense or person, so
//! "weekend", "legend" and "stopped by the house" are not opt-outs while "I told you to stop"
//! and "no más mensajes" are. HELP is a request for the team's help text, not interest.
//!
//! The text is read as written ([`crate::text::as_written`]): a Windows-1252 apostrophe
//! that arrived as U+0092 is an apostrophe, and "STOP\u{92}" is STOP.

mod normal;
mod pattern;
mod revocation;

use crate::email::Email;
use crate::phone::E164;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    OptOut,
    Help,
    /// START / UNSTOP (and YES when the number is opted out): opting back in.
    OptIn,
    WrongNumber,
    Profanity,
    Positive,
    Negative,
    Question,
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub intent: Intent,
    /// An email address the reply gave.
    pub email: Option<String>,
    /// Another mobile number the reply gave.
    pub phone: Option<String>,
    /// How sure the reading is, 0-100: a whole-message keyword is near certain, a phrase
    /// less so, a message that matched nothing least.
    pub confidence: u8,
}

const HELP_WORDS: &[&str] = &["help", "info", "ayuda"];
const START_WORDS: &[&str] = &["start", "unstop"];
/// Words that do not change a HELP or START reply ("help please", "START pls").
const COURTESY: &[&str] = &["please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "por", "favor"];

/// Whether `w` is only words of `keywords`, repeated or with courtesy words.
fn only_keywords(w: &str, keywords: &[&str]) -> bool {
    let mut saw = false;
    for word in w.split(' ') {
        if keywords.contains(&word) {
            saw = true;
        } else if !COURTESY.contains(&word) {
            return false;
        }
    }
    saw
}

fn tokens(words: &str) -> Vec<&str> {
    words.split(' ').filter(|w| !w.is_empty()).collect()
}

/// How sure we are that the reply revokes consent; `None` when it does not.
fn revocation(text: &str, w: &str) -> Option<u8> {
    if revocation::only_keywords(&tokens(w)) {
        return Some(99);
    }
    let sentences = normal::sentences(text);
    let alone = |s: &String| revocation::only_keywords(&tokens(s)) || revocation::keyword_beside(&tokens(s));
    if sentences.iter().any(alone) {
        return Some(95);
    }
    let requested = |s: &String| revocation::requested(&tokens(s));
    let clauses = normal::clauses(text);
    if clauses.iter().any(requested) || sentences.iter().any(requested) {
        return Some(90);
    }
    shouted(text).then_some(90)
}

/// STOP, STOPALL or UNSUBSCRIBE in capitals among words that are not ("Not interested in
/// selling STOP") is the keyword wherever it stands, unless a "don't" or "bus" comes before it
/// or a "by" after it. In a run of capitals ("STOP VIOLENCE AGAINST WOMEN") it is a word.
fn shouted(text: &str) -> bool {
    const SHOUTED: &[&str] = &["STOP", "STOPALL", "UNSUBSCRIBE"];
    if !SHOUTED.iter().any(|k| text.contains(k)) {
        return false;
    }
    // The text as alternating runs: separators and words.
    let mut runs: Vec<(bool, String)> = Vec::new();
    for c in text.chars() {
        let is_word = c.is_alphanumeric();
        match runs.last_mut() {
            Some((w, run)) if *w == is_word => run.push(c),
            _ => runs.push((is_word, c.to_string())),
        }
    }
    let words: Vec<usize> = (0..runs.len()).filter(|i| runs[*i].0).collect();
    let capitals = |i: usize| runs[i].1.chars().count() > 1 && !runs[i].1.chars().any(char::is_lowercase);
    let keywords: Vec<usize> = (0..words.len())
        .filter(|&n| {
            let beside = [n.checked_sub(1).map(|p| words[p]), words.get(n + 1).copied()];
            SHOUTED.contains(&runs[words[n]].1.as_str()) && !beside.into_iter().flatten().any(capitals)
        })
        .map(|n| words[n])
        .collect();
    for &i in &keywords {
        runs[i].1 = revocation::SHOUTED_MARK.to_owned();
    }
    let text: String = runs.into_iter().map(|(_, run)| run).collect();
    !keywords.is_empty() && normal::clauses(&text).iter().any(|c| revocation::shouted(&tokens(c)))
}

const WRONG_NUMBER: &[&str] = &[
    "wrong number",
    "wrong person",
    "you have the wrong",
    "you've got the wrong",
    "no one by that name",
    "nobody by that name",
    "not the owner",
    "don't own",
    "dont own",
    "never owned",
    "i am not",
    "this is not",
    "this isn't",
    "who is this",
    "new number",
    "not my business",
    "sold that",
    "sold it",
    "sold the house",
    "sold the property",
    "no longer own",
    "numero equivocado",
];

const PROFANITY: &[&str] = &[
    "fuck",
    "fucking",
    "shit",
    "bitch",
    "asshole",
    "bastard",
    "damn you",
    "piss off",
    "screw you",
    "go to hell",
    "stfu",
    "wtf",
];

const POSITIVE: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "sure",
    "interested",
    "call me",
    "text me",
    "give me a call",
    "sounds good",
    "tell me more",
    "let's talk",
    "lets talk",
    "how much",
    "what's the offer",
    "whats the offer",
    "send me",
    "i'm open",
    "im open",
    "maybe",
    "possibly",
    "depends",
    "make me an offer",
    "what would you pay",
    "when can",
    "available",
];

const NEGATIVE: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "not selling",
    "not for sale",
    "don't want to sell",
    "dont want to sell",
    "no",
    "nope",
    "nah",
];

use normal::words;

/// Whether `phrase` occurs in `text` on word boundaries (both already normalised).
fn has_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase} "))
}

fn any_phrase(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has_phrase(text, p))
}

/// Reads a reply. `opted_out`: whether the sender's number is currently opted out (then YES
/// opts back in).
pub fn read(text: &str, opted_out: bool) -> Reading {
    let text = &*crate::text::as_written(text);
    let w = words(text);
    let email = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '(' | ')'))
        .map(|t| t.trim_matches(|c: char| matches!(c, '.' | '!' | '?' | ':')))
        .find(|t| t.contains('@'))
        .and_then(|t| Email::parse("email", t).ok())
        .map(|e| e.as_str().to_lowercase());
    let phone = {
        let digits: Vec<String> = text
            .split(|c: char| !(c.is_ascii_digit() || matches!(c, '(' | ')' | '-' | '.' | ' ' | '+')))
            .map(|chunk| chunk.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| d.len() == 10 || (d.len() == 11 && d.starts_with('1')))
            .collect();
        digits.iter().find_map(|d| E164::parse(d).ok()).map(|p| p.as_str().to_owned())
    };
    let (intent, confidence) = if let Some(sure) = revocation(text, &w) {
        (Intent::OptOut, sure)
    } else if only_keywords(&w, HELP_WORDS) {
        (Intent::Help, 99)
    } else if only_keywords(&w, START_WORDS) || (opted_out && w == "yes") {
        (Intent::OptIn, 95)
    } else if any_phrase(&w, WRONG_NUMBER) {
        (Intent::WrongNumber, 85)
    } else if any_phrase(&w, PROFANITY) {
        (Intent::Profanity, 90)
    } else if any_phrase(&w, NEGATIVE) && !any_phrase(&w, &["yes", "call me"]) {
        (Intent::Negative, 80)
    } else if email.is_some() || phone.is_some() {
        (Intent::Positive, 90)
    } else if any_phrase(&w, POSITIVE) {
        (Intent::Positive, 80)
    } else if text.trim_end().ends_with('?') {
        (Intent::Question, 75)
    } else {
        (Intent::Neutral, 60)
    };
    Reading { intent, email, phone, confidence }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Intent::*;

    #[test]
    fn yes_opts_back_in_only_when_opted_out() {
        assert_eq!(read("YES", true).intent, OptIn);
        assert_eq!(read("yes", false).intent, Positive);
    }

    #[test]
    fn captured_addresses_and_numbers() {
        let r = read("Email me: Ana.Ruiz@Example.com.", false);
        assert_eq!(r.email.as_deref(), Some("ana.ruiz@example.com"));
        let r = read("text my other phone (516) 407-9249 thanks", false);
        assert_eq!(r.phone.as_deref(), Some("+15164079249"));
        assert_eq!(read("my zip is 33602", false).phone, None);
    }
}
