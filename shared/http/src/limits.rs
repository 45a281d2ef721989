//! Fair tenants at the API (the audit's GAP 5, the API half): every request a team member or
//! API key is allowed to make takes a token from its team's bucket, and a key's request from
//! the key's own bucket too, on the same limiter as the texts (DynamoDB deployed, Postgres
//! locally). Over either, the answer is 429 with `Retry-After` and nothing else happens: the
//! token is taken after the caller is known to be allowed and before the handler runs, so a
//! stranger or a forbidden call spends nobody's budget.
//!
//! Limits come from the team's settings (scope `api`): `requests_per_minute` (default 600)
//! and `key_requests_per_minute` (default 300, per key), each with a burst of ten seconds'
//! worth. They are read once a minute per team and process. If the limiter cannot answer, the
//! request goes ahead (logged): an outage of the limiter must not take the API down.
//!
//! Installed once per process ([`install`]); without it (some tests), nothing is limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use nextier_domain::access::Authority;
use nextier_domain::ids::TeamId;
use nextier_domain::rate::{Bucket, Limit, Take};
use nextier_platform::ports::clock::Clock;
use nextier_platform::RateLimiter;

use crate::access::{Actor, TeamAccess};
use crate::ApiError;

pub const SETTINGS_SCOPE: &str = "api";
pub const TEAM_SETTING: &str = "requests_per_minute";
pub const KEY_SETTING: &str = "key_requests_per_minute";
pub const DEFAULT_TEAM_PER_MINUTE: u32 = 600;
pub const DEFAULT_KEY_PER_MINUTE: u32 = 300;
/// How long a team's limits are kept before they are read again.
const REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamLimits {
    pub team_per_minute: u32,
    pub key_per_minute: u32,
}

impl TeamLimits {
    /// From the team's `api` settings; a missing or unreadable value is the default (1 to
    /// 100,000 a minute).
    pub fn from_settings(s: &HashMap<String, String>) -> Self {
        let read = |name: &str, default: u32| {
            s.get(name)
                .and_then(|v| v.trim().parse::<u32>().ok())
                .filter(|n| (1..=100_000).contains(n))
                .unwrap_or(default)
        };
        TeamLimits {
            team_per_minute: read(TEAM_SETTING, DEFAULT_TEAM_PER_MINUTE),
            key_per_minute: read(KEY_SETTING, DEFAULT_KEY_PER_MINUTE),
        }
    }
}

fn limit(per_minute: u32) -> Limit {
    Limit::per_minute(per_minute, (per_minute / 6).max(1))
}

struct Limits {
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    known: Mutex<HashMap<TeamId, (TeamLimits, Instant)>>,
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Limits every team request of this process from now on.
pub fn install(limiter: Arc<dyn RateLimiter>, clock: Arc<dyn Clock>) {
    let _ = LIMITS.set(Limits { limiter, clock, known: Mutex::new(HashMap::new()) });
}

/// Takes the request's tokens, or answers 429.
pub(crate) async fn check(tx: &Transaction<'_>, access: &TeamAccess) -> Result<(), ApiError> {
    let Some(l) = LIMITS.get() else { return Ok(()) };
    let cached = l.known.lock().unwrap_or_else(|p| p.into_inner()).get(&access.team).copied();
    let limits = match cached {
        Some((limits, at)) if at.elapsed() < REFRESH => limits,
        _ => {
            let s = nextier_store::settings::strings_in(tx, SETTINGS_SCOPE).await?;
            let limits = TeamLimits::from_settings(&s);
            l.known.lock().unwrap_or_else(|p| p.into_inner()).insert(access.team.clone(), (limits, Instant::now()));
            limits
        }
    };
    let mut buckets = vec![Bucket::new(format!("api:team:{}", access.team), limit(limits.team_per_minute))];
    if let (Actor::Key(key), Authority::Key(_)) = (&access.actor, &access.authority) {
        buckets.push(Bucket::new(format!("api:key:{key}"), limit(limits.key_per_minute)));
    }
    let now = l.clock.now();
    match l.limiter.take(&buckets, 1, now).await {
        Ok(Take::Granted) => Ok(()),
        Ok(Take::Refused { retry_at, bucket }) => {
            let secs = (retry_at - now).num_milliseconds().max(0) as u64;
            let (whose, per_minute) = if bucket.starts_with("api:key:") {
                ("this API key's", limits.key_per_minute)
            } else {
                ("the team's", limits.team_per_minute)
            };
            Err(ApiError::TooManyRequests {
                detail: format!("{whose} API limit ({per_minute} requests a minute) is used up; retry later"),
                retry_after_secs: secs.div_ceil(1000).max(1),
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "the API limiter did not answer; the request goes ahead");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_settings_with_sane_defaults() {
        let s = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(TeamLimits::from_settings(&s(&[])), TeamLimits { team_per_minute: 600, key_per_minute: 300 });
        assert_eq!(
            TeamLimits::from_settings(&s(&[("requests_per_minute", " 60 "), ("key_requests_per_minute", "6")])),
            TeamLimits { team_per_minute: 60, key_per_minute: 6 }
        );
        // Nonsense and zero are the defaults, not "unlimited" or "nothing".
        assert_eq!(
            TeamLimits::from_settings(&s(&[("requests_per_minute", "0"), ("key_requests_per_minute", "lots")])),
            TeamLimits { team_per_minute: 600, key_per_minute: 300 }
        );
    }
}
