//! The outbound gate behind the campaign-sequence consumer, on a real database: suppression,
//! provider opt-outs, outages without duplicates, quiet hours, and random interleavings of
//! opt-outs and sends in which no message ever reaches a suppressed number.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nextier_campaigns::gate::SandboxTransport;
use nextier_campaigns::sequence::{Processed, SequenceJob, Sequencer};
use nextier_campaigns::tick::{tick, TickConfig};
use nextier_campaigns::SEQUENCE_QUEUE;
use nextier_domain::campaign::Delay;
use nextier_domain::ids::ContactId;
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::Queue;
use nextier_store::campaigns::Settings;
use nextier_store::suppressions::{self, NewSuppression};
use nextier_store::{scope, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

async fn phone_of(f: &Fx, c: &ContactId) -> String {
    f.t.superuser()
        .await
        .query_one("SELECT e164 FROM contact_phones WHERE contact_id = $1", &[&c.as_str()])
        .await
        .unwrap()
        .get(0)
}

async fn suppress(f: &Fx, number: &str, kind: &str) {
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
    let s = NewSuppression {
        address: number,
        kind,
        reason: None,
        source: "api",
        actor: "test",
        expires_at: None,
        source_message: None,
    };
    suppressions::add(&tx, &f.team, &s).await.unwrap();
    tx.commit().await.unwrap();
}

/// Ticks at the clock's time and processes everything queued.
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
async fn a_suppressed_number_gets_nothing_and_a_carrier_opt_out_becomes_a_suppression() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let seq = f.sequencer_with(&clock, &transport);
    let people = f.contacts(&[Some("Listed"), Some("Carrier"), Some("Fine")]).await;
    let (listed, carrier) = (phone_of(&f, &people[0]).await, phone_of(&f, &people[1]).await);
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}")], &people).await;
    f.launch(&id, now).await;
    suppress(&f, &listed, "LEGAL_DNC").await;
    transport.opt_out(&carrier);

    run(&f, &seq, &clock).await;
    let sent: Vec<String> = transport.sent().into_iter().map(|s| s.body).collect();
    assert_eq!(sent, vec!["Hi Fine".to_owned()]);
    let exits: Vec<String> = f
        .t
        .superuser()
        .await
        .query(
            "SELECT coalesce(e.exit_reason, e.status) FROM campaign_enrolments e JOIN contacts c ON c.id = e.contact_id
              ORDER BY c.first_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(exits, vec!["opt_out", "completed", "suppressed: LEGAL_DNC"], "Carrier, Fine, Listed");
    // The carrier's answer is on the suppression list now, for every campaign of the team.
    let row =
        f.t.superuser()
            .await
            .query_one("SELECT kind, source FROM suppressions WHERE address = $1", &[&carrier])
            .await
            .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("OPTED_OUT".into(), "provider_error".into()));
    let failed: String =
        f.t.superuser()
            .await
            .query_one("SELECT status FROM messages WHERE to_address = $1", &[&carrier])
            .await
            .unwrap()
            .get(0);
    assert_eq!(failed, "failed");
}

