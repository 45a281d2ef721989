//! The invocation's deadline, so that no provider or LLM call outlives the Lambda that made
//! it. A handler runs inside [`within`] (with the deadline Lambda gives in its context, or the
//! local runtime's visibility timeout); provider clients ask [`remaining`] before each attempt
//! and cap their timeout by it. Outside any deadline, calls keep their own timeouts.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kept back for recording the outcome after the last call returns.
pub const MARGIN: Duration = Duration::from_millis(1500);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `f` with `deadline` as the invocation's deadline.
pub async fn within<F: Future>(deadline: Option<Instant>, f: F) -> F::Output {
    match deadline {
        Some(d) => DEADLINE.scope(d, f).await,
        None => f.await,
    }
}

/// The instant of a Lambda context's deadline (milliseconds since the Unix epoch).
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Time left for outside calls (the deadline less [`MARGIN`]); `None` outside any deadline.
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|d| d.saturating_duration_since(Instant::now()).saturating_sub(MARGIN)).ok()
}

/// A call's timeout: its own, capped by what is left of the invocation.
pub fn cap(own: Duration) -> Duration {
    remaining().map_or(own, |left| own.min(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_capped_by_the_invocations_deadline() {
        assert_eq!(cap(Duration::from_secs(10)), Duration::from_secs(10), "no deadline: the call's own");
        let in_5s = Instant::now() + Duration::from_secs(5);
        within(Some(in_5s), async {
            let c = cap(Duration::from_secs(10));
            assert!(c <= Duration::from_secs(5) - MARGIN && c > Duration::from_secs(3), "{c:?}");
            assert_eq!(cap(Duration::from_secs(1)), Duration::from_secs(1));
        })
        .await;
        let past = Instant::now() - Duration::from_secs(1);
        within(Some(past), async { assert_eq!(remaining(), Some(Duration::ZERO)) }).await;
    }

    #[test]
    fn a_lambda_deadline_in_epoch_millis_becomes_an_instant() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let d = from_epoch_millis(now_ms + 30_000);
        let left = d.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30), "{left:?}");
    }
}
