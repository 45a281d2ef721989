//! The SendGrid Event Webhook's signature (DOMAIN.md B2): ECDSA P-256 with SHA-256 over the
//! bytes of `X-Twilio-Email-Event-Webhook-Timestamp` followed by the raw body; the signature
//! is base64 DER in `X-Twilio-Email-Event-Webhook-Signature`, checked with the account's
//! public key (base64 DER, SubjectPublicKeyInfo). A timestamp (Unix seconds) more than five
//! minutes from now is stale.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::Signature;
pub use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;

use crate::webhook_signature::SignatureError;

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";
/// How far the signed timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// The verification key, from its base64 DER (SubjectPublicKeyInfo) as SendGrid shows it.
pub fn public_key(base64_der: &str) -> Result<VerifyingKey, String> {
    let der = STANDARD.decode(base64_der.trim()).map_err(|e| format!("not base64: {e}"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| format!("not a P-256 public key: {e}"))
}

/// Verifies a delivery; `header` looks a header up by (lower-case) name. Returns the signed
/// timestamp (Unix seconds).
pub fn verify<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    key: &VerifyingKey,
    now_secs: i64,
) -> Result<i64, SignatureError> {
    let (Some(signature), Some(timestamp)) = (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER)) else {
        return Err(SignatureError::Unsigned);
    };
    let timestamp = timestamp.trim();
    let at: i64 =
        timestamp.parse().map_err(|_| SignatureError::Malformed("X-Twilio-Email-Event-Webhook-Timestamp".into()))?;
    let der = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed("X-Twilio-Email-Event-Webhook-Signature".into()))?;
    let signature = Signature::from_der(&der).map_err(|_| SignatureError::Malformed("signature is not DER".into()))?;
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.verify(&signed, &signature).map_err(|_| SignatureError::Mismatch)?;
    // Checked after the signature, so a forged request learns nothing about our clock.
    if (now_secs - at).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;

    use super::*;

    fn signed(key: &SigningKey, ts: &str, body: &[u8]) -> String {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        let sig: Signature = key.sign(&msg);
        STANDARD.encode(sig.to_der().as_bytes())
    }

    fn check(
        sig: Option<&str>,
        ts: Option<&str>,
        body: &[u8],
        key: &VerifyingKey,
        now: i64,
    ) -> Result<i64, SignatureError> {
        verify(
            |h| match h {
                SIGNATURE_HEADER => sig,
                TIMESTAMP_HEADER => ts,
                _ => None,
            },
            body,
            key,
            now,
        )
    }

    #[test]
    fn a_signature_from_the_accounts_key_is_accepted_and_anything_else_refused() {
        let sk = SigningKey::random(&mut rand::rngs::OsRng);
        let der = p256::PublicKey::from(sk.verifying_key()).to_public_key_der().unwrap();
        let vk = public_key(&STANDARD.encode(der.as_bytes())).unwrap();
        let body = br#"[{"email":"a@example.com","event":"unsubscribe","sg_event_id":"e1"}]"#;
        let sig = signed(&sk, "1700000000", body);
        assert_eq!(check(Some(&sig), Some("1700000000"), body, &vk, 1_700_000_030), Ok(1_700_000_000));
        let tampered = br#"[{"email":"b@example.com","event":"unsubscribe","sg_event_id":"e1"}]"#;
        assert_eq!(check(Some(&sig), Some("1700000000"), tampered, &vk, 1_700_000_030), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&sig), Some("1700000001"), body, &vk, 1_700_000_030), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&sig), Some("1700000000"), body, &vk, 1_700_009_000), Err(SignatureError::Stale));
        let other = SigningKey::random(&mut rand::rngs::OsRng);
        let wrong = signed(&other, "1700000000", body);
        assert_eq!(check(Some(&wrong), Some("1700000000"), body, &vk, 1_700_000_030), Err(SignatureError::Mismatch));
        assert_eq!(check(None, None, body, &vk, 1_700_000_030), Err(SignatureError::Unsigned));
        assert!(matches!(check(Some("%%"), Some("1700000000"), body, &vk, 0), Err(SignatureError::Malformed(_))));
        assert!(public_key("bm90IGEga2V5").is_err());
    }
}
