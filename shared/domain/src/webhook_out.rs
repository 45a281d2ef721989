//! Webhooks we send to a team's own systems (issue 19): the events a team may subscribe to,
//! Standard Webhooks signing (DOMAIN.md B2), the endpoint URL policy that keeps deliveries
//! off our own network, and the retry schedule.

use std::net::{IpAddr, Ipv4Addr};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::validation::FieldError;

/// What a team can subscribe to, by its public name, with the bus event it comes from.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("reply.received", "InboundMessageReceived"),
    ("contact.opted_out", "ContactOptedOut"),
    ("meeting.booked", "MeetingBooked"),
    ("campaign.state_changed", "CampaignStateChanged"),
    ("import.completed", "ImportCompleted"),
];

/// The queue of outgoing webhook deliveries.
pub const QUEUE: &str = "webhook-out";

/// The bus events the `webhook-out` queue's rule routes.
pub const BUS_EVENTS: &[&str] =
    &["InboundMessageReceived", "ContactOptedOut", "MeetingBooked", "CampaignStateChanged", "ImportCompleted"];

/// The public name of a bus event, if a team can subscribe to it.
pub fn public_type(detail_type: &str) -> Option<&'static str> {
    EVENT_TYPES.iter().find(|(_, d)| *d == detail_type).map(|(p, _)| *p)
}

pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.iter().any(|(p, _)| *p == name)
}

/// A new endpoint secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_` secret (its
/// base64 part is the key); `None` for a secret that is not one.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per live secret, space-separated (during a
/// rotation the old secret signs too, so a receiver may switch when it likes).
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let sigs: Vec<String> = secrets.iter().filter_map(|s| sign(s, id, timestamp, body)).collect();
    (!sigs.is_empty()).then(|| sigs.join(" "))
}

/// How a receiver checks a delivery (what our tests and documentation do): some signature
/// matches under the secret, and the timestamp is within `tolerance_secs` of `now`.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    if (now - timestamp).abs() > tolerance_secs {
        return false;
    }
    let Some(expected) = sign(secret, id, timestamp, body) else { return false };
    header.split(' ').any(|s| {
        s.len() == expected.len() && s.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

/// The wait before attempt `n + 1` after `n` failed attempts (Standard Webhooks' schedule,
/// shortened at the start): `None` when the delivery has had its last attempt.
pub fn backoff_after(failed_attempts: i32) -> Option<std::time::Duration> {
    const SCHEDULE: [u64; 7] = [10, 60, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600];
    usize::try_from(failed_attempts - 1).ok().and_then(|i| SCHEDULE.get(i)).map(|s| std::time::Duration::from_secs(*s))
}

/// An endpoint is disabled (and the team told) once its attempts have failed this many times
/// in a row and for at least [`DISABLE_AFTER_FAILING_FOR`]: a short outage during a burst of
/// events never turns it off.
pub const DISABLE_AFTER: i32 = 15;
pub const DISABLE_AFTER_FAILING_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether an address is on the public internet: not loopback, private (RFC 1918, ULA),
/// link-local (the metadata service at 169.254.169.254), CGNAT, multicast, documentation,
/// benchmarking, unspecified or reserved, nor an IPv4 address mapped or translated into IPv6.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // 64:ff9b::/96 (NAT64) embeds an IPv4 address; 2002::/16 (6to4) too.
            if s[0] == 0x64 && s[1] == 0xff9b {
                return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            if s[0] == 0x2002 {
                return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] == 0) // Teredo (an IPv4 address inside)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64
                || s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 // discard
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
            // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        || o[0] >= 240)
}

/// Host names that only ever mean something inside a network.
fn is_internal_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || !h.contains('.')
        || [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".corp", ".intranet"]
            .iter()
            .any(|s| h.ends_with(s))
        || h.ends_with(".amazonaws.com") && (h.contains("compute.internal") || h.starts_with("ec2-"))
}

