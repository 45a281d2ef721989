//! The skip-trace port: starts a bulk trace whose results the provider posts back
//! (RealEstateAPI deployed, `nextier_providers::realestate`; [`SandboxSkipTracer`] locally).

use std::sync::Mutex;

use async_trait::async_trait;

/// One contact to trace; `key` is our contact id, echoed back with its results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceInput {
    pub key: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[async_trait]
pub trait SkipTracer: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts a bulk trace whose results the provider posts to `webhook_url`; the provider's
    /// job id.
    async fn bulk(&self, inputs: &[TraceInput], webhook_url: &str) -> anyhow::Result<String>;
}

/// The local stand-in: takes every request, calls nobody back (post a completion to the
/// callback URL by hand to play the provider).
#[derive(Default)]
pub struct SandboxSkipTracer {
    requests: Mutex<Vec<(Vec<TraceInput>, String)>>,
}

impl SandboxSkipTracer {
    pub fn requests(&self) -> Vec<(Vec<TraceInput>, String)> {
        self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl SkipTracer for SandboxSkipTracer {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn bulk(&self, inputs: &[TraceInput], webhook_url: &str) -> anyhow::Result<String> {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        r.push((inputs.to_vec(), webhook_url.to_owned()));
        Ok(format!("sandbox-job-{}", r.len()))
    }
}
