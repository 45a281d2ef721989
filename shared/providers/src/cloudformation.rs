//! CloudFormation custom resources: a Lambda that CloudFormation invokes during a deploy must
//! answer by a PUT of a JSON document to the request's pre-signed `ResponseURL`; a `FAILED`
//! answer fails the deploy and rolls it back. The migrate function is one: the template's
//! `Migrations` resource invokes it on every deploy whose code changed, so a failed migration
//! fails the deploy instead of leaving new code on an old schema.
//!
//! An event that is not CloudFormation's (a person invoking the function by hand) just runs.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::{json, Value};

/// The resource's one physical id: an update is never a replacement (which would delete the
/// old one afterwards).
pub const PHYSICAL_ID: &str = "nextier-migrations";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: String,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
}

/// Runs `work` for a CloudFormation Create or Update and answers CloudFormation with its
/// outcome; answers a Delete at once (the schema outlives the stack). Any other event runs
/// `work` and returns its result.
pub async fn handle<F, Fut>(event: Value, work: F) -> anyhow::Result<Value>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<Value>>,
{
    if event.get("RequestType").is_none() {
        return work().await;
    }
    let req: Request = serde_json::from_value(event).context("not a CloudFormation custom-resource request")?;
    let outcome = match req.request_type.as_str() {
        "Delete" => Ok(json!({})),
        _ => work().await,
    };
    let answer = match &outcome {
        Ok(data) => json!({
            "Status": "SUCCESS", "PhysicalResourceId": PHYSICAL_ID, "StackId": req.stack_id,
            "RequestId": req.request_id, "LogicalResourceId": req.logical_resource_id, "Data": data,
        }),
        Err(e) => {
            let mut reason = format!("{e:#}");
            // CloudFormation takes a response of at most 4 KB.
            reason.truncate(reason.char_indices().nth(1000).map_or(reason.len(), |(i, _)| i));
            tracing::error!(reason, "custom resource failed");
            json!({
                "Status": "FAILED", "Reason": reason, "PhysicalResourceId": PHYSICAL_ID, "StackId": req.stack_id,
                "RequestId": req.request_id, "LogicalResourceId": req.logical_resource_id,
            })
        }
    };
    respond(&req.response_url, &answer).await?;
    Ok(answer)
}

/// PUTs the answer to the pre-signed URL (signed for no content type), retrying a few times:
/// an unanswered request leaves the deploy waiting an hour.
async fn respond(url: &str, answer: &Value) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let body = serde_json::to_vec(answer)?;
    let mut last = None;
    for attempt in 0..4u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        match client.put(url).header("content-type", "").body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = Some(anyhow::anyhow!("CloudFormation's response URL answered {}", r.status())),
            Err(e) => last = Some(e.into()),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no answer")))
}
