//! Revocation of consent in the words people use (FCC 2024: "any reasonable means").
//!
//! Three readings, strongest first:
//! 1. The carriers' keywords, English and Spanish, as the whole message, repeated or with
//!    courtesy words ("STOP", "STOP STOP STOP", "stop please", "BASTA YA", "no más").
//! 2. A keyword as a sentence of its own ("STOP. Wrong number", "Not interested, stop"), or
//!    with only a "no", "not interested" or "I said" around it ("STOP not interested").
//! 3. A request in any tense or person, repeated, annoyed or reported as an earlier one
//!    ("I told you to stop", "she doesn't want these texts", "deja de enviarme mensajes"),
//!    written as the patterns below.
//!
//! Keywords in another sense are not revocations: "weekend", "stop by tomorrow", "bus stop",
//! "non-stop", "don't stop texting me", "the alto sax", "basta pasta", "remove the old roof",
//! "no más de 10 días". A request to cancel something else ("can I cancel my appointment?")
//! is not one either; only CANCEL (or CANCELAR) on its own is.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::pattern::Pattern;

/// Single-word keywords. END, QUIT, CANCEL and the Spanish ones have everyday senses, so
/// they count only alone.
const KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "unsub",
    "unsuscribe",
    "unsubcribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "remove",
    "discontinue",
    "dnc",
    "parar",
    "para",
    "pare",
    "paren",
    "alto",
    "basta",
    "cancelar",
    "cancela",
    "baja",
    "detener",
    "detente",
    "fin",
    "st0p",
    "stahp",
];
/// Keywords of several words.
const KEYWORD_RUNS: &[&[&str]] = &[
    &["opt", "out"],
    &["opt", "me", "out"],
    &["stop", "all"],
    &["no", "more"],
    &["no", "mas"],
    &["ya", "no", "mas"],
    &["do", "not", "contact"],
    &["do", "not", "text"],
    &["darme", "de", "baja"],
    &["s", "t", "o", "p"],
];
/// Keywords unmistakable even with a "no" or "not interested" beside them.
const STRONG: &[&str] = &["stop", "stopall", "unsubscribe", "unsub", "optout", "parar", "basta", "detener"];
/// Words that do not change a keyword reply ("stop please", "STOP ALREADY", "basta ya").
const COURTESY: &[&str] = &[
    "please",
    "pls",
    "plz",
    "plez",
    "now",
    "thanks",
    "thank",
    "you",
    "thx",
    "ty",
    "it",
    "this",
    "already",
    "again",
    "asap",
    "immediately",
    "ok",
    "okay",
    "right",
    "sir",
    "maam",
    "ma'am",
    "man",
    "dude",
    "bro",
    "seriously",
    "omg",
    "por",
    "favor",
    "porfavor",
    "porfa",
    "xfa",
    "gracias",
    "ya",
    "ahora",
    "ahorita",
];
/// What may be the whole rest of a sentence with a strong keyword ("STOP no", "nope STOP").
const BESIDE_WHOLE: &[&str] =
    &["no", "nope", "nah", "no way", "hell no", "i said", "i already said", "said", "again i said", "i mean it"];
/// How the rest of such a sentence may begin, after words like "I'm" or "we are" ("STOP I'm
/// not selling", "we are not interested stop").
const BESIDE_START: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "not selling",
    "not for sale",
    "wrong number",
    "wrong person",
    "not the owner",
    "don't want",
    "dont want",
    "do not want",
    "no interest",
    "no gracias",
    "no me interesa",
    "no estoy interesado",
    "no estoy interesada",
    "numero equivocado",
];
const LEAD_IN: &[&str] = &[
    "i'm",
    "im",
    "i",
    "am",
    "we're",
    "we",
    "are",
    "were",
    "this",
    "is",
    "it's",
    "its",
    "and",
    "but",
    "because",
    "cause",
    "cuz",
    "sorry",
    "really",
    "just",
    "still",
    "definitely",
    "absolutely",
    "totally",
];

/// "stoooop" and "STOPPP" are STOP.
fn is_stop_spelling(w: &str) -> bool {
    let squeezed: String = w.chars().fold(String::new(), |mut s, c| {
        if !s.ends_with(c) {
            s.push(c);
        }
        s
    });
    squeezed == "stop" && w.len() <= 12
}

fn keyword_at(words: &[&str], at: usize) -> Option<usize> {
    if let Some(run) = KEYWORD_RUNS.iter().find(|run| words[at..].starts_with(run)) {
        return Some(run.len());
    }
    (KEYWORDS.contains(&words[at]) || is_stop_spelling(words[at])).then_some(1)
}

/// Whether `words` is keywords only, repeated or with courtesy words.
pub(super) fn only_keywords(words: &[&str]) -> bool {
    let (mut at, mut saw) = (0, false);
    while at < words.len() {
        if let Some(len) = keyword_at(words, at) {
            saw = true;
            at += len;
        } else if COURTESY.contains(&words[at]) {
            at += 1;
        } else {
            return false;
        }
    }
    saw
}

