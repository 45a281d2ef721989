//! The gate itself: the team's sending settings, checks, rate-limit reservations, recording
//! and delivery of every outbound message.

use super::*;
use nextier_domain::message::MessageStatus;

/// Team settings (scope `sending`) the gate reads.
pub const SCOPE: &str = "sending";
/// Texts a minute for the whole team (default [`DEFAULT_TEAM_PER_MINUTE`]).
pub const TEAM_PER_MINUTE: &str = "sms_per_minute";
pub const DEFAULT_TEAM_PER_MINUTE: i64 = 600;
/// Texts a minute to numbers whose carrier is unknown (default [`DEFAULT_UNKNOWN_CARRIER_PER_MINUTE`]).
pub const UNKNOWN_CARRIER_PER_MINUTE: &str = "unknown_carrier_per_minute";
pub const DEFAULT_UNKNOWN_CARRIER_PER_MINUTE: i64 = 600;
/// Ask the provider to drop landline and inactive recipients (yes/no, default no).
pub const FILTER_LANDLINES: &str = "filter_landlines";
/// Why a text waits when the team has no sending number of its own.
pub const NO_SENDING_NUMBER: &str =
    "no sending number: the team has no active number in its SignalHouse subgroup (register or buy one)";

/// The gate, over one transport per channel and the team's token buckets.
pub struct Gate {
    sms: Arc<dyn Transport>,
    email: Arc<dyn Transport>,
    voice: Arc<dyn Transport>,
    limiter: Option<Arc<dyn RateLimiter>>,
    links: Option<Arc<UnsubscribeLinks>>,
    clock: Arc<dyn Clock>,
}

/// How far ahead a text may reserve its rate-limit slot. Work arrives in whole seconds (SQS
/// delays are whole seconds), so a slot up to two seconds ahead is waited for in-process
/// rather than sent back to the queue, and no token goes unused between arrivals.
pub const RESERVE_AHEAD: chrono::Duration = chrono::Duration::seconds(4);

/// What the checks found for a request that may go, before its tokens.
struct Checked {
    to: String,
    postal: Option<String>,
    segments: u32,
    from: Option<String>,
    /// The buckets it takes (texts, when the gate has a limiter).
    buckets: Option<Vec<Bucket>>,
}

impl Gate {
    pub fn new(sms: Arc<dyn Transport>, email: Arc<dyn Transport>, voice: Arc<dyn Transport>) -> Self {
        Self { sms, email, voice, limiter: None, links: None, clock: Arc::new(SystemClock) }
    }

    /// Every channel through one sandbox transport (local runs and tests).
    pub fn sandbox(t: Arc<SandboxTransport>) -> Self {
        Self::new(t.clone(), t.clone(), t)
    }

    /// Where delivery waits for a rate-limit slot (a simulation's clock; the system's by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Outreach email carries unsubscribe links built with these; without them, the gate
    /// holds outreach email back.
    pub fn with_unsubscribe_links(mut self, links: UnsubscribeLinks) -> Self {
        self.links = Some(Arc::new(links));
        self
    }

