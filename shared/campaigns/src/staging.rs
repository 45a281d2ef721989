//! What STAGED promises: the campaign has steps, every template parses, every email has a
//! subject, a campaign with email steps has the team's postal address to print in them
//! (CAN-SPAM), there is an audience, and no enrolled contact lacks a merge field that has no
//! fallback. A campaign that fails any of these is refused with each problem named.

use nextier_domain::template::Template;
use nextier_domain::FieldError;
use nextier_store::campaigns::{self, Campaign, Channel, Step};
use nextier_store::{StoreError, Tx};

/// The merge fields the steps require (no fallback), each once.
pub fn required_fields(steps: &[Step]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in steps {
        for (_, text) in s.texts() {
            if let Ok(t) = Template::parse(text) {
                for f in t.required_fields() {
                    if !out.iter().any(|o| o == f) {
                        out.push(f.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// Every reason the campaign cannot be staged as it stands (empty: it can).
pub async fn problems(tx: &Tx<'_>, campaign: &Campaign) -> Result<Vec<FieldError>, StoreError> {
    let steps = campaigns::steps(tx, &campaign.id).await?;
    let mut problems = Vec::new();
    if steps.is_empty() {
        problems.push(FieldError::new("steps", "a campaign needs at least one step"));
    }
    // Where each required field is first used, to point at it.
    let mut first_use: Vec<(String, String)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if s.channel == Channel::Email && s.subject.as_deref().is_none_or(|x| x.trim().is_empty()) {
            problems.push(FieldError::new(format!("steps[{i}].subject"), "an email step needs a subject"));
        }
        if s.opener_category.is_some() && s.variants.is_empty() {
            problems.push(FieldError::new(format!("steps[{i}].variants"), "the opener category had no active variant"));
        }
        for (field, text) in s.texts() {
            match Template::parse(text) {
                Ok(t) => {
                    for f in t.required_fields() {
                        if !first_use.iter().any(|(n, _)| n == f) {
                            first_use.push((f.to_owned(), format!("steps[{i}].{field}")));
                        }
                    }
                }
                Err(e) => problems.push(FieldError::new(format!("steps[{i}].{field}"), e.to_string())),
            }
        }
    }
    if steps.iter().any(|s| s.channel == Channel::Email) && nextier_outbound::email::postal_address(tx).await?.is_none()
    {
        problems.push(FieldError::new(
            "steps",
            "email steps need the team's postal address: set the team setting email/postal_address first",
        ));
    }
    if campaign.active_enrolments == 0 && campaign.auto_enrol.is_none() {
        problems.push(FieldError::new(
            "enrolments",
            "enrol at least one contact, or set an auto-enrol score band, before staging",
        ));
    }
    let names: Vec<&str> = first_use.iter().map(|(n, _)| n.as_str()).collect();
    for (field, missing) in campaigns::count_missing(tx, &campaign.id, &names).await? {
        if missing > 0 {
            let at = first_use.iter().find(|(n, _)| *n == field).map(|(_, at)| at.clone()).unwrap_or_default();
            problems.push(FieldError::new(
                at,
                format!(
                    "{{{{{field}}}}} is empty for {missing} enrolled contact(s); give it a fallback such as \
                     {{{{{field}|there}}}} or unenrol them"
                ),
            ));
        }
    }
    Ok(problems)
}
