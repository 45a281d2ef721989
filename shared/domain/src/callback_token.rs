//! Callback tokens that verify themselves: `<random>.<HMAC-SHA256(key, random)>`, so a forged
//! or guessed token is refused before any database work (a provider's unsigned callback, such
//! as the skip-trace completion, carries one in its URL). The random part still names the job
//! (stored as its SHA-256): a valid token for a job that does not exist is refused after.

use hmac::{Hmac, Mac};

fn mac(key: &[u8], random: &str) -> Hmac<sha2::Sha256> {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(b"nextier-callback-token:");
    m.update(random.as_bytes());
    m
}

/// A new token for `random` (256 bits of randomness, made by the caller).
pub fn sign(key: &[u8], random: &str) -> String {
    format!("{random}.{}", hex::encode(mac(key, random).finalize().into_bytes()))
}

/// The token's random part, when its signature is `key`'s (compared in constant time).
pub fn verify<'t>(key: &[u8], token: &'t str) -> Option<&'t str> {
    let (random, sig) = token.rsplit_once('.')?;
    if random.is_empty() || random.len() > 128 {
        return None;
    }
    let sig = hex::decode(sig).ok()?;
    mac(key, random).verify_slice(&sig).ok()?;
    Some(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_with_its_key_and_unchanged() {
        let t = sign(b"key-one", "01jabc");
        assert_eq!(verify(b"key-one", &t), Some("01jabc"));
        assert_eq!(verify(b"key-two", &t), None);
        assert_eq!(verify(b"key-one", &t.replace("01jabc", "01jabd")), None);
        assert_eq!(verify(b"key-one", "01jabc"), None);
        assert_eq!(verify(b"key-one", "01jabc.zz"), None);
        assert_eq!(verify(b"key-one", &format!("{t}0")), None);
        assert_eq!(verify(b"key-one", ""), None);
    }
}
