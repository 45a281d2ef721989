//! Reading a reply (DOMAIN.md A): carrier keywords count only as the whole message (case and
//! punctuation insensitive), so "weekend", "legend" and "stopped by the house" are not
//! opt-outs; since 2025-04-11 a natural-language request to stop is a revocation too, matched
//! on word boundaries. HELP is a request for the team's help text, not interest.

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

const STOP_WORDS: &[&str] =
    &["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out", "remove"];
const HELP_WORDS: &[&str] = &["help", "info"];
/// Words that do not change a keyword reply ("stop please", "STOP STOP").
const COURTESY: &[&str] = &["please", "pls", "plz", "now", "thanks", "thank", "you", "thx", "it", "this"];

/// Whether `w` is only words of `keywords`, repeated or with courtesy words ("stop please",
/// "STOP STOP", "help pls").
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

fn only_stop_words(w: &str) -> bool {
    only_keywords(w, STOP_WORDS)
}

/// Whether some sentence of the message is a stop keyword on its own ("STOP. Wrong number").
fn a_sentence_is_a_stop_word(text: &str) -> bool {
    text.split(['.', '!', '?', ';', ',', '\n'])
        .flat_map(|sentence| sentence.split(" - "))
        .any(|sentence| only_stop_words(&words(sentence)))
}
const START_WORDS: &[&str] = &["start", "unstop"];

/// Natural-language revocation, matched as whole words.
const REVOCATIONS: &[&str] = &[
    "stop texting",
    "stop messaging",
    "stop contacting",
    "stop sending",
    "stop calling",
    "stop text",
    "stop txt",
    "opt out",
    "lose this number",
    "delete this number",
    "remove me",
    "remove my number",
    "take me off",
    "take my number off",
    "unsubscribe me",
    "opt me out",
    "do not text",
    "don't text",
    "dont text",
    "do not contact",
    "don't contact",
    "dont contact",
    "do not message",
    "don't message",
    "no more texts",
    "no more messages",
    "leave me alone",
    "lose my number",
    "delete my number",
    "not interested stop",
    "never text",
    "never contact",
    "quit texting",
    "quit messaging",
    "cease and desist",
];

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

const NEGATIVE: &[&str] =
    &["not interested", "no thanks", "no thank you", "not selling", "not for sale", "no", "nope", "nah"];

/// Lower case, punctuation to spaces, single spaces.
fn words(text: &str) -> String {
    let mapped: String =
        text.chars().map(|c| if c.is_alphanumeric() || c == '\'' { c.to_ascii_lowercase() } else { ' ' }).collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `phrase` occurs in `text` on word boundaries (both already normalised).
fn has_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {text} ");
    padded.contains(&format!(" {phrase} "))
}

fn any_phrase(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has_phrase(text, p))
}

/// A revocation phrase anywhere, except "stop …" negated ("don't stop texting me").
fn revokes(text: &str) -> bool {
    let padded = format!(" {text} ");
    REVOCATIONS.iter().any(|phrase| {
        let needle = format!(" {phrase} ");
        padded.match_indices(&needle).any(|(at, _)| {
            let before = &padded[..at];
            !(phrase.starts_with("stop ")
                && ["don't", "dont", "do not", "never", "not"].iter().any(|n| before.ends_with(&format!(" {n}"))))
        })
    })
}

