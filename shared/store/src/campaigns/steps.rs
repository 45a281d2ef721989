//! Steps: their content and order, and the merge fields a step may use.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    Sms,
    Email,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "SMS",
            Channel::Email => "EMAIL",
            Channel::Voice => "VOICE",
        }
    }

    pub fn parse(raw: &str) -> Option<Channel> {
        match raw {
            "SMS" => Some(Channel::Sms),
            "EMAIL" => Some(Channel::Email),
            "VOICE" => Some(Channel::Voice),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub id: StepId,
    pub position: i32,
    pub channel: Channel,
    pub delay: Delay,
    pub subject: Option<String>,
    pub body: String,
    pub template_id: Option<TemplateId>,
    /// Drawn from the opener library: the category, and its variants as they were when the
    /// step was written (a send picks one by weight).
    pub opener_category: Option<String>,
    pub variants: Vec<crate::openers::Variant>,
}

impl Step {
    /// Every text a send of this step may use, with the field it is in (`body`, `subject`,
    /// `variants[i].body`).
    pub fn texts(&self) -> Vec<(String, &str)> {
        let mut out = vec![("body".to_owned(), self.body.as_str())];
        if let Some(s) = &self.subject {
            out.push(("subject".to_owned(), s.as_str()));
        }
        for (i, v) in self.variants.iter().enumerate() {
            out.push((format!("variants[{i}].body"), v.body.as_str()));
        }
        out
    }

    /// Whether any of its texts names a field of the contact's property (so a send reads it).
    pub fn uses_property_fields(&self) -> bool {
        self.texts().iter().any(|(_, text)| {
            nextier_domain::template::Template::parse(text)
                .is_ok_and(|t| t.fields().iter().any(|f| nextier_domain::template::is_property_field(f)))
        })
    }

    /// The variant a send with this key uses: by weight, from a roll derived from the key,
    /// so a retried send picks the same one. `None` when the step has no variants.
    pub fn variant_for(&self, send_key: &str) -> Option<&crate::openers::Variant> {
        use sha2::Digest;
        let weights: Vec<u32> = self.variants.iter().map(|v| v.weight.max(0) as u32).collect();
        let hash = sha2::Sha256::digest(send_key.as_bytes());
        let n = u64::from_be_bytes([hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]]);
        let roll = (n >> 11) as f64 / (1u64 << 53) as f64;
        nextier_domain::ai::pick_weighted(&weights, roll).map(|i| &self.variants[i])
    }
}

/// A step's content, validated by the caller.
#[derive(Debug, Clone)]
pub struct StepContent {
    pub channel: Channel,
    pub delay: Delay,
    pub subject: Option<String>,
    pub body: String,
    pub template_id: Option<TemplateId>,
    pub opener_category: Option<String>,
    pub variants: Vec<crate::openers::Variant>,
}

fn delay_parts(d: Delay) -> (&'static str, i32) {
    let (unit, n) = match d {
        Delay::Minutes(n) => ("minutes", n),
        Delay::Hours(n) => ("hours", n),
        Delay::Days(n) => ("days", n),
        Delay::BusinessDays(n) => ("business_days", n),
    };
    (unit, n as i32)
}

fn delay_from(unit: &str, n: i32) -> Delay {
    let n = n.max(0) as u32;
    match unit {
        "minutes" => Delay::Minutes(n),
        "hours" => Delay::Hours(n),
        "business_days" => Delay::BusinessDays(n),
        _ => Delay::Days(n),
    }
}

pub(super) fn step(r: &Row) -> Step {
    Step {
        id: StepId::from_trusted(r.get("id")),
        position: r.get("position"),
        channel: Channel::parse(r.get("channel")).unwrap_or(Channel::Sms),
        delay: delay_from(r.get("delay_unit"), r.get("delay_amount")),
        subject: r.get("subject"),
        body: r.get("body"),
        template_id: r.get::<_, Option<String>>("template_id").map(TemplateId::from_trusted),
        opener_category: r.get("opener_category"),
        variants: serde_json::from_value(r.get("variants")).unwrap_or_default(),
    }
}