#[tokio::test]
async fn an_outage_retries_the_same_message_and_never_sends_twice() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let seq = f.sequencer_with(&clock, &transport);
    let people = f.contacts(&[Some("Ada")]).await;
    let id =
        f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}, a long enough note")], &people).await;
    f.launch(&id, now).await;
    transport.fail_next(1);
    assert_eq!(run(&f, &seq, &clock).await, vec![Processed::Retrying]);
    assert!(transport.sent().is_empty());
    // Retried five minutes later: delivered once, on the same message row.
    clock.advance(Duration::minutes(5));
    let out = run(&f, &seq, &clock).await;
    assert!(matches!(out[..], [Processed::Sent { .. }]), "{out:?}");
    assert_eq!(transport.sent().len(), 1);
    let su = f.t.superuser().await;
    let rows = su.query("SELECT status, segments FROM messages", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].get::<_, String>(0), rows[0].get::<_, i32>(1)), ("sent".into(), 1));
    let timeline: Vec<String> = su
        .query("SELECT status FROM message_events ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(timeline, vec!["sent"]);
    let attempts: Vec<String> = su
        .query("SELECT status FROM campaign_executions ORDER BY attempt", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(attempts, vec!["failed", "sent"]);
}

#[tokio::test]
async fn outside_quiet_hours_a_step_waits_for_the_window_and_is_never_dropped() {
    let f = fx().await;
    // Wednesday 2 December 2026, 22:30 in New York (03:30 UTC Thursday).
    let late = Utc.with_ymd_and_hms(2026, 12, 3, 3, 30, 0).unwrap();
    let clock = ManualClock::at(late);
    let transport = Arc::new(SandboxTransport::new());
    let seq = f.sequencer_with(&clock, &transport);
    let people = f.contacts(&[Some("Ada")]).await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi")], &people).await;
    f.launch(&id, late).await;
    assert_eq!(run(&f, &seq, &clock).await, vec![Processed::Deferred]);
    assert!(transport.sent().is_empty());
    let su = f.t.superuser().await;
    let next: DateTime<Utc> = su.query_one("SELECT next_run_at FROM campaign_enrolments", &[]).await.unwrap().get(0);
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap(), "08:00 in New York");
    let reason: String =
        su.query_one("SELECT reason FROM campaign_executions WHERE status = 'deferred'", &[]).await.unwrap().get(0);
    assert!(reason.contains("quiet hours in NY"), "{reason}");
    // Nothing is due before the window; at 08:00 it goes.
    clock.set(next - Duration::minutes(1));
    assert!(run(&f, &seq, &clock).await.is_empty());
    clock.set(next);
    assert!(matches!(run(&f, &seq, &clock).await[..], [Processed::Sent { .. }]));
    assert_eq!(transport.sent().len(), 1);
}

/// Random interleavings of opt-outs, sends and time across several campaigns: after a
/// number's opt-out is recorded, no campaign of the team ever sends to it again.
#[tokio::test]
async fn no_interleaving_of_opt_outs_and_sends_reaches_a_suppressed_number() {
    for seed in [7u64, 42, 2026] {
        let f = fx().await;
        f.t.superuser()
            .await
            .execute(
                "INSERT INTO team_settings (team_id, scope, name, value)
                 VALUES ($1, 'campaigns', 'allow_overlapping_enrolments', 'true')",
                &[&f.team.as_str()],
            )
            .await
            .unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let now = daytime();
        let clock = ManualClock::at(now);
        let transport = Arc::new(SandboxTransport::new());
        let seq = f.sequencer_with(&clock, &transport);
        let names: Vec<Option<&str>> = vec![Some("P"); 12];
        let people = f.contacts(&names).await;
        let steps = [sms(Delay::Minutes(0), "one"), sms(Delay::Minutes(2), "two"), sms(Delay::Minutes(3), "three")];
        for c in 0..3 {
            // Overlapping audiences: every campaign enrols a random two-thirds of the people.
            let audience: Vec<ContactId> = people.iter().filter(|_| rng.gen_bool(0.67)).cloned().collect();
            if audience.is_empty() {
                continue;
            }
            let mut conn = f.t.db.conn().await.unwrap();
            let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
            let id = nextier_store::campaigns::create(
                &tx,
                &f.team,
                &Settings { sends_per_minute: 4 + c, ..settings(&format!("c{c}")) },
                Some(&f.author),
                "t",
            )
            .await
            .unwrap();
            for s in &steps {
                nextier_store::campaigns::insert_step(&tx, &f.team, &id, None, s).await.unwrap();
            }
            let rules = nextier_store::campaigns::EnrolRules {
                team: &f.team,
                campaign: &id,
                required_fields: &[],
                exclusive: false,
                first_run_at: None,
                actor: "t",
            };
            nextier_store::campaigns::enrol(&tx, nextier_store::contacts::Selection::Ids(&audience), &rules)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            f.launch(&id, now).await;
        }
        let mut numbers = Vec::new();
        for p in &people {
            numbers.push(phone_of(&f, p).await);
        }
        // When (in delivered-message count) each number was suppressed.
        let mut suppressed_at: HashMap<String, usize> = HashMap::new();
        for _ in 0..60 {
            match rng.gen_range(0..10) {
                0..=2 => {
                    let n = &numbers[rng.gen_range(0..numbers.len())];
                    if !suppressed_at.contains_key(n) {
                        suppress(&f, n, "OPTED_OUT").await;
                        suppressed_at.insert(n.clone(), transport.sent().len());
                    }
                }
                3..=7 => {
                    // Process part of what the tick queued, as a busy consumer would.
                    tick(&f.t.worker, &f.queue, clock.now(), &TickConfig::default()).await.unwrap();
                    for m in f.queue.receive(SEQUENCE_QUEUE, rng.gen_range(1..=10)).await.unwrap() {
                        let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
                        seq.process(&job).await.unwrap();
                        f.queue.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
                    }
                }
                _ => clock.advance(Duration::minutes(rng.gen_range(1..=3))),
            }
        }
        let sent = transport.sent();
        assert!(sent.len() > 10, "seed {seed}: the run should send plenty, sent {}", sent.len());
        for (i, s) in sent.iter().enumerate() {
            if let Some(&at) = suppressed_at.get(&s.to) {
                assert!(i < at, "seed {seed}: message {i} to {} after its opt-out (at {at})", s.to);
            }
        }
        assert!(!suppressed_at.is_empty(), "seed {seed}: the run should opt someone out");
    }
}

