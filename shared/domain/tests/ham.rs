//! Real texts nobody here wrote: every `ham` message of the SMS Spam Collection (people
//! texting people) read as a reply. None is an opt-out, except the few listed below, each of
//! which, sent to a business, is a request to stop.

use nextier_domain::reply::{read, Intent};

const CORPUS: &str = include_str!("data/sms_spam_collection.tsv");

/// Ham messages that are revocations when a business receives them, and why.
const REVOCATIONS: &[(&str, &str)] = &[
    (
        "Please don't text me anymore. I have nothing else to say.",
        "\"please don't text me anymore\" is the request itself",
    ),
    (
        "Any chance you might have had with me evaporated as soon as you violated my privacy by stealing my phone number from your employer's paperwork. Not cool at all. Please do not contact me again or I will report you to your supervisor.",
        "\"please do not contact me again\": a revocation, whoever it is sent to",
    ),
    (
        "What do u want when i come back?.a beautiful necklace as a token of my heart for you.thats what i will give but ONLY to MY WIFE OF MY LIKING.BE THAT AND SEE..NO ONE can give you that.dont call me.i will wait till i come.",
        "\"dont call me.\" revokes consent to calls, and a stop on one channel stops them all (issue 11.3)",
    ),
    (
        "Text me when you get off, don't call, my phones having problems",
        "\"don't call\" revokes consent to calls; we cannot keep texting someone we may not call, so it stops \
         everything (issue 11.3), though it asks for texts",
    ),
];

fn ham() -> impl Iterator<Item = &'static str> {
    CORPUS.lines().skip(1).filter_map(|line| line.strip_prefix("ham\t"))
}

#[test]
fn the_corpus_is_all_there() {
    assert_eq!(ham().count(), 4827);
}

#[test]
fn no_ham_message_reads_as_an_opt_out_unless_it_is_one() {
    let hits: Vec<&str> = ham().filter(|text| read(text, false).intent == Intent::OptOut).collect();
    let unexpected: Vec<&&str> = hits.iter().filter(|t| !REVOCATIONS.iter().any(|(r, _)| r == *t)).collect();
    assert!(
        unexpected.is_empty(),
        "{} read as opt-outs:\n{}",
        unexpected.len(),
        unexpected.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join("\n")
    );
    let missed: Vec<&str> = REVOCATIONS.iter().map(|(r, _)| *r).filter(|r| !hits.contains(r)).collect();
    assert!(missed.is_empty(), "listed as revocations but not read as opt-outs: {missed:?}");
}
