//! The sandbox playing the carrier: what the sandbox transport "sent" comes back the way
//! SignalHouse's would, as signed webhooks to the local runtime's own endpoint: a
//! `message.delivered` receipt for every sent text and, when a scripted reply is configured
//! (`LOCAL_SANDBOX_REPLY`), a `message.received` from the recipient to the sending number.
//! So a local campaign shows delivered statuses, and its replies reach the inbox, through
//! exactly the deployed path (signature, dedupe, queue, consumer).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nextier_domain::webhook_signature::sign_signalhouse;
use serde_json::json;
use tokio::sync::watch;

pub struct Carrier {
    pub admin_url: String,
    pub webhook_url: String,
    pub secret: String,
    pub reply: Option<String>,
}

impl Carrier {
    /// Polls for texts the sandbox sent and answers them, until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let db = match crate::database::connect(&self.admin_url).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the sandbox carrier cannot reach the database; no receipts locally");
                return;
            }
        };
        while !*stop.borrow() {
            if let Err(e) = self.once(&db, &client).await {
                tracing::warn!(error = %format!("{e:#}"), "sandbox carrier");
            }
            let _ = tokio::time::timeout(Duration::from_millis(300), stop.wait_for(|s| *s)).await;
        }
    }

    async fn once(
        &self,
        db: &tokio_postgres::Client,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    ) -> anyhow::Result<()> {
        let rows = db
            .query(
                "SELECT m.id, m.provider_message_id, m.to_address, m.from_address FROM messages m
                  WHERE m.provider = 'sandbox' AND m.direction = 'outbound' AND m.status = 'sent' AND m.channel = 'SMS'
                    AND m.provider_message_id IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM webhook_events w
                                     WHERE w.provider = 'signalhouse' AND w.delivery_id = 'sandbox-dlr:' || m.id)
                  ORDER BY m.created_at LIMIT 50",
                &[],
            )
            .await?;
        for r in rows {
            let (id, provider_id, to, from): (String, String, String, Option<String>) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let receipt = json!({"event": "message.delivered", "message_id": provider_id, "status": "delivered",
                                 "to": to, "from": from});
            self.post(client, &format!("sandbox-dlr:{id}"), receipt.to_string()).await?;
            if let (Some(text), Some(from)) = (&self.reply, &from) {
                let reply = json!({"event": "message.received", "from": to, "to": from, "text": text,
                                   "message_id": format!("sbx-reply-{id}")});
                self.post(client, &format!("sandbox-reply:{id}"), reply.to_string()).await?;
            }
        }
        Ok(())
    }

    async fn post(
        &self,
        client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        delivery: &str,
        body: String,
    ) -> anyhow::Result<()> {
        let ts = chrono::Utc::now().timestamp_millis();
        let sig = sign_signalhouse(self.secret.as_bytes(), ts, body.as_bytes());
        let req = hyper::Request::post(self.webhook_url.as_str())
            .header("content-type", "application/json")
            .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
            .header("x-signalhouse-delivery-id", delivery)
            .body(Full::new(Bytes::from(body)))?;
        let resp = client.request(req).await?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        anyhow::ensure!(status.is_success(), "the local webhook answered {status}");
        Ok(())
    }
}