#[tokio::test]
async fn the_campaigns_bucket_paces_its_texts_and_refused_ones_wait() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let limiter = Arc::new(nextier_platform::local::PgRateLimiter::new(f.t.db.clone()));
    let seq = Sequencer {
        db: f.t.db.clone(),
        gate: Arc::new(nextier_campaigns::gate::Gate::sandbox(transport.clone()).with_limiter(limiter)),
        clock: Arc::new(clock.clone()),
        queue: None,
    };
    let people = f.contacts(&[Some("A"), Some("B"), Some("C"), Some("D"), Some("E")]).await;
    let id = f
        .campaign(Settings { sends_per_minute: 2, ..settings("slow") }, &[sms(Delay::Minutes(0), "Hi")], &people)
        .await;
    f.launch(&id, now).await;
    let mut sent_at = Vec::new();
    // Tick every ten simulated seconds for three minutes.
    for _ in 0..18 {
        let before = transport.sent().len();
        run(&f, &seq, &clock).await;
        for _ in before..transport.sent().len() {
            sent_at.push(clock.now() - now);
        }
        clock.advance(Duration::seconds(10));
    }
    let secs: Vec<i64> = sent_at.iter().map(|d| d.num_seconds()).collect();
    assert_eq!(secs, vec![0, 30, 60, 90, 120], "two a minute, evenly, and all five sent");
    let deferred: i64 = f
        .t
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM campaign_executions WHERE status = 'deferred' AND reason = 'rate limit (campaign)'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(deferred > 0, "refusals were recorded as deferrals");
}