/// A strong keyword at either end of a sentence whose rest is a refusal ("STOP not
/// interested", "STOP I'm not selling", "nope STOP", "I said stop").
pub(super) fn keyword_beside(words: &[&str]) -> bool {
    let kept: Vec<&str> = words.iter().copied().filter(|w| !COURTESY.contains(w)).collect();
    let strong = |w: &&&str| STRONG.contains(*w) || is_stop_spelling(w);
    let lead = kept.iter().take_while(strong).count();
    let trail = kept.iter().rev().take_while(strong).count();
    let refusal = |rest: &[&str]| {
        let joined = rest.join(" ");
        let begun = rest.iter().skip_while(|w| LEAD_IN.contains(*w)).copied().collect::<Vec<_>>().join(" ");
        BESIDE_WHOLE.contains(&joined.as_str())
            || BESIDE_START.iter().any(|p| begun == *p || begun.starts_with(&format!("{p} ")))
    };
    (lead > 0 && lead < kept.len() && refusal(&kept[lead..]))
        || (trail > 0 && trail < kept.len() && refusal(&kept[..kept.len() - trail]))
}

const SETS: &[(&str, &str)] = &[
    ("not", "don't|dont|do_not|never|not|can't|cant|cannot|couldn't|wouldn't|won't|wont|non|bus|truck|pit|rest|full|one|last|next|first|quick|a|the"),
    ("subject", "i|you|u|ya|we|they|he|she|it|if|why|who|that|would|will|you'll|i'll|we'll|u_also|you_also|i_also|we_also|u_just|you_just|i_just|you_even|i_even|you_still|u_still|i_still"),
    ("neg", "don't|dont|do_not|doesn't|doesnt|does_not|please_don't|pls_don't|plz_dont|never|dont_u|don't_you"),
    ("ever", "ever|evr|eva|you_ever|u_ever|you_dare|ever_again|even"),
    ("stop", "stop|quit|cease|discontinue|halt|end"),
    ("ing", "texting|txting|texing|textin|txtn|messaging|msging|messeging|contacting|sending|calling|emailing|bothering|harassing|harrassing|spamming|bugging|pestering|hitting_me_up|hitting_us_up|reaching_out|writing|blowing_up|receiving|getting_these|getting_texts|getting_messages|getting_your|getting_calls"),
    ("det", "the|these|those|this|all|your|ur|all_the|all_these|all_of_the|all_of_these|all_your|with|w|with_the|with_these|with_all|with_your|w_the|sending|sending_me|sending_the|any|more|any_more|further|of_these|of_the|of_your|of_this|of_ur|of_those"),
    ("adj", "stupid|damn|dumb|fucking|freaking|annoying|automated|spam|spammy|marketing|promotional|unwanted|text|robo|junk|bs"),
    ("comm", "texts|text|txts|txt|messages|message|msgs|msg|sms|calls|emails|spam|texting|messaging|contact|communication|communications|solicitations|mensajes"),
    ("verb", "text|txt|message|msg|contact|sms|txting|texting|messaging|contacting|hmu|hit_me_up|bother_me|bother_us|bug_me|harass_me|pester_me"),
    ("obj", "me|us|this_number|her|him|them|here|again|anymore|ever|any_more|my_number|my_phone|my_cell|or_call|or_email|or_message|or_contact|and_call"),
    // Papers and things a seller asks to be taken off: "remove me from the title" is no stop.
    ("doc", "the_title|my_title|our_title|his_title|her_title|their_title|this_title|that_title|the_deed|my_deed|our_deed|his_deed|her_deed|their_deed|this_deed|that_deed|the_mortgage|my_mortgage|our_mortgage|his_mortgage|her_mortgage|their_mortgage|this_mortgage|that_mortgage|the_loan|my_loan|our_loan|his_loan|her_loan|their_loan|this_loan|that_loan|the_lease|my_lease|our_lease|his_lease|her_lease|their_lease|this_lease|that_lease|the_will|my_will|our_will|his_will|her_will|their_will|this_will|that_will|the_trust|my_trust|our_trust|his_trust|her_trust|their_trust|this_trust|that_trust|the_hoa|my_hoa|our_hoa|his_hoa|her_hoa|their_hoa|this_hoa|that_hoa|the_account|my_account|our_account|his_account|her_account|their_account|this_account|that_account|the_policy|my_policy|our_policy|his_policy|her_policy|their_policy|this_policy|that_policy|the_insurance|my_insurance|our_insurance|his_insurance|her_insurance|their_insurance|this_insurance|that_insurance|the_utilities|my_utilities|our_utilities|his_utilities|her_utilities|their_utilities|this_utilities|that_utilities|the_bill|my_bill|our_bill|his_bill|her_bill|their_bill|this_bill|that_bill|the_contract|my_contract|our_contract|his_contract|her_contract|their_contract|this_contract|that_contract|the_listing|my_listing|our_listing|his_listing|her_listing|their_listing|this_listing|that_listing|the_llc|my_llc|our_llc|his_llc|her_llc|their_llc|this_llc|that_llc|the_estate|my_estate|our_estate|his_estate|her_estate|their_estate|this_estate|that_estate|the_property|my_property|our_property|his_property|her_property|their_property|this_property|that_property|the_house|my_house|our_house|his_house|her_house|their_house|this_house|that_house|the_note|my_note|our_note|his_note|her_note|their_note|this_note|that_note|the_market|my_market|our_market|his_market|her_market|their_market|this_market|that_market|the_group|my_group|our_group|his_group|her_group|their_group|this_group|that_group|the_chat|my_chat|our_chat|his_chat|her_chat|their_chat|this_chat|that_chat|the_hook|my_hook|our_hook|his_hook|her_hook|their_hook|this_hook|that_hook|the_application|my_application|our_application|his_application|her_application|their_application|this_application|that_application|the_paperwork|my_paperwork|our_paperwork|his_paperwork|her_paperwork|their_paperwork|this_paperwork|that_paperwork|the_registration|my_registration|our_registration|his_registration|her_registration|their_registration|this_registration|that_registration|the_insurance_policy|my_insurance_policy|our_insurance_policy|his_insurance_policy|her_insurance_policy|their_insurance_policy|this_insurance_policy|that_insurance_policy|the_bank_account|my_bank_account|our_bank_account|his_bank_account|her_bank_account|their_bank_account|this_bank_account|that_bank_account"),
    ("from_doc", "from_the_title|from_my_title|from_our_title|from_his_title|from_her_title|from_their_title|from_this_title|from_that_title|off_the_title|off_my_title|off_our_title|off_his_title|off_her_title|off_their_title|off_this_title|off_that_title|off_of_the_title|off_of_my_title|off_of_our_title|off_of_his_title|off_of_her_title|off_of_their_title|off_of_this_title|off_of_that_title|from_the_deed|from_my_deed|from_our_deed|from_his_deed|from_her_deed|from_their_deed|from_this_deed|from_that_deed|off_the_deed|off_my_deed|off_our_deed|off_his_deed|off_her_deed|off_their_deed|off_this_deed|off_that_deed|off_of_the_deed|off_of_my_deed|off_of_our_deed|off_of_his_deed|off_of_her_deed|off_of_their_deed|off_of_this_deed|off_of_that_deed|from_the_mortgage|from_my_mortgage|from_our_mortgage|from_his_mortgage|from_her_mortgage|from_their_mortgage|from_this_mortgage|from_that_mortgage|off_the_mortgage|off_my_mortgage|off_our_mortgage|off_his_mortgage|off_her_mortgage|off_their_mortgage|off_this_mortgage|off_that_mortgage|off_of_the_mortgage|off_of_my_mortgage|off_of_our_mortgage|off_of_his_mortgage|off_of_her_mortgage|off_of_their_mortgage|off_of_this_mortgage|off_of_that_mortgage|from_the_loan|from_my_loan|from_our_loan|from_his_loan|from_her_loan|from_their_loan|from_this_loan|from_that_loan|off_the_loan|off_my_loan|off_our_loan|off_his_loan|off_her_loan|off_their_loan|off_this_loan|off_that_loan|off_of_the_loan|off_of_my_loan|off_of_our_loan|off_of_his_loan|off_of_her_loan|off_of_their_loan|off_of_this_loan|off_of_that_loan|from_the_lease|from_my_lease|from_our_lease|from_his_lease|from_her_lease|from_their_lease|from_this_lease|from_that_lease|off_the_lease|off_my_lease|off_our_lease|off_his_lease|off_her_lease|off_their_lease|off_this_lease|off_that_lease|off_of_the_lease|off_of_my_lease|off_of_our_lease|off_of_his_lease|off_of_her_lease|off_of_their_lease|off_of_this_lease|off_of_that_lease|from_the_will|from_my_will|from_our_will|from_his_will|from_her_will|from_their_will|from_this_will|from_that_will|off_the_will|off_my_will|off_our_will|off_his_will|off_her_will|off_their_will|off_this_will|off_that_will|off_of_the_will|off_of_my_will|off_of_our_will|off_of_his_will|off_of_her_will|off_of_their_will|off_of_this_will|off_of_that_will|from_the_trust|from_my_trust|from_our_trust|from_his_trust|from_her_trust|from_their_trust|from_this_trust|from_that_trust|off_the_trust|off_my_trust|off_our_trust|off_his_trust|off_her_trust|off_their_trust|off_this_trust|off_that_trust|off_of_the_trust|off_of_my_trust|off_of_our_trust|off_of_his_trust|off_of_her_trust|off_of_their_trust|off_of_this_trust|off_of_that_trust|from_the_hoa|from_my_hoa|from_our_hoa|from_his_hoa|from_her_hoa|from_their_hoa|from_this_hoa|from_that_hoa|off_the_hoa|off_my_hoa|off_our_hoa|off_his_hoa|off_her_hoa|off_their_hoa|off_this_hoa|off_that_hoa|off_of_the_hoa|off_of_my_hoa|off_of_our_hoa|off_of_his_hoa|off_of_her_hoa|off_of_their_hoa|off_of_this_hoa|off_of_that_hoa|from_the_account|from_my_account|from_our_account|from_his_account|from_her_account|from_their_account|from_this_account|from_that_account|off_the_account|off_my_account|off_our_account|off_his_account|off_her_account|off_their_account|off_this_account|off_that_account|off_of_the_account|off_of_my_account|off_of_our_account|off_of_his_account|off_of_her_account|off_of_their_account|off_of_this_account|off_of_that_account|from_the_policy|from_my_policy|from_our_policy|from_his_policy|from_her_policy|from_their_policy|from_this_policy|from_that_policy|off_the_policy|off_my_policy|off_our_policy|off_his_policy|off_her_policy|off_their_policy|off_this_policy|off_that_policy|off_of_the_policy|off_of_my_policy|off_of_our_policy|off_of_his_policy|off_of_her_policy|off_of_their_policy|off_of_this_policy|off_of_that_policy|from_the_insurance|from_my_insurance|from_our_insurance|from_his_insurance|from_her_insurance|from_their_insurance|from_this_insurance|from_that_insurance|off_the_insurance|off_my_insurance|off_our_insurance|off_his_insurance|off_her_insurance|off_their_insurance|off_this_insurance|off_that_insurance|off_of_the_insurance|off_of_my_insurance|off_of_our_insurance|off_of_his_insurance|off_of_her_insurance|off_of_their_insurance|off_of_this_insurance|off_of_that_insurance|from_the_utilities|from_my_utilities|from_our_utilities|from_his_utilities|from_her_utilities|from_their_utilities|from_this_utilities|from_that_utilities|off_the_utilities|off_my_utilities|off_our_utilities|off_his_utilities|off_her_utilities|off_their_utilities|off_this_utilities|off_that_utilities|off_of_the_utilities|off_of_my_utilities|off_of_our_utilities|off_of_his_utilities|off_of_her_utilities|off_of_their_utilities|off_of_this_utilities|off_of_that_utilities|from_the_bill|from_my_bill|from_our_bill|from_his_bill|from_her_bill|from_their_bill|from_this_bill|from_that_bill|off_the_bill|off_my_bill|off_our_bill|off_his_bill|off_her_bill|off_their_bill|off_this_bill|off_that_bill|off_of_the_bill|off_of_my_bill|off_of_our_bill|off_of_his_bill|off_of_her_bill|off_of_their_bill|off_of_this_bill|off_of_that_bill|from_the_contract|from_my_contract|from_our_contract|from_his_contract|from_her_contract|from_their_contract|from_this_contract|from_that_contract|off_the_contract|off_my_contract|off_our_contract|off_his_contract|off_her_contract|off_their_contract|off_this_contract|off_that_contract|off_of_the_contract|off_of_my_contract|off_of_our_contract|off_of_his_contract|off_of_her_contract|off_of_their_contract|off_of_this_contract|off_of_that_contract|from_the_listing|from_my_listing|from_our_listing|from_his_listing|from_her_listing|from_their_listing|from_this_listing|from_that_listing|off_the_listing|off_my_listing|off_our_listing|off_his_listing|off_her_listing|off_their_listing|off_this_listing|off_that_listing|off_of_the_listing|off_of_my_listing|off_of_our_listing|off_of_his_listing|off_of_her_listing|off_of_their_listing|off_of_this_listing|off_of_that_listing|from_the_llc|from_my_llc|from_our_llc|from_his_llc|from_her_llc|from_their_llc|from_this_llc|from_that_llc|off_the_llc|off_my_llc|off_our_llc|off_his_llc|off_her_llc|off_their_llc|off_this_llc|off_that_llc|off_of_the_llc|off_of_my_llc|off_of_our_llc|off_of_his_llc|off_of_her_llc|off_of_their_llc|off_of_this_llc|off_of_that_llc|from_the_estate|from_my_estate|from_our_estate|from_his_estate|from_her_estate|from_their_estate|from_this_estate|from_that_estate|off_the_estate|off_my_estate|off_our_estate|off_his_estate|off_her_estate|off_their_estate|off_this_estate|off_that_estate|off_of_the_estate|off_of_my_estate|off_of_our_estate|off_of_his_estate|off_of_her_estate|off_of_their_estate|off_of_this_estate|off_of_that_estate|from_the_property|from_my_property|from_our_property|from_his_property|from_her_property|from_their_property|from_this_property|from_that_property|off_the_property|off_my_property|off_our_property|off_his_property|off_her_property|off_their_property|off_this_property|off_that_property|off_of_the_property|off_of_my_property|off_of_our_property|off_of_his_property|off_of_her_property|off_of_their_property|off_of_this_property|off_of_that_property|from_the_house|from_my_house|from_our_house|from_his_house|from_her_house|from_their_house|from_this_house|from_that_house|off_the_house|off_my_house|off_our_house|off_his_house|off_her_house|off_their_house|off_this_house|off_that_house|off_of_the_house|off_of_my_house|off_of_our_house|off_of_his_house|off_of_her_house|off_of_their_house|off_of_this_house|off_of_that_house|from_the_note|from_my_note|from_our_note|from_his_note|from_her_note|from_their_note|from_this_note|from_that_note|off_the_note|off_my_note|off_our_note|off_his_note|off_her_note|off_their_note|off_this_note|off_that_note|off_of_the_note|off_of_my_note|off_of_our_note|off_of_his_note|off_of_her_note|off_of_their_note|off_of_this_note|off_of_that_note|from_the_market|from_my_market|from_our_market|from_his_market|from_her_market|from_their_market|from_this_market|from_that_market|off_the_market|off_my_market|off_our_market|off_his_market|off_her_market|off_their_market|off_this_market|off_that_market|off_of_the_market|off_of_my_market|off_of_our_market|off_of_his_market|off_of_her_market|off_of_their_market|off_of_this_market|off_of_that_market|from_the_group|from_my_group|from_our_group|from_his_group|from_her_group|from_their_group|from_this_group|from_that_group|off_the_group|off_my_group|off_our_group|off_his_group|off_her_group|off_their_group|off_this_group|off_that_group|off_of_the_group|off_of_my_group|off_of_our_group|off_of_his_group|off_of_her_group|off_of_their_group|off_of_this_group|off_of_that_group|from_the_chat|from_my_chat|from_our_chat|from_his_chat|from_her_chat|from_their_chat|from_this_chat|from_that_chat|off_the_chat|off_my_chat|off_our_chat|off_his_chat|off_her_chat|off_their_chat|off_this_chat|off_that_chat|off_of_the_chat|off_of_my_chat|off_of_our_chat|off_of_his_chat|off_of_her_chat|off_of_their_chat|off_of_this_chat|off_of_that_chat|from_the_hook|from_my_hook|from_our_hook|from_his_hook|from_her_hook|from_their_hook|from_this_hook|from_that_hook|off_the_hook|off_my_hook|off_our_hook|off_his_hook|off_her_hook|off_their_hook|off_this_hook|off_that_hook|off_of_the_hook|off_of_my_hook|off_of_our_hook|off_of_his_hook|off_of_her_hook|off_of_their_hook|off_of_this_hook|off_of_that_hook|from_the_application|from_my_application|from_our_application|from_his_application|from_her_application|from_their_application|from_this_application|from_that_application|off_the_application|off_my_application|off_our_application|off_his_application|off_her_application|off_their_application|off_this_application|off_that_application|off_of_the_application|off_of_my_application|off_of_our_application|off_of_his_application|off_of_her_application|off_of_their_application|off_of_this_application|off_of_that_application|from_the_paperwork|from_my_paperwork|from_our_paperwork|from_his_paperwork|from_her_paperwork|from_their_paperwork|from_this_paperwork|from_that_paperwork|off_the_paperwork|off_my_paperwork|off_our_paperwork|off_his_paperwork|off_her_paperwork|off_their_paperwork|off_this_paperwork|off_that_paperwork|off_of_the_paperwork|off_of_my_paperwork|off_of_our_paperwork|off_of_his_paperwork|off_of_her_paperwork|off_of_their_paperwork|off_of_this_paperwork|off_of_that_paperwork|from_the_registration|from_my_registration|from_our_registration|from_his_registration|from_her_registration|from_their_registration|from_this_registration|from_that_registration|off_the_registration|off_my_registration|off_our_registration|off_his_registration|off_her_registration|off_their_registration|off_this_registration|off_that_registration|off_of_the_registration|off_of_my_registration|off_of_our_registration|off_of_his_registration|off_of_her_registration|off_of_their_registration|off_of_this_registration|off_of_that_registration|from_the_insurance_policy|from_my_insurance_policy|from_our_insurance_policy|from_his_insurance_policy|from_her_insurance_policy|from_their_insurance_policy|from_this_insurance_policy|from_that_insurance_policy|off_the_insurance_policy|off_my_insurance_policy|off_our_insurance_policy|off_his_insurance_policy|off_her_insurance_policy|off_their_insurance_policy|off_this_insurance_policy|off_that_insurance_policy|off_of_the_insurance_policy|off_of_my_insurance_policy|off_of_our_insurance_policy|off_of_his_insurance_policy|off_of_her_insurance_policy|off_of_their_insurance_policy|off_of_this_insurance_policy|off_of_that_insurance_policy|from_the_bank_account|from_my_bank_account|from_our_bank_account|from_his_bank_account|from_her_bank_account|from_their_bank_account|from_this_bank_account|from_that_bank_account|off_the_bank_account|off_my_bank_account|off_our_bank_account|off_his_bank_account|off_her_bank_account|off_their_bank_account|off_this_bank_account|off_that_bank_account|off_of_the_bank_account|off_of_my_bank_account|off_of_our_bank_account|off_of_his_bank_account|off_of_her_bank_account|off_of_their_bank_account|off_of_this_bank_account|off_of_that_bank_account"),
    ("when", "before|after|until|till|til|during|while|at_work|on_weekends|on_the_weekend|on_sundays|so_late|so_early|this_late|this_early|late|early|today|tonight|tomorrow|yet|right_now|between|in_the_morning|at_night|on|when_driving|while_driving"),
    ("expletive", "the_f|tf|the_fuck|the_hell|the_heck|the_eff|the_frick|the_freak|fucking|f'ing|freaking|fricking"),
    ("self", "me|us|myself|ourselves|my_number|this_number|my_name|my_info|my_information|my_phone|my_phone_number|my_cell|my_cell_number|my_contact|my_contact_info|my_details|our_number|our_info|her_number|his_number|their_number|this_phone|this_phone_number|this_contact|this_cell"),
    ("number", "number|numbers|#|digits|phone_number|cell|cell_number|contact|contact_info|info|information|details"),
    ("your", "your|ur|yall's|y'all's|you_guys|this|that|the|these|those|of_your|of_ur|of_the|of_this|any|all|all_your|every|the_texting|the_mailing|the_contact|the_call|the_calling|the_sms|the_text"),
    ("list", "list|lists|contact_list|calling_list|texting_list|call_list|mailing_list|sms_list|text_list|database|system|records|contacts|register|registry|lead_list|marketing_list"),
    ("off", "take|took|taken|taking|get|got|gotten|getting|remove|removed|removing|delete|deleted|drop|dropped|scratch|cross|be|been|put|keep|wipe|want|need|unsubscribe|unsubscribed"),
    ("you", "you|u|ya|y'all|yall|you_guys|you_people|your_company|ur_company|them|him|her|your_team|everyone"),
    ("ask", "told|tell|telling|asked|ask|asking|begged|beg|begging|requested|request|requesting|want|wanted|need|needed|demand|demanded"),
    ("said", "said|say|says|saying|typed|type|texted|replied|reply|replying|wrote|write|sent|send|responded|respond"),
    ("kw", "stop|stopall|unsubscribe|unsub|remove|opt_out|optout|parar|basta"),
    ("trail", "please|pls|plz|now|thanks|thank_you|already|again|asap|immediately|ok|okay|right_now|man|dude|bro|ty|thx|for_real|seriously|thank|you"),
    ("persons", "i|we|she|he|they|i'd|we'd|i'm|im|we're|my_wife|my_husband|my_mom|my_dad|please|pls"),
    ("wantish", "want|wants|wanted|would|like|asked|ask|has|have|had|already|just|need|needs|to|d|wish|demand|requested|request|also|really|please|do|did|prefer|rather|am|is|are|was|were|requesting|asking|going|gonna|wanna|would_like|i'd_like|want_to"),
    ("passive", "removed|deleted|unsubscribed|opted_out|left_alone"),
    ("want", "want|wants|wanted|wish|wishes|wanna|need|needs|consent|consented|agree|agreed"),
    ("nowant", "don't|dont|do_not|doesn't|doesnt|does_not|didn't|didnt|did_not|no_longer|never|not|dont_ever|don't_ever|won't|wont"),
    ("wantfill", "to|any|anymore|more|any_more|these|those|your|ur|the|this|be|being|receive|receiving|get|getting|further|of|all|@adj|from_you|from_u|from_your_company|from_this_number|ever"),
    ("tocomm", "texts|text|txts|messages|msgs|sms|calls|emails|contacted|texted|messaged|called|spammed|solicited|contact|communications|solicitations|hear_from_you|hear_from_u|hear_from_y'all|hear_from_your_company|hear_from_anyone"),
    // Spanish.
    ("es_comm", "mensajes|mensaje|textos|texto|msjs|msj|mensajitos|sms|llamadas|correos|whatsapps|whatsapp|publicidad|promociones"),
    ("es_stop", "deja|dejen|deje|dejes|dejar|dejame|para|pare|paren|parale|parenle|parar|detengan|detenga|detener|deten|basta|dejen_ya"),
    ("es_inf", "enviarme|enviar|mandarme|mandar|escribirme|escribir|textearme|textear|llamarme|contactarme|contactar|molestarme|molestar|mensajearme|enviarnos|escribirnos|mandarnos|contactarnos|molestarnos|llamarnos|recibir|enviarle|escribirle|mandarle|contactarle|contactarla|contactarlo|escribirles|enviarles|mandarles|mensajes|textos|enviar_mensajes|mandar_mensajes|llamar|llamarle|llamarla|llamarlo"),
    ("es_2nd", "escribas|escriban|escriba|mandes|manden|mande|envies|envien|envie|contactes|contacten|contacte|molestes|molesten|moleste|textees|texteen|mensajees|mensajeen|llames|llamen|llame"),
    ("es_nofill", "quiero_que|queremos_que|quiere_que|quisiera_que|deseo_que|por_favor|porfavor|favor_de|mas|ya|les_pido_que|le_pido_que|te_pido_que"),
    ("es_me", "me|nos|le|les|la|lo|mas|ya|mas_me|ya_me"),
    ("es_want", "quiero|queremos|quiere|quieren|deseo|desea|deseamos|desean|necesito"),
    ("es_wantfill", "mas|recibir|sus|tus|estos|estas|los|las|ningun|ninguno|ningunos|ninguna|este|esta|su|tu|sus_mensajes|mensajes_de|de|ustedes|usted"),
    ("es_erase", "borrame|borrenme|borreme|borranos|borrennos|eliminame|eliminenme|elimineme|eliminanos|eliminennos|remuevame|remueveme|remuevanme"),
    ("es_out", "quitame|quitenme|quiteme|sacame|saquenme|saqueme|quitanos|sacanos|saquennos|quitennos|borra|borren|borre|elimina|eliminen|elimine|quita|quiten|quite|saca|saquen|saque"),
    ("es_list", "lista|listas|su_lista|tu_lista|sus_listas|la_lista|base|base_de_datos|sistema|contactos|registro|registros"),
    ("es_mine", "mi|este|nuestro"),
    ("es_number", "numero|telefono|celular|contacto|nombre|informacion|info|cel|tel"),
];

