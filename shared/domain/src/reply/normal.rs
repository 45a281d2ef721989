//! A reply reduced to the words it says: lower case, accents folded ("más" reads as "mas"),
//! curly apostrophes read as `'`, invisible joiners removed (so "ST\u{200B}OP"
//! is STOP), full-width letters read as ASCII, 🛑 read as "stop", everything else that is not
//! a letter or digit a word break.

/// Characters that break a message into sentences (emoji too): a keyword alone in one of them
/// is a keyword ("STOP. Wrong number", "Not interested, stop").
const SENTENCE_BREAKS: &[char] = &['.', '!', '?', ';', ',', ':', '\n', '\r', '…', '¡', '¿', '(', ')', '"', '“', '”'];
/// Characters that end a clause: phrases are looked for within one.
const CLAUSE_BREAKS: &[char] = &['.', '!', '?', ';', '\n', '\r', '…', '¡', '¿'];

fn fold(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'ē' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'ī' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ō' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'ū' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        other => other,
    }
}

/// Pushes what `c` contributes to the word stream.
fn push_normal(out: &mut String, c: char) {
    let c = match c {
        // Full-width forms (Ｓ Ｔ Ｏ Ｐ) read as ASCII.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    match c {
        // Invisible: zero-width space/joiners, word joiner, BOM, soft hyphen, variation selectors.
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{AD}' | '\u{FE00}'..='\u{FE0F}' => {}
        '\'' | '’' | '‘' | 'ʼ' | '`' | '´' => out.push('\''),
        '🛑' => out.push_str(" stop "),
        c if c.is_alphanumeric() => out.extend(c.to_lowercase().map(fold)),
        _ => out.push(' '),
    }
}

/// The words of a piece of text, single spaces between them; apostrophes are kept inside a
/// word ("don't") and dropped at its ends ("'stop'").
pub(super) fn words(text: &str) -> String {
    let mut mapped = String::with_capacity(text.len());
    for c in text.chars() {
        push_normal(&mut mapped, c);
    }
    let words: Vec<&str> = mapped.split_whitespace().map(|w| w.trim_matches('\'')).filter(|w| !w.is_empty()).collect();
    words.join(" ")
}

/// Spaced dashes separate too ("STOP - wrong number"); hyphens inside a word do not.
fn dashes_as_breaks(text: &str) -> String {
    text.replace(" - ", "\n").replace(" – ", "\n").replace(" — ", "\n").replace(" -- ", "\n")
}

/// Emoji end a sentence as punctuation does ("I don't think so 😀 STOP"); 🛑 is a word.
fn is_emoji(c: char) -> bool {
    c != '🛑' && matches!(c, '\u{1F300}'..='\u{1FAFF}' | '\u{2600}'..='\u{27BF}')
}

fn split_words(text: &str, breaks: &[char]) -> Vec<String> {
    dashes_as_breaks(text).split(|c| breaks.contains(&c) || is_emoji(c)).map(words).filter(|w| !w.is_empty()).collect()
}

/// The message's sentences, each as its words.
pub(super) fn sentences(text: &str) -> Vec<String> {
    split_words(text, SENTENCE_BREAKS)
}

/// The message's clauses (split at full stops, not commas), each as its words.
pub(super) fn clauses(text: &str) -> Vec<String> {
    split_words(text, CLAUSE_BREAKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_accents_apostrophes_and_invisibles() {
        assert_eq!(words("  NO MÁS mensajes!!! "), "no mas mensajes");
        assert_eq!(words("Don’t text me"), "don't text me");
        assert_eq!(words("'STOP'"), "stop");
        assert_eq!(words("ST\u{200B}OP"), "stop");
        assert_eq!(words("ＳＴＯＰ"), "stop");
        assert_eq!(words("🛑🛑"), "stop stop");
        assert_eq!(words("Bórrame de la lista"), "borrame de la lista");
        assert_eq!(words("Stop 🙏"), "stop");
    }

    #[test]
    fn sentences_and_clauses() {
        assert_eq!(sentences("STOP. Wrong number"), ["stop", "wrong number"]);
        assert_eq!(sentences("STOP - wrong number"), ["stop", "wrong number"]);
        assert_eq!(sentences("Non-stop!"), ["non stop"]);
        assert_eq!(clauses("No, stop texting me. Thanks"), ["no stop texting me", "thanks"]);
        assert_eq!(sentences("¡BASTA!"), ["basta"]);
        assert_eq!(sentences("I don't think so 😀 STOP 🛑"), ["i don't think so", "stop stop"]);
    }
}
