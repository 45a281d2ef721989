//! SignalHouse webhook payloads, as the original system saw them (DOMAIN.md B, C.4): fields
//! at the top level (`{event, text|body, from, to, message_id|messageId, status,
//! error_code, timestamp}`) or under `data` (`{event, data: {from, to, message, messageId,
//! status, ...}}`). Event names are compared lower case with `_` read as `.`.

use chrono::{DateTime, Utc};
use nextier_domain::message::MessageStatus;
use nextier_domain::text::as_written;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A reply from a lead.
    Received,
    /// A delivery receipt for one of our messages: `sent`, `delivered` or `failed`.
    Status(MessageStatus),
    /// `NUMBER_PURCHASE_SUCCESSFUL` (true) or `NUMBER_PURCHASE_FAILED` (false) for
    /// [`Event::number`] in [`Event::subgroup`].
    NumberPurchase(bool),
    /// Anything else (number, brand, campaign events; ENQUEUED receipts): recorded, not acted on.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub text: Option<String>,
    pub error_code: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// The number a number event is about (`phoneNumber`, or the notification's `identifier`).
    pub number: Option<String>,
    pub subgroup: Option<String>,
}

/// The event name as we store it: lower case, `_` as `.`.
pub fn normalise(event: &str) -> String {
    event.trim().to_ascii_lowercase().replace('_', ".")
}

fn status_of(s: &str) -> Option<MessageStatus> {
    match s.trim().to_ascii_lowercase().as_str() {
        "sent" | "dequeued" => Some(MessageStatus::Sent),
        "delivered" => Some(MessageStatus::Delivered),
        "failed" | "undelivered" | "rejected" | "blocked" => Some(MessageStatus::Failed),
        _ => None,
    }
}

