//! The sequence: claims by the tick, the work a step needs, executions and their settling, step stats.

use super::*;

/// An enrolment claimed by the tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub enrolment: EnrolmentId,
    pub team: TeamId,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub step: i32,
}

/// Claims due enrolments across teams (see `campaign_claim_due` in migration 0005).
pub async fn claim_due(
    client: &tokio_postgres::Client,
    now: DateTime<Utc>,
    budget: i32,
    limit: i32,
    lease_secs: f64,
) -> Result<Vec<Claimed>> {
    let rows = client
        .query_typed(
            "SELECT enrolment_id, team_id, campaign_id, contact_id, step
               FROM campaign_claim_due($1, $2, $3, make_interval(secs => $4))",
            params![now => TIMESTAMPTZ, budget => INT4, limit => INT4, lease_secs => FLOAT8],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Claimed {
            enrolment: EnrolmentId::from_trusted(r.get(0)),
            team: TeamId::from_trusted(r.get(1)),
            campaign: CampaignId::from_trusted(r.get(2)),
            contact: ContactId::from_trusted(r.get(3)),
            step: r.get(4),
        })
        .collect())
}

/// Keeps claims while their steps wait in the queue for a rate-limit slot or quiet hours to
/// pass: each held until its time (and never shortened), so no tick claims them twice.
pub async fn extend_claims(tx: &Tx<'_>, ids: &[EnrolmentId], until: &[DateTime<Utc>]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    Ok(tx
        .execute_typed(
            "UPDATE campaign_enrolments e SET claimed_until = greatest(e.claimed_until, x.until)
               FROM unnest($1::text[], $2::timestamptz[]) AS x(id, until)
              WHERE e.id = x.id AND e.status = 'active' AND e.claimed_until IS NOT NULL",
            params![ids => TEXT_ARRAY, until => TIMESTAMPTZ_ARRAY],
        )
        .await?)
}

