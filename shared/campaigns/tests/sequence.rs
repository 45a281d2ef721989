//! Campaigns on a real database and the Postgres queue: the lifecycle under concurrency, the
//! tick's budget, and a clock-controlled run of a sequence across simulated days.

mod support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use nextier_campaigns::lifecycle::{self, LifecycleError, Who};
use nextier_campaigns::sequence::{Processed, SequenceJob};
use nextier_campaigns::tick::{tick, TickConfig};
use nextier_campaigns::{starter, SEQUENCE_QUEUE};
use nextier_domain::campaign::{self as rules, CampaignStatus, Delay};
use nextier_domain::ids::CampaignId;
use nextier_platform::local::PgQueue;
use nextier_platform::ports::clock::{Clock, ManualClock};
use nextier_platform::Queue;
use nextier_store::campaigns::{self, Channel, EnrolRules, ScoreBand, Settings, StepContent};
use nextier_store::contacts::Selection;
use nextier_store::{scope, Scope};
use support::*;

#[tokio::test]
async fn the_database_and_the_domain_agree_on_every_transition() {
    let f = fx().await;
    let su = f.t.superuser().await;
    for from in rules::ALL {
        for to in rules::ALL {
            let db: bool = su
                .query_one("SELECT campaign_transition_allowed($1, $2)", &[&from.as_str(), &to.as_str()])
                .await
                .unwrap()
                .get(0);
            assert_eq!(db, from.can_move_to(to), "{from} -> {to}");
        }
    }
}

#[tokio::test]
async fn no_statement_can_make_an_illegal_move() {
    let f = fx().await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi")], &f.contacts(&[Some("A")]).await).await;
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = f.tx(&mut conn).await;
    let err = tx
        .execute("UPDATE campaigns SET status = 'RUNNING' WHERE id = $1", &[&id.as_str()])
        .await
        .expect_err("DRAFT -> RUNNING must be refused by the database");
    let msg = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("cannot move from DRAFT to RUNNING"), "{err:?}");
    drop(tx);
    // An approved campaign whose approval was wiped cannot run either.
    let now = daytime();
    f.move_to(&id, CampaignStatus::Staged, f.author().await, now).await.unwrap();
    f.move_to(&id, CampaignStatus::Approved, f.approver().await, now).await.unwrap();
    let tx = f.tx(&mut conn).await;
    let err = tx
        .execute("UPDATE campaigns SET status = 'RUNNING', approved_at = NULL WHERE id = $1", &[&id.as_str()])
        .await
        .expect_err("running without approval");
    let msg = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("without an approval"), "{err:?}");
}

#[tokio::test]
async fn approval_needs_another_admin_unless_the_team_allows_self_approval() {
    let f = fx().await;
    let now = daytime();
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi")], &f.contacts(&[Some("A")]).await).await;
    f.move_to(&id, CampaignStatus::Staged, f.author().await, now).await.unwrap();
    let own = f.move_to(&id, CampaignStatus::Approved, f.author().await, now).await;
    assert!(matches!(own, Err(LifecycleError::Forbidden(ref m)) if m.contains("author")), "{own:?}");
    let key = Who { label: "key_01JD8Z6Q3M4N5P6R7S8T9V0W1X", user: None, admin: true };
    assert!(matches!(f.move_to(&id, CampaignStatus::Approved, key, now).await, Err(LifecycleError::Forbidden(_))));
    let member = Who { label: f.approver.as_str(), user: Some(&f.approver), admin: false };
    assert!(matches!(f.move_to(&id, CampaignStatus::Approved, member, now).await, Err(LifecycleError::Forbidden(_))));
    f.t.superuser()
        .await
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'campaigns', 'allow_self_approval', 'true')",
            &[&f.team.as_str()],
        )
        .await
        .unwrap();
    f.move_to(&id, CampaignStatus::Approved, f.author().await, now).await.unwrap();
    assert_eq!(
        f.scalar(&format!("SELECT count(*) FROM campaigns WHERE id = '{id}' AND approved_by = '{}'", f.author)).await,
        1
    );
}