async fn add_number(f: &Fx, e164: &str) -> nextier_domain::ids::RowId {
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
    let n = nextier_store::numbers::add(
        &tx,
        &f.team,
        &nextier_store::numbers::NewNumber { e164, ..Default::default() },
        "t",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n.id
}

#[tokio::test]
async fn a_campaign_sends_from_its_numbers_one_number_per_thread_and_drops_a_failing_one() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let seq = f.sequencer_with(&clock, &transport);
    let assigned = [add_number(&f, "+12125550301").await, add_number(&f, "+12125550302").await];
    add_number(&f, "+12125550303").await; // the team's, not the campaign's
    let people = f.contacts(&[Some("A"), Some("B"), Some("C"), Some("D"), Some("E"), Some("F")]).await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "one"), sms(Delay::Minutes(1), "two")], &people).await;
    {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        assert_eq!(nextier_store::numbers::assign(&tx, &f.team, &id, &assigned).await.unwrap(), 2);
        tx.commit().await.unwrap();
    }
    f.launch(&id, now).await;
    run(&f, &seq, &clock).await;
    clock.advance(Duration::minutes(1));
    run(&f, &seq, &clock).await;
    let rows: Vec<(String, String)> =
        f.t.superuser()
            .await
            .query("SELECT contact_id, from_address FROM messages WHERE status = 'sent' ORDER BY contact_id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(rows.len(), 12, "two steps for six people");
    let mut by_contact: HashMap<String, Vec<String>> = HashMap::new();
    for (c, from) in rows {
        by_contact.entry(c).or_default().push(from);
    }
    let mut used = std::collections::HashSet::new();
    for froms in by_contact.values() {
        assert_eq!(froms[0], froms[1], "a thread keeps its number");
        used.insert(froms[0].clone());
    }
    assert!(used.iter().all(|n| n == "+12125550301" || n == "+12125550302"), "{used:?}");
    // New threads spread over the campaign's numbers by a hash of the contact id: as many
    // numbers are used as the six ids have distinct hash buckets (two, unless all six ids
    // happen to share one, which random ids do about one time in 32).
    let ids: Vec<String> = by_contact.keys().cloned().collect();
    let buckets: i64 =
        f.t.superuser()
            .await
            .query_one("SELECT count(DISTINCT abs(hashtext(c)::bigint) % 2) FROM unnest($1::text[]) AS c", &[&ids])
            .await
            .unwrap()
            .get(0);
    assert_eq!(used.len() as i64, buckets, "new threads spread over the campaign's numbers by the contact's hash");

    // Five failures in a row take a number out of rotation and raise an event.
    let more = f.contacts(&[Some("G"), Some("H"), Some("I"), Some("J"), Some("K"), Some("L")]).await;
    let second = f.campaign(settings("d"), &[sms(Delay::Minutes(0), "hi")], &more).await;
    let only = add_number(&f, "+12125550304").await;
    {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        nextier_store::numbers::assign(&tx, &f.team, &second, &[only]).await.unwrap();
        tx.commit().await.unwrap();
    }
    f.launch(&second, clock.now()).await;
    transport.fail_next(5);
    run(&f, &seq, &clock).await;
    let su = f.t.superuser().await;
    let status: String =
        su.query_one("SELECT status FROM sending_numbers WHERE e164 = '+12125550304'", &[]).await.unwrap().get(0);
    assert_eq!(status, "unhealthy");
    let events: i64 = su
        .query_one("SELECT count(*) FROM outbox WHERE destination = 'SendingNumberUnhealthy'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1);
    // With its only number out of rotation, the campaign's texts wait rather than go from elsewhere.
    let waiting: i64 = su
        .query_one(
            "SELECT count(*) FROM campaign_executions WHERE status = 'deferred' AND reason LIKE 'no active sending number%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 1, "the sixth contact waits");
    assert!(transport.sent().iter().all(|s| s.body != "hi"), "nothing of the second campaign went out");
}

/// The consumer dies after the provider accepted a text but before the outcome was recorded:
/// the step is claimed again when its lease lapses, the same queued message is delivered again
/// under the same idempotency key, and the provider replays instead of sending twice.
#[tokio::test]
async fn a_crash_between_the_provider_and_the_record_never_sends_twice() {
    use nextier_campaigns::gate::{FromCampaign, OutboundGate, OutboundRequest, Prepared};
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let gate = nextier_campaigns::gate::Gate::sandbox(transport.clone());
    let seq = f.sequencer_with(&clock, &transport);
    let people = f.contacts(&[Some("Ada")]).await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}")], &people).await;
    f.launch(&id, now).await;
    // The tick claims the step; the first consumer gets as far as the provider, then dies.
    tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap();
    let msgs = f.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
    let job: SequenceJob = serde_json::from_str(&msgs[0].body).unwrap();
    {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        let contact = nextier_store::contacts::get(&tx, &people[0]).await.unwrap();
        let steps = nextier_store::campaigns::steps(&tx, &id).await.unwrap();
        let req = OutboundRequest {
            team: &f.team,
            contact: &contact,
            channel: steps[0].channel,
            subject: None,
            body: "Hi Ada".into(),
            send_key: format!("{}:1", job.enrolment_id),
            campaign: Some(FromCampaign {
                campaign: &id,
                enrolment: &job.enrolment_id,
                step: &steps[0].id,
                per_minute: 75,
            }),
            sent_by: "campaign",
            purpose: nextier_outbound::Purpose::Outreach,
            to: None,
            now,
        };
        let Prepared::Ready(d) = gate.prepare(&tx, &req).await.unwrap() else { panic!("cleared") };
        tx.commit().await.unwrap();
        gate.deliver(&d).await.unwrap();
        // ...and here the process is gone: no settle, no advance, the SQS message not deleted.
    }
    assert_eq!(transport.sent().len(), 1);
    // After the lease lapses the tick claims the step again and a healthy consumer runs it.
    f.t.superuser().await.execute("DELETE FROM local_queue_messages", &[]).await.unwrap();
    clock.set(now + Duration::minutes(11));
    let out = run(&f, &seq, &clock).await;
    assert!(matches!(out[..], [Processed::Sent { .. }]), "{out:?}");
    assert_eq!(transport.sent().len(), 1, "the provider replayed; nothing was sent twice");
    let rows: Vec<String> =
        f.t.superuser()
            .await
            .query("SELECT status FROM messages", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(rows, vec!["sent".to_owned()]);
}

#[tokio::test]
async fn texts_to_att_numbers_share_their_10dlc_campaigns_class_limit() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let limiter = Arc::new(nextier_platform::local::PgRateLimiter::new(f.t.db.clone()));
    let seq = Sequencer {
        db: f.t.db.clone(),
        gate: Arc::new(nextier_campaigns::gate::Gate::sandbox(transport.clone()).with_limiter(limiter)),
        clock: Arc::new(clock.clone()),
        queue: None,
    };
    {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        let n = nextier_store::numbers::NewNumber {
            e164: "+12125550501",
            provider_campaign_id: Some("CJRCU60"),
            att_class: Some("T"),
            ..Default::default()
        };
        nextier_store::numbers::add(&tx, &f.team, &n, "t").await.unwrap();
        tx.commit().await.unwrap();
    }
    let names: Vec<Option<&str>> = vec![Some("P"); 8];
    let people = f.contacts(&names).await;
    f.t.superuser().await.execute("UPDATE contact_phones SET carrier = 'AT&T Mobility'", &[]).await.unwrap();
    // Our campaign allows 4,500 a minute; AT&T's class T allows 75 (one every 0.8 s). Each
    // text reserves its slot and the consumer waits for it (on its clock): all eight go, 0.8 s
    // apart, recorded at their slots.
    let id = f
        .campaign(Settings { sends_per_minute: 4500, ..settings("fast") }, &[sms(Delay::Minutes(0), "Hi")], &people)
        .await;
    f.launch(&id, now).await;
    run(&f, &seq, &clock).await;
    assert_eq!(transport.sent().len(), 8, "every text went, each at its slot");
    assert!(
        clock.now() - now >= Duration::milliseconds(5600),
        "the eighth waited for its slot (on the consumer's clock)"
    );
    let at: Vec<DateTime<Utc>> =
        f.t.superuser()
            .await
            .query("SELECT sent_at FROM messages WHERE status = 'sent' ORDER BY sent_at", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(at.len(), 8);
    assert!(at.windows(2).all(|w| w[1] - w[0] == Duration::milliseconds(800)), "one every 0.8 s: {at:?}");
}

/// A clock on which waiting for a rate-limit slot is when the person texts STOP: the opt-out
/// commits while the text waits.
struct StopWhileWaiting {
    inner: ManualClock,
    superuser_url: String,
    team: String,
    numbers: Vec<String>,
}

impl Clock for StopWhileWaiting {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now()
    }

    fn sleep_until(&self, t: DateTime<Utc>) -> futures::future::BoxFuture<'static, ()> {
        let (url, team, numbers, wait) =
            (self.superuser_url.clone(), self.team.clone(), self.numbers.clone(), self.inner.sleep_until(t));
        Box::pin(async move {
            // The person (both numbers: whichever text waits) opts out.
            let su = nextier_testkit::pg::connect(&url).await.unwrap();
            for n in numbers {
                let id = nextier_domain::ids::RowId::new();
                su.execute(
                    "INSERT INTO suppressions (id, team_id, address, kind, source, created_by)
                     VALUES ($3, $1, $2, 'OPTED_OUT', 'inbound', 'person') ON CONFLICT DO NOTHING",
                    &[&team, &n, &id.as_str()],
                )
                .await
                .unwrap();
            }
            wait.await;
        })
    }
}

