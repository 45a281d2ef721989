//! One-click unsubscribe for campaign email (CAN-SPAM; RFC 8058).
//!
//! Every campaign email names, in its `List-Unsubscribe` header and in a link in its body, a
//! URL `{base}/unsubscribe/{token}`. The token is `{payload}.{mac}`, both unpadded base64url:
//! the payload is `team \n message \n address`, the mac its HMAC-SHA256 under the platform's
//! unsubscribe secret. Nothing else is needed to honour it, so the link works without a login
//! and cannot be forged for another address, message or team.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};

use crate::ids::{MessageId, TeamId};

/// The body a one-click POST carries (RFC 8058 section 3.1).
pub const ONE_CLICK_BODY: &str = "List-Unsubscribe=One-Click";
/// The `List-Unsubscribe-Post` header value.
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe=One-Click";
/// The route, below the public base URL.
pub const PATH_PREFIX: &str = "/unsubscribe/";

/// What a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub team: TeamId,
    pub message: MessageId,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the unsubscribe link is malformed")]
    Malformed,
    #[error("the unsubscribe link is not ours")]
    Forged,
}

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<sha2::Sha256> {
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(b"nextier-unsubscribe-v1\n");
    m.update(payload);
    m
}

/// The token for one message to one address.
pub fn sign(secret: &[u8], team: &TeamId, message: &MessageId, address: &str) -> String {
    let payload = format!("{team}\n{message}\n{address}");
    let tag = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
}

/// Checks a token (in constant time) and reads what it names.
pub fn verify(secret: &[u8], token: &str) -> Result<Unsubscribe, TokenError> {
    let (payload, tag) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
    mac(secret, &payload).verify_slice(&tag).map_err(|_| TokenError::Forged)?;
    let text = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let mut parts = text.splitn(3, '\n');
    let (Some(team), Some(message), Some(address)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    Ok(Unsubscribe {
        team: TeamId::parse("team", team).map_err(|_| TokenError::Malformed)?,
        message: MessageId::parse("message", message).map_err(|_| TokenError::Malformed)?,
        address: address.to_owned(),
    })
}

/// The link for a token under the public base URL.
pub fn url(base_url: &str, token: &str) -> String {
    format!("{}{PATH_PREFIX}{token}", base_url.trim_end_matches('/'))
}

/// What a campaign email ends with: how to unsubscribe, and the sender's postal address.
pub fn footer(link: &str, postal_address: &str) -> String {
    format!("\n\n--\nTo stop receiving these emails, unsubscribe: {link}\n{}", postal_address.trim())
}

/// The `List-Unsubscribe` header value: the HTTPS link first, then a mailto when one is set.
pub fn list_unsubscribe(link: &str, mailto: Option<&str>) -> String {
    match mailto {
        Some(m) => format!("<{link}>, <mailto:{m}?subject=unsubscribe>"),
        None => format!("<{link}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TeamId, MessageId) {
        (TeamId::new(), MessageId::new())
    }

    #[test]
    fn a_token_names_its_team_message_and_address() {
        let (team, message) = ids();
        let t = sign(b"s3cret", &team, &message, "ada@example.com");
        let u = verify(b"s3cret", &t).unwrap();
        assert_eq!(u, Unsubscribe { team, message, address: "ada@example.com".into() });
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'));
    }

    #[test]
    fn a_changed_address_or_another_secret_is_refused() {
        let (team, message) = ids();
        let t = sign(b"s3cret", &team, &message, "ada@example.com");
        assert_eq!(verify(b"other", &t), Err(TokenError::Forged));
        let (_, tag) = t.split_once('.').unwrap();
        let forged =
            format!("{}.{tag}", URL_SAFE_NO_PAD.encode(format!("{team}\n{message}\nbob@example.com").as_bytes()));
        assert_eq!(verify(b"s3cret", &forged), Err(TokenError::Forged));
        assert_eq!(verify(b"s3cret", "garbage"), Err(TokenError::Malformed));
        assert_eq!(verify(b"s3cret", "a.b.c"), Err(TokenError::Malformed));
    }

    #[test]
    fn the_footer_and_headers_carry_the_link() {
        let f = footer("https://x.example/unsubscribe/t", " 1 Main St, Springfield, IL 62701 ");
        assert!(f.contains("unsubscribe: https://x.example/unsubscribe/t"));
        assert!(f.ends_with("1 Main St, Springfield, IL 62701"));
        assert_eq!(list_unsubscribe("https://x/u", None), "<https://x/u>");
        assert_eq!(
            list_unsubscribe("https://x/u", Some("unsub@x.example")),
            "<https://x/u>, <mailto:unsub@x.example?subject=unsubscribe>"
        );
        assert_eq!(url("https://x.example/", "tok"), "https://x.example/unsubscribe/tok");
    }
}
