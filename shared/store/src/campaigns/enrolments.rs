//! Enrolments: who is in a campaign, entering, leaving and moving with a merge.

use super::*;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub id: EnrolmentId,
    pub contact_id: ContactId,
    pub status: EnrolmentStatus,
    pub current_step: i32,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub exit_reason: Option<String>,
    pub enrolled_by: String,
    pub enrolled_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub contact_id: ContactId,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolled {
    pub enrolled: u64,
    /// Contacts not enrolled, each with why (at most 1,000 listed).
    pub skipped: Vec<Skipped>,
    pub skipped_total: u64,
}

pub const MAX_ENROL: i64 = 100_000;

/// What an enrolment request needs to know of the campaign.
pub struct EnrolRules<'a> {
    pub team: &'a TeamId,
    pub campaign: &'a CampaignId,
    /// Merge fields the steps require (no fallback): contacts lacking one are skipped.
    pub required_fields: &'a [&'a str],
    /// False when the team allows a contact in several live campaigns.
    pub exclusive: bool,
    /// When the first step is due, if the campaign is running.
    pub first_run_at: Option<DateTime<Utc>>,
    pub actor: &'a str,
}

/// Enrols the selected contacts. Skips, with a reason each: contacts that opted out, lack a
/// required merge field, are already in this campaign, or are in another live campaign of
/// the team (unless the team allows it). Race-free: the unique indexes decide.
pub async fn enrol(tx: &Tx<'_>, sel: Selection<'_>, rules: &EnrolRules<'_>) -> Result<Enrolled> {
    let mut w = match sel {
        Selection::Filter(f) => Where::from_filter(f),
        Selection::Ids(ids) => {
            let mut w = Where::new();
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let p = w.bind(ids, Type::TEXT_ARRAY);
            w.clauses.push(format!("c.id = ANY({p})"));
            w
        }
    };
    let limit = w.bind(MAX_ENROL + 1, Type::INT8);
    let missing: Vec<String> =
        rules.required_fields.iter().map(|f| format!("CASE WHEN {} THEN '{f}' END", missing_sql(f))).collect();
    let missing =
        if missing.is_empty() { "ARRAY[]::text[]".to_owned() } else { format!("ARRAY[{}]", missing.join(", ")) };
    let sql = format!(
        "SELECT c.id, c.lead_state = 'suppressed' AS opted_out, array_remove({missing}, NULL) AS missing
           FROM contacts c WHERE {} ORDER BY c.id LIMIT {limit}",
        w.sql()
    );
    let rows = tx.query_typed(&sql, &w.params()).await?;
    if rows.len() as i64 > MAX_ENROL {
        return Err(StoreError::Conflict(format!(
            "the selection has more than {MAX_ENROL} contacts; narrow it or enrol in parts"
        )));
    }
    let mut out = Enrolled::default();
    let mut candidates: Vec<String> = Vec::with_capacity(rows.len());
    let skip = |out: &mut Enrolled, id: String, reason: String| {
        out.skipped_total += 1;
        if out.skipped.len() < 1000 {
            out.skipped.push(Skipped { contact_id: ContactId::from_trusted(id), reason });
        }
    };
    for r in &rows {
        let id: String = r.get("id");
        let missing: Vec<String> = r.get("missing");
        if r.get::<_, bool>("opted_out") {
            skip(&mut out, id, "the contact opted out".into());
        } else if !missing.is_empty() {
            skip(&mut out, id, format!("missing merge field(s) with no fallback: {}", missing.join(", ")));
        } else {
            candidates.push(id);
        }
    }
    // Ids that were asked for but are not contacts of this team (or are deleted).
    if let Selection::Ids(ids) = sel {
        let found: std::collections::HashSet<&str> = rows.iter().map(|r| r.get::<_, &str>("id")).collect();
        for id in ids.iter().filter(|i| !found.contains(i.as_str())) {
            skip(&mut out, id.to_string(), "no such contact".into());
        }
    }
    if candidates.is_empty() {
        return Ok(out);
    }
    let enrolment_ids: Vec<String> = candidates.iter().map(|_| EnrolmentId::new().to_string()).collect();
    let inserted = tx
        .query_typed(
            "INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, exclusive, next_run_at, enrolled_by)
             SELECT e, $3, $4, c, $5, $6, $7 FROM unnest($1::text[], $2::text[]) AS u(e, c)
             ON CONFLICT DO NOTHING RETURNING contact_id",
            params![enrolment_ids => TEXT_ARRAY, candidates => TEXT_ARRAY, rules.team.as_str() => TEXT,
                    rules.campaign.as_str() => TEXT, rules.exclusive => BOOL, rules.first_run_at => TIMESTAMPTZ,
                    rules.actor => TEXT],
        )
        .await?;
    out.enrolled = inserted.len() as u64;
    if inserted.len() < candidates.len() {
        let done: std::collections::HashSet<String> = inserted.iter().map(|r| r.get::<_, String>(0)).collect();
        let left: Vec<String> = candidates.into_iter().filter(|c| !done.contains(c)).collect();
        let here = tx
            .query_typed(
                "SELECT u.c, e.contact_id, (SELECT f.campaign_id FROM campaign_enrolments f
                                      WHERE f.contact_id = u.c AND f.status = 'active' AND f.exclusive
                                        AND f.campaign_id <> $2 LIMIT 1) AS other
                   FROM unnest($1::text[]) AS u(c)
                   LEFT JOIN campaign_enrolments e ON e.contact_id = u.c AND e.campaign_id = $2",
                params![left => TEXT_ARRAY, rules.campaign.as_str() => TEXT],
            )
            .await?;
        for r in &here {
            let id: String = r.get("c");
            let reason = match (r.get::<_, Option<String>>("contact_id"), r.get::<_, Option<String>>("other")) {
                (Some(_), _) => "already enrolled in this campaign".to_owned(),
                (None, Some(other)) => format!("already enrolled in live campaign {other}"),
                (None, None) => "enrolled concurrently by another request".to_owned(),
            };
            skip(&mut out, id, reason);
        }
    }
    Ok(out)
}

