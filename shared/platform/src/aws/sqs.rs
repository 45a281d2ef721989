use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use tokio::sync::RwLock;

use crate::ports::{OutgoingMessage, Queue, ReceivedMessage, Result};
use crate::PlatformError;

/// SQS. A logical queue name maps to a URL through `QUEUE_URL_<NAME>` (set by the template,
/// e.g. `QUEUE_URL_LEAD_IMPORT`) or, failing that, GetQueueUrl on `<prefix><name>`.
pub struct SqsQueue {
    client: Client,
    prefix: String,
    urls: RwLock<HashMap<String, String>>,
}

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self { client: Client::new(config), prefix: prefix.to_owned(), urls: RwLock::new(HashMap::new()) }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn url(&self, queue: &str) -> Result<String> {
        if let Some(url) = self.urls.read().await.get(queue) {
            return Ok(url.clone());
        }
        let env = format!("QUEUE_URL_{}", queue.to_uppercase().replace('-', "_"));
        let url = match nextier_runtime::config::get(&env) {
            Some(url) => url,
            None => self
                .client
                .get_queue_url()
                .queue_name(format!("{}{}", self.prefix, queue))
                .send()
                .await
                .map_err(super::classify)?
                .queue_url
                .ok_or_else(|| PlatformError::Invalid(format!("no URL for queue {queue}")))?,
        };
        self.urls.write().await.insert(queue.to_owned(), url.clone());
        Ok(url)
    }
}

fn string_attr(v: &str) -> Result<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| PlatformError::Invalid(e.to_string()))
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, msg: OutgoingMessage) -> Result<String> {
        let url = self.url(queue).await?;
        let mut req = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(msg.body)
            .message_attributes(nextier_runtime::correlation::ATTRIBUTE, string_attr(&msg.correlation_id)?)
            .delay_seconds(crate::ports::delay_seconds(msg.delay) as i32);
        if let Some(team) = &msg.team_id {
            req = req.message_attributes("team_id", string_attr(team)?);
        }
        for (k, v) in &msg.attributes {
            req = req.message_attributes(k, string_attr(v)?);
        }
        let out = req.send().await.map_err(super::classify)?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn send_batch(&self, queue: &str, msgs: Vec<OutgoingMessage>) -> Result<Vec<Result<String>>> {
        if msgs.len() > crate::ports::MAX_BATCH {
            return Err(PlatformError::Invalid(format!("a batch holds at most {} messages", crate::ports::MAX_BATCH)));
        }
        if msgs.is_empty() {
            return Ok(vec![]);
        }
        let url = self.url(queue).await?;
        let mut entries = Vec::with_capacity(msgs.len());
        for (i, msg) in msgs.iter().enumerate() {
            let mut e = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&msg.body)
                .message_attributes(nextier_runtime::correlation::ATTRIBUTE, string_attr(&msg.correlation_id)?)
                .delay_seconds(crate::ports::delay_seconds(msg.delay) as i32);
            if let Some(team) = &msg.team_id {
                e = e.message_attributes("team_id", string_attr(team)?);
            }
            for (k, v) in &msg.attributes {
                e = e.message_attributes(k, string_attr(v)?);
            }
            entries.push(e.build().map_err(|e| PlatformError::Invalid(e.to_string()))?);
        }
        let out = self
            .client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(super::classify)?;
        let mut results: Vec<Result<String>> =
            (0..msgs.len()).map(|_| Err(PlatformError::Unavailable("no result for this entry".into()))).collect();
        for ok in out.successful {
            if let Some(slot) = ok.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Ok(ok.message_id);
            }
        }
        for failed in out.failed {
            if let Some(slot) = failed.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                let why = format!("{}: {}", failed.code, failed.message.unwrap_or_default());
                *slot = Err(if failed.sender_fault {
                    PlatformError::Invalid(why)
                } else {
                    PlatformError::Unavailable(why)
                });
            }
        }
        Ok(results)
    }

    async fn receive(&self, queue: &str, max: u32) -> Result<Vec<ReceivedMessage>> {
        let url = self.url(queue).await?;
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(super::classify)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attributes = m
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                    .collect();
                let receive_count = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                ReceivedMessage {
                    id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    attributes,
                    receive_count,
                }
            })
            .collect())
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<()> {
        let url = self.url(queue).await?;
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(super::classify)?;
        Ok(())
    }

    async fn change_visibility(&self, queue: &str, receipt_handle: &str, after: Duration) -> Result<()> {
        let url = self.url(queue).await?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(after.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(super::classify)?;
        Ok(())
    }
}