    /// Texts take a token from the team's bucket and the campaign's before they go.
    pub fn with_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The buckets a text takes: the team's; the campaign's (its `sendsPerMinute`); and by the
    /// recipient's carrier, AT&T's per 10DLC campaign class, T-Mobile's daily segments per
    /// brand (charged in segments, reset at midnight Pacific) or Verizon's per long code;
    /// for an unknown carrier, the team's default.
    async fn buckets(
        &self,
        tx: &Tx<'_>,
        req: &OutboundRequest<'_>,
        to: &str,
        number: Option<&numbers::SendingNumber>,
        segments: u32,
    ) -> anyhow::Result<Vec<Bucket>> {
        let team = settings::numbers_in(tx, SCOPE).await?;
        let team_rate = team.get(TEAM_PER_MINUTE).copied().unwrap_or(DEFAULT_TEAM_PER_MINUTE);
        let mut buckets = vec![Bucket::new(
            format!("team:{}:sms", req.team),
            Limit::per_minute(team_rate.clamp(1, 1_000_000) as u32, 1),
        )];
        if let Some(c) = &req.campaign {
            buckets
                .push(Bucket::new(format!("campaign:{}:sms", c.campaign), Limit::per_minute(c.per_minute.max(1), 1)));
        }
        let carrier_name = req.contact.phones.iter().find(|p| p.e164 == to).and_then(|p| p.carrier.as_deref());
        match (rate::carrier(carrier_name), number) {
            (Carrier::Att, Some(n)) => {
                if let (Some(id), Some(rate)) =
                    (n.provider_campaign_id.as_deref(), n.att_class.as_deref().and_then(rate::att_per_minute))
                {
                    // The team's own key: the provider campaign id is the team's word, so
                    // another tenant naming the same one must not share (or drain) its bucket.
                    buckets.push(Bucket::new(format!("att:{}:{id}", req.team), Limit::per_minute(rate, 1)));
                }
            }
            (Carrier::TMobile, Some(n)) => {
                if let (Some(brand), Some(daily)) =
                    (n.brand_id.as_deref(), n.tmobile_tier.as_deref().and_then(rate::tmobile_daily))
                {
                    let (day, window_end) = rate::pacific_day(req.now);
                    buckets.push(
                        // Scoped to the team for the same reason as AT&T's.
                        Bucket::new(
                            format!("tmo:{}:{brand}:{day}", req.team),
                            Limit::Quota { limit: daily, window_end },
                        )
                        .charging(i64::from(segments)),
                    );
                }
            }
            (Carrier::Verizon, Some(n)) => {
                buckets.push(Bucket::new(format!("vzw:{}", n.e164), Limit::per_minute(rate::VERIZON_PER_MINUTE, 1)));
            }
            (Carrier::Unknown, _) => {
                let rate = team.get(UNKNOWN_CARRIER_PER_MINUTE).copied().unwrap_or(DEFAULT_UNKNOWN_CARRIER_PER_MINUTE);
                buckets.push(Bucket::new(
                    format!("team:{}:unknown-carrier", req.team),
                    Limit::per_minute(rate.clamp(1, 1_000_000) as u32, 1),
                ));
            }
            _ => {}
        }
        Ok(buckets)
    }

    fn transport(&self, c: Channel) -> &Arc<dyn Transport> {
        match c {
            Channel::Sms => &self.sms,
            Channel::Email => &self.email,
            Channel::Voice => &self.voice,
        }
    }
}

