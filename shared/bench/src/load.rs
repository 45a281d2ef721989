use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// Closed-loop load: `concurrency` keep-alive connections, each sending the next request as
/// soon as the last answered, for `duration` (bounded; loopback only). `make` builds request
/// number `n` (so each may differ: a new signed delivery, say).
pub async fn run_with<F>(concurrency: usize, duration: Duration, make: F) -> anyhow::Result<Load>
where
    F: Fn(u64) -> hyper::Request<Full<Bytes>> + Send + Sync + 'static,
{
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + duration;
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, make, counter) = (client.clone(), make.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let req = make(counter.fetch_add(1, Ordering::Relaxed));
                let started = Instant::now();
                match client.request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.into_body().collect().await;
                        if ok {
                            lat.push(started.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await?;
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    Ok(Load { rps: all.len() as f64 / duration.as_secs_f64(), p50_ms: pct(0.50), p99_ms: pct(0.99), errors })
}

/// GETs of one URL, with a bearer token when given.
pub async fn run(url: &str, token: Option<&str>, concurrency: usize, duration: Duration) -> anyhow::Result<Load> {
    let url: hyper::Uri = url.parse()?;
    let auth = token.map(|t| format!("Bearer {t}"));
    run_with(concurrency, duration, move |_| {
        let mut req = hyper::Request::get(url.clone());
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        req.body(Full::new(Bytes::new())).expect("request")
    })
    .await
}