/// Reads a payload. The caller has already checked that it is a JSON object with an `event`.
pub fn parse(payload: &Value) -> Event {
    let data = payload.get("data").filter(|d| d.is_object());
    let meta = payload.get("metaData").or_else(|| data.and_then(|d| d.get("metaData"))).filter(|d| d.is_object());
    // The first of `names` that holds something, as sent.
    let raw = |names: &[&str]| -> Option<String> {
        for n in names {
            for src in [Some(payload), data, meta].into_iter().flatten() {
                match src.get(*n) {
                    Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
                    Some(Value::Number(x)) => return Some(x.to_string()),
                    _ => {}
                }
            }
        }
        None
    };
    let field = |names: &[&str]| raw(names).map(|s| s.trim().to_owned());
    let name = normalise(payload.get("event").and_then(Value::as_str).unwrap_or(""));
    let status = field(&["status"]);
    let kind = match name.as_str() {
        "message.received" | "sms.received" | "mms.received" | "inbound" | "message.inbound" | "sms.inbound" => {
            Kind::Received
        }
        n if n.starts_with("message.") || n.starts_with("sms.") || n.starts_with("mms.") => {
            // message.sent / sms.delivered / message.status {status}
            let tail = n.rsplit('.').next().unwrap_or("");
            match status_of(tail).or_else(|| status.as_deref().and_then(status_of)) {
                Some(s) => Kind::Status(s),
                None => Kind::Other(name.clone()),
            }
        }
        "number.purchase.successful" | "number.purchase.succeeded" => Kind::NumberPurchase(true),
        "number.purchase.failed" => Kind::NumberPurchase(false),
        _ => Kind::Other(name.clone()),
    };
    let at = field(&["timestamp"]).and_then(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| d.with_timezone(&Utc))
            .ok()
            .or_else(|| t.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis))
    });
    Event {
        kind,
        message_id: field(&["message_id", "messageId", "id"]),
        from: field(&["from", "phoneNumber"]),
        to: field(&["to"]),
        // The reply as its sender wrote it: kept whole (whitespace, emoji, any length), with
        // Windows-1252 characters that arrived as C1 controls read as meant, NUL dropped. The
        // stored delivery (`raw_body`, `payload`) keeps what arrived, for an audit.
        text: raw(&["text", "body", "message"]).map(|t| as_written(&t).into_owned()),
        error_code: field(&["error_code", "errorCode"]),
        at,
        number: field(&["phoneNumber", "phone_number", "number", "identifier"]),
        subgroup: field(&["subgroupId", "subgroup_id"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_inbound_payload() {
        let e = parse(&json!({"event":"message.received","text":"YES I AM INTERESTED",
            "timestamp":"2026-01-27T18:21:10.78-05:00","to":"+15164079249","from":"+15551234567","message_id":"m1"}));
        assert_eq!(e.kind, Kind::Received);
        assert_eq!(e.text.as_deref(), Some("YES I AM INTERESTED"));
        assert_eq!(e.message_id.as_deref(), Some("m1"));
        assert_eq!(e.at.unwrap().to_rfc3339(), "2026-01-27T23:21:10.780+00:00");
    }

    #[test]
    fn the_nested_shape_and_receipts() {
        let e = parse(&json!({"event":"SMS_RECEIVED","data":{"from":"+1","to":"+2","message":"hi","messageId":"x"}}));
        assert_eq!((e.kind, e.text.as_deref(), e.message_id.as_deref()), (Kind::Received, Some("hi"), Some("x")));
        let e = parse(&json!({"event":"message.undelivered","message_id":"x","error_code":"30007"}));
        assert_eq!((e.kind, e.error_code.as_deref()), (Kind::Status(MessageStatus::Failed), Some("30007")));
        let e = parse(&json!({"event":"message.status","message_id":"x","status":"DELIVERED"}));
        assert_eq!(e.kind, Kind::Status(MessageStatus::Delivered));
        let e = parse(&json!({"event":"message.status","message_id":"x","status":"ENQUEUED"}));
        assert_eq!(e.kind, Kind::Other("message.status".into()));
        let e = parse(&json!({"event":"brand.add"}));
        assert_eq!(e.kind, Kind::Other("brand.add".into()));
    }

    #[test]
    fn numbers_in_either_form_and_purchase_events() {
        let e = parse(&json!({"event":"message.received","text":"hi","to":"15164079249","from":"15551234567"}));
        assert_eq!((e.to.as_deref(), e.from.as_deref()), (Some("15164079249"), Some("15551234567")));
        let to = nextier_domain::phone::E164::parse(e.to.as_deref().unwrap()).unwrap();
        assert_eq!(to.as_str(), "+15164079249");
        let e = parse(
            &json!({"event":"NUMBER_PURCHASE_SUCCESSFUL","data":{"phoneNumber":"12125550123","subgroupId":"sg1"}}),
        );
        assert_eq!(e.kind, Kind::NumberPurchase(true));
        assert_eq!((e.number.as_deref(), e.subgroup.as_deref()), (Some("12125550123"), Some("sg1")));
        let e = parse(&json!({"event":"NUMBER_PURCHASE_FAILED","identifier":"+12125550123",
                              "metaData":{"subgroupId":"sg1","reason":"gone"}}));
        assert_eq!(e.kind, Kind::NumberPurchase(false));
        assert_eq!((e.number.as_deref(), e.subgroup.as_deref()), (Some("+12125550123"), Some("sg1")));
    }

    #[test]
    fn the_text_is_kept_as_written_and_c1_controls_read_as_windows_1252() {
        let sent = "  I don\u{92}t want \u{93}offers\u{94} \u{96} STOP\u{85} 👨\u{200D}👩\u{200D}👧 שלום\tok\r\n ";
        let e = parse(&json!({"event":"message.received","text":sent,"from":" +15551234567 "}));
        assert_eq!(e.text.as_deref(), Some("  I don’t want “offers” – STOP… 👨\u{200D}👩\u{200D}👧 שלום\tok\r\n "));
        assert_eq!(e.from.as_deref(), Some("+15551234567"));
        let long = "é🙏".repeat(800);
        assert_eq!(parse(&json!({"event":"sms.received","data":{"message":long}})).text, Some(long));
        assert_eq!(parse(&json!({"event":"message.received","text":"   ","body":"b"})).text.as_deref(), Some("b"));
    }
}

/// Reads a delivery's body. A body that is JSON is read as it is. One that is not only
/// because a sender wrote text into it carelessly is read anyway rather than refused (a
/// refused reply would be lost): bytes that are not UTF-8 are read as Windows-1252, control
/// characters left unescaped inside a string are escaped, and half of a surrogate pair (a
/// concatenated message cut inside an emoji) becomes U+FFFD. The stored `raw_body` keeps the
/// bytes as they arrived.
pub fn payload(body: &[u8]) -> Result<Value, serde_json::Error> {
    let strict = serde_json::from_slice(body);
    if strict.is_ok() {
        return strict;
    }
    let text = nextier_domain::text::from_bytes(body);
    serde_json::from_str(&mend_strings(&text)).or(strict)
}

/// `text` with its JSON strings mended: control characters written as `\u00XX`, a `\uXXXX`
/// that is half a surrogate pair written as `\ufffd`.
fn mend_strings(text: &str) -> String {
    let cs: Vec<char> = text.chars().collect();
    let hex = |at: usize| cs.get(at..at + 4).and_then(|h| u32::from_str_radix(&h.iter().collect::<String>(), 16).ok());
    let escape_at =
        |at: usize| (cs.get(at) == Some(&'\\') && cs.get(at + 1) == Some(&'u')).then(|| hex(at + 2)).flatten();
    let (mut out, mut i, mut in_string) = (String::with_capacity(text.len() + 16), 0, false);
    while i < cs.len() {
        let c = cs[i];
        let (piece, len): (String, usize) = match c {
            '"' => {
                in_string = !in_string;
                (c.into(), 1)
            }
            '\\' if in_string => match escape_at(i) {
                Some(0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => {
                    (cs[i..i + 12].iter().collect(), 12)
                }
                Some(0xD800..=0xDFFF) => ("\\ufffd".into(), 6),
                _ => (cs[i..(i + 2).min(cs.len())].iter().collect(), 2),
            },
            c if in_string && (c as u32) < 0x20 => (format!("\\u{:04x}", c as u32), 1),
            c => (c.into(), 1),
        };
        out.push_str(&piece);
        i += len;
    }
    out
}

/// PostgreSQL stores neither a NUL character in text nor `\u0000` in jsonb: a payload carrying
/// one would fail to store on every retry. NULs carry no meaning in a text message, so they are
/// dropped (from keys and values alike) before anything is stored.
pub fn without_nul(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nul).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k.replace('\0', ""), without_nul(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn a_carelessly_written_body_is_read_not_refused() {
        let v = payload(b"{\"event\":\"message.received\",\"text\":\"it\x92s\tme\nok \\\"q\\\" caf\xe9\"}").unwrap();
        assert_eq!(v["text"], "it’s\tme\nok \"q\" café");
        assert_eq!(payload(br#"{"text":"a\u0092b"}"#).unwrap()["text"], "a\u{92}b");
        let v =
            payload(br#"{"a":"half \ud83d end","b":"whole \ud83d\ude00","c":"\\ud800 is text","d":"\udc00"}"#).unwrap();
        assert_eq!((v["a"].as_str(), v["b"].as_str()), (Some("half \u{FFFD} end"), Some("whole 😀")));
        assert_eq!((v["c"].as_str(), v["d"].as_str()), (Some("\\ud800 is text"), Some("\u{FFFD}")));
        assert!(payload(b"not json").is_err());
        assert!(payload(b"{\"text\":\"open").is_err());
    }

    #[test]
    fn nul_characters_are_dropped_everywhere() {
        let v = serde_json::json!({"te\u{0}xt": "a\u{0}b", "list": ["\u{0}", 1], "n": null});
        assert_eq!(without_nul(v), serde_json::json!({"text": "ab", "list": ["", 1], "n": null}));
    }
}