impl Gate {
    /// Every rule but throughput: consent, suppression, the person's revocations, what email
    /// needs, quiet hours, a sending number; and the buckets the text will take.
    async fn check(&self, tx: &Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Result<Checked, Verdict>> {
        let decided = |v: Verdict| Ok(Err(v));
        let channel = req.channel;
        // Consent: an opted-out person gets nothing, on any number or address.
        let confirming = req.purpose == Purpose::OptOutConfirmation;
        if req.contact.lead_state == LeadState::Suppressed && !confirming {
            return decided(Verdict::Blocked { reason: "opt_out".into() });
        }
        let to = match address_for(req.contact, channel, req.to, confirming) {
            Ok(a) => a,
            Err(reason) => return decided(Verdict::Blocked { reason }),
        };
        match suppressions::active(tx, req.team, &to, req.now).await? {
            Some(s)
                if confirming
                    && s.kind == Kind::OptedOut
                    && req.send_key == opt_out_confirmation_key(&s)
                    && req.now - s.created_at < chrono::Duration::hours(24) => {}
            Some(s) => return decided(Verdict::Blocked { reason: s.block_reason() }),
            None if confirming => return decided(Verdict::Blocked { reason: "no opt-out to confirm".into() }),
            None => {}
        }
        // A revocation on any of the person's numbers or addresses stops every channel to all
        // of them, whatever their lead state (read after the lock on `to`, which orders it
        // after an opt-out that suppressed `to` with the others).
        if !confirming {
            if let Some(s) = person_revocation(tx, req.contact).await? {
                return decided(Verdict::Blocked { reason: s.block_reason() });
            }
        }
        // Outreach email carries an unsubscribe link and the team's postal address, or waits.
        let postal = if channel == Channel::Email && req.purpose == Purpose::Outreach {
            match (&self.links, email::postal_address(tx).await?) {
                (None, _) => {
                    return decided(Verdict::Deferred {
                        until: req.now + chrono::Duration::hours(1),
                        reason: "email unsubscribe links are not configured (UNSUBSCRIBE_BASE_URL, UNSUBSCRIBE_SECRET)"
                            .into(),
                    })
                }
                (Some(_), None) => {
                    return decided(Verdict::Deferred {
                        until: req.now + chrono::Duration::hours(1),
                        reason: "the team has no postal address (setting email/postal_address)".into(),
                    })
                }
                (Some(_), Some(a)) => Some(a),
            }
        } else {
            None
        };
        // Quiet hours for outreach texts and calls, in the recipient's local time.
        if channel != Channel::Email && req.purpose == Purpose::Outreach {
            let state = req.contact.addresses.first().and_then(|a| a.state.as_deref());
            let loc = quiet_hours::locate(&to, state);
            let until = quiet_hours::next_allowed(req.now, &loc);
            if until > req.now {
                let zones: Vec<&str> = loc.zones.iter().map(|z| z.name()).collect();
                let reason = format!(
                    "quiet hours in {} ({})",
                    loc.state.as_deref().unwrap_or("the recipient's zone"),
                    zones.join(", ")
                );
                return decided(Verdict::Deferred { until, reason });
            }
        }
        let segments = if channel == Channel::Sms { segments::count(&req.body) } else { 1 };
        // The sending number: the thread's, else one of the campaign's (or the team's).
        let number = if channel == Channel::Email {
            None
        } else {
            match numbers::pick(tx, req.team, &req.contact.id, req.campaign.map(|c| c.campaign)).await? {
                numbers::Pick::Number(n) => Some(n),
                numbers::Pick::NoneConfigured if channel == Channel::Sms && !self.sms.lends_numbers() => {
                    return decided(Verdict::Deferred {
                        until: req.now + chrono::Duration::hours(1),
                        reason: NO_SENDING_NUMBER.into(),
                    })
                }
                numbers::Pick::NoneConfigured => None,
                numbers::Pick::NoneActive => {
                    return decided(Verdict::Deferred {
                        until: req.now + chrono::Duration::minutes(15),
                        reason: "no active sending number (all paused or out of rotation)".into(),
                    })
                }
            }
        };
        let buckets = match (channel, &self.limiter) {
            (Channel::Sms, Some(_)) => Some(self.buckets(tx, req, &to, number.as_ref(), segments).await?),
            _ => None,
        };
        Ok(Ok(Checked { to, postal, segments, from: number.map(|n| n.e164), buckets }))
    }

    /// Records the message as `queued` under its send key and clears it for delivery at its slot.
    async fn record(
        &self,
        tx: &Tx<'_>,
        req: &OutboundRequest<'_>,
        c: Checked,
        not_before: DateTime<Utc>,
    ) -> anyhow::Result<Prepared> {
        let decided = |v: Verdict| Ok(Prepared::Decided(v));
        let Checked { to, postal, segments, from, .. } = c;
        let channel = req.channel;
        let filter_landlines = channel == Channel::Sms && settings::flag(tx, SCOPE, FILTER_LANDLINES).await?;
        let transport = self.transport(channel);
        let (message, created) = messages::record_outbound(
            tx,
            &Outbound {
                team: req.team,
                contact: &req.contact.id,
                campaign: req.campaign.map(|c| c.campaign),
                step: req.campaign.map(|c| c.step),
                enrolment: req.campaign.map(|c| c.enrolment),
                sent_by: Some(req.sent_by),
                channel,
                to: &to,
                from: from.as_deref(),
                subject: req.subject.as_deref(),
                body: &req.body,
                provider: transport.name(),
                provider_message_id: None,
                status: MessageStatus::Queued,
                send_key: &req.send_key,
                segments: Some(segments as i32),
                at: req.now,
            },
        )
        .await?;
        if !created && messages::status(tx, &message).await? != Some(MessageStatus::Queued) {
            // An earlier attempt already sent (or failed) this very step.
            return decided(Verdict::Sent { message });
        }
        if !transport.idempotent() {
            if !created && delivery::dispatched_at(tx, &message).await?.is_some() {
                // Handed to a provider that cannot replay, and never answered (the sender
                // died): delivering again could send twice. The reconciler settles it.
                return decided(Verdict::Sent { message });
            }
            delivery::mark_dispatched(tx, &message, req.now).await?;
        }
        let (body, headers) = match (&postal, &self.links) {
            (Some(postal), Some(links)) => email::compose(links, req.team, &message, &to, &req.body, postal),
            _ => (req.body.clone(), Vec::new()),
        };
        let cleared = Cleared {
            message: message.clone(),
            channel,
            to: to.clone(),
            from: from.clone(),
            subject: req.subject.clone(),
            body,
            segments,
            headers,
            filter_landlines,
        };
        let wait = (not_before - req.now).clamp(chrono::Duration::zero(), RESERVE_AHEAD);
        Ok(Prepared::Ready(Dispatch {
            cleared,
            team: req.team.clone(),
            contact: req.contact.id.clone(),
            not_before,
            wait,
        }))
    }
}

#[async_trait]
impl OutboundGate for Gate {
    async fn prepare(&self, tx: &Tx<'_>, req: &OutboundRequest<'_>) -> anyhow::Result<Prepared> {
        let mut all = self.prepare_all(tx, std::slice::from_ref(req)).await?;
        all.pop().ok_or_else(|| anyhow::anyhow!("the gate answered nothing"))
    }