/// The request phrases (see the module comment and the set definitions above).
const PATTERNS: &[&str] = &[
    // stop / quit / cease + what is being done ("stop texting me", "quit messaging").
    "!@not @stop @ing !everyone|everybody|people|others|around|about|for|back|in|out",
    "!@not @stop @det* @adj* @comm",
    "!@not @stop it|this with @det* @comm",
    "please|pls|plz stop|quit !by|in|over|at|for|thinking|worrying|the_sale|the_foreclosure",
    "just stop !by|in|over|at|for|thinking|worrying|the_sale|the_foreclosure",
    // "Don't text me": a revocation, unless it only says when ("don't text me after 9").
    "!@subject @neg @ever? @verb @obj !@when|and_drive|and_walk",
    "!@subject @neg @ever? @verb $",
    // "Don't call me" revokes too: a stop on one channel stops every channel (issue 11.3),
    // so "don't call me, text me" is a stop as well.
    "!@subject @neg @ever? call|ring|phone|calling @obj|or_text|or_txt|or_message|or_email|and_text !@when",
    "!@subject @neg @ever? call|ring|phone $",
    "!@subject @neg @ever? send me? any|anymore|more|these|those|@adj* @comm",
    "!@subject never call|ring|bother me|us|this_number|my_number|again",
    "no more|further @det* @adj* @comm",
    "leave me|us|him|her|them|my_family @expletive? alone",
    "leave my ~ alone",
    // remove / delete / take off, and the passive ("we asked to be taken off your list").
    "remove|delete|erase|unsubscribe|unsub|unenroll @self !@from_doc",
    "remove|delete|erase him|her|them from|off @your @list",
    "remove|delete|erase him|her $",
    "take|took|get|got|cross|scratch @self|him|her off !@doc|of_@doc",
    "@off @self|him|her|them? off|from @your @list !price|prices|value",
    "^ off @your? @list @trail* $",
    "lose|loose|delete|erase|forget|trash|burn|toss|ditch|remove my|this|our|her|his|their @number",
    "@persons @wantish* be|been|get|got|being @passive !from|as|by|because|in|when|for",
    "removed|taken_off|taken_of|deleted|unsubscribed|opted_out|dropped off|from @your @list !price",
    "added|put|placed to|on @your? do_not_call|do_not_contact|do_not_text|dnc|no_call|no_text",
    // Reported and repeated: "I told you to stop", "how many times do I have to say stop".
    "@ask @you? to @kw @trail* $",
    "@ask @you? to stop|quit|remove_me|unsubscribe several|many|multiple|a_few|two|three? times|before|already|twice|repeatedly|previously|last_week|yesterday",
    "@said @kw !by|in|over|at|and|for|sign|signs|of|the|light|lights|a",
    "part_of stop|no",
    "make it|this|them|these|those stop",
    "make @det* @adj* @comm stop",
    "@want @det* @adj* @comm|it|them|this|these|those to stop|end|cease @trail* $",
    "how do|can|should|would i|we stop|end @det* @adj* @comm|these|this|them|it @trail* $",
    "you'd|youd|you_would|u_would|u'd|y'all_would|yall_would stop @trail* $",
    "opt_out",
    "opt_me_out|opt_us_out|opt_her_out|opt_him_out",
    "unsubscribe|unsub|optout|unsuscribe|unsubcribe @trail* $",
    "unsubscribe|unsub|optout from|of|to @your? @comm|@list|number|#",
    // Wanting none of it, in any person: "she doesn't want these texts".
    "@nowant @want @wantfill* @tocomm",
    "not interested in @wantfill* @tocomm",
    "why|y do|does|are|is|did you|u|y'all|yall|you_guys|you_people|they|this_number keep|still @ing",
    "why|y you|u keep @ing",
    "how_many_times do|must|should|have|will|did|am|are ~* ask|say|tell|told|asked|said|write|text|reply|asking|saying|telling",
    // Annoyed: reported, blocked, called spam.
    "reported|reporting|report you|u|y'all|yall|this_number|your_number|your_company|ur_company",
    "reported|reporting|report|marked|marking|mark|flagged|flagging|flag ~? as spam|junk",
    "^ spam|spammer|spammers|blocked|blocking @trail* $",
    "block|blocking|blocked|blockin you|u|this|this_number|your_number|ur_number|y'all|yall|the_number",
    "is|its|it's|this_is|that's|thats harassment|harrassment|harassing|harrassing|spam|unwanted",
    "!@not cancel|end|stop my|this|the|your|these|all? subscription|subscriptions|alerts|notifications|texts|messages|texting",
    "unsubscribe|unsub|optout from|of|to all @trail* $",
    "enough with|of? @det* @adj* @comm",
    "cease_and_desist",
    "cease|stop|end|discontinue|halt all|any? contact|communication|communications",
    "do_not_call|dnc|do_not_contact|do_not_text|don't_call|dont_call list|registry",
    "^ dnc|do_not_contact|do_not_text|do_not_call @trail* $",
    // Spanish.
    "no|ya_no mas @es_comm",
    "@es_stop de @es_inf",
    "no|nunca|ya_no @es_nofill? me|nos @es_2nd",
    "no|nunca|ya_no @es_2nd mas|nada|@es_comm|$",
    "no|nunca|ya_no me? vuelvas|vuelvan|vuelva a @es_inf",
    "no|ya_no me? sigas|sigan|siga enviando|escribiendo|mandando|molestando|enviandome|escribiendome|mandandome",
    "no @es_want @es_wantfill* @es_comm",
    "@es_erase",
    "@es_out de|del @es_list",
    "@es_out @es_mine @es_number",
    "darme|dame|denme|deme|darnos|dennos|me_den|me_de|dar|doy|me_doy de_baja",
    "cancelar|cancela|cancelen|cancele mi|la|su|mis|las|los? suscripcion|subscripcion|suscripciones|mensajes|envios",
    "dejame|dejeme|dejenme|dejanos|dejennos en_paz",
    "ya basta|basta_ya",
    "alto a|con los|estos|sus? @es_comm",
];

