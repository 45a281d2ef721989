use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// Closed-loop load: `concurrency` keep-alive connections, each sending the next request as
/// soon as the last answered, for `duration` (bounded; loopback only).
pub async fn run(url: &str, token: Option<&str>, concurrency: usize, duration: Duration) -> anyhow::Result<Load> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url: hyper::Uri = url.parse()?;
        let auth = token.map(|t| format!("Bearer {t}"));
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let mut req = hyper::Request::get(url.clone());
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let started = Instant::now();
                match client.request(req.body(Empty::new()).expect("request")).await {
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
