//! API keys for machine clients: `nxk_` + 64 hex characters, shown once; only the SHA-256
//! hash and a short display prefix are stored.

use std::fmt;

use rand::RngCore;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::FieldError;

pub const KEY_PREFIX: &str = "nxk_";
const DISPLAY_PREFIX_LEN: usize = 12;

/// A freshly minted key. `secret` is returned to the caller once and never stored.
pub struct NewKey {
    pub secret: String,
    pub display_prefix: String,
    pub hash: String,
}

pub fn mint() -> NewKey {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = format!("{KEY_PREFIX}{}", hex::encode(bytes));
    NewKey { display_prefix: secret[..DISPLAY_PREFIX_LEN].to_owned(), hash: hash(&secret), secret }
}

/// The stored form of a key (or of any bearer secret such as an invitation token).
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Cheap shape check before touching the database.
pub fn looks_like_key(raw: &str) -> bool {
    raw.len() == KEY_PREFIX.len() + 64
        && raw.starts_with(KEY_PREFIX)
        && raw[KEY_PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// A permission grant on a key: `resource:action` or `*`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

const RESOURCES: &[&str] = &[
    "team",
    "keys",
    "settings",
    "data",
    "contacts",
    "campaigns",
    "sequences",
    "messages",
    "inbox",
    "calls",
    "analytics",
    "integrations",
    "enrichment",
    "ai",
    "billing",
];
const ACTIONS: &[&str] = &["read", "write", "manage", "create", "execute", "send", "initiate", "export"];

impl Scope {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        if raw == "*" {
            return Ok(Self(raw.to_owned()));
        }
        let ok = raw.split_once(':').is_some_and(|(r, a)| RESOURCES.contains(&r) && ACTIONS.contains(&a));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(field, format!("unknown scope {raw:?}; scopes are resource:action or *")))
        }
    }

    /// For scopes written in our own code.
    pub fn parse_known(raw: &str) -> Self {
        Self::parse("scope", raw).expect("scope literal in code is valid")
    }

    pub fn is_wildcard(&self) -> bool {
        self.0 == "*"
    }

    /// `*` or a `…:manage` scope: ADMIN-level power.
    pub fn is_administrative(&self) -> bool {
        self.is_wildcard() || self.0.ends_with(":manage")
    }

    /// `x:manage` implies `x:read` and `x:write`.
    pub fn implies(&self, other: &Scope) -> bool {
        match (self.0.split_once(':'), other.0.split_once(':')) {
            (Some((r1, "manage")), Some((r2, a2))) => r1 == r2 && matches!(a2, "read" | "write"),
            (Some((r1, "write")), Some((r2, "read"))) => r1 == r2,
            _ => false,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_shape_and_the_hash_matches() {
        let k = mint();
        assert!(looks_like_key(&k.secret));
        assert_eq!(k.display_prefix.len(), 12);
        assert_eq!(hash(&k.secret), k.hash);
        assert_ne!(mint().secret, k.secret);
    }

    #[test]
    fn key_shape_check_rejects_near_misses() {
        assert!(!looks_like_key("nxk_abc"));
        assert!(!looks_like_key(&format!("nxk_{}", "G".repeat(64))));
        assert!(!looks_like_key(&format!("og_{}", "a".repeat(64))));
    }

    #[test]
    fn scopes_are_validated() {
        assert!(Scope::parse("scopes[0]", "settings:read").is_ok());
        assert!(Scope::parse("scopes[0]", "*").is_ok());
        assert_eq!(Scope::parse("scopes[1]", "settings:delete_all").unwrap_err().field, "scopes[1]");
        assert!(Scope::parse("s", "root").is_err());
    }
}
