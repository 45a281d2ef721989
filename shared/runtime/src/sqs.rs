//! Turns a per-message handler into an SQS batch handler that reports partial failures
//! (`batchItemFailures`), so one bad message is retried alone and never takes its batch
//! with it. Each message runs in its own span carrying its correlation id.

use std::future::Future;
use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::Instrument;

use crate::correlation::{self, CorrelationId};
use crate::metrics::{self, Unit};

/// What a handler sees of one SQS message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub correlation_id: CorrelationId,
    pub team_id: Option<String>,
    /// How many times SQS has handed this message out, this time included.
    pub receive_count: u32,
}

impl Message {
    fn from_sqs(m: &SqsMessage) -> Self {
        let attr = |name: &str| m.message_attributes.get(name).and_then(|a| a.string_value.clone());
        Message {
            id: m.message_id.clone().unwrap_or_default(),
            body: m.body.clone().unwrap_or_default(),
            correlation_id: attr(correlation::ATTRIBUTE).and_then(|c| CorrelationId::accept(&c)).unwrap_or_default(),
            team_id: attr("team_id"),
            receive_count: m.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        }
    }
}

/// How a message ended: done, or failed and worth another delivery. A message that can
/// never succeed (malformed) should be logged and reported `Done`; retrying it only delays
/// its arrival in the DLQ.
#[derive(Debug)]
pub enum Outcome {
    Done,
    Retry(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<Result<(), E>> for Outcome {
    fn from(r: Result<(), E>) -> Self {
        match r {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry(e.into()),
        }
    }
}

/// Runs `handle` for each message in order and returns the failures.
pub async fn process_batch<F, Fut>(queue: &str, event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut failures = Vec::new();
    for record in &event.records {
        if let Some(f) = run_one(queue, Message::from_sqs(record), &handle).await {
            failures.push(f);
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

/// Like [`process_batch`], with the messages of different keys (conversations, say) handled
/// side by side, at most `limit` keys at once. Messages that share a key run one after the
/// other in the batch's order, and once one of them is to be retried the later ones of its
/// key are retried too without running, so a key's messages are never handled out of order.
/// The failures are answered in the batch's order.
pub async fn process_batch_by_key<K, F, Fut>(
    queue: &str,
    event: SqsEvent,
    limit: usize,
    key: K,
    handle: F,
) -> SqsBatchResponse
where
    K: Fn(&Message) -> String,
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Outcome>,
{
    use futures::StreamExt;
    let mut groups: Vec<(String, Vec<(usize, Message)>)> = Vec::new();
    for (i, record) in event.records.iter().enumerate() {
        let msg = Message::from_sqs(record);
        let k = key(&msg);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push((i, msg)),
            None => groups.push((k, vec![(i, msg)])),
        }
    }
    let handle = &handle;
    let mut failed: Vec<(usize, BatchItemFailure)> = futures::stream::iter(groups)
        .map(|(_, members)| async move {
            let mut failed = Vec::new();
            let mut members = members.into_iter();
            for (i, msg) in members.by_ref() {
                if let Some(f) = run_one(queue, msg, handle).await {
                    failed.push((i, f));
                    break;
                }
            }
            for (i, msg) in members {
                tracing::warn!(queue, message_id = %msg.id, correlation_id = %msg.correlation_id,
                    "an earlier message of its conversation failed; SQS will redeliver this one too");
                let mut f = BatchItemFailure::default();
                f.item_identifier = msg.id;
                failed.push((i, f));
            }
            failed
        })
        .buffer_unordered(limit.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    failed.sort_by_key(|(i, _)| *i);
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failed.into_iter().map(|(_, f)| f).collect();
    resp
}

/// Runs one message in its span and correlation scope, emits its metrics and answers the
/// failure to report, if any.
async fn run_one<F, Fut>(queue: &str, msg: Message, handle: &F) -> Option<BatchItemFailure>
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let id = msg.id.clone();
    let span = tracing::info_span!(
        "message",
        function = crate::telemetry::function(),
        queue,
        message_id = %msg.id,
        correlation_id = %msg.correlation_id,
        team_id = msg.team_id.as_deref().unwrap_or(""),
        receive_count = msg.receive_count,
    );
    let cid = msg.correlation_id.clone();
    let started = Instant::now();
    let outcome = correlation::CURRENT.scope(cid, handle(msg).instrument(span.clone())).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let failure = match outcome {
        Outcome::Done => None,
        Outcome::Retry(err) => {
            span.in_scope(|| tracing::warn!(error = %format!("{err:#}"), "message failed; SQS will redeliver"));
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            Some(f)
        }
    };
    metrics::emit(
        &[("Function", crate::telemetry::function()), ("Queue", queue)],
        &[
            ("Messages", 1.0, Unit::Count),
            ("MessageFailures", if failure.is_some() { 1.0 } else { 0.0 }, Unit::Count),
            ("MessageLatency", ms, Unit::Milliseconds),
        ],
    );
    failure
}

/// Like [`process_batch`], for a handler that takes the whole batch at once (to share its
/// transactions and round trips) and answers one outcome per message, in order. The batch
/// runs under the first message's correlation id; each message's outcome is logged under
/// its own.
pub async fn process_whole_batch<F, Fut>(queue: &str, event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: FnOnce(Vec<Message>) -> Fut,
    Fut: Future<Output = Vec<Outcome>>,
{
    let msgs: Vec<Message> = event.records.iter().map(Message::from_sqs).collect();
    let ids: Vec<(String, CorrelationId)> = msgs.iter().map(|m| (m.id.clone(), m.correlation_id.clone())).collect();
    let cid = msgs.first().map(|m| m.correlation_id.clone()).unwrap_or_default();
    let span = tracing::info_span!("batch", function = crate::telemetry::function(), queue, size = msgs.len(), correlation_id = %cid);
    let started = Instant::now();
    let outcomes = correlation::CURRENT.scope(cid, handle(msgs).instrument(span)).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut failures = Vec::new();
    let mut outcomes = outcomes.into_iter();
    for (id, cid) in ids {
        // A handler that answered too few leaves the rest to be redelivered.
        let outcome = outcomes.next().unwrap_or_else(|| Outcome::Retry(anyhow::anyhow!("no outcome")));
        if let Outcome::Retry(err) = outcome {
            tracing::warn!(queue, message_id = %id, correlation_id = %cid, error = %format!("{err:#}"), "message failed; SQS will redeliver");
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            failures.push(f);
        }
    }
    let n = event.records.len() as f64;
    metrics::emit(
        &[("Function", crate::telemetry::function()), ("Queue", queue)],
        &[
            ("Messages", n, Unit::Count),
            ("MessageFailures", failures.len() as f64, Unit::Count),
            ("BatchLatency", ms, Unit::Milliseconds),
        ],
    );
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> SqsEvent {
        serde_json::from_str(include_str!("../../../events/sqs-example.json")).expect("sample SQS event")
    }

    #[tokio::test]
    async fn only_the_failed_message_is_reported_for_redelivery() {
        let ev = event();
        assert!(ev.records.len() >= 2, "the sample has two messages");
        let bad = ev.records[1].message_id.clone().unwrap();
        let bad2 = bad.clone();
        let resp = process_batch("test", ev, move |m| {
            let bad = bad2.clone();
            async move {
                if m.id == bad {
                    Outcome::Retry(anyhow::anyhow!("boom"))
                } else {
                    Outcome::Done
                }
            }
        })
        .await;
        let ids: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(ids, vec![bad]);
    }

    #[tokio::test]
    async fn the_correlation_id_attribute_reaches_the_handler() {
        let resp = process_batch("test", event(), |m| async move {
            assert_eq!(m.correlation_id.as_str(), "corr-sample-1");
            assert_eq!(correlation::current().unwrap().as_str(), "corr-sample-1");
            assert_eq!(m.team_id.as_deref(), Some("team_01JD8Z6Q3M4N5P6R7S8T9V0W1X"));
            Outcome::Done
        })
        .await;
        assert!(resp.batch_item_failures.is_empty());
    }

    fn batch(keys: &[&str]) -> SqsEvent {
        let mut ev = event();
        let template = ev.records[0].clone();
        ev.records = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut r = template.clone();
                r.message_id = Some(format!("m{i}"));
                r.body = Some(k.to_string());
                r
            })
            .collect();
        ev
    }

    #[tokio::test]
    async fn keys_run_side_by_side_and_each_key_in_order_stopping_at_its_first_failure() {
        use std::sync::{Arc, Mutex};
        // Conversation a: m0, m2 (fails), m4 (not run). b: m1, m3. c: m5.
        let ev = batch(&["a", "b", "a", "b", "a", "c"]);
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let resp = process_batch_by_key(
            "test",
            ev,
            2,
            |m| m.body.clone(),
            |m| {
                let (seen, running, most) = (seen.clone(), running.clone(), most.clone());
                async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    seen.lock().unwrap().push(m.id.clone());
                    running.fetch_sub(1, SeqCst);
                    if m.id == "m2" {
                        Outcome::Retry(anyhow::anyhow!("boom"))
                    } else {
                        Outcome::Done
                    }
                }
            },
        )
        .await;
        let ids: Vec<_> = resp.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(ids, vec!["m2".to_string(), "m4".to_string()], "the failure and the later message of its key");
        let seen = seen.lock().unwrap().clone();
        assert!(!seen.contains(&"m4".to_string()), "a key stops at its first failure: {seen:?}");
        let pos = |id: &str| seen.iter().position(|s| s == id).unwrap();
        assert!(pos("m0") < pos("m2") && pos("m1") < pos("m3"), "each key in order: {seen:?}");
        assert_eq!(seen.len(), 5);
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2, "two keys at once, never more");
    }
}