/// Removes contacts from a campaign (the enrolment stays, as `removed`, for the record).
pub async fn unenrol(tx: &Tx<'_>, campaign: &CampaignId, contacts: &[ContactId], actor: &str) -> Result<u64> {
    let ids: Vec<String> = contacts.iter().map(|c| c.to_string()).collect();
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET status = 'removed', exit_reason = 'removed by ' || $3,
                    claimed_until = NULL, updated_at = now()
              WHERE campaign_id = $1 AND contact_id = ANY($2) AND status = 'active' RETURNING 1",
            params![campaign.as_str() => TEXT, ids => TEXT_ARRAY, actor => TEXT],
        )
        .await?;
    Ok(rows.len() as u64)
}

pub async fn enrolments(
    tx: &Tx<'_>,
    campaign: &CampaignId,
    status: Option<&str>,
    page: &PageRequest,
) -> Result<Vec<Enrolment>> {
    let rows = tx
        .query_typed(
            "SELECT id, contact_id, status, current_step, next_run_at, last_run_at, exit_reason, enrolled_by, enrolled_at
               FROM campaign_enrolments
              WHERE campaign_id = $1 AND ($2::text IS NULL OR status = $2) AND id > $3 ORDER BY id LIMIT $4",
            params![campaign.as_str() => TEXT, status => TEXT, page.after.clone().unwrap_or_default() => TEXT,
                    page.fetch_limit() => INT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Enrolment {
            id: EnrolmentId::from_trusted(r.get("id")),
            contact_id: ContactId::from_trusted(r.get("contact_id")),
            status: enrolment_status(r),
            current_step: r.get("current_step"),
            next_run_at: r.get("next_run_at"),
            last_run_at: r.get("last_run_at"),
            exit_reason: r.get("exit_reason"),
            enrolled_by: r.get("enrolled_by"),
            enrolled_at: r.get("enrolled_at"),
        })
        .collect())
}

/// On start: every active enrolment not yet scheduled becomes due at `at`.
pub async fn schedule_unscheduled(tx: &Tx<'_>, campaign: &CampaignId, at: DateTime<Utc>) -> Result<u64> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET next_run_at = $2, updated_at = now()
              WHERE campaign_id = $1 AND status = 'active' AND next_run_at IS NULL RETURNING 1",
            params![campaign.as_str() => TEXT, at => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// On COMPLETED or CANCELLED: every active enrolment ends, freeing its contact.
pub async fn close_enrolments(tx: &Tx<'_>, campaign: &CampaignId, status: &str, reason: &str) -> Result<u64> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments SET status = $2, exit_reason = $3, claimed_until = NULL, updated_at = now()
              WHERE campaign_id = $1 AND status = 'active' RETURNING 1",
            params![campaign.as_str() => TEXT, status => TEXT, reason => TEXT],
        )
        .await?;
    Ok(rows.len() as u64)
}

/// Ends the contact's active enrolments whose campaigns exit on `reason` (`reply`,
/// `meeting_booked`; `opt_out` and `suppressed: …` always). Returns the campaigns affected.
pub async fn exit_contact(tx: &Tx<'_>, contact: &ContactId, reason: &str) -> Result<Vec<CampaignId>> {
    let rows = tx
        .query_typed(
            "UPDATE campaign_enrolments e SET status = 'exited', exit_reason = $2, claimed_until = NULL,
                    updated_at = now()
               FROM campaigns c
              WHERE e.contact_id = $1 AND e.status = 'active' AND c.id = e.campaign_id
                AND ($2 = 'opt_out' OR $2 LIKE 'suppressed:%' OR ($2 = 'reply' AND c.exit_on_reply)
                     OR ($2 = 'meeting_booked' AND c.exit_on_meeting))
             RETURNING e.campaign_id",
            params![contact.as_str() => TEXT, reason => TEXT],
        )
        .await?;
    Ok(rows.iter().map(|r| CampaignId::from_trusted(r.get(0))).collect())
}

/// Moves a merged contact's enrolments to the survivor; where the survivor is already
/// enrolled in the same campaign (or a live exclusive one), the merged one's is removed.
pub async fn move_enrolments(tx: &Tx<'_>, survivor: &ContactId, merged: &ContactId) -> Result<()> {
    tx.query_typed(
        "UPDATE campaign_enrolments e SET status = 'removed', exit_reason = 'merged into ' || $1,
                claimed_until = NULL, updated_at = now()
          WHERE e.contact_id = $2 AND (
                EXISTS (SELECT 1 FROM campaign_enrolments s WHERE s.contact_id = $1 AND s.campaign_id = e.campaign_id)
             OR (e.status = 'active' AND e.exclusive AND EXISTS (SELECT 1 FROM campaign_enrolments s
                     WHERE s.contact_id = $1 AND s.status = 'active' AND s.exclusive)))",
        params![survivor.as_str() => TEXT, merged.as_str() => TEXT],
    )
    .await?;
    tx.query_typed(
        "UPDATE campaign_enrolments e SET contact_id = $1, updated_at = now()
          WHERE e.contact_id = $2
            AND NOT EXISTS (SELECT 1 FROM campaign_enrolments s WHERE s.contact_id = $1 AND s.campaign_id = e.campaign_id)",
        params![survivor.as_str() => TEXT, merged.as_str() => TEXT],
    )
    .await?;
    Ok(())
}
