//! Merging two contacts, as a use case: the contact store moves what is the contact's
//! (numbers, addresses, roles, timeline) and the campaigns move the enrolments, so that the
//! store's contacts module does not reach into campaigns (nor campaigns back into it).

use nextier_domain::ids::{ContactId, TeamId};
use nextier_store::contacts::{self, MergeRecord};
use nextier_store::error::Result;
use nextier_store::{campaigns, Tx};

/// Merges `merged` into `survivor` (see [`contacts::merge`]) and moves the merged contact's
/// enrolments to the survivor; where the survivor is already in the campaign (or in a live
/// exclusive one) the merged contact's enrolment is removed. One transaction: the caller's.
pub async fn merge_contacts(
    tx: &Tx<'_>,
    team: &TeamId,
    survivor: &ContactId,
    merged: &ContactId,
    reason: Option<&str>,
    actor: &str,
) -> Result<MergeRecord> {
    let record = contacts::merge(tx, team, survivor, merged, reason, actor).await?;
    campaigns::move_enrolments(tx, survivor, merged).await?;
    Ok(record)
}
