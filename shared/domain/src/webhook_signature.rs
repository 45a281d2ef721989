//! Webhook signatures (DOMAIN.md B), checked over the raw bytes in constant time.
//!
//! SignalHouse: `X-SignalHouse-Signature-V1: t=<ms>,v1=<hex>[,v1=<hex>]` (one `v1` per valid
//! secret during a rotation; any may match any of our current secrets), or the older pair
//! `X-SignalHouse-Signature: <hex>` with `X-SignalHouse-Timestamp: <ms>`. The signature is
//! hex HMAC-SHA256 over `"{timestamp}.{raw body}"` with the endpoint's signing secret. A
//! timestamp more than five minutes from now is stale; a signed endpoint refuses an unsigned
//! request.
//!
//! Twilio: `X-Twilio-Signature` is base64 HMAC-SHA1, keyed with the auth token, over the full
//! URL followed by every POST parameter sorted by name, as name then value.

use hmac::{Hmac, Mac};

/// How far a SignalHouse timestamp may be from now.
pub const TOLERANCE_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed")]
    Unsigned,
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("the timestamp is more than five minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

fn hmac_sha256(secret: &[u8]) -> Hmac<sha2::Sha256> {
    <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Verifies a SignalHouse webhook; `header` looks a header up by (lower-case) name.
/// Returns the signed timestamp (ms).
pub fn verify_signalhouse<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
    secrets: &[&[u8]],
    now_ms: i64,
) -> Result<i64, SignatureError> {
    let (timestamp, signatures): (i64, Vec<Vec<u8>>) = if let Some(v1) = header("x-signalhouse-signature-v1") {
        let mut t = None;
        let mut sigs = Vec::new();
        for part in v1.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed("t".into()))?),
                Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed("v1".into()))?),
                _ => {}
            }
        }
        (t.ok_or_else(|| SignatureError::Malformed("no t=".into()))?, sigs)
    } else if let Some(sig) = header("x-signalhouse-signature") {
        let t = header("x-signalhouse-timestamp")
            .ok_or_else(|| SignatureError::Malformed("X-SignalHouse-Timestamp is missing".into()))?
            .trim()
            .parse::<i64>()
            .map_err(|_| SignatureError::Malformed("X-SignalHouse-Timestamp".into()))?;
        (t, vec![hex::decode(sig.trim()).map_err(|_| SignatureError::Malformed("signature".into()))?])
    } else {
        return Err(SignatureError::Unsigned);
    };
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1=".into()));
    }
    if (now_ms - timestamp).abs() > TOLERANCE_MS {
        return Err(SignatureError::Stale);
    }
    let prefix = format!("{timestamp}.");
    for secret in secrets {
        for sig in &signatures {
            let mut mac = hmac_sha256(secret);
            mac.update(prefix.as_bytes());
            mac.update(body);
            // verify_slice compares in constant time.
            if mac.verify_slice(sig).is_ok() {
                return Ok(timestamp);
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Signs as SignalHouse does (the sandbox's webhooks and tests).
pub fn sign_signalhouse(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = hmac_sha256(secret);
    mac.update(format!("{timestamp_ms}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(auth_token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

/// Twilio's signature for a request: base64 HMAC-SHA1 over the URL and the sorted parameters.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

/// Verifies `X-Twilio-Signature` in constant time.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    use base64::Engine;
    let given = signature.ok_or(SignatureError::Unsigned)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| SignatureError::Malformed("X-Twilio-Signature".into()))?;
    twilio_mac(auth_token, url, params).verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_809_600_000;
    const BODY: &[u8] = br#"{"event":"message.received","text":"YES I AM INTERESTED","to":"+15164079249"}"#;

    fn headers<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_v1_signature_from_any_current_secret_is_accepted() {
        let sig = sign_signalhouse(b"old-secret", NOW, BODY);
        let h = [("x-signalhouse-signature-v1", format!("t={NOW},v1={sig}"))];
        assert_eq!(verify_signalhouse(headers(&h), BODY, &[b"new-secret", b"old-secret"], NOW + 1000), Ok(NOW));
        // During a rotation SignalHouse sends one v1 per secret; any may match.
        let both = format!("t={NOW},v1={},v1={}", sign_signalhouse(b"other", NOW, BODY), sig);
        let h = [("x-signalhouse-signature-v1", both)];
        assert_eq!(verify_signalhouse(headers(&h), BODY, &[b"old-secret"], NOW), Ok(NOW));
    }

    #[test]
    fn the_older_header_pair_is_accepted_too() {
        let h = [
            ("x-signalhouse-signature", sign_signalhouse(b"s", NOW, BODY)),
            ("x-signalhouse-timestamp", NOW.to_string()),
        ];
        assert_eq!(verify_signalhouse(headers(&h), BODY, &[b"s"], NOW), Ok(NOW));
    }

    #[test]
    fn tampered_stale_unsigned_and_malformed_requests_are_refused() {
        let sig = sign_signalhouse(b"s", NOW, BODY);
        let h = [("x-signalhouse-signature-v1", format!("t={NOW},v1={sig}"))];
        let tampered = br#"{"event":"message.received","text":"STOP","to":"+15164079249"}"#;
        assert_eq!(verify_signalhouse(headers(&h), tampered, &[b"s"], NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify_signalhouse(headers(&h), BODY, &[b"wrong"], NOW), Err(SignatureError::Mismatch));
        assert_eq!(verify_signalhouse(headers(&h), BODY, &[b"s"], NOW + TOLERANCE_MS + 1), Err(SignatureError::Stale));
        assert_eq!(verify_signalhouse(headers(&[]), BODY, &[b"s"], NOW), Err(SignatureError::Unsigned));
        let bad = [("x-signalhouse-signature-v1", "t=soon,v1=zz".to_owned())];
        assert!(matches!(verify_signalhouse(headers(&bad), BODY, &[b"s"], NOW), Err(SignatureError::Malformed(_))));
        let no_ts = [("x-signalhouse-signature", sig.clone())];
        assert!(matches!(verify_signalhouse(headers(&no_ts), BODY, &[b"s"], NOW), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn twilios_documented_vector() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(twilio_signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(verify_twilio("12345", url, &params, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")), Ok(()));
        let mut tampered = params.clone();
        tampered[2].1 = "9999".into();
        assert_eq!(
            verify_twilio("12345", url, &tampered, Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify_twilio("12345", url, &params, None), Err(SignatureError::Unsigned));
    }
}