/// Reads a reply. `opted_out`: whether the sender's number is currently opted out (then YES
/// opts back in).
pub fn read(text: &str, opted_out: bool) -> Reading {
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
    let (intent, confidence) = if STOP_WORDS.contains(&w.as_str()) || only_stop_words(&w) {
        (Intent::OptOut, 99)
    } else if a_sentence_is_a_stop_word(text) {
        (Intent::OptOut, 95)
    } else if revokes(&w) {
        (Intent::OptOut, 90)
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

    /// Realistic replies and what they are, the tricky non-opt-outs included (over 150).
    const CASES: &[(&str, Intent)] = &[
        ("STOP", OptOut),
        ("stop", OptOut),
        ("Stop.", OptOut),
        ("  STOP!!! ", OptOut),
        ("Stopall", OptOut),
        ("UNSUBSCRIBE", OptOut),
        ("cancel", OptOut),
        ("End", OptOut),
        ("QUIT", OptOut),
        ("revoke", OptOut),
        ("optout", OptOut),
        ("opt out", OptOut),
        ("Please stop texting me", OptOut),
        ("stop messaging me!!", OptOut),
        ("Remove me from your list", OptOut),
        ("take me off your list please", OptOut),
        ("Don't text me again", OptOut),
        ("do not contact me", OptOut),
        ("No more texts please", OptOut),
        ("leave me alone", OptOut),
        ("lose my number", OptOut),
        ("Delete my number now", OptOut),
        ("opt me out", OptOut),
        ("stop calling and texting me", OptOut),
        ("Unsubscribe me", OptOut),
        ("fuck off and stop texting", OptOut),
        ("Never text this number again", OptOut),
        ("HELP", Help),
        ("help", Help),
        ("Info", Help),
        ("START", OptIn),
        ("unstop", OptIn),
        ("I'll be around this weekend", Neutral),
        ("That house is a legend in the neighborhood", Neutral),
        ("I stopped by the house yesterday", Neutral),
        ("The end of the month works", Neutral),
        ("Can't stop thinking about selling", Neutral),
        ("Is this about the property on Main?", Question),
        ("What company is this?", Question),
        ("Wrong number", WrongNumber),
        ("You have the wrong person", WrongNumber),
        ("no one by that name here", WrongNumber),
        ("I never owned that property", WrongNumber),
        ("Who is this?", WrongNumber),
        ("This is not John", WrongNumber),
        ("Yes I am interested", Positive),
        ("YES I AM INTERESTED", Positive),
        ("sure, call me tomorrow", Positive),
        ("Sounds good", Positive),
        ("How much would you offer?", Positive),
        ("Tell me more", Positive),
        ("maybe, depends on the price", Positive),
        ("Send me the details at ana@example.com", Positive),
        ("call my cell 516-407-9249 instead", Positive),
        ("Not interested", Negative),
        ("no thanks", Negative),
        ("No", Negative),
        ("not selling", Negative),
        ("shit", Profanity),
        ("screw you", Profanity),
        ("ok", Neutral),
        ("👍", Neutral),
        // More opt-outs, as people write them.
        ("STOP STOP STOP", OptOut),
        ("stop please", OptOut),
        ("Please remove me", OptOut),
        ("remove me!", OptOut),
        ("Remove my number from your list", OptOut),
        ("take me off", OptOut),
        ("Take my number off your list", OptOut),
        ("do not text me", OptOut),
        ("Dont text me", OptOut),
        ("don't contact me again", OptOut),
        ("Do not message this number", OptOut),
        ("no more messages", OptOut),
        ("I said leave me alone", OptOut),
        ("stop sending me these", OptOut),
        ("Stop contacting me or I will report you", OptOut),
        ("Quit texting me", OptOut),
        ("cease and desist", OptOut),
        ("Unsubscribe.", OptOut),
        ("CANCEL!", OptOut),
        ("end.", OptOut),
        ("Stop txt", OptOut),
        ("opt me out please", OptOut),
        ("never contact me again", OptOut),
        ("Delete my number", OptOut),
        // Keywords inside a longer message are not carrier keywords.
        ("Don't stop now, what's the offer?", Positive),
        ("We can end the lease early if the price is right", Neutral),
        ("I need to cancel my appointment with the inspector first", Neutral),
        ("I'll help you if you help me", Neutral),
        ("Need more info on the offer", Neutral),
        ("Started renovations last month", Neutral),
        ("Legendary house, built in 1920", Neutral),
        ("We're at the weekend house", Neutral),
        ("The bus stops right in front", Neutral),
        ("Stopping by later", Neutral),
        ("non-stop calls from investors lately", Neutral),
        ("The deal fell through at the end", Neutral),
        // Help and opting back in.
        ("HELP!", Help),
        ("help?", Help),
        ("INFO.", Help),
        ("Start", OptIn),
        ("UNSTOP", OptIn),
        // Wrong numbers.
        ("wrong number buddy", WrongNumber),
        ("Sorry, wrong person", WrongNumber),
        ("You've got the wrong guy", WrongNumber),
        ("Nobody by that name lives here", WrongNumber),
        ("I'm not the owner", WrongNumber),
        ("I don't own that house anymore", WrongNumber),
        ("Dont own it", WrongNumber),
        ("This isn't Maria's phone", WrongNumber),
        ("New number, who dis", WrongNumber),
        ("who is this", WrongNumber),
        // Interest.
        ("yeah", Positive),
        ("Yep", Positive),
        ("Sure", Positive),
        ("I'm interested", Positive),
        ("interested, what's the offer", Positive),
        ("Give me a call after 5", Positive),
        ("Call me", Positive),
        ("Lets talk", Positive),
        ("Let's talk numbers", Positive),
        ("What would you pay for it?", Positive),
        ("Make me an offer", Positive),
        ("Possibly, depends", Positive),
        ("I'm open to offers", Positive),
        ("When can you come see it?", Positive),
        ("I'm available Thursday", Positive),
        ("send me an offer in writing", Positive),
        ("my email is bo@example.com", Positive),
        ("reach me at 212-555-2187", Positive),
        // Not interested.
        ("no thank you", Negative),
        ("No.", Negative),
        ("NO", Negative),
        ("Not for sale", Negative),
        ("not interested at this time", Negative),
        ("No thanks, we're staying", Negative),
        // Questions.
        ("How did you get my number?", Question),
        ("Which property?", Question),
        ("Are you a realtor?", Question),
        ("Is this a scam?", Question),
        // Profanity.
        ("piss off", Profanity),
        ("what the fuck", Profanity),
        ("you bastard", Profanity),
        // Neutral.
        ("Thanks", Neutral),
        ("k", Neutral),
        ("Got it", Neutral),
        ("I'll think about it", Neutral),
        ("Busy right now", Neutral),
        ("Later", Neutral),
        ("Talk to my husband", Neutral),
        ("The tenants are still in there", Neutral),
        // Opt-outs written as sentences, or with the keyword as a sentence of its own.
        ("STOP. Wrong number", OptOut),
        ("Stop, this is not my house", OptOut),
        ("Wrong number. Stop texting me", OptOut),
        ("STOP - wrong number", OptOut),
        ("Non-stop!", Neutral),
        ("Stop it", OptOut),
        ("stop it now!!", OptOut),
        ("Remove", OptOut),
        ("REMOVE PLEASE", OptOut),
        ("I want to opt out", OptOut),
        ("How do I opt out of these", OptOut),
        ("please unsubscribe me", OptOut),
        ("Please don't text me anymore", OptOut),
        ("Lose this number", OptOut),
        ("delete this number from your list", OptOut),
        ("Take me off your list. Thanks", OptOut),
        ("Do not contact this number again", OptOut),
        ("no more texts!!!", OptOut),
        ("unsubscribe thanks", OptOut),
        ("end please", OptOut),
        // Tricky non-opt-outs: the keyword is part of something else.
        ("Don't stop texting me, I'm interested!", Positive),
        ("Can you stop by Tuesday?", Question),
        ("Stop by anytime after 5", Neutral),
        ("I've been meaning to unsubscribe from my gym", Neutral),
        ("Cancel that, I meant tomorrow", Neutral),
        ("I quit my job last week", Neutral),
        ("Remove the old shed first?", Question),
        ("She's a legend around here", Neutral),
        ("Backend office will get back to you", Neutral),
        ("Quite interested actually", Positive),
        ("Endless calls lately", Neutral),
        ("My stopwatch broke", Neutral),
        ("The weekend works for me", Neutral),
        ("Can I get more info?", Question),
        ("helpful, thanks", Neutral),
        ("It's the end unit on the left", Neutral),
        // Help and opting back in, with courtesy words.
        ("help please", Help),
        ("Info pls", Help),
        ("START please", OptIn),
        // Wrong numbers and people who no longer own it.
        ("Wrong number, sorry", WrongNumber),
        ("This is the wrong number", WrongNumber),
        ("I think you have the wrong number", WrongNumber),
        ("I sold that house years ago", WrongNumber),
        ("Sold it last year", WrongNumber),
        ("We no longer own the property", WrongNumber),
        // Profanity.
        ("go to hell", Profanity),
        ("stfu", Profanity),
        ("wtf is this", Profanity),
        // Interest.
        ("Yes please", Positive),
        ("yes, call me", Positive),
        ("Sure thing", Positive),
        ("I might be interested", Positive),
        ("Text me the offer", Positive),
        ("OK call me tonight", Positive),
        ("Yes I still own it", Positive),
        ("Call me at (305) 868-4000", Positive),
        // Not interested.
        ("Nope", Negative),
        ("nah", Negative),
        ("We're not selling", Negative),
        ("Not selling, thanks", Negative),
        ("no, thank you", Negative),
        // Questions.
        ("Who gave you my number?", Question),
        ("What is this about?", Question),
        ("How does this work?", Question),
        // Neutral.
        ("Ok thanks", Neutral),
        ("Will do", Neutral),
        ("🙂", Neutral),
    ];

    #[test]
    fn the_table_is_large_enough_to_mean_something() {
        assert!(CASES.len() >= 200, "{} cases", CASES.len());
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
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

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
