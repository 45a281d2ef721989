//! Text as people wrote it. A reply can carry anything a phone can type: emoji and their
//! joined sequences, right-to-left scripts, tabs and line breaks, 1,600 characters of a
//! concatenated message. None of it is refused. Two things are changed, and only these:
//!
//! - C1 control characters (U+0080 to U+009F) are what Windows-1252 text becomes when some
//!   system on its way decoded it as Latin-1: a typed ’ arrives as U+0092. Nobody types a C1
//!   control, so each is read as the Windows-1252 character its byte meant (U+0092 → ’,
//!   U+0093 → “, U+0085 → …, U+0080 → €). The five bytes Windows-1252 leaves undefined
//!   (U+0081, U+008D, U+008F, U+0090, U+009D) stay as they are.
//! - NUL is dropped: it means nothing in a message and PostgreSQL cannot store it.

use std::borrow::Cow;

/// The Windows-1252 character for the byte 0x80 + i; `None` where Windows-1252 leaves it
/// undefined.
const CP1252_80_TO_9F: [Option<char>; 32] = [
    Some('\u{20AC}'), // 80 €
    None,             // 81
    Some('\u{201A}'), // 82 ‚
    Some('\u{0192}'), // 83 ƒ
    Some('\u{201E}'), // 84 „
    Some('\u{2026}'), // 85 …
    Some('\u{2020}'), // 86 †
    Some('\u{2021}'), // 87 ‡
    Some('\u{02C6}'), // 88 ˆ
    Some('\u{2030}'), // 89 ‰
    Some('\u{0160}'), // 8A Š
    Some('\u{2039}'), // 8B ‹
    Some('\u{0152}'), // 8C Œ
    None,             // 8D
    Some('\u{017D}'), // 8E Ž
    None,             // 8F
    None,             // 90
    Some('\u{2018}'), // 91 ‘
    Some('\u{2019}'), // 92 ’
    Some('\u{201C}'), // 93 “
    Some('\u{201D}'), // 94 ”
    Some('\u{2022}'), // 95 •
    Some('\u{2013}'), // 96 –
    Some('\u{2014}'), // 97 —
    Some('\u{02DC}'), // 98 ˜
    Some('\u{2122}'), // 99 ™
    Some('\u{0161}'), // 9A š
    Some('\u{203A}'), // 9B ›
    Some('\u{0153}'), // 9C œ
    None,             // 9D
    Some('\u{017E}'), // 9E ž
    Some('\u{0178}'), // 9F Ÿ
];

/// The character a C1 control stood for in Windows-1252; any other character unchanged.
pub fn from_c1(c: char) -> char {
    match c as u32 {
        n @ 0x80..=0x9F => CP1252_80_TO_9F[(n - 0x80) as usize].unwrap_or(c),
        _ => c,
    }
}

/// The text as its sender wrote it: C1 controls read as Windows-1252, NUL dropped, every
/// other character (whitespace at either end included) kept exactly. Borrows when there is
/// nothing to change, which is nearly always.
pub fn as_written(raw: &str) -> Cow<'_, str> {
    if !raw.chars().any(|c| c == '\0' || ('\u{80}'..='\u{9F}').contains(&c)) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.chars().filter(|c| *c != '\0').map(from_c1).collect())
}

/// Bytes that should have been UTF-8 and are not entirely: valid UTF-8 is kept, and each byte
/// that is not is read as Windows-1252 (0x92 → ’, 0xE9 → é), the encoding such text nearly
/// always came from. Nothing is replaced by U+FFFD, so nothing is lost. Borrows valid UTF-8.
pub fn from_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|b| from_c1(char::from(*b))));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_c1_control_becomes_its_windows_1252_character() {
        let c1: String = ('\u{80}'..='\u{9F}').collect();
        assert_eq!(as_written(&c1), "€\u{81}‚ƒ„…†‡ˆ‰Š‹Œ\u{8D}Ž\u{8F}\u{90}‘’“”•–—˜™š›œ\u{9D}žŸ");
    }

    #[test]
    fn a_latin_1_decoded_windows_1252_reply_reads_as_typed() {
        let sent = "I don\u{92}t want this \u{93}offer\u{94} \u{96} stop\u{85} costs \u{80}5";
        assert_eq!(as_written(sent), "I don’t want this “offer” – stop… costs €5");
    }

    #[test]
    fn the_five_undefined_bytes_stay() {
        for c in ['\u{81}', '\u{8D}', '\u{8F}', '\u{90}', '\u{9D}'] {
            assert_eq!(from_c1(c), c);
            assert_eq!(as_written(&format!("a{c}b")), format!("a{c}b"));
        }
    }

    #[test]
    fn only_nul_is_dropped_and_everything_else_is_kept() {
        assert_eq!(as_written("a\u{0}b\u{0}"), "ab");
        // Emoji, a ZWJ family, flags, skin tones, RTL, CJK, tabs, CR/LF, other controls,
        // Latin-1 letters (U+00A0 and up are not C1) and surrounding whitespace: untouched.
        let kept = "  👨\u{200D}👩\u{200D}👧\u{200D}👦 🇺🇸 👍🏽 مرحبا שלום 你好\tline\r\nnext\u{1}\u{7F} café ñ ÿ \u{A0} ";
        assert!(matches!(as_written(kept), Cow::Borrowed(_)));
        assert_eq!(as_written(kept), kept);
    }

    #[test]
    fn long_text_keeps_its_length() {
        let long = "Stop 🙏 ".repeat(200) + &"\u{92}".repeat(200);
        let out = as_written(&long);
        assert_eq!(out.chars().count(), long.chars().count());
        assert!(out.ends_with(&"’".repeat(200)));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_as_windows_1252() {
        assert!(matches!(from_bytes("ok 👍".as_bytes()), Cow::Borrowed("ok 👍")));
        let mut sent = b"I don\x92t \x93know\x94 caf\xe9 \x80".to_vec();
        sent.extend_from_slice("  👍".as_bytes());
        assert_eq!(from_bytes(&sent), "I don’t “know” café €  👍");
        assert_eq!(from_bytes(b"\x81\x9d"), "\u{81}\u{9D}");
    }

    #[test]
    fn repairing_twice_changes_nothing_more() {
        let once = as_written("it\u{92}s \u{81}\u{93}x\u{94}").into_owned();
        assert_eq!(as_written(&once), once);
    }
}
