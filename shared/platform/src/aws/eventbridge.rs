use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

use crate::ports::{DomainEvent, EventBus, Result};
use crate::PlatformError;

pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(config: &aws_config::SdkConfig, bus_name: &str) -> Self {
        Self { client: Client::new(config), bus_name: bus_name.to_owned() }
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<()> {
        // PutEvents takes at most 10 entries per call.
        for chunk in events.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PlatformError::Unavailable(format!("{e:?}")))?;
            if out.failed_entry_count > 0 {
                let reasons: Vec<String> = out
                    .entries
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|e| e.error_code.map(|c| format!("{c}: {}", e.error_message.unwrap_or_default())))
                    .collect();
                return Err(PlatformError::Unavailable(format!(
                    "{} of {} events were not accepted: {}",
                    out.failed_entry_count,
                    chunk.len(),
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
    }
}