/// Checks an endpoint URL as a team registers it: `https`, a public host name or address, no
/// credentials, at most 2000 characters. (The delivery checks again what the name resolves
/// to, and connects only to that address: a name may be pointed inside later.)
/// `allowed` admits exact origins (`http://127.0.0.1:4000`) for local runs and tests; a
/// deployed stack has none.
pub fn check_url(field: &str, raw: &str, allowed: &[String]) -> Result<url::Url, FieldError> {
    let bad = |m: &str| FieldError::new(field, m);
    if raw.len() > 2000 {
        return Err(bad("must be at most 2000 characters"));
    }
    let u = url::Url::parse(raw.trim()).map_err(|_| bad("must be an absolute https URL"))?;
    if allowed.iter().any(|a| a.trim_end_matches('/') == u.origin().ascii_serialization()) {
        return Ok(u);
    }
    if u.scheme() != "https" {
        return Err(bad("must be an https URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    match u.host() {
        None => Err(bad("must name a host")),
        Some(url::Host::Ipv4(ip)) if !is_public_ip(IpAddr::V4(ip)) => {
            Err(bad("must not point at a private, loopback or metadata address"))
        }
        Some(url::Host::Ipv6(ip)) if !is_public_ip(IpAddr::V6(ip)) => {
            Err(bad("must not point at a private, loopback or metadata address"))
        }
        Some(url::Host::Domain(d)) if is_internal_name(d) => Err(bad("must be a public host name")),
        _ => match u.port() {
            Some(p) if p != 443 && p < 1024 => Err(bad("must use port 443 or a port above 1023")),
            _ => Ok(u),
        },
    }
}

/// Whether every address a host resolved to is public (none at all is not).
pub fn all_public(addrs: &[IpAddr]) -> bool {
    !addrs.is_empty() && addrs.iter().all(|a| is_public_ip(*a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn _v6(s: &str) -> Ipv6Addr {
        s.parse().expect("an address")
    }

    #[test]
    fn signing_follows_standard_webhooks() {
        // The Standard Webhooks reference vector.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            &format!("v1,bad {sig}"),
            1614265330 + 60,
            300
        ));
        assert!(!verify(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232315}"#,
            &sig,
            1614265330,
            300
        ));
        assert!(
            !verify(
                secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#,
                &sig,
                1614265330 + 301,
                300
            ),
            "an old timestamp is refused"
        );
        let both = signature_header(&[&new_secret(), secret], "m", 1, b"{}").unwrap();
        assert_eq!(both.split(' ').count(), 2);
        assert!(verify(secret, "m", 1, b"{}", &both, 1, 300));
        assert_eq!(sign("not-a-secret", "m", 1, b""), None);
    }

    #[test]
    fn the_rule_routes_every_subscribable_event() {
        let routed: Vec<&str> = EVENT_TYPES.iter().map(|(_, d)| *d).collect();
        assert_eq!(routed, BUS_EVENTS);
    }

    #[test]
    fn the_retry_schedule_ends() {
        assert_eq!(backoff_after(1), Some(std::time::Duration::from_secs(10)));
        assert_eq!(backoff_after(7), Some(std::time::Duration::from_secs(36000)));
        assert_eq!(backoff_after(8), None);
        assert_eq!(backoff_after(0), None);
    }

    #[test]
    fn endpoints_must_be_public_https_hosts() {
        assert!(check_url("url", "https://hooks.example.com/nextier?x=1", &[]).is_ok());
        assert!(check_url("url", "https://93.184.216.34:8443/h", &[]).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://localhost/",
            "https://127.0.0.1/",
            "https://10.0.0.5/",
            "https://172.16.3.4/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://metadata.google.internal/",
            "https://intranet/",
            "https://printer.local/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com:22/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            let e = check_url("url", bad, &[]).unwrap_err();
            assert_eq!(e.field, "url", "{bad}");
        }
        assert!(check_url("url", "http://127.0.0.1:4000/hook", &["http://127.0.0.1:4000".into()]).is_ok());
        assert!(check_url("url", "http://127.0.0.1:4001/hook", &["http://127.0.0.1:4000".into()]).is_err());
        assert!(all_public(&["93.184.216.34".parse().unwrap()]));
        assert!(!all_public(&["93.184.216.34".parse().unwrap(), "10.1.1.1".parse().unwrap()]));
        assert!(!all_public(&[]));
        assert!(!is_public_ip(IpAddr::V6(_v6("2002:a9fe:a9fe::1"))));
        assert!(!is_public_ip(IpAddr::V6(_v6("2001:0:4136:e378:8000:63bf:3fff:fdd2"))), "Teredo");
        assert!(!is_public_ip(IpAddr::V6(_v6("64:ff9b:1::a00:1"))), "local-use NAT64");
        assert!(is_public_ip(IpAddr::V6(_v6("2606:4700:4700::1111"))));
    }
}