async fn race(f: &Fx, id: &CampaignId, to: CampaignStatus, n: usize) -> usize {
    let now = daytime();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (db, team, id, approver) = (f.t.db.clone(), f.team.clone(), id.clone(), f.approver.clone());
            tokio::spawn(async move {
                let mut conn = db.conn().await.unwrap();
                let tx = scope::begin(&mut conn, &Scope::team(team.clone())).await.unwrap();
                let who = Who { label: approver.as_str(), user: Some(&approver), admin: true };
                match lifecycle::apply(&tx, &team, &id, to, who, None, now).await {
                    Ok(_) => {
                        tx.commit().await.unwrap();
                        true
                    }
                    Err(LifecycleError::Refused(r)) => {
                        assert_eq!(r.to, to);
                        false
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    wins
}

#[tokio::test]
async fn of_many_concurrent_approvals_and_starts_exactly_one_wins() {
    let f = fx().await;
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi")], &f.contacts(&[Some("A")]).await).await;
    f.move_to(&id, CampaignStatus::Staged, f.author().await, Utc::now()).await.unwrap();
    assert_eq!(race(&f, &id, CampaignStatus::Approved, 8).await, 1);
    assert_eq!(race(&f, &id, CampaignStatus::Running, 8).await, 1);
    let q = |to: &str| {
        format!("SELECT count(*) FROM campaign_state_changes WHERE campaign_id = '{id}' AND to_status = '{to}'")
    };
    assert_eq!(f.scalar(&q("APPROVED")).await, 1);
    assert_eq!(f.scalar(&q("RUNNING")).await, 1);
    // One CampaignStateChanged event per move, in the outbox.
    assert_eq!(
        f.scalar("SELECT count(*) FROM outbox WHERE destination = 'CampaignStateChanged'").await,
        3,
        "staged, approved, running"
    );
}

#[tokio::test]
async fn a_three_step_sequence_sends_each_step_at_its_time_across_simulated_days() {
    let f = fx().await;
    // Thursday 3 December 2026, 15:00 UTC.
    let t0 = at(2026, 12, 3, 15, 0);
    let clock = ManualClock::at(t0);
    let steps = [
        sms(Delay::Minutes(0), "Hi {{firstName}}, quick question about {{company|your business}}"),
        sms(Delay::Days(2), "{{firstName}}, following up"),
        StepContent {
            channel: Channel::Email,
            delay: Delay::BusinessDays(3),
            subject: Some("Last note, {{firstName}}".into()),
            body: "Closing the loop.".into(),
            template_id: None,
            opener_category: None,
            variants: vec![],
        },
    ];
    let contacts = f.contacts(&[Some("Ada"), Some("Grace")]).await;
    let su = f.t.superuser().await;
    for c in &contacts {
        su.execute(
            "INSERT INTO contact_emails (id, team_id, contact_id, email, is_primary) VALUES ($1, $2, $3, $4, true)",
            &[
                &nextier_domain::ids::RowId::new().as_str(),
                &f.team.as_str(),
                &c.as_str(),
                &format!("{c}@example.com").to_lowercase(),
            ],
        )
        .await
        .unwrap();
    }
    let id = f.campaign(settings("three"), &steps, &contacts).await;
    f.launch(&id, t0).await;
    let seq = f.sequencer(&clock);
    let cfg = TickConfig::default();

    // Tick every simulated minute, but jump over minutes where nothing is due.
    let end = t0 + Duration::days(10);
    let mut ticks = 0;
    while clock.now() < end {
        tick(&f.t.worker, &f.queue, clock.now(), &cfg).await.unwrap();
        f.drain(&seq).await;
        ticks += 1;
        let next: Option<DateTime<Utc>> = su
            .query_one(
                "SELECT min(next_run_at) FROM campaign_enrolments WHERE campaign_id = $1 AND status = 'active'",
                &[&id.as_str()],
            )
            .await
            .unwrap()
            .get(0);
        match next {
            Some(n) if n > clock.now() => clock.set(n),
            Some(_) => clock.advance(Duration::minutes(1)),
            None => break,
        }
    }
    assert!(ticks < 20, "the run should need a handful of ticks, took {ticks}");

    let rows = su
        .query(
            "SELECT s.position, m.sent_at, m.body, m.subject, m.channel FROM messages m
               JOIN campaign_steps s ON s.id = m.step_id WHERE m.campaign_id = $1 ORDER BY s.position, m.body",
            &[&id.as_str()],
        )
        .await
        .unwrap();
    let sent: Vec<(i32, DateTime<Utc>, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let saturday = at(2026, 12, 5, 15, 0); // +2 days
    let next_thursday = at(2026, 12, 10, 15, 0); // 3 business days after a Saturday: Mon→Thu
    assert_eq!(
        sent,
        vec![
            (1, t0, "Hi Ada, quick question about your business".to_owned()),
            (1, t0, "Hi Grace, quick question about your business".to_owned()),
            (2, saturday, "Ada, following up".to_owned()),
            (2, saturday, "Grace, following up".to_owned()),
            (3, next_thursday, "Closing the loop.".to_owned()),
            (3, next_thursday, "Closing the loop.".to_owned()),
        ]
    );
    let mut subjects: Vec<Option<String>> = rows.iter().filter(|r| r.get::<_, i32>(0) == 3).map(|r| r.get(3)).collect();
    subjects.sort();
    assert_eq!(subjects, vec![Some("Last note, Ada".into()), Some("Last note, Grace".into())]);
    assert_eq!(
        f.scalar(&format!(
            "SELECT count(*) FROM campaign_enrolments WHERE campaign_id = '{id}' AND status = 'completed'"
        ))
        .await,
        2
    );
    assert_eq!(f.scalar("SELECT count(*) FROM campaign_executions WHERE status = 'sent'").await, 6);

    // A late duplicate of an early message changes nothing.
    let enrolment: String = su
        .query_one("SELECT id FROM campaign_enrolments WHERE campaign_id = $1 LIMIT 1", &[&id.as_str()])
        .await
        .unwrap()
        .get(0);
    let dup = SequenceJob {
        team_id: f.team.clone(),
        campaign_id: id.clone(),
        enrolment_id: nextier_domain::ids::EnrolmentId::from_trusted(enrolment),
        step: 1,
        slot: None,
    };
    assert_eq!(seq.process(&dup).await.unwrap(), Processed::Stale);
    assert_eq!(f.scalar("SELECT count(*) FROM messages").await, 6);
}

#[tokio::test]
async fn the_tick_never_claims_more_than_the_budget_or_a_campaigns_rate() {
    let f = fx().await;
    let now = daytime();
    let many = f.contacts(&vec![Some("A"); 30]).await;
    let (a, b) = many.split_at(20);
    let fast =
        f.campaign(Settings { sends_per_minute: 100, ..settings("fast") }, &[sms(Delay::Minutes(0), "Hi")], a).await;
    let slow =
        f.campaign(Settings { sends_per_minute: 3, ..settings("slow") }, &[sms(Delay::Minutes(0), "Hi")], b).await;
    f.launch(&fast, now).await;
    f.launch(&slow, now).await;

    let small = TickConfig { budget: 7, chunk: 4, ..TickConfig::default() };
    let s = tick(&f.t.worker, &f.queue, now, &small).await.unwrap();
    assert_eq!((s.claimed, s.enqueued), (7, 7));
    assert_eq!(f.queue.depth(SEQUENCE_QUEUE).await.unwrap(), 7);
    // Nothing was processed: the next tick finds the budget spent by what is in flight.
    let again = tick(&f.t.worker, &f.queue, now + Duration::seconds(60), &small).await.unwrap();
    assert_eq!(again.claimed, 0);
    assert_eq!(f.queue.depth(SEQUENCE_QUEUE).await.unwrap(), 7);

    // With room to spare, each campaign still gets no more than its rate.
    let clock = ManualClock::at(now);
    let seq = f.sequencer(&clock);
    f.drain(&seq).await;
    let big = TickConfig { budget: 1000, ..TickConfig::default() };
    tick(&f.t.worker, &f.queue, now + Duration::seconds(61), &big).await.unwrap();
    let claimed = |c: &CampaignId| {
        format!("SELECT count(*) FROM campaign_enrolments WHERE campaign_id = '{c}' AND claimed_until IS NOT NULL")
    };
    let sent = |c: &CampaignId| format!("SELECT count(*) FROM messages WHERE campaign_id = '{c}'");
    assert_eq!(f.scalar(&sent(&fast)).await + f.scalar(&sent(&slow)).await, 7, "the first tick's seven went out");
    assert!(f.scalar(&sent(&slow)).await <= 3, "the slow campaign's first minute held at most 3");
    assert_eq!(f.scalar(&claimed(&slow)).await, 3, "10 due, rate 3 per minute");
    assert_eq!(f.scalar(&claimed(&fast)).await, 20 - f.scalar(&sent(&fast)).await, "everything else due fits its rate");
}

#[tokio::test]
async fn a_lost_queue_message_is_claimed_again_after_its_lease() {
    let f = fx().await;
    let now = daytime();
    let id = f.campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi")], &f.contacts(&[Some("A")]).await).await;
    f.launch(&id, now).await;
    let cfg = TickConfig::default();
    assert_eq!(tick(&f.t.worker, &f.queue, now, &cfg).await.unwrap().claimed, 1);
    // The message vanishes (purged, or the send after the claim was lost).
    f.t.superuser().await.execute("DELETE FROM local_queue_messages", &[]).await.unwrap();
    assert_eq!(tick(&f.t.worker, &f.queue, now + Duration::minutes(5), &cfg).await.unwrap().claimed, 0);
    assert_eq!(
        tick(&f.t.worker, &f.queue, now + cfg.lease_chrono() + Duration::seconds(1), &cfg).await.unwrap().claimed,
        1
    );
}

trait LeaseExt {
    fn lease_chrono(&self) -> Duration;
}
impl LeaseExt for TickConfig {
    fn lease_chrono(&self) -> Duration {
        Duration::from_std(self.lease).unwrap()
    }
}

#[tokio::test]
async fn exits_pauses_and_missing_fields_never_send() {
    let f = fx().await;
    let now = daytime();
    let clock = ManualClock::at(now);
    let seq = f.sequencer(&clock);
    let people = f.contacts(&[Some("Opted"), Some("Booked"), Some("Normal"), Some("Later")]).await;
    let id = f
        .campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}"), sms(Delay::Hours(1), "Again")], &people)
        .await;
    f.launch(&id, now).await;
    let su = f.t.superuser().await;
    su.execute("UPDATE contacts SET lead_state = 'suppressed' WHERE id = $1", &[&people[0].as_str()]).await.unwrap();
    su.execute("UPDATE contacts SET lead_state = 'appointment_booked' WHERE id = $1", &[&people[1].as_str()])
        .await
        .unwrap();
    // The name vanished after enrolment: the send is refused, not blanked.
    su.execute("UPDATE contacts SET first_name = ' ' WHERE id = $1", &[&people[3].as_str()]).await.unwrap();
    tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap();
    let mut outcomes = f.drain(&seq).await;
    outcomes.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(outcomes.len(), 4);
    let reasons: Vec<String> = su
        .query(
            "SELECT e.status || ':' || coalesce(e.exit_reason, '') FROM campaign_enrolments e
               JOIN contacts c ON c.id = e.contact_id WHERE e.campaign_id = $1 ORDER BY c.first_name",
            &[&id.as_str()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Order by first_name: ' ' (Later), Booked, Normal, Opted.
    assert_eq!(reasons[1], "exited:meeting_booked");
    assert_eq!(reasons[2], "active:");
    assert_eq!(reasons[3], "exited:opt_out");
    assert!(reasons[0].starts_with("failed:merge field {{firstName}}"), "{}", reasons[0]);
    let bodies: Vec<String> =
        su.query("SELECT body FROM messages", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(bodies, vec!["Hi Normal".to_owned()]);

    // Paused: the due step is released, not sent; resumed: it goes out.
    f.move_to(&id, CampaignStatus::Paused, f.author().await, now).await.unwrap();
    clock.advance(Duration::hours(1));
    // Claimed while running would be released by the consumer; here nothing is claimed at all.
    assert_eq!(tick(&f.t.worker, &f.queue, clock.now(), &TickConfig::default()).await.unwrap().claimed, 0);
    f.move_to(&id, CampaignStatus::Running, f.approver().await, clock.now()).await.unwrap();
    assert_eq!(tick(&f.t.worker, &f.queue, clock.now(), &TickConfig::default()).await.unwrap().claimed, 1);
    f.move_to(&id, CampaignStatus::Paused, f.author().await, clock.now()).await.unwrap();
    assert_eq!(f.drain(&seq).await, vec![Processed::Released]);
    assert_eq!(f.scalar("SELECT count(*) FROM messages").await, 1);
}

#[tokio::test]
async fn staging_refuses_a_required_field_some_contact_lacks() {
    let f = fx().await;
    let people = f.contacts(&[Some("Ada"), None]).await;
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = f.tx(&mut conn).await;
    let id = campaigns::create(&tx, &f.team, &settings("c"), Some(&f.author), "t").await.unwrap();
    campaigns::insert_step(&tx, &f.team, &id, None, &sms(Delay::Minutes(0), "Hi {{firstName}}")).await.unwrap();
    // Enrolled before the step existed would be caught at staging; here enrol without the rule.
    let rules = EnrolRules {
        team: &f.team,
        campaign: &id,
        required_fields: &[],
        exclusive: true,
        first_run_at: None,
        actor: "t",
    };
    campaigns::enrol(&tx, Selection::Ids(&people), &rules).await.unwrap();
    tx.commit().await.unwrap();
    let err = f.move_to(&id, CampaignStatus::Staged, f.author().await, Utc::now()).await.unwrap_err();
    let LifecycleError::Invalid(problems) = err else { panic!("{err:?}") };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "steps[0].body");
    assert!(problems[0].message.contains("{{firstName}} is empty for 1 enrolled contact"), "{}", problems[0].message);

    // Enrolling with the rule skips the contact and says why.
    let other = f.contacts(&[None]).await;
    let tx = f.tx(&mut conn).await;
    let rules = EnrolRules { required_fields: &["firstName"], ..rules };
    let out = campaigns::enrol(&tx, Selection::Ids(&other), &rules).await.unwrap();
    assert_eq!(out.enrolled, 0);
    assert!(out.skipped[0].reason.contains("firstName"));
}

#[tokio::test]
async fn a_contact_is_in_one_live_campaign_unless_the_team_allows_more() {
    let f = fx().await;
    let people = f.contacts(&[Some("A")]).await;
    let first = f.campaign(settings("one"), &[sms(Delay::Minutes(0), "Hi")], &people).await;
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = f.tx(&mut conn).await;
    let second = campaigns::create(&tx, &f.team, &settings("two"), Some(&f.author), "t").await.unwrap();
    let rules = EnrolRules {
        team: &f.team,
        campaign: &second,
        required_fields: &[],
        exclusive: true,
        first_run_at: None,
        actor: "t",
    };
    let out = campaigns::enrol(&tx, Selection::Ids(&people), &rules).await.unwrap();
    assert_eq!(out.enrolled, 0);
    assert_eq!(out.skipped[0].reason, format!("already enrolled in live campaign {first}"));
    let again =
        campaigns::enrol(&tx, Selection::Ids(&people), &EnrolRules { campaign: &first, ..rules }).await.unwrap();
    assert_eq!(again.skipped[0].reason, "already enrolled in this campaign");
    // A team that allows overlap enrols non-exclusively.
    let overlap =
        campaigns::enrol(&tx, Selection::Ids(&people), &EnrolRules { exclusive: false, ..rules }).await.unwrap();
    assert_eq!(overlap.enrolled, 1);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_starter_starts_only_approved_campaigns_whose_time_has_come() {
    let f = fx().await;
    let now = daytime();
    let people = f.contacts(&[Some("A"), Some("B")]).await;
    let scheduled = Settings { starts_at: Some(now - Duration::minutes(1)), ..settings("approved") };
    let approved = f.campaign(scheduled.clone(), &[sms(Delay::Minutes(0), "Hi")], &people[..1]).await;
    let draft =
        f.campaign(Settings { name: "draft".into(), ..scheduled }, &[sms(Delay::Minutes(0), "Hi")], &people[1..]).await;
    f.move_to(&approved, CampaignStatus::Staged, f.author().await, now).await.unwrap();
    f.move_to(&approved, CampaignStatus::Approved, f.approver().await, now).await.unwrap();

    let outbox = nextier_platform::outbox::OutboxPublisher::new(
        f.t.worker.clone(),
        Arc::new(nextier_platform::local::PgQueue::new(f.t.db.clone())),
        Arc::new(nextier_platform::local::PgEventBus::new(f.t.db.clone(), "nextier")),
    );
    let s = starter::run(&f.t.worker, &outbox, now).await.unwrap();
    assert_eq!((s.started, s.completed), (1, 0));
    let status = |c: &CampaignId| format!("SELECT count(*) FROM campaigns WHERE id = '{c}' AND status = 'RUNNING'");
    assert_eq!(f.scalar(&status(&approved)).await, 1);
    assert_eq!(f.scalar(&status(&draft)).await, 0, "a DRAFT never starts, whatever its start time");
    let actor: String =
        f.t.superuser()
            .await
            .query_one(
                "SELECT actor FROM campaign_state_changes WHERE campaign_id = $1 AND to_status = 'RUNNING'",
                &[&approved.as_str()],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(actor, "system:scheduler");
    // The started campaign's enrolment is due now.
    assert_eq!(tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap().claimed, 1);
    let _ = ScoreBand { min_score: 0, max_score: 1 };
}

/// A queue that refuses every other message of a batch, as SQS may report per entry.
struct HalfDown(PgQueue);

#[async_trait::async_trait]
impl Queue for HalfDown {
    async fn send(&self, q: &str, m: nextier_platform::OutgoingMessage) -> nextier_platform::ports::Result<String> {
        self.0.send(q, m).await
    }
    async fn send_batch(
        &self,
        q: &str,
        msgs: Vec<nextier_platform::OutgoingMessage>,
    ) -> nextier_platform::ports::Result<Vec<nextier_platform::ports::Result<String>>> {
        let mut out = Vec::new();
        for (i, m) in msgs.into_iter().enumerate() {
            out.push(if i % 2 == 0 {
                self.0.send(q, m).await
            } else {
                Err(nextier_platform::PlatformError::Unavailable("throttled".into()))
            });
        }
        Ok(out)
    }
    async fn receive(
        &self,
        q: &str,
        max: u32,
    ) -> nextier_platform::ports::Result<Vec<nextier_platform::ReceivedMessage>> {
        self.0.receive(q, max).await
    }
    async fn delete(&self, q: &str, r: &str) -> nextier_platform::ports::Result<()> {
        self.0.delete(q, r).await
    }
    async fn change_visibility(&self, q: &str, r: &str, d: StdDuration) -> nextier_platform::ports::Result<()> {
        self.0.change_visibility(q, r, d).await
    }
}

#[tokio::test]
async fn claims_whose_messages_were_refused_are_given_back_at_once() {
    let f = fx().await;
    let now = daytime();
    let id = f
        .campaign(
            settings("c"),
            &[sms(Delay::Minutes(0), "Hi")],
            &f.contacts(&[Some("A"), Some("B"), Some("C"), Some("D")]).await,
        )
        .await;
    f.launch(&id, now).await;
    let half = HalfDown(PgQueue::new(f.t.db.clone()));
    let s = tick(&f.t.worker, &half, now, &TickConfig::default()).await.unwrap();
    assert_eq!((s.claimed, s.enqueued, s.released), (4, 2, 2));
    assert_eq!(f.queue.depth(SEQUENCE_QUEUE).await.unwrap(), 2);
    // The two refused are claimable again straight away; the two queued are not.
    let again = tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap();
    assert_eq!(again.claimed, 2);
    assert_eq!(f.queue.depth(SEQUENCE_QUEUE).await.unwrap(), 4);
}

#[tokio::test]
async fn the_sqs_handler_acknowledges_malformed_and_stale_messages_and_sends_real_ones() {
    let f = fx().await;
    let now = daytime();
    let id = f
        .campaign(settings("c"), &[sms(Delay::Minutes(0), "Hi {{firstName}}")], &f.contacts(&[Some("Ada")]).await)
        .await;
    f.launch(&id, now).await;
    let seq = f.sequencer(&ManualClock::at(now));
    let raw = std::fs::read_to_string(nextier_testkit::workspace_root().join("events/consumer-campaign-sequence.json"))
        .unwrap();
    let sample: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&raw).unwrap();
    // The sample names an enrolment this database does not have, and a malformed message:
    // both are acknowledged (retrying cannot help), nothing is sent.
    let resp = nextier_campaigns::sequence::handle(&seq, sample.clone()).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(f.scalar("SELECT count(*) FROM messages").await, 0);

    // The same envelope carrying a real job, delivered twice in one batch: sent once.
    tick(&f.t.worker, &f.queue, now, &TickConfig::default()).await.unwrap();
    let queued = f.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
    let mut event = sample;
    event.records.truncate(1);
    let mut record = event.records[0].clone();
    record.body = Some(queued[0].body.clone());
    record.message_attributes.get_mut("team_id").unwrap().string_value = Some(f.team.to_string());
    event.records = vec![record.clone(), record];
    let resp = nextier_campaigns::sequence::handle(&seq, event).await;
    assert!(resp.batch_item_failures.is_empty());
    let bodies: Vec<String> =
        f.t.superuser().await.query("SELECT body FROM messages", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(bodies, vec!["Hi Ada".to_owned()]);
}

#[tokio::test]
async fn merging_contacts_moves_enrolments_without_double_booking() {
    let f = fx().await;
    let people = f.contacts(&[Some("Keep"), Some("Gone")]).await;
    let a = f.campaign(settings("a"), &[sms(Delay::Minutes(0), "Hi")], &people[..1]).await;
    let b = f.campaign(settings("b"), &[sms(Delay::Minutes(0), "Hi")], &people[1..]).await;
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = f.tx(&mut conn).await;
    nextier_campaigns::merge::merge_contacts(&tx, &f.team, &people[0], &people[1], None, "t").await.unwrap();
    tx.commit().await.unwrap();
    let rows: Vec<(String, String, String)> =
        f.t.superuser()
            .await
            .query("SELECT campaign_id, contact_id, status FROM campaign_enrolments ORDER BY campaign_id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    // The survivor keeps its live enrolment; the merged one's, which would double-book the
    // person, is removed, and moves with the rest of the history to the survivor.
    let mut want = vec![
        (a.to_string(), people[0].to_string(), "active".to_owned()),
        (b.to_string(), people[0].to_string(), "removed".to_owned()),
    ];
    want.sort();
    assert_eq!(rows, want);
}