pub(super) const STEP_COLS: &str =
    "id, position, channel, delay_unit, delay_amount, subject, body, template_id, opener_category, variants";

pub async fn steps(tx: &Tx<'_>, campaign: &CampaignId) -> Result<Vec<Step>> {
    let rows = tx
        .query_typed(
            &format!("SELECT {STEP_COLS} FROM campaign_steps WHERE campaign_id = $1 ORDER BY position"),
            params![campaign.as_str() => TEXT],
        )
        .await?;
    Ok(rows.iter().map(step).collect())
}

/// Inserts a step at `position` (1-based; past the end appends), shifting later steps down.
pub async fn insert_step(
    tx: &Tx<'_>,
    team: &TeamId,
    campaign: &CampaignId,
    position: Option<i32>,
    c: &StepContent,
) -> Result<Step> {
    let id = StepId::new();
    let (unit, n) = delay_parts(c.delay);
    let rows = tx
        .query_typed(
            &format!(
                "WITH n AS (SELECT count(*)::int AS steps FROM campaign_steps WHERE campaign_id = $2),
                      pos AS (SELECT least(greatest(coalesce($3, steps + 1), 1), steps + 1) AS p FROM n),
                      shifted AS (UPDATE campaign_steps SET position = position + 1, updated_at = now()
                                   WHERE campaign_id = $2 AND position >= (SELECT p FROM pos) RETURNING 1)
                 INSERT INTO campaign_steps (id, team_id, campaign_id, position, channel, delay_unit, delay_amount,
                                             subject, body, template_id, opener_category, variants)
                 SELECT $1, $4, $2, p, $5, $6, $7, $8, $9, $10, $11, $12 FROM pos
                 RETURNING {STEP_COLS}"
            ),
            params![id.as_str() => TEXT, campaign.as_str() => TEXT, position => INT4, team.as_str() => TEXT,
                    c.channel.as_str() => TEXT, unit => TEXT, n => INT4, c.subject => TEXT, c.body => TEXT,
                    c.template_id.as_ref().map(|t| t.as_str()) => TEXT, c.opener_category => TEXT,
                    serde_json::to_value(&c.variants).unwrap_or_default() => JSONB],
        )
        .await?;
    rows.first().map(step).ok_or(StoreError::NotFound)
}

pub async fn update_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId, c: &StepContent) -> Result<Step> {
    let (unit, n) = delay_parts(c.delay);
    let rows = tx
        .query_typed(
            &format!(
                "UPDATE campaign_steps SET channel = $3, delay_unit = $4, delay_amount = $5, subject = $6, body = $7,
                        template_id = $8, opener_category = $9, variants = $10, updated_at = now()
                  WHERE campaign_id = $1 AND id = $2 RETURNING {STEP_COLS}"
            ),
            params![campaign.as_str() => TEXT, id.as_str() => TEXT, c.channel.as_str() => TEXT, unit => TEXT, n => INT4,
                    c.subject => TEXT, c.body => TEXT, c.template_id.as_ref().map(|t| t.as_str()) => TEXT,
                    c.opener_category => TEXT, serde_json::to_value(&c.variants).unwrap_or_default() => JSONB],
        )
        .await?;
    rows.first().map(step).ok_or(StoreError::NotFound)
}

