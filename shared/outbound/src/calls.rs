//! Calls: whether a person may call a contact now, by the same rules as a text.

use super::*;

/// Whether a person may call a contact now (the dialer and the call queue ask before they
/// hand out a number): the same consent, suppression and quiet-hours rules as a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCheck {
    /// Call this number.
    Call(String),
    /// Not now; allowed from `until`.
    Wait { until: DateTime<Utc>, reason: String },
    /// Never (opted out, suppressed, no callable number).
    Never(String),
}

/// The strongest revocation (OPTED_OUT, LEGAL_DNC) on any number or address of the contact.
pub async fn person_revocation(tx: &Tx<'_>, contact: &Contact) -> anyhow::Result<Option<Suppression>> {
    let addresses: Vec<String> =
        contact.phones.iter().map(|p| p.e164.clone()).chain(contact.emails.iter().map(|e| e.email.clone())).collect();
    Ok(suppressions::revocation_among(tx, &addresses).await?)
}

/// The first of the contact's numbers that may be called now, checking each number on its
/// own ([`may_call_number`]). When none may be called now but one may later, the earliest
/// wait; when none ever may, the first number's reason.
pub async fn may_call(tx: &Tx<'_>, team: &TeamId, contact: &Contact, now: DateTime<Utc>) -> anyhow::Result<CallCheck> {
    let mut wait: Option<CallCheck> = None;
    let mut never: Option<String> = None;
    for phone in &contact.phones {
        match may_call_number(tx, team, contact, &phone.e164, now).await? {
            CallCheck::Call(to) => return Ok(CallCheck::Call(to)),
            CallCheck::Wait { until, reason } => {
                if !matches!(&wait, Some(CallCheck::Wait { until: u, .. }) if *u <= until) {
                    wait = Some(CallCheck::Wait { until, reason });
                }
            }
            CallCheck::Never(reason) => {
                never.get_or_insert(reason);
            }
        }
    }
    Ok(wait.unwrap_or_else(|| CallCheck::Never(never.unwrap_or_else(|| "no callable number".into()))))
}

/// The contact's first number that may ever be called (now or after quiet hours), or why none
/// may: what the call queue takes, from a person or a workflow alike.
pub async fn number_to_queue(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &Contact,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<String, String>> {
    let mut never = None;
    for p in &contact.phones {
        match may_call_number(tx, team, contact, &p.e164, now).await? {
            CallCheck::Never(reason) => {
                never.get_or_insert(reason);
            }
            _ => return Ok(Ok(p.e164.clone())),
        }
    }
    Ok(Err(never.unwrap_or_else(|| "no callable number".into())))
}

/// Whether a person may call this exact number of the contact now: the contact has not opted
/// out, the number is one of theirs and not marked do-not-call, the number itself is not
/// suppressed, and it is daytime both where its area code is and where the contact lives.
pub async fn may_call_number(
    tx: &Tx<'_>,
    team: &TeamId,
    contact: &Contact,
    e164: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<CallCheck> {
    if contact.lead_state == LeadState::Suppressed {
        return Ok(CallCheck::Never("opt_out".into()));
    }
    // A revocation on any of the person's numbers or addresses covers this one too.
    if let Some(s) = person_revocation(tx, contact).await? {
        return Ok(CallCheck::Never(s.block_reason()));
    }
    let Some(phone) = contact.phones.iter().find(|p| p.e164 == e164) else {
        return Ok(CallCheck::Never("not one of the contact's numbers".into()));
    };
    if phone.do_not_call {
        return Ok(CallCheck::Never("do_not_call".into()));
    }
    if let Some(s) = suppressions::active(tx, team, e164, now).await? {
        return Ok(CallCheck::Never(s.block_reason()));
    }
    // The number's own zone and the address's: a call must be inside the window in both.
    let state = contact.addresses.first().and_then(|a| a.state.as_deref());
    let (own, home) = (quiet_hours::locate(e164, None), quiet_hours::locate(e164, state));
    let (own_until, home_until) = (quiet_hours::next_allowed(now, &own), quiet_hours::next_allowed(now, &home));
    let (until, loc) = if own_until >= home_until { (own_until, own) } else { (home_until, home) };
    if until > now {
        return Ok(CallCheck::Wait {
            until,
            reason: format!("quiet hours in {}", loc.state.as_deref().unwrap_or("the recipient's zone")),
        });
    }
    Ok(CallCheck::Call(e164.to_owned()))
}
