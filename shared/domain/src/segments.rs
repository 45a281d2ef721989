//! SMS segments, as carriers count them (DOMAIN.md A): a message that fits the GSM-7
//! alphabet takes 160 characters in one segment and 153 per part when split; anything else is
//! UCS-2: 70 in one segment, 67 per part. Characters of the GSM-7 extension table (`^ { } \
//! [ ~ ] | €` and form feed) take two septets. UCS-2 counts UTF-16 code units, so an emoji
//! outside the Basic Multilingual Plane takes two.

/// How a body is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The GSM 03.38 basic character set.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table, reached by an escape: each takes two septets.
const EXTENDED: &str = "^{}\\[~]|€\u{000C}";

fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding a body needs.
pub fn encoding(body: &str) -> Encoding {
    if body.chars().all(|c| septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// How many segments the body takes (an empty body still takes one).
pub fn count(body: &str) -> u32 {
    match encoding(body) {
        Encoding::Gsm7 => {
            let units: usize = body.chars().filter_map(septets).sum();
            if units <= 160 {
                1
            } else {
                // An escape pair is never split across parts: count part by part.
                let mut parts = 1u32;
                let mut used = 0usize;
                for c in body.chars() {
                    let n = septets(c).unwrap_or(1);
                    if used + n > 153 {
                        parts += 1;
                        used = 0;
                    }
                    used += n;
                }
                parts
            }
        }
        Encoding::Ucs2 => {
            let units = body.encode_utf16().count();
            if units <= 70 {
                1
            } else {
                // A surrogate pair is never split across parts.
                let mut parts = 1u32;
                let mut used = 0usize;
                for c in body.chars() {
                    let n = c.len_utf16();
                    if used + n > 67 {
                        parts += 1;
                        used = 0;
                    }
                    used += n;
                }
                parts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_in_one_and_153_per_part() {
        assert_eq!(encoding("Hi Ada, reply STOP to opt out."), Encoding::Gsm7);
        assert_eq!(count(""), 1);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_take_two_septets_and_are_not_split() {
        assert_eq!(encoding("price: 5€ [approx]"), Encoding::Gsm7);
        assert_eq!(count(&"€".repeat(80)), 1, "80 × 2 septets = 160");
        assert_eq!(count(&"€".repeat(81)), 2);
        // 152 plain + one escape pair: 154 septets, more than a part holds, so the pair moves.
        let s = format!("{}{}", "a".repeat(152), "€".repeat(5));
        assert_eq!(count(&s), 2);
    }

    #[test]
    fn anything_outside_gsm7_is_ucs2_at_70_and_67() {
        assert_eq!(encoding("Café ✓"), Encoding::Ucs2);
        assert_eq!(encoding("naïve"), Encoding::Ucs2, "ï is not in GSM-7");
        assert_eq!(count(&"✓".repeat(70)), 1);
        assert_eq!(count(&"✓".repeat(71)), 2);
        assert_eq!(count(&"✓".repeat(134)), 2);
        assert_eq!(count(&"✓".repeat(135)), 3);
        // Emoji are surrogate pairs: 35 fit one segment, and a pair never straddles parts.
        assert_eq!(count(&"😀".repeat(35)), 1);
        assert_eq!(count(&"😀".repeat(36)), 2);
        assert_eq!(count(&format!("{}{}", "a".repeat(66), "😀".repeat(2))), 1, "70 units");
        assert_eq!(count(&format!("{}{}", "a".repeat(67), "😀".repeat(2))), 2);
    }
}