/// Moves a step to a new position, shifting the ones between.
pub async fn move_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId, to: i32) -> Result<()> {
    let rows = tx
        .query_typed(
            "WITH cur AS (SELECT position AS p, (SELECT count(*)::int FROM campaign_steps WHERE campaign_id = $1) AS n
                            FROM campaign_steps WHERE campaign_id = $1 AND id = $2),
                  tgt AS (SELECT p, least(greatest($3, 1), n) AS t FROM cur)
             UPDATE campaign_steps s
                SET position = CASE WHEN s.id = $2 THEN tgt.t
                                    WHEN tgt.t < tgt.p THEN s.position + 1
                                    ELSE s.position - 1 END,
                    updated_at = now()
               FROM tgt
              WHERE s.campaign_id = $1
                AND (s.id = $2 OR s.position BETWEEN least(tgt.p, tgt.t) AND greatest(tgt.p, tgt.t))
             RETURNING 1",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT, to => INT4],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn delete_step(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId) -> Result<()> {
    let rows = tx
        .query_typed(
            "WITH gone AS (DELETE FROM campaign_steps WHERE campaign_id = $1 AND id = $2 RETURNING position)
             UPDATE campaign_steps s SET position = s.position - 1, updated_at = now()
               FROM gone WHERE s.campaign_id = $1 AND s.position > gone.position
             RETURNING 1",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?;
    // The UPDATE returns nothing when the last step was deleted; check the step is gone.
    let _ = rows;
    let still = tx.query_typed("SELECT 1 FROM campaign_steps WHERE id = $1", params![id.as_str() => TEXT]).await?;
    if !still.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub async fn step_exists(tx: &Tx<'_>, campaign: &CampaignId, id: &StepId) -> Result<bool> {
    Ok(!tx
        .query_typed(
            "SELECT 1 FROM campaign_steps WHERE campaign_id = $1 AND id = $2",
            params![campaign.as_str() => TEXT, id.as_str() => TEXT],
        )
        .await?
        .is_empty())
}

// Merge fields ------------------------------------------------------------------------

/// What the property merge fields say of a contact's property
/// (`nextier_domain::template::PROPERTY_FIELDS`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeProperty {
    pub line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub estimated_value: Option<i64>,
    pub estimated_equity: Option<i64>,
    pub equity_percent: Option<f64>,
    pub distress_score: Option<i32>,
}

/// The contact's property, over `contacts c`: the one they own with the highest distress
/// score, the most recently linked on a tie. Staging's count and a send's render agree on it.
const PRIMARY_PROPERTY: &str = "FROM property_owners o JOIN properties p ON p.id = o.property_id
      LEFT JOIN property_distress_scores d ON d.property_id = p.id
     WHERE o.contact_id = c.id ORDER BY d.score DESC NULLS LAST, o.linked_at DESC, p.id LIMIT 1";

fn primary_property(col: &str) -> String {
    format!("(SELECT {col} {PRIMARY_PROPERTY})")
}

/// The merge values of each contact's property (absent: they own none), in one query.
pub async fn merge_properties(
    tx: &Tx<'_>,
    contacts: &[ContactId],
) -> Result<std::collections::HashMap<ContactId, MergeProperty>> {
    if contacts.is_empty() {
        return Ok(Default::default());
    }
    let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
    let rows = tx
        .query_typed(
            &format!(
                "SELECT c.id, x.* FROM contacts c,
                   LATERAL (SELECT p.line1, p.city, p.state::text AS state, p.zip, p.estimated_value,
                                   p.estimated_equity, p.equity_percent::float8 AS equity_percent, d.score
                            {PRIMARY_PROPERTY}) x
                  WHERE c.id = ANY($1)"
            ),
            params![ids => TEXT_ARRAY],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                ContactId::from_trusted(r.get::<_, String>(0)),
                MergeProperty {
                    line1: r.get(1),
                    city: r.get(2),
                    state: r.get(3),
                    zip: r.get(4),
                    estimated_value: r.get(5),
                    estimated_equity: r.get(6),
                    equity_percent: r.get(7),
                    distress_score: r.get(8),
                },
            )
        })
        .collect())
}

