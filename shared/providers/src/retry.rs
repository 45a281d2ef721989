//! One retry policy for every provider: timeouts, 408, 429 and 5xx are retried with
//! exponential backoff that honours `Retry-After`; 401 and 403 are a configuration fault
//! ([`TransportError::Config`]) for every provider client; any other answer is returned as it is.

use std::time::Duration;

use nextier_outbound::TransportError;

#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 3, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(10) }
    }
}

/// An attempt is not started with less than this left of the invocation.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(500);

/// A final answer: status, body.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Sends the request `build` makes, retrying what is worth retrying.
pub async fn send<F>(policy: &Retry, provider: &str, build: F) -> Result<Answer, TransportError>
where
    F: Fn() -> reqwest::RequestBuilder,
{
    let mut backoff = policy.backoff;
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        // No call outlives the invocation: each attempt gets at most what is left of it.
        let left = nextier_runtime::deadline::remaining();
        if left.is_some_and(|l| l < MIN_ATTEMPT) {
            last = if last.is_empty() { "no time left in this invocation".into() } else { last };
            break;
        }
        let sent = match left {
            Some(l) => tokio::time::timeout(l, build().send()).await.map_err(|_| "timed out (end of invocation)"),
            None => Ok(build().send().await),
        };
        let wait = match sent {
            Err(why) => {
                last = why.into();
                backoff
            }
            Ok(Err(e)) => {
                last = if e.is_timeout() { "timed out".into() } else { format!("unreachable: {e}") };
                backoff
            }
            Ok(Ok(resp)) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.text().await.unwrap_or_default();
                if status.as_u16() == 401 || status.as_u16() == 403 {
                    // Our credentials or account: retrying now cannot help, and it is not the
                    // message's fault either.
                    return Err(TransportError::Config(format!(
                        "HTTP {status}: {}",
                        body.chars().take(300).collect::<String>()
                    )));
                }
                if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                    last = format!("HTTP {status}: {body}");
                    retry_after(&headers).unwrap_or(backoff).min(policy.max_backoff)
                } else {
                    return Ok(Answer { status, headers, body });
                }
            }
        };
        tracing::warn!(provider, attempt, error = %last, "provider call will be retried");
        if attempt < policy.attempts {
            if nextier_runtime::deadline::remaining().is_some_and(|l| l < wait + MIN_ATTEMPT) {
                break;
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }
    Err(TransportError::Retryable(last))
}