/// The patterns, indexed by the word each can start with.
struct Compiled {
    patterns: Vec<Pattern>,
    by_first: HashMap<String, Vec<usize>>,
    anywhere: Vec<usize>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let patterns: Vec<Pattern> = PATTERNS.iter().map(|p| Pattern::compile(p, SETS)).collect();
    let (mut by_first, mut anywhere) = (HashMap::<String, Vec<usize>>::new(), Vec::new());
    for (i, p) in patterns.iter().enumerate() {
        match p.first_words() {
            Some(words) => words.iter().for_each(|w| by_first.entry(w.clone()).or_default().push(i)),
            None => anywhere.push(i),
        }
    }
    Compiled { patterns, by_first, anywhere }
});

/// What a keyword written in capitals is marked as before the words are read.
pub(super) const SHOUTED_MARK: &str = "shoutedstopkeyword";

static SHOUTED: LazyLock<Pattern> = LazyLock::new(|| {
    Pattern::compile("!@not shoutedstopkeyword !by|in|over|at|and|sign|signs|light|lights|thinking|worrying", SETS)
});

/// Whether a clause with a capitalised keyword marked ([`SHOUTED_MARK`]) asks to stop.
pub(super) fn shouted(words: &[&str]) -> bool {
    (0..words.len()).any(|at| words[at] == SHOUTED_MARK && SHOUTED.found_at(words, at))
}

/// Whether a clause's words ask to stop.
pub(super) fn requested(words: &[&str]) -> bool {
    let c = &*COMPILED;
    (0..=words.len()).any(|at| {
        let starting = words.get(at).and_then(|w| c.by_first.get(*w)).into_iter().flatten();
        starting.chain(&c.anywhere).any(|&i| c.patterns[i].found_at(words, at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_and_set_compiles() {
        assert_eq!(COMPILED.patterns.len(), PATTERNS.len());
    }

    #[test]
    fn stop_spellings() {
        assert!(is_stop_spelling("stoooop") && is_stop_spelling("stopppp") && is_stop_spelling("stop"));
        assert!(!is_stop_spelling("stops") && !is_stop_spelling("stopped") && !is_stop_spelling("step"));
    }
}