    async fn prepare_all(&self, tx: &Tx<'_>, reqs: &[OutboundRequest<'_>]) -> anyhow::Result<Vec<Prepared>> {
        let batched = self.prepare_ahead(tx, reqs, &[], RESERVE_AHEAD).await?;
        Ok(batched
            .into_iter()
            .map(|b| match b {
                Batched::Now(p) => p,
                // Not reachable with RESERVE_AHEAD; as a deferral to the slot if it were.
                Batched::Later { slot } => {
                    Prepared::Decided(Verdict::Deferred { until: slot, reason: "rate limit (slot)".into() })
                }
            })
            .collect())
    }

    /// The checks of every request, pipelined on the transaction; then one reservation of
    /// the batch's tokens, every bucket each text needs or none, in order (a refusal waits
    /// for its retry time and is never dropped); then the records, pipelined.
    async fn prepare_ahead(
        &self,
        tx: &Tx<'_>,
        reqs: &[OutboundRequest<'_>],
        held: &[Option<DateTime<Utc>>],
        ahead: chrono::Duration,
    ) -> anyhow::Result<Vec<Batched>> {
        let checks = futures::future::try_join_all(reqs.iter().map(|r| self.check(tx, r))).await?;
        // A text that already holds a slot is not charged again; one that comes back after its
        // slot has passed reserves a new one (sent late, it could crowd the next slots).
        let held = |i: usize| held.get(i).copied().flatten().filter(|at| reqs.get(i).is_some_and(|r| *at >= r.now));
        let asks: Vec<Ask> = checks
            .iter()
            .enumerate()
            .filter(|(i, _)| held(*i).is_none())
            .filter_map(|(_, c)| c.as_ref().ok()?.buckets.clone())
            .map(|buckets| Ask { buckets, cost: 1 })
            .collect();
        let mut slots = match (&self.limiter, reqs.first()) {
            (Some(limiter), Some(first)) if !asks.is_empty() => {
                limiter.reserve(&asks, first.now, ahead.max(RESERVE_AHEAD)).await?.into_iter()
            }
            _ => Vec::new().into_iter(),
        };
        let ready = |p: Prepared| futures::future::Either::Left(futures::future::ready(Ok(Batched::Now(p))));
        let mut pending = Vec::with_capacity(reqs.len());
        for (i, (req, check)) in reqs.iter().zip(checks).enumerate() {
            let c = match check {
                Err(v) => {
                    pending.push(ready(Prepared::Decided(v)));
                    continue;
                }
                Ok(c) => c,
            };
            let slot = match (held(i), c.buckets.is_some()) {
                (Some(at), _) => Some(Slot::At(at)),
                (None, true) => slots.next(),
                (None, false) => None,
            };
            let not_before = match slot {
                None => req.now,
                Some(Slot::At(at)) if at > req.now + RESERVE_AHEAD => {
                    pending
                        .push(futures::future::Either::Left(futures::future::ready(Ok(Batched::Later { slot: at }))));
                    continue;
                }
                Some(Slot::At(at)) => at,
                Some(Slot::Refused { retry_at, bucket }) => {
                    let reason = format!("rate limit ({})", bucket.split(':').next().unwrap_or("bucket"));
                    pending.push(ready(Prepared::Decided(Verdict::Deferred { until: retry_at, reason })));
                    continue;
                }
            };
            pending.push(futures::future::Either::Right(async move {
                Ok(Batched::Now(self.record(tx, req, c, not_before).await?))
            }));
        }
        futures::future::try_join_all(pending).await
    }

    async fn deliver(&self, d: &Dispatch) -> Result<Delivered, TransportError> {
        // Not before its slot: a text that reserved one ahead waits for it here (measured from
        // when it was prepared, on the gate's clock).
        if d.wait > chrono::Duration::zero() {
            self.clock.sleep_until(self.clock.now() + d.wait).await;
        }
        self.transport(d.cleared.channel).deliver(&d.cleared).await
    }

    async fn settle(
        &self,
        tx: &Tx<'_>,
        d: &Dispatch,
        outcome: Result<Delivered, TransportError>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Verdict> {
        let (message, team, to) = (&d.cleared.message, &d.team, &d.cleared.to);
        provider_outcome(self.transport(d.cleared.channel).name(), &outcome);
        // A number that keeps failing leaves the rotation, and the team hears of it.
        if let Some(number) = &d.cleared.from {
            // A configuration fault (our credentials) says nothing about the number.
            let error = match &outcome {
                Err(TransportError::Retryable(e)) => Some(e.clone()),
                Err(TransportError::Rejected { reason, opted_out: false }) => Some(reason.clone()),
                Err(TransportError::Config(_))
                | Err(TransportError::Unreachable { .. })
                | Err(TransportError::Rejected { opted_out: true, .. })
                | Ok(_) => None,
            };
            if numbers::record_outcome(tx, number, error.as_deref()).await? {
                tracing::warn!(number = %number, "sending number taken out of rotation");
                outbox::stage_for_team(
                    tx,
                    team,
                    Destination::Event("SendingNumberUnhealthy".into()),
                    serde_json::json!({"number": number, "failures": numbers::FAILURE_LIMIT, "lastError": error}),
                    format!("number-health-{message}"),
                )
                .await?;
            }
        }
        match outcome {
            Ok(delivered) => {
                messages::set_status(
                    tx,
                    team,
                    message,
                    MessageStatus::Sent,
                    Some(&delivered.provider_message_id),
                    None,
                    now,
                )
                .await?;
                Ok(Verdict::Sent { message: message.clone() })
            }
            Err(TransportError::Rejected { reason, opted_out }) => {
                messages::set_status(tx, team, message, MessageStatus::Failed, None, Some(&reason), now).await?;
                if opted_out {
                    // The carrier's record of the person's STOP: theirs, on every number.
                    let r = consent::Revocation {
                        kind: Kind::OptedOut,
                        reason: Some(&reason),
                        source: "provider_error",
                        actor: self.transport(d.cleared.channel).name(),
                        message: Some(message.as_str()),
                    };
                    consent::revoke(tx, team, &d.contact, Some(to), &r).await?;
                    return Ok(Verdict::Blocked { reason: "opt_out".into() });
                }
                Ok(Verdict::Blocked { reason })
            }
            Err(TransportError::Unreachable { reason }) => {
                messages::set_status(tx, team, message, MessageStatus::Failed, None, Some(&reason), now).await?;
                let actor = self.transport(d.cleared.channel).name();
                nextier_store::contacts::mark_untextable(tx, team, to, &reason, actor).await?;
                Ok(Verdict::Blocked { reason })
            }
            Err(TransportError::Retryable(reason)) => {
                // The provider answered no (or nothing): a retry may deliver it again.
                delivery::clear_dispatched(tx, message).await?;
                Ok(Verdict::Failed { reason })
            }
            Err(TransportError::Config(reason)) => {
                delivery::clear_dispatched(tx, message).await?;
                let provider = self.transport(d.cleared.channel).name();
                configuration_fault(tx, team, provider, d.cleared.channel, message, &reason, now).await?;
                Ok(Verdict::Deferred {
                    until: now + chrono::Duration::minutes(CONFIG_FAULT_RETRY_MINUTES),
                    reason: format!("provider configuration fault ({provider}): {reason}"),
                })
            }
        }
    }
}

/// How long a message held back by a provider configuration fault waits before it is tried
/// again.
pub const CONFIG_FAULT_RETRY_MINUTES: i64 = 15;

/// A provider refused our credentials: an event for the team (one per provider per retry
/// window, however many messages hit it) and a metric the alarm watches.
async fn configuration_fault(
    tx: &Tx<'_>,
    team: &TeamId,
    provider: &str,
    channel: Channel,
    message: &MessageId,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    tracing::error!(provider, reason, "provider refused our credentials; sends are held back");
    // Once by provider (to read), once without dimensions (what the alarm watches).
    for dimensions in [&[("Provider", provider)][..], &[]] {
        nextier_runtime::metrics::emit(
            dimensions,
            &[("ProviderConfigurationFaults", 1.0, nextier_runtime::metrics::Unit::Count)],
        );
    }
    let window = now.timestamp() / (CONFIG_FAULT_RETRY_MINUTES * 60);
    outbox::stage(
        tx,
        &outbox::OutboxMessage {
            team: Some(team.clone()),
            destination: Destination::Event("ProviderConfigurationFault".into()),
            payload: serde_json::json!({
                "provider": provider, "channel": channel.as_str(), "reason": reason, "message": message,
            }),
            correlation_id: format!("provider-config-fault-{message}"),
            dedupe_key: Some(format!("provider-config-fault:{team}:{provider}:{window}")),
        },
    )
    .await?;
    Ok(())
}

/// Every provider answer, counted (`ProviderRequests`, and `ProviderFailures` when it was not
/// taken for a reason of ours to look at: a timeout, 5xx or 429, or our credentials): once by
/// provider, once without dimensions (what the failure-rate alarm divides).
fn provider_outcome(provider: &str, outcome: &Result<Delivered, TransportError>) {
    let failed = matches!(outcome, Err(TransportError::Retryable(_)) | Err(TransportError::Config(_)));
    let status = match outcome {
        Ok(_) => "sent",
        Err(TransportError::Rejected { opted_out: true, .. }) => "opted_out",
        Err(TransportError::Rejected { .. }) => "rejected",
        Err(TransportError::Unreachable { .. }) => "unreachable",
        Err(TransportError::Retryable(_)) => "retry",
        Err(TransportError::Config(_)) => "config_fault",
    };
    // Sends per minute by what became of them (the dashboard's first graph).
    nextier_runtime::metrics::emit(&[("Status", status)], &[("Sends", 1.0, nextier_runtime::metrics::Unit::Count)]);
    for dimensions in [&[("Provider", provider)][..], &[]] {
        nextier_runtime::metrics::emit(
            dimensions,
            &[
                ("ProviderRequests", 1.0, nextier_runtime::metrics::Unit::Count),
                ("ProviderFailures", f64::from(u8::from(failed)), nextier_runtime::metrics::Unit::Count),
            ],
        );
    }
}