/// Gives back claims whose queue message could not be sent.
pub async fn release_claims(client: &tokio_postgres::Client, ids: &[EnrolmentId]) -> Result<i32> {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let rows = client.query_typed("SELECT campaign_release_claims($1)", params![ids => TEXT_ARRAY]).await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Campaigns whose scheduled start or end has come: (team, campaign, "start" | "complete").
pub async fn due_schedules(
    client: &tokio_postgres::Client,
    now: DateTime<Utc>,
) -> Result<Vec<(TeamId, CampaignId, String)>> {
    let rows = client
        .query_typed("SELECT team_id, campaign_id, action FROM campaign_due_schedules($1)", params![now => TIMESTAMPTZ])
        .await?;
    Ok(rows.iter().map(|r| (TeamId::from_trusted(r.get(0)), CampaignId::from_trusted(r.get(1)), r.get(2))).collect())
}

/// An enrolment locked for processing, with what the sequence needs of its campaign.
#[derive(Debug, Clone)]
pub struct Work {
    pub enrolment: EnrolmentId,
    pub campaign: CampaignId,
    pub contact: ContactId,
    pub status: EnrolmentStatus,
    pub current_step: i32,
    pub campaign_status: CampaignStatus,
    pub exit_on_meeting: bool,
    pub sends_per_minute: i32,
    pub steps: Vec<Step>,
}

pub async fn lock_work(tx: &Tx<'_>, id: &EnrolmentId) -> Result<Option<Work>> {
    let rows = tx
        .query_typed(
            "SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_step, c.status AS campaign_status,
                    c.exit_on_meeting, c.sends_per_minute
               FROM campaign_enrolments e JOIN campaigns c ON c.id = e.campaign_id
              WHERE e.id = $1 FOR UPDATE OF e",
            params![id.as_str() => TEXT],
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(None) };
    let campaign = CampaignId::from_trusted(r.get("campaign_id"));
    let steps = steps(tx, &campaign).await?;
    Ok(Some(Work {
        enrolment: EnrolmentId::from_trusted(r.get("id")),
        campaign,
        contact: ContactId::from_trusted(r.get("contact_id")),
        status: enrolment_status(r),
        current_step: r.get("current_step"),
        campaign_status: r.get::<_, &str>("campaign_status").parse().unwrap_or(CampaignStatus::Draft),
        exit_on_meeting: r.get("exit_on_meeting"),
        sends_per_minute: r.get("sends_per_minute"),
        steps,
    }))
}

/// [`lock_work`] for a batch: the enrolments locked in id order (so two batches never
/// deadlock) and every step of their campaigns, in two statements sent together.
pub async fn lock_work_all(tx: &Tx<'_>, ids: &[&EnrolmentId]) -> Result<Vec<Work>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let p = params![ids => TEXT_ARRAY];
    let lock = tx.query_typed(
        "SELECT e.id, e.campaign_id, e.contact_id, e.status, e.current_step, c.status AS campaign_status,
                c.exit_on_meeting, c.sends_per_minute
           FROM campaign_enrolments e JOIN campaigns c ON c.id = e.campaign_id
          WHERE e.id = ANY($1) ORDER BY e.id FOR UPDATE OF e",
        p,
    );
    let steps_sql = format!(
        "SELECT campaign_id, {STEP_COLS} FROM campaign_steps
          WHERE campaign_id IN (SELECT campaign_id FROM campaign_enrolments WHERE id = ANY($1))
          ORDER BY campaign_id, position"
    );
    let steps = tx.query_typed(&steps_sql, p);
    let (rows, step_rows) = futures::future::try_join(lock, steps).await?;
    let mut by_campaign: std::collections::HashMap<String, Vec<Step>> = std::collections::HashMap::new();
    for r in &step_rows {
        by_campaign.entry(r.get("campaign_id")).or_default().push(step(r));
    }
    Ok(rows
        .iter()
        .map(|r| {
            let campaign: String = r.get("campaign_id");
            Work {
                enrolment: EnrolmentId::from_trusted(r.get("id")),
                steps: by_campaign.get(&campaign).cloned().unwrap_or_default(),
                campaign: CampaignId::from_trusted(campaign),
                contact: ContactId::from_trusted(r.get("contact_id")),
                status: enrolment_status(r),
                current_step: r.get("current_step"),
                campaign_status: r.get::<_, &str>("campaign_status").parse().unwrap_or(CampaignStatus::Draft),
                exit_on_meeting: r.get("exit_on_meeting"),
                sends_per_minute: r.get("sends_per_minute"),
            }
        })
        .collect())
}

/// [`lock_position`] for a batch, in id order: each enrolment's status and current step.
pub async fn lock_positions(tx: &Tx<'_>, ids: &[&EnrolmentId]) -> Result<Vec<(EnrolmentId, String, i32)>> {
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let rows = tx
        .query_typed(
            "SELECT id, status, current_step FROM campaign_enrolments WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows.iter().map(|r| (EnrolmentId::from_trusted(r.get(0)), r.get(1), r.get(2))).collect())
}

/// Locks an enrolment and answers its status and current step (one round trip).
pub async fn lock_position(tx: &Tx<'_>, id: &EnrolmentId) -> Result<Option<(String, i32)>> {
    let rows = tx
        .query_typed(
            "SELECT status, current_step FROM campaign_enrolments WHERE id = $1 FOR UPDATE",
            params![id.as_str() => TEXT],
        )
        .await?;
    Ok(rows.first().map(|r| (r.get(0), r.get(1))))
}

/// One attempt at a step.
#[derive(Debug, Clone)]
pub struct Execution<'a> {
    pub team: &'a TeamId,
    pub campaign: &'a CampaignId,
    pub enrolment: &'a EnrolmentId,
    pub step: Option<&'a StepId>,
    pub position: i32,
    pub status: &'a str,
    pub reason: Option<&'a str>,
    pub message: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Records an attempt; the attempt number is one more than the step's previous attempts.
pub async fn record_execution(tx: &Tx<'_>, x: &Execution<'_>) -> Result<i32> {
    let rows = tx
        .query_typed(
            "INSERT INTO campaign_executions (team_id, campaign_id, enrolment_id, step_id, step_position, attempt,
                                              status, reason, message_id, at)
             SELECT $1, $2, $3, $4, $5,
                    1 + (SELECT count(*) FROM campaign_executions WHERE enrolment_id = $3 AND step_position = $5),
                    $6, $7, $8, $9
             RETURNING attempt",
            params![x.team.as_str() => TEXT, x.campaign.as_str() => TEXT, x.enrolment.as_str() => TEXT,
                    x.step.map(|s| s.as_str()) => TEXT, x.position => INT4, x.status => TEXT, x.reason => TEXT,
                    x.message => TEXT, x.at => TIMESTAMPTZ],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(1))
}

/// How many attempts a step has had that did not send (deferrals excluded).
pub async fn failed_attempts(tx: &Tx<'_>, enrolment: &EnrolmentId, position: i32) -> Result<i64> {
    let rows = tx
        .query_typed(
            "SELECT count(*) FROM campaign_executions WHERE enrolment_id = $1 AND step_position = $2 AND status = 'failed'",
            params![enrolment.as_str() => TEXT, position => INT4],
        )
        .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}

/// Where an enrolment goes after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The step ran: on to `step`, due at `at`.
    Advance { step: i32, at: DateTime<Utc> },
    /// Try the same step again at `at`.
    Retry { at: DateTime<Utc> },
    /// The last step ran.
    Complete,
    /// Ended early (`exited` or `failed`) with a reason.
    End { status: &'static str, reason: String },
    /// Not processed (the campaign is not running): let the tick claim it again when due.
    Release,
}

pub async fn settle(tx: &Tx<'_>, enrolment: &EnrolmentId, next: &Next, now: DateTime<Utc>) -> Result<()> {
    let id = enrolment.as_str();
    match next {
        Next::Advance { step, at } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET current_step = $2, next_run_at = $3, last_run_at = $4,
                        claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, step => INT4, at => TIMESTAMPTZ, now => TIMESTAMPTZ],
            )
            .await?
        }
        Next::Retry { at } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET next_run_at = $2, claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, at => TIMESTAMPTZ],
            )
            .await?
        }
        Next::Complete => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET status = 'completed', last_run_at = $2, next_run_at = NULL,
                        claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT, now => TIMESTAMPTZ],
            )
            .await?
        }
        Next::End { status, reason } => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET status = $2, exit_reason = $3, next_run_at = NULL, claimed_until = NULL,
                        updated_at = now() WHERE id = $1",
                params![id => TEXT, status => TEXT, reason => TEXT],
            )
            .await?
        }
        Next::Release => {
            tx.query_typed(
                "UPDATE campaign_enrolments SET claimed_until = NULL, updated_at = now() WHERE id = $1",
                params![id => TEXT],
            )
            .await?
        }
    };
    Ok(())
}