#[tokio::test]
async fn an_opt_out_that_comes_in_while_a_text_waits_for_its_slot_stops_it() {
    let f = fx().await;
    let now = daytime();
    let people = f.contacts(&[Some("A"), Some("B")]).await;
    let numbers = vec![phone_of(&f, &people[0]).await, phone_of(&f, &people[1]).await];
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let limiter = Arc::new(nextier_platform::local::PgRateLimiter::new(f.t.db.clone()));
    let seq = Sequencer {
        db: f.t.db.clone(),
        gate: Arc::new(nextier_campaigns::gate::Gate::sandbox(transport.clone()).with_limiter(limiter)),
        clock: Arc::new(StopWhileWaiting {
            inner: clock.clone(),
            superuser_url: f.t.superuser_url(),
            team: f.team.to_string(),
            numbers: numbers.clone(),
        }),
        queue: None,
    };
    // At one a second both are cleared at once and the second waits 1 s for its slot.
    let id =
        f.campaign(Settings { sends_per_minute: 60, ..settings("c") }, &[sms(Delay::Minutes(0), "Hi")], &people).await;
    f.launch(&id, now).await;
    tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap();
    let msgs = f.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
    let jobs: Vec<SequenceJob> = msgs.iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(jobs.len(), 2);
    let out = seq.process_all(&jobs).await;
    assert!(out.iter().all(|r| r.is_ok()));
    let sent: Vec<String> = transport.sent().into_iter().map(|s| s.to).collect();
    assert_eq!(sent.len(), 1, "only the text that did not wait went");
    let waited = numbers.iter().find(|n| !sent.contains(n)).unwrap();
    let (status, error): (String, Option<String>) =
        f.t.superuser()
            .await
            .query_one("SELECT status, error FROM messages WHERE to_address = $1", &[waited])
            .await
            .map(|r| (r.get(0), r.get(1)))
            .unwrap();
    assert_eq!(status, "failed", "the opt-out that came in during the wait stopped the text to {waited}");
    assert!(error.is_some_and(|e| e.contains("opt")), "its reason names the opt-out");
}

