//! A provider refusing our credentials (401/403) is our configuration fault, not the
//! person's or the number's: the campaign step waits and is retried, the enrolment stays
//! active, the number stays in rotation, and the team hears of it once.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use nextier_campaigns::gate::{Gate, SandboxTransport};
use nextier_campaigns::sequence::{Processed, SequenceJob, Sequencer};
use nextier_campaigns::tick::{tick, TickConfig};
use nextier_campaigns::SEQUENCE_QUEUE;
use nextier_domain::campaign::Delay;
use nextier_outbound::{Cleared, Delivered, Transport, TransportError};
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::Queue;
use support::*;

/// SignalHouse as it answers when our API key is wrong, until it is fixed.
struct LockedOut {
    locked: AtomicBool,
    inner: Arc<SandboxTransport>,
}

#[async_trait]
impl Transport for LockedOut {
    fn name(&self) -> &'static str {
        "signalhouse"
    }
    async fn deliver(&self, m: &Cleared) -> Result<Delivered, TransportError> {
        if self.locked.load(Ordering::SeqCst) {
            return Err(TransportError::Config("HTTP 401: invalid api key".into()));
        }
        self.inner.deliver(m).await
    }
}

async fn run(f: &Fx, seq: &Sequencer, clock: &ManualClock) -> Vec<Processed> {
    tick(&f.t.worker, &f.queue, clock.now(), &TickConfig::default()).await.unwrap();
    let mut out = vec![];
    loop {
        let msgs = f.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
            out.push(seq.process(&job).await.unwrap());
            f.queue.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_401_keeps_the_enrolment_and_the_number_and_the_step_goes_once_when_fixed() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let sandbox = Arc::new(SandboxTransport::new());
    let provider = Arc::new(LockedOut { locked: AtomicBool::new(true), inner: sandbox.clone() });
    let seq = Sequencer {
        db: f.t.db.clone(),
        gate: Arc::new(Gate::new(provider.clone(), provider.clone(), provider.clone())),
        clock: Arc::new(clock.clone()),
        queue: None,
    };
    nextier_testkit::fixtures::sending_number(&f.t, &f.team, "+12125550100").await;
    let people = f.contacts(&[Some("Ada")]).await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}, a short note")], &people).await;
    f.launch(&id, now).await;

    // Far more refusals than a failing number is allowed: nothing ends, nothing is blamed.
    for _ in 0..8 {
        assert_eq!(run(&f, &seq, &clock).await, vec![Processed::Deferred]);
        clock.advance(Duration::minutes(15));
    }
    let count = |sql: &'static str| {
        let t = &f.t;
        async move { t.superuser().await.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM campaign_enrolments WHERE status = 'active'").await, 1);
    assert_eq!(count("SELECT count(*) FROM sending_numbers WHERE status = 'active'").await, 1, "still in rotation");
    assert_eq!(count("SELECT count(*) FROM messages WHERE status = 'queued'").await, 1, "one message, held");
    let events = count("SELECT count(*) FROM outbox WHERE destination = 'ProviderConfigurationFault'").await;
    assert!((1..=8).contains(&events), "the fault is raised ({events}), once per retry window at most");
    assert!(sandbox.sent().is_empty());

    // Fixed: the next retry sends the step once, on the same message.
    provider.locked.store(false, Ordering::SeqCst);
    let out = run(&f, &seq, &clock).await;
    assert!(matches!(out[..], [Processed::Sent { .. }]), "{out:?}");
    assert_eq!(sandbox.sent().len(), 1);
    assert_eq!(count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(count("SELECT count(*) FROM messages WHERE status = 'sent'").await, 1);
}

#[tokio::test]
async fn a_campaign_with_email_steps_cannot_be_staged_without_the_teams_postal_address() {
    let f = fx().await;
    f.t.superuser().await.execute("DELETE FROM team_settings WHERE scope = 'email'", &[]).await.unwrap();
    let people = f.contacts(&[Some("Ada")]).await;
    let email = nextier_store::campaigns::StepContent {
        channel: nextier_store::campaigns::Channel::Email,
        delay: Delay::Minutes(0),
        subject: Some("Hello".into()),
        body: "A note".into(),
        template_id: None,
        opener_category: None,
        variants: vec![],
    };
    let id = f.campaign(settings("mail"), &[email], &people).await;
    let now = daytime();
    let err =
        f.move_to(&id, nextier_domain::campaign::CampaignStatus::Staged, f.author().await, now).await.unwrap_err();
    assert!(format!("{err:?}").contains("postal address"), "{err:?}");
    nextier_testkit::fixtures::postal_address(&f.t, &f.team).await;
    f.move_to(&id, nextier_domain::campaign::CampaignStatus::Staged, f.author().await, now).await.unwrap();
}
