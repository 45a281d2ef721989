//! Merging two contacts into one, and the record of merges.

use super::*;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergeRecord {
    pub id: RowId,
    pub survivor_id: ContactId,
    pub merged_id: ContactId,
    pub merged_by: String,
    pub reason: Option<String>,
    /// The merged contact as it was just before the merge.
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Merges `merged` into `survivor`: phones, emails, addresses, business and property roles
/// and the timeline move; blank fields are filled, tags united, the higher score kept. If
/// either was suppressed the survivor is suppressed: an opt-out of either is the person's.
/// Enrolments are the campaigns' to move: merge through `nextier_campaigns::merge`.
pub async fn merge(
    tx: &Tx<'_>,
    team: &TeamId,
    survivor: &ContactId,
    merged: &ContactId,
    reason: Option<&str>,
    actor: &str,
) -> Result<MergeRecord> {
    if survivor == merged {
        return Err(StoreError::Conflict("a contact cannot be merged into itself".into()));
    }
    // Lock in id order so two opposite merges cannot deadlock.
    let (first, second) = if survivor < merged { (survivor, merged) } else { (merged, survivor) };
    let a = lock(tx, first).await?;
    let b = lock(tx, second).await?;
    let (keep, gone) = if &a.id == survivor { (a, b) } else { (b, a) };
    let snapshot = serde_json::to_value(&gone).unwrap_or_default();

    let s = survivor.as_str();
    let m = merged.as_str();
    tx.query_typed(
        "UPDATE contact_phones SET contact_id = $1, is_primary = false WHERE contact_id = $2",
        params![s => TEXT, m => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE contact_emails SET contact_id = $1, is_primary = false WHERE contact_id = $2",
        params![s => TEXT, m => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE contact_addresses SET contact_id = $1, is_current = false WHERE contact_id = $2",
        params![s => TEXT, m => TEXT],
    )
    .await?;
    for table in ["business_owners", "property_owners"] {
        let key = if table == "business_owners" { "business_id" } else { "property_id" };
        tx.query_typed(
            &format!(
                "DELETE FROM {table} g WHERE g.contact_id = $2
                   AND EXISTS (SELECT 1 FROM {table} k WHERE k.contact_id = $1 AND k.{key} = g.{key})"
            ),
            params![s => TEXT, m => TEXT],
        )
        .await?;
        tx.query_typed(
            &format!("UPDATE {table} SET contact_id = $1 WHERE contact_id = $2"),
            params![s => TEXT, m => TEXT],
        )
        .await?;
    }
    tx.query_typed("UPDATE contact_events SET contact_id = $1 WHERE contact_id = $2", params![s => TEXT, m => TEXT])
        .await?;

    let suppressed = keep.lead_state == LeadState::Suppressed || gone.lead_state == LeadState::Suppressed;
    let state = if suppressed { LeadState::Suppressed } else { keep.lead_state };
    let mut tags = keep.tags.clone();
    tags.extend(gone.tags.iter().cloned());
    tags.sort();
    tags.dedup();
    let mut custom = gone.custom_fields.as_object().cloned().unwrap_or_default();
    custom.extend(keep.custom_fields.as_object().cloned().unwrap_or_default());
    tx.query_typed(
        "UPDATE contacts SET first_name = coalesce(first_name, $2), last_name = coalesce(last_name, $3),
                company = coalesce(company, $4), title = coalesce(title, $5), source = coalesce(source, $6),
                score = greatest(score, $7), tags = $8, custom_fields = $9, lead_state = $10::lead_state,
                updated_at = now()
          WHERE id = $1",
        params![s => TEXT, gone.first_name => TEXT, gone.last_name => TEXT, gone.company => TEXT, gone.title => TEXT,
                gone.source => TEXT, gone.score => INT4, tags => TEXT_ARRAY,
                serde_json::Value::Object(custom) => JSONB, state.as_str() => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE contacts SET deleted_at = now(), merged_into = $1, updated_at = now() WHERE id = $2",
        params![s => TEXT, m => TEXT],
    )
    .await?;
    let id = RowId::new();
    let rows = tx
        .query_typed(
            "INSERT INTO contact_merges (id, team_id, survivor_id, merged_id, merged_by, reason, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
            params![id.as_str() => TEXT, team.as_str() => TEXT, s => TEXT, m => TEXT, actor => TEXT, reason => TEXT,
                    snapshot => JSONB],
        )
        .await?;
    record(tx, team, survivor, "merged", serde_json::json!({"mergedId": merged, "reason": reason}), actor).await?;
    Ok(MergeRecord {
        id,
        survivor_id: survivor.clone(),
        merged_id: merged.clone(),
        merged_by: actor.to_owned(),
        reason: reason.map(str::to_owned),
        snapshot,
        at: rows.first().map(|r| r.get(0)).unwrap_or_else(Utc::now),
    })
}

/// The merges a contact survived, newest first.
pub async fn merges(tx: &Tx<'_>, survivor: &ContactId) -> Result<Vec<MergeRecord>> {
    let rows = tx
        .query_typed(
            "SELECT id, survivor_id, merged_id, merged_by, reason, snapshot, created_at FROM contact_merges
              WHERE survivor_id = $1 ORDER BY id DESC LIMIT 200",
            params![survivor.as_str() => TEXT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| MergeRecord {
            id: RowId::from_trusted(r.get(0)),
            survivor_id: ContactId::from_trusted(r.get(1)),
            merged_id: ContactId::from_trusted(r.get(2)),
            merged_by: r.get(3),
            reason: r.get(4),
            snapshot: r.get(5),
            at: r.get(6),
        })
        .collect())
}
