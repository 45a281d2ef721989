//! The team's live feed: `GET /teams/{teamId}/events?cursor=` long-polls an ordered, gap-free
//! log of what happened in the team (new replies, inbox moves, import progress, campaign
//! state...). Each answer carries the cursor to ask with next; an empty answer after the wait
//! still moves it. Each event is shown only to a reader who may read what it is about
//! ([`nextier_domain::access::feed_permission`]).

use std::time::Duration;

use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use nextier_domain::access::{feed_permission, Permission};
use nextier_domain::ids::TeamId;
use nextier_http::{open_team, ApiError, Credential, Id};
use nextier_store::feed::{self, FeedEvent, Position};
use nextier_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The longest a poll waits for an event (API Gateway answers within 30 seconds).
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(200);
const MAX_LIMIT: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(team_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct FeedQuery {
    /// Where the last answer left off; without it, the feed starts now.
    cursor: Option<String>,
    /// Seconds to wait for an event when there is none yet: 0 to 20 (20 by default).
    wait: Option<String>,
    /// At most this many events (1 to 500, 100 by default).
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feed {
    /// In the order they happened.
    pub events: Vec<FeedEvent>,
    /// Ask with this next.
    pub cursor: String,
}

/// A cursor: the team, the position, and when the position was taken (it expires with the
/// events it points between).
fn encode(team: &TeamId, p: Position, at: i64) -> String {
    let raw = format!("v1|{team}|{}|{}|{at}", p.xid, p.seq);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode(team: &TeamId, cursor: &str) -> Result<Position, ApiError> {
    let bad = || ApiError::field("cursor", "not a cursor this feed gave out");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let parts: Vec<&str> = raw.split('|').collect();
    let ["v1", t, xid, seq, at] = parts.as_slice() else { return Err(bad()) };
    if *t != team.as_str() {
        return Err(ApiError::field("cursor", "the cursor belongs to another team's feed"));
    }
    let (Ok(xid), Ok(seq), Ok(at)) = (xid.parse::<i64>(), seq.parse::<i64>(), at.parse::<i64>()) else {
        return Err(bad());
    };
    if xid < 0 || seq < 0 {
        return Err(bad());
    }
    let age = Utc::now().timestamp().checked_sub(at).ok_or_else(bad)?;
    if age < -300 {
        return Err(bad());
    }
    if age > i64::from(feed::KEEP_DAYS) * 86_400 {
        return Err(ApiError::Gone(format!(
            "the cursor is older than the {} days the feed keeps; start again without one",
            feed::KEEP_DAYS
        )));
    }
    Ok(Position { xid, seq })
}

fn number(field: &str, v: Option<&str>, range: std::ops::RangeInclusive<i64>, default: i64) -> Result<i64, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s.trim().parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            ApiError::field(field, &format!("a whole number from {} to {}", range.start(), range.end()))
        }),
    }
}

/// The team's live feed (long polling): the events after `cursor`, waiting up to `wait`
/// seconds for one. Events appear in the order their transactions began, never with a gap: an
/// event is shown once nothing that could come before it is still being written. A cursor of
/// another team is refused (400); one older than the feed keeps (seven days) is gone (410).
#[utoipa::path(get, path = "/teams/{teamId}/events", tag = "admin",
    params(("teamId" = String, Path), FeedQuery),
    responses((status = 200, description = "New events and the next cursor", body = Feed),
              (status = 400, description = "A cursor this feed did not give out, or of another team"),
              (status = 410, description = "The cursor expired")),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn team_events(
    State(app): State<AppState>,
    cred: Credential,
    Id(team): Id<TeamId>,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Feed>, ApiError> {
    let wait = Duration::from_secs(number("wait", q.wait.as_deref(), 0..=MAX_WAIT.as_secs() as i64, 20)? as u64);
    let limit = number("limit", q.limit.as_deref(), 1..=MAX_LIMIT, 100)?;
    let from = q.cursor.as_deref().map(|c| decode(&team, c)).transpose()?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut from = from;
    loop {
        // A connection per look, returned while waiting: fifty waiting readers hold none.
        let (events, next) = {
            let mut conn = app.db.conn().await?;
            let (tx, access) = open_team(&mut conn, &cred, &team, Permission::TeamRead).await?;
            let start = match from {
                Some(p) => p,
                None => feed::head(&tx).await?,
            };
            let rows = feed::after(&tx, &team, start, limit).await?;
            tx.commit().await.map_err(StoreError::from)?;
            let next = rows.last().map(|e| e.position).unwrap_or(start);
            let shown: Vec<FeedEvent> =
                rows.into_iter().filter(|e| access.authority.allows(feed_permission(&e.kind))).collect();
            (shown, next)
        };
        from = Some(next);
        if !events.is_empty() || tokio::time::Instant::now() + POLL_EVERY > deadline {
            return Ok(Json(Feed { events, cursor: encode(&team, next, Utc::now().timestamp()) }));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
