//! Twilio voice calls: what the voice webhooks (`nextier-webhooks`, answered in TwiML) do
//! once a request's signature checks out:
//! - an inbound call: the team is the owner of the number called; the caller is found among
//!   that team's contacts (or becomes one, for review); the call is recorded as an inbound
//!   VOICE message and answered with the team's greeting and a voicemail recording;
//! - the voicemail (the `<Record>` action): it joins the call's timeline and lands in the
//!   inbox as an item to call back;
//! - call progress, appended to the call's timeline.
//!
//! There is no timestamp in Twilio's scheme, so repeats are recognised by CallSid (and
//! status): each is recorded once in `webhook_events`.

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_domain::inbox::{Assessment, Bucket, Classification, Priority};
use nextier_domain::phone::E164;
use nextier_store::campaigns::Channel;
use nextier_store::inbox::{self, NewItem};
use nextier_store::webhooks::{self, Delivery};
use nextier_store::{messages, scope, settings, Db, Scope, StoreError, Tx};

pub const DEFAULT_GREETING: &str =
    "Thanks for calling. Please leave a message after the tone and we will call you back.";

/// A verified form's fields, in the order Twilio sent them.
pub type Form = [(String, String)];

/// How to answer an inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAnswer {
    /// The caller or the number called is not a phone number.
    CannotTake,
    /// Nobody here owns the number called.
    NotInService,
    /// The team's greeting (or [`DEFAULT_GREETING`]), then a voicemail recording.
    Greeting(String),
}

pub fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Records a delivery once (`twilio`, `key`); false when seen before.
async fn first_time(
    tx: &Tx<'_>,
    key: &str,
    event: &str,
    form: &Form,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let payload = serde_json::Value::Object(
        form.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
    );
    let d = Delivery {
        provider: "twilio",
        delivery_id: key,
        event,
        payload: &payload,
        raw,
        signed_at: None,
        source: "webhook",
    };
    let stored = webhooks::receive(tx, &d).await?;
    if let Some(id) = &stored {
        webhooks::finish(tx, id.as_str(), None, "answered", now).await?;
    }
    Ok(stored.is_some())
}

/// An inbound call `sid` from `from` to `to` (the form's CallSid, From and To): recorded once,
/// in the team that owns `to`.
pub async fn inbound_call(
    db: &Db,
    sid: &str,
    from: &str,
    to: &str,
    form: &Form,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<CallAnswer, StoreError> {
    let (Ok(from), Ok(to)) = (E164::parse(from), E164::parse(to)) else {
        return Ok(CallAnswer::CannotTake);
    };
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    first_time(&tx, &format!("call:{sid}"), "voice.inbound", form, raw, now).await?;
    let Some(team) = webhooks::team_for_number(&tx, to.as_str()).await? else {
        tx.commit().await?;
        return Ok(CallAnswer::NotInService);
    };
    scope::apply(&tx, &Scope::team(team.clone())).await?;
    record_call(&tx, &team, &from, &to, sid, now).await?;
    let greeting = settings::strings_in(&tx, "voice")
        .await?
        .get("greeting")
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| DEFAULT_GREETING.to_owned());
    tx.commit().await?;
    Ok(CallAnswer::Greeting(greeting))
}

/// The call as an inbound VOICE message from the caller (once per CallSid), the caller
/// found among the team's contacts or made one for review.
async fn record_call(
    tx: &Tx<'_>,
    team: &TeamId,
    from: &E164,
    to: &E164,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let contact = match crate::received::sender(tx, team, from, "inbound_call").await {
        Ok((c, false)) => c,
        // The caller's contact was deleted: answer the call, record nothing against it.
        Ok((_, true)) | Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    let call = messages::Inbound {
        team,
        channel: Channel::Voice,
        contact: &contact.id,
        campaign: None,
        from: from.as_str(),
        to: to.as_str(),
        body: "Inbound call",
        provider: "twilio",
        provider_message_id: Some(sid),
        at: now,
    };
    messages::record_inbound(tx, &call).await?;
    Ok(())
}

/// The call's message, by CallSid, in the team that owns the number called.
async fn call_message(tx: &Tx<'_>, form: &Form) -> Result<Option<(TeamId, String, String)>, StoreError> {
    let (Some(sid), Some(to)) = (field(form, "CallSid"), field(form, "To")) else { return Ok(None) };
    let Ok(to) = E164::parse(to) else { return Ok(None) };
    let Some(team) = webhooks::team_for_number(tx, to.as_str()).await? else { return Ok(None) };
    scope::apply(tx, &Scope::team(team.clone())).await?;
    let found = messages::by_provider_id(tx, "twilio", sid).await?;
    Ok(found.map(|(id, contact)| (team, id, contact.unwrap_or_default())))
}

/// The voicemail (Twilio's `<Record>` action): once per CallSid, on the call's timeline, and
/// in the inbox as a hot item to call back when something was said.
pub async fn voicemail(db: &Db, form: &Form, raw: &[u8], now: DateTime<Utc>) -> Result<(), StoreError> {
    let sid = field(form, "CallSid").unwrap_or_default().to_owned();
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let fresh = first_time(&tx, &format!("recording:{sid}"), "voice.recording", form, raw, now).await?;
    if let (true, Some((team, message, contact))) = (fresh, call_message(&tx, form).await?) {
        let url = field(form, "RecordingUrl").unwrap_or_default();
        let secs: i32 = field(form, "RecordingDuration").and_then(|d| d.parse().ok()).unwrap_or(0);
        let detail = format!("voicemail, {secs} s: {url}");
        messages::add_event(&tx, &team, &message, "voicemail", Some(&detail), now).await?;
        if secs > 0 && !contact.is_empty() {
            // Someone who called and left a message: a person should call back, soon.
            let a = Assessment {
                classification: Classification::Neutral,
                confidence: 100,
                labels: vec!["voicemail".into(), "wants_call".into()],
                score_delta: 0,
                score: 75,
                priority: Priority::Hot,
                bucket: Bucket::UniversalInbox,
                requires_review: true,
                opt_out: false,
            };
            let text = format!("Voicemail ({secs} s): {url}");
            let phone = field(form, "From").unwrap_or_default();
            inbox::create(
                &tx,
                &team,
                &NewItem {
                    contact: &nextier_domain::ids::ContactId::from_trusted(contact),
                    message: &nextier_domain::ids::MessageId::from_trusted(message),
                    campaign: None,
                    phone,
                    text: &text,
                    assessment: &a,
                    now,
                },
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Call progress: once per CallSid and status, on the call's timeline.
pub async fn call_status(db: &Db, form: &Form, raw: &[u8], now: DateTime<Utc>) -> Result<(), StoreError> {
    let sid = field(form, "CallSid").unwrap_or_default().to_owned();
    let call_status = field(form, "CallStatus").unwrap_or("unknown").to_owned();
    let mut conn = db.conn().await?;
    let tx = scope::begin(&mut conn, &Scope::default()).await?;
    let fresh = first_time(&tx, &format!("status:{sid}:{call_status}"), "voice.status", form, raw, now).await?;
    if let (true, Some((team, message, _))) = (fresh, call_message(&tx, form).await?) {
        let detail = field(form, "CallDuration").map(|d| format!("{d} s"));
        messages::add_event(&tx, &team, &message, &format!("call:{call_status}"), detail.as_deref(), now).await?;
    }
    tx.commit().await?;
    Ok(())
}