/// A merge field's value for a contact (and their property, if they own one), as a send
/// renders it.
pub fn merge_value(c: &Contact, property: Option<&MergeProperty>, field: &str) -> Option<String> {
    use nextier_domain::template::dollars;
    if nextier_domain::template::is_property_field(field) {
        let p = property?;
        return match field {
            "propertyAddress" => p.line1.clone(),
            "propertyCity" => p.city.clone(),
            "propertyState" => p.state.clone(),
            "propertyZip" => p.zip.clone(),
            "equity" => p.estimated_equity.map(dollars),
            "equityPercent" => p.equity_percent.filter(|v| v.is_finite()).map(|v| format!("{}%", v.round() as i64)),
            "estimatedValue" => p.estimated_value.map(dollars),
            "distressScore" => p.distress_score.map(|v| v.to_string()),
            _ => None,
        };
    }
    let addr = c.addresses.first();
    match field {
        "firstName" => c.first_name.clone(),
        "lastName" => c.last_name.clone(),
        "fullName" => {
            let full = [c.first_name.as_deref(), c.last_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|s| !s.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Some(full)
        }
        "company" => c.company.clone(),
        "title" => c.title.clone(),
        "city" => addr.and_then(|a| a.city.clone()),
        "state" => addr.and_then(|a| a.state.clone()),
        "zip" => addr.and_then(|a| a.zip.clone()),
        "email" => c.emails.first().map(|e| e.email.clone()),
        "phone" => c.phones.first().map(|p| p.e164.clone()),
        other => other.strip_prefix("custom.").and_then(|k| match c.custom_fields.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(v) => Some(v.to_string()),
        }),
    }
}

/// The same value as SQL over `contacts c` (used to count who lacks it before staging).
/// Field names are validated by the template parser; custom keys are `[A-Za-z0-9_-]`.
fn merge_sql(field: &str) -> String {
    let addr = |col: &str| {
        format!("(SELECT a.{col} FROM contact_addresses a WHERE a.contact_id = c.id ORDER BY a.is_current DESC, a.id LIMIT 1)")
    };
    match field {
        "propertyAddress" => primary_property("p.line1"),
        "propertyCity" => primary_property("p.city"),
        "propertyState" => primary_property("p.state"),
        "propertyZip" => primary_property("p.zip"),
        "equity" => primary_property("p.estimated_equity"),
        "equityPercent" => primary_property("p.equity_percent"),
        "estimatedValue" => primary_property("p.estimated_value"),
        "distressScore" => primary_property("d.score"),
        "firstName" => "c.first_name".into(),
        "lastName" => "c.last_name".into(),
        "fullName" => "concat_ws(' ', nullif(btrim(c.first_name), ''), nullif(btrim(c.last_name), ''))".into(),
        "company" => "c.company".into(),
        "title" => "c.title".into(),
        "city" => addr("city"),
        "state" => addr("state"),
        "zip" => addr("zip"),
        "email" => {
            "(SELECT e.email FROM contact_emails e WHERE e.contact_id = c.id ORDER BY e.is_primary DESC, e.id LIMIT 1)"
                .into()
        }
        "phone" => {
            "(SELECT p.e164 FROM contact_phones p WHERE p.contact_id = c.id ORDER BY p.is_primary DESC, p.id LIMIT 1)"
                .into()
        }
        other => {
            let key: String = other
                .strip_prefix("custom.")
                .unwrap_or("")
                .chars()
                .filter(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-'))
                .collect();
            format!("(c.custom_fields ->> '{key}')")
        }
    }
}

pub(super) fn missing_sql(field: &str) -> String {
    format!("coalesce(btrim({}::text), '') = ''", merge_sql(field))
}

/// For each field, how many active enrolments of the campaign lack a value.
pub async fn count_missing(tx: &Tx<'_>, campaign: &CampaignId, fields: &[&str]) -> Result<Vec<(String, i64)>> {
    if fields.is_empty() {
        return Ok(vec![]);
    }
    let cols: Vec<String> = fields.iter().map(|f| format!("count(*) FILTER (WHERE {})", missing_sql(f))).collect();
    let sql = format!(
        "SELECT {} FROM campaign_enrolments en JOIN contacts c ON c.id = en.contact_id
          WHERE en.campaign_id = $1 AND en.status = 'active'",
        cols.join(", ")
    );
    let row = tx.query_typed(&sql, params![campaign.as_str() => TEXT]).await?;
    let row = row.first().ok_or(StoreError::NotFound)?;
    Ok(fields.iter().enumerate().map(|(i, f)| ((*f).to_owned(), row.get::<_, i64>(i))).collect())
}
