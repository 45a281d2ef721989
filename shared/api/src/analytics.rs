//! Analytics for the UI (on api-campaigns), read from the hourly counters the database keeps as
//! things happen (migration 0030): outreach per day, campaign and sending number, and first
//! responses to the inbox per bucket and person, over a date range in a time zone.

use axum::extract::{Query, State};
use axum::Json;
use chrono::{NaiveDate, TimeZone};
use nextier_domain::access::Permission;
use nextier_domain::ids::TeamId;
use nextier_http::{open_team, ApiError, Credential, Id};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(outreach_stats)).routes(routes!(response_stats))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    /// The first day, `YYYY-MM-DD` (30 days before `to` by default).
    from: Option<String>,
    /// The last day, included (today by default).
    to: Option<String>,
    /// The zone whose days these are (`America/New_York` by default).
    time_zone: Option<String>,
    /// `day` (default), `campaign`, `number` or `campaign,number`... : what each row is for
    /// (always per day).
    by: Option<String>,
}

struct Range {
    zone: chrono_tz::Tz,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
}

fn range(q: &RangeQuery) -> Result<Range, ApiError> {
    let mut problems = Vec::new();
    let zone: chrono_tz::Tz = match q.time_zone.as_deref() {
        None => chrono_tz::America::New_York,
        Some(z) => z.trim().parse().unwrap_or_else(|_| {
            problems.push(nextier_domain::FieldError::new("timeZone", "an IANA time zone like America/Chicago"));
            chrono_tz::UTC
        }),
    };
    let day = |field: &str, v: Option<&str>, problems: &mut Vec<nextier_domain::FieldError>| {
        v.and_then(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| problems.push(nextier_domain::FieldError::new(field, "a day as YYYY-MM-DD")))
                .ok()
        })
    };
    let today = chrono::Utc::now().with_timezone(&zone).date_naive();
    let to = day("to", q.to.as_deref(), &mut problems).unwrap_or(today);
    let from = day("from", q.from.as_deref(), &mut problems).unwrap_or(to - chrono::Duration::days(30));
    if from > to {
        problems.push(nextier_domain::FieldError::new("from", "must not be after `to`"));
    } else if (to - from).num_days() > 366 {
        problems.push(nextier_domain::FieldError::new("from", "a range of at most 366 days"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let midnight = |d: NaiveDate| {
        zone.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()))
    };
    Ok(Range { zone, start: midnight(from), end: midnight(to + chrono::Duration::days(1)) })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutreachRow {
    pub day: NaiveDate,
    /// Present when grouped by campaign (empty: not from a campaign).
    pub campaign_id: Option<String>,
    /// Present when grouped by number.
    pub sending_number: Option<String>,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub replied: i64,
    pub positive: i64,
    pub opted_out: i64,
    pub hot: i64,
    pub booked: i64,
}

/// Outreach per day (in `timeZone`), and by campaign and/or sending number when asked: sent,
/// delivered, failed, replied, positive, opted out, hot, booked.
#[utoipa::path(get, path = "/teams/{teamId}/analytics/outreach", tag = "campaigns",
    params(("teamId" = String, Path), RangeQuery),
    responses((status = 200, description = "Rows by day (and campaign and number when asked)", body = Vec<OutreachRow>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn outreach_stats(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<OutreachRow>>, ApiError> {
    let r = range(&q)?;
    let by: Vec<String> = q.by.as_deref().unwrap_or("day").split(',').map(|s| s.trim().to_owned()).collect();
    if let Some(bad) = by.iter().find(|b| !["day", "campaign", "number"].contains(&b.as_str())) {
        return Err(ApiError::field("by", &format!("{bad:?} is not day, campaign or number")));
    }
    let (campaign, number) = (by.iter().any(|b| b == "campaign"), by.iter().any(|b| b == "number"));
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::CampaignsRead).await?;
    let rows = tx
        .query(
            "SELECT (s.hour AT TIME ZONE $3)::date AS day,
                    CASE WHEN $4 THEN s.campaign_id END AS campaign_id,
                    CASE WHEN $5 THEN s.sending_number END AS sending_number,
                    sum(s.sent)::int8, sum(s.delivered)::int8, sum(s.failed)::int8, sum(s.replied)::int8,
                    sum(s.positive)::int8, sum(s.opted_out)::int8, sum(s.hot)::int8, sum(s.booked)::int8
               FROM stats_hourly s WHERE s.hour >= $1 AND s.hour < $2
              GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            &[&r.start, &r.end, &r.zone.name(), &campaign, &number],
        )
        .await
        .map_err(StoreError::from)?;
    tx.commit().await?;
    Ok(Json(
        rows.iter()
            .map(|x| OutreachRow {
                day: x.get(0),
                campaign_id: x.get(1),
                sending_number: x.get(2),
                sent: x.get(3),
                delivered: x.get(4),
                failed: x.get(5),
                replied: x.get(6),
                positive: x.get(7),
                opted_out: x.get(8),
                hot: x.get(9),
                booked: x.get(10),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseRow {
    /// The inbox bucket, or the person (`usr_…`, `key:…`), as `group` says.
    pub key: String,
    /// `bucket` or `person`.
    pub group: String,
    pub responded: i64,
    /// Of those, within the bucket's SLA.
    pub within_sla: i64,
    /// The average time from the reply to the first response.
    pub average_seconds: f64,
}

/// First responses to inbox items over the range: per bucket and per person, how many, how
/// many within the SLA, and the average time to respond.
#[utoipa::path(get, path = "/teams/{teamId}/analytics/response-times", tag = "inbox",
    params(("teamId" = String, Path), RangeQuery),
    responses((status = 200, description = "Per bucket, then per person", body = Vec<ResponseRow>)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn response_stats(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<ResponseRow>>, ApiError> {
    let r = range(&q)?;
    let mut conn = app.db.conn().await?;
    let (tx, _) = open_team(&mut conn, &cred, &team, Permission::InboxRead).await?;
    let rows = tx
        .query(
            "SELECT g, k, sum(responded)::int8, sum(within_sla)::int8, sum(seconds_total)::float8 / greatest(sum(responded), 1)
               FROM (SELECT 'bucket' AS g, bucket AS k, responded, within_sla, seconds_total FROM response_stats_hourly
                      WHERE hour >= $1 AND hour < $2
                     UNION ALL
                     SELECT 'person', responder, responded, within_sla, seconds_total FROM response_stats_hourly
                      WHERE hour >= $1 AND hour < $2) x
              GROUP BY g, k ORDER BY g, k",
            &[&r.start, &r.end],
        )
        .await
        .map_err(StoreError::from)?;
    tx.commit().await?;
    Ok(Json(
        rows.iter()
            .map(|x| ResponseRow {
                group: x.get(0),
                key: x.get(1),
                responded: x.get(2),
                within_sla: x.get(3),
                average_seconds: x.get(4),
            })
            .collect(),
    ))
}