// Stats -------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStats {
    pub step_id: StepId,
    pub position: i32,
    pub channel: Channel,
    /// Enrolments that reached this step.
    pub enrolled: i64,
    pub sent: i64,
    pub delivered: i64,
    /// Enrolments that ended on a reply after this step was their last send.
    pub replied: i64,
    pub opted_out: i64,
    /// Attempts that failed or were blocked by the outbound gate.
    pub failed: i64,
    /// For a step drawn from the opener library: each variant's share (a contact keeps the
    /// variant first drawn for it on every retry).
    pub variants: Vec<VariantStats>,
}

/// One A/B variant of a step: its sent messages and what their first replies were.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantStats {
    pub opener_id: String,
    /// Its label in the library (`A`, `B`...).
    pub variant: Option<String>,
    pub sent: i64,
    pub delivered: i64,
    /// Messages whose first reply came after them.
    pub replied: i64,
    /// Of those, positive (interested, a question, opted in).
    pub positive: i64,
    /// Of those, an opt-out.
    pub opted_out: i64,
}

pub async fn stats(tx: &Tx<'_>, campaign: &CampaignId) -> Result<Vec<StepStats>> {
    let rows = tx
        .query_typed(
            "SELECT s.id, s.position, s.channel,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.status <> 'removed'
                        AND (e.current_step >= s.position)) AS enrolled,
                    (SELECT count(*) FROM campaign_executions x WHERE x.campaign_id = $1
                        AND x.step_position = s.position AND x.status = 'sent') AS sent,
                    (SELECT count(*) FROM messages m WHERE m.step_id = s.id AND m.status = 'delivered') AS delivered,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.exit_reason = 'reply'
                        AND greatest(e.current_step - CASE WHEN e.last_run_at IS NULL THEN 0 ELSE 1 END, 1)
                            = s.position) AS replied,
                    (SELECT count(*) FROM campaign_enrolments e WHERE e.campaign_id = $1 AND e.exit_reason = 'opt_out'
                        AND greatest(e.current_step - CASE WHEN e.last_run_at IS NULL THEN 0 ELSE 1 END, 1)
                            = s.position) AS opted_out,
                    (SELECT count(*) FROM campaign_executions x WHERE x.campaign_id = $1
                        AND x.step_position = s.position AND x.status IN ('failed', 'blocked')) AS failed
               FROM campaign_steps s WHERE s.campaign_id = $1 ORDER BY s.position",
            params![campaign.as_str() => TEXT],
        )
        .await?;
    let variants = tx
        .query_typed(
            "SELECT m.step_id, m.opener_id, o.variant,
                    count(*) FILTER (WHERE m.status IN ('sent', 'delivered')) AS sent,
                    count(*) FILTER (WHERE m.status = 'delivered') AS delivered,
                    count(m.reply_class) AS replied,
                    count(*) FILTER (WHERE m.reply_class IN ('POSITIVE', 'QUESTION', 'OPT_IN')) AS positive,
                    count(*) FILTER (WHERE m.reply_class = 'DNC_REQUEST') AS opted_out
               FROM messages m LEFT JOIN ai_openers o ON o.id = m.opener_id
              WHERE m.campaign_id = $1 AND m.direction = 'outbound' AND m.opener_id IS NOT NULL
              GROUP BY m.step_id, m.opener_id, o.variant ORDER BY o.variant, m.opener_id",
            params![campaign.as_str() => TEXT],
        )
        .await?;
    let of_step = |step: &str| -> Vec<VariantStats> {
        variants
            .iter()
            .filter(|v| v.get::<_, Option<String>>("step_id").as_deref() == Some(step))
            .map(|v| VariantStats {
                opener_id: v.get("opener_id"),
                variant: v.get("variant"),
                sent: v.get("sent"),
                delivered: v.get("delivered"),
                replied: v.get("replied"),
                positive: v.get("positive"),
                opted_out: v.get("opted_out"),
            })
            .collect()
    };
    Ok(rows
        .iter()
        .map(|r| StepStats {
            variants: of_step(r.get("id")),
            step_id: StepId::from_trusted(r.get("id")),
            position: r.get("position"),
            channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
            enrolled: r.get("enrolled"),
            sent: r.get("sent"),
            delivered: r.get("delivered"),
            replied: r.get("replied"),
            opted_out: r.get("opted_out"),
            failed: r.get("failed"),
        })
        .collect())
}