/// The brand and 10DLC campaign ids on a sending number are the team's own word: another
/// tenant who registers a number naming the same brand must not share, or drain, this team's
/// carrier buckets. Here the brand's quota is used up under the keys another team's sends (and
/// the unscoped keys of old) would fill, and this team's text to a T-Mobile number still goes.
#[tokio::test]
async fn another_tenant_naming_the_same_brand_cannot_spend_this_teams_carrier_quota() {
    use nextier_domain::rate::{Bucket, Limit, Take};
    use nextier_platform::RateLimiter;
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let transport = Arc::new(SandboxTransport::new());
    let limiter = Arc::new(nextier_platform::local::PgRateLimiter::new(f.t.db.clone()));
    let seq = Sequencer {
        db: f.t.db.clone(),
        gate: Arc::new(nextier_campaigns::gate::Gate::sandbox(transport.clone()).with_limiter(limiter.clone())),
        clock: Arc::new(clock.clone()),
        queue: None,
    };
    let number = {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        let n = nextier_store::numbers::add(
            &tx,
            &f.team,
            &nextier_store::numbers::NewNumber {
                e164: "+12125550311",
                brand_id: Some("BRAND1"),
                provider_campaign_id: Some("CAMP1"),
                att_class: Some("A"),
                tmobile_tier: Some("LOW"),
            },
            "t",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        n.id
    };
    let people = f.contacts(&[Some("Tia")]).await;
    f.t.superuser().await.execute("UPDATE contact_phones SET carrier = 'T-Mobile USA'", &[]).await.unwrap();
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}")], &people).await;
    {
        let mut conn = f.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
        nextier_store::numbers::assign(&tx, &f.team, &id, &[number]).await.unwrap();
        tx.commit().await.unwrap();
    }
    // Another team's sends naming BRAND1 used the whole day's LOW quota (2,000 segments).
    let (day, end) = nextier_domain::rate::pacific_day(now);
    let other = nextier_domain::ids::TeamId::new();
    for key in [format!("tmo:{other}:BRAND1:{day}"), format!("tmo:BRAND1:{day}")] {
        let b = [Bucket::new(key, Limit::Quota { limit: 2_000, window_end: end })];
        assert_eq!(limiter.take(&b, 2_000, now).await.unwrap(), Take::Granted);
    }
    f.launch(&id, now).await;
    run(&f, &seq, &clock).await;
    assert_eq!(transport.sent().len(), 1, "this team's own quota is untouched");
}
