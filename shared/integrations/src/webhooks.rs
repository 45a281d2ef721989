//! Signed webhooks to a team's own systems. The bus's subscribable events reach the
//! `webhook-out` queue through an EventBridge rule (locally the bus routes them itself);
//! [`Sender::fan_out`] records one delivery per subscribed endpoint (once per event, however
//! often the event arrives) and attempts each at once. A failed attempt is retried on
//! Standard Webhooks' schedule (a delayed message for the short waits, the re-drive schedule
//! for the rest); an endpoint that fails `DISABLE_AFTER` times in a row is disabled and the
//! team told (its feed, and mail to its owners and admins).
//!
//! Every attempt re-resolves the endpoint's host and connects only to the addresses checked
//! public (no redirects followed), so a name pointed inside our network after registration
//! reaches nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nextier_domain::ids::TeamId;
use nextier_domain::webhook_out as rules;
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::Clock;
use nextier_platform::ports::{OutgoingMessage, Queue};
use nextier_store::endpoints::{self as store, Attempt, Claimed};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::{scope, Db, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How long a sender holds a delivery (beyond the request's own timeout).
const LEASE_SECS: i32 = 60;
/// The longest wait sent as a delayed message (SQS's most); longer waits are the cron's.
const MAX_DELAY: Duration = Duration::from_secs(900);
/// The most of an answer we read.
const MAX_ANSWER: usize = 16 * 1024;

#[derive(Clone)]
pub struct Sender {
    pub db: Db,
    pub queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// Publishes the team's notices right after commit (else the sweeper does).
    pub publisher: Option<OutboxPublisher>,
    /// Exact origins allowed although not public https (`WEBHOOK_ALLOW_ORIGINS`: local runs and
    /// tests; a deployed stack sets none).
    pub allowed_origins: Vec<String>,
    pub timeout: Duration,
}

/// `WEBHOOK_ALLOW_ORIGINS`, comma-separated.
pub fn allowed_origins_from_env() -> Vec<String> {
    nextier_runtime::config::get("WEBHOOK_ALLOW_ORIGINS")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

impl Sender {
    pub async fn from_env() -> anyhow::Result<Self> {
        let db = Db::worker_from_env()?;
        let platform = nextier_platform::wiring::Platform::from_env(&db).await;
        Ok(Sender {
            publisher: Some(platform.outbox(&db)),
            queue: platform.queue.clone(),
            clock: Arc::new(nextier_platform::ports::clock::SystemClock),
            allowed_origins: allowed_origins_from_env(),
            timeout: Duration::from_secs(10),
            db,
        })
    }
}

/// A bus event as EventBridge delivers it to the queue.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    pub detail: Detail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub outbox_id: String,
    pub team_id: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// A delivery due again (the re-drive's and the retry's message).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Due {
    pub team_id: String,
    pub delivery_id: String,
}

impl Due {
    /// Its queue message, sent after `delay`.
    pub fn message(&self, delay: Duration) -> OutgoingMessage {
        OutgoingMessage {
            body: serde_json::to_string(self).unwrap_or_default(),
            correlation_id: format!("webhook-{}", self.delivery_id),
            team_id: Some(self.team_id.clone()),
            attributes: Default::default(),
            delay,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FanOut {
    pub deliveries: usize,
    pub delivered: usize,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// Failed; tried again at this time.
    Retrying(DateTime<Utc>),
    /// Failed for good (its last attempt).
    Failed,
    /// Not due, done, or held by another sender.
    Skipped,
}

/// The body every delivery carries (Standard Webhooks' shape).
pub fn body(public_type: &str, at: DateTime<Utc>, team: &str, event_id: &str, data: &Value) -> Value {
    let mut data = data.clone();
    if let Some(o) = data.as_object_mut() {
        o.insert("teamId".into(), json!(team));
    }
    json!({"type": public_type, "eventId": event_id, "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "data": data})
}

impl Sender {
    /// Records the event's delivery to each endpoint of its team that wants it, then attempts
    /// each new one.
    pub async fn fan_out(&self, env: &Envelope) -> anyhow::Result<FanOut> {
        let Some(public) = rules::public_type(&env.detail_type) else { return Ok(FanOut::default()) };
        let Some(team) = env.detail.team_id.as_deref().and_then(|t| TeamId::parse("teamId", t).ok()) else {
            return Ok(FanOut::default());
        };
        let at = env.time.unwrap_or_else(|| self.clock.now());
        let payload = body(public, at, team.as_str(), &env.detail.outbox_id, &env.detail.data);
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await?;
        let mut new = vec![];
        for endpoint in store::subscribed(&tx, public).await? {
            if let Some(id) =
                store::enqueue(&tx, &team, &endpoint, &env.detail.outbox_id, public, &payload, self.clock.now()).await?
            {
                new.push(id);
            }
        }
        tx.commit().await?;
        drop(conn);
        // Each delivery is its own message: one slow endpoint holds up no other (its attempt
        // runs beside the others, each bounded by the timeout).
        let msgs: Vec<OutgoingMessage> = new
            .iter()
            .map(|id| Due { team_id: team.to_string(), delivery_id: id.clone() }.message(Duration::ZERO))
            .collect();
        for chunk in msgs.chunks(nextier_platform::ports::MAX_BATCH) {
            for r in self.queue.send_batch(crate::WEBHOOK_QUEUE, chunk.to_vec()).await? {
                // Were one lost, the re-drive finds the delivery due within a minute.
                if let Err(e) = r {
                    tracing::warn!(error = %e, "a delivery's message was not sent; the re-drive will");
                }
            }
        }
        Ok(FanOut { deliveries: new.len(), delivered: 0 })
    }

    /// One attempt of a due delivery.
    pub async fn deliver(&self, team: &TeamId, id: &str) -> anyhow::Result<Sent> {
        let scope = Scope::team(team.clone());
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &scope).await?;
        let claimed = store::claim(&tx, id, self.clock.now(), LEASE_SECS + self.timeout.as_secs() as i32).await?;
        tx.commit().await?;
        let Some(c) = claimed else { return Ok(Sent::Skipped) };
        drop(conn);
        let started = Instant::now();
        let result = self.post(&c).await;
        let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let now = self.clock.now();
        let (status_code, error) = match &result {
            Ok(s) if (200..300).contains(s) => (Some(*s as i32), None),
            Ok(s) => (Some(*s as i32), Some(format!("HTTP {s}"))),
            Err(e) => (None, Some(e.clone())),
        };
        let retry = match &error {
            None => None,
            Some(_) => {
                Some(rules::backoff_after(c.attempts).map(|d| now + chrono::Duration::from_std(d).unwrap_or_default()))
            }
        };
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &scope).await?;
        let attempt = Attempt { status_code, error: error.as_deref(), duration_ms, retry };
        let recorded = store::record(
            &tx,
            team,
            &c,
            &attempt,
            rules::DISABLE_AFTER,
            rules::DISABLE_AFTER_FAILING_FOR.as_secs_f64(),
        )
        .await?;
        let mut staged = vec![];
        if recorded.endpoint_disabled {
            staged = self.stage_disabled(&tx, team, &c, error.as_deref().unwrap_or("failed")).await?;
        }
        tx.commit().await?;
        if let Some(p) = &self.publisher {
            p.publish(&staged).await;
        }
        tracing::info!(delivery = %c.id, endpoint = %c.endpoint_id, attempt = c.attempts, status = ?status_code,
                       error = ?error, duration_ms, "webhook attempt");
        let (delivered, failed) = if error.is_none() { (1.0, 0.0) } else { (0.0, 1.0) };
        nextier_runtime::metrics::emit(
            &[("Function", nextier_runtime::telemetry::function())],
            &[
                ("WebhookDelivered", delivered, nextier_runtime::metrics::Unit::Count),
                ("WebhookFailedAttempts", failed, nextier_runtime::metrics::Unit::Count),
            ],
        );
        Ok(match retry {
            None => Sent::Delivered,
            Some(None) => Sent::Failed,
            Some(Some(at)) => {
                // A short wait is a delayed message; the re-drive finds the rest (and this,
                // were the message lost).
                let wait = (at - now).to_std().unwrap_or_default();
                if wait <= MAX_DELAY && !recorded.endpoint_disabled {
                    let msg = Due { team_id: team.to_string(), delivery_id: c.id.clone() }.message(wait);
                    if let Err(e) = self.queue.send(crate::WEBHOOK_QUEUE, msg).await {
                        tracing::warn!(error = %e, delivery = %c.id, "could not schedule the retry; the re-drive will");
                    }
                }
                Sent::Retrying(at)
            }
        })
    }

    async fn stage_disabled(
        &self,
        tx: &nextier_store::Tx<'_>,
        team: &TeamId,
        c: &Claimed,
        error: &str,
    ) -> anyhow::Result<Vec<nextier_domain::ids::OutboxId>> {
        let mut staged = vec![];
        let data = json!({"endpointId": c.endpoint_id, "url": c.url, "lastError": error,
                          "failures": rules::DISABLE_AFTER});
        staged.push(
            outbox::stage_for_team(
                tx,
                team,
                Destination::Event("WebhookEndpointDisabled".into()),
                data,
                format!("webhook-{}", c.id),
            )
            .await?,
        );
        let mail = json!({
            "teamId": team.as_str(),
            "key": format!("webhook-disabled:{}:{}", c.endpoint_id, c.id),
            "subject": "A webhook endpoint was disabled",
            "text": format!(
                "Your webhook endpoint {} failed {} times in a row for over a day (last: {error}) and was disabled. \
                 Deliveries waiting for it were cancelled. Fix the endpoint, then turn it back on \
                 (PATCH .../webhook-endpoints/{} with active: true) and retry the deliveries you need.",
                c.url, rules::DISABLE_AFTER, c.endpoint_id),
        });
        staged.extend(
            outbox::stage(
                tx,
                &OutboxMessage {
                    team: Some(team.clone()),
                    destination: Destination::Queue("mail".into()),
                    payload: mail,
                    correlation_id: format!("webhook-{}", c.id),
                    dedupe_key: Some(format!("mail:{team}:webhook-disabled:{}:{}", c.endpoint_id, c.id)),
                },
            )
            .await?,
        );
        Ok(staged)
    }

    /// Posts a claimed delivery: its status code, or what went wrong.
    async fn post(&self, c: &Claimed) -> Result<u16, String> {
        let url = url::Url::parse(&c.url).map_err(|_| "the endpoint URL does not parse".to_owned())?;
        // The URL is checked again now (a rule may have tightened), then the host's addresses.
        rules::check_url("url", url.as_str(), &self.allowed_origins).map_err(|e| e.message)?;
        let allowed =
            self.allowed_origins.iter().any(|a| a.trim_end_matches('/') == url.origin().ascii_serialization());
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent("Nextier-Webhooks/1.0");
        if !allowed {
            let host = url.host_str().ok_or("the endpoint URL names no host")?.to_owned();
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = match url.host() {
                Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
                Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
                _ => tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), port)))
                    .await
                    .map_err(|_| "resolving the host timed out".to_owned())?
                    .map_err(|e| format!("the host does not resolve: {e}"))?
                    .collect(),
            };
            let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            if !rules::all_public(&ips) {
                return Err("the host resolves to a private, loopback or metadata address".into());
            }
            client = client.resolve_to_addrs(&host, &addrs);
        }
        let client = client.build().map_err(|e| format!("building the client: {e}"))?;
        let body = serde_json::to_vec(&c.payload).map_err(|e| e.to_string())?;
        let ts = self.clock.now().timestamp();
        let secrets: Vec<&str> = c.secrets.iter().map(String::as_str).collect();
        let signature =
            rules::signature_header(&secrets, &c.id, ts, &body).ok_or("the endpoint's secret is unusable")?;
        let resp = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &c.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("connection failed: {}", e.without_url())
                }
            })?;
        let status = resp.status().as_u16();
        // Read a little of the answer (so the connection ends cleanly), never all of it.
        let mut resp = resp;
        let mut read = 0usize;
        while let Ok(Some(chunk)) = resp.chunk().await {
            read += chunk.len();
            if read >= MAX_ANSWER {
                break;
            }
        }
        Ok(status)
    }

    /// The re-drive: deliveries due again (and those whose sender vanished), sent to the queue.
    pub async fn redrive(&self, limit: i32) -> anyhow::Result<usize> {
        let mut conn = self.db.conn().await?;
        let tx = scope::begin(&mut conn, &Scope::default()).await?;
        let due = store::due(&tx, self.clock.now(), limit).await?;
        tx.commit().await?;
        let msgs: Vec<OutgoingMessage> = due
            .iter()
            .map(|(id, team)| Due { team_id: team.to_string(), delivery_id: id.clone() }.message(Duration::ZERO))
            .collect();
        for chunk in msgs.chunks(nextier_platform::ports::MAX_BATCH) {
            for r in self.queue.send_batch(crate::WEBHOOK_QUEUE, chunk.to_vec()).await? {
                r?;
            }
        }
        Ok(due.len())
    }
}

/// The `webhook-out` queue's handler: bus events fan out, due deliveries are attempted.
pub async fn handle(
    s: &Sender,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    use nextier_runtime::sqs::{process_batch_by_key, Message, Outcome};
    // Every message on its own (no order between them): a batch's deliveries run side by side.
    process_batch_by_key(
        crate::WEBHOOK_QUEUE,
        event,
        10,
        |m: &Message| m.id.clone(),
        |m: Message| async move {
            if let Ok(due) = serde_json::from_str::<Due>(&m.body) {
                let Ok(team) = TeamId::parse("teamId", &due.team_id) else { return Outcome::Done };
                return Outcome::from(s.deliver(&team, &due.delivery_id).await.map(|_| ()));
            }
            match serde_json::from_str::<Envelope>(&m.body) {
                Ok(env) => Outcome::from(s.fan_out(&env).await.map(|_| ())),
                Err(e) => {
                    tracing::warn!(error = %e, "dropping a message that is neither a bus event nor a due delivery");
                    Outcome::Done
                }
            }
        },
    )
    .await
}
