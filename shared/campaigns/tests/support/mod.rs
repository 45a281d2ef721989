//! The campaigns test fixture: a team with two admins, contacts with numbers, campaigns.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nextier_campaigns::lifecycle::{self, LifecycleError, Who};
use nextier_campaigns::sequence::{Processed, SequenceJob, Sequencer};
use nextier_campaigns::SEQUENCE_QUEUE;
use nextier_domain::campaign::{CampaignStatus, Delay};
use nextier_domain::ids::{CampaignId, ContactId, TeamId, UserId};
use nextier_platform::local::{PgQueue, QueueSpec};
use nextier_platform::ports::clock::ManualClock;
use nextier_platform::Queue;
use nextier_store::campaigns::{self, Channel, EnrolRules, Settings, StepContent};
use nextier_store::contacts::Selection;
use nextier_store::{scope, Scope};
use nextier_testkit::TestDb;

pub static PHONES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub struct Fx {
    pub t: TestDb,
    pub team: TeamId,
    pub author: UserId,
    pub approver: UserId,
    pub queue: PgQueue,
}

pub async fn fx() -> Fx {
    let t = TestDb::new().await;
    let team = TeamId::new();
    let (author, approver) = (UserId::new(), UserId::new());
    let su = t.superuser().await;
    for (u, s) in [(&author, "author"), (&approver, "approver")] {
        su.execute("INSERT INTO users (id, subject) VALUES ($1, $2)", &[&u.as_str(), &s]).await.unwrap();
    }
    su.execute(
        "INSERT INTO teams (id, name, slug, created_by) VALUES ($1::text, 'T', $1::text, $2)",
        &[&team.as_str(), &author.as_str()],
    )
    .await
    .unwrap();
    for u in [&author, &approver] {
        su.execute(
            "INSERT INTO team_members (team_id, user_id, role, status) VALUES ($1, $2, 'ADMIN', 'APPROVED')",
            &[&team.as_str(), &u.as_str()],
        )
        .await
        .unwrap();
    }
    nextier_testkit::fixtures::postal_address(&t, &team).await;
    let queue = PgQueue::new(t.db.clone());
    queue.declare(&QueueSpec::with_dlq(SEQUENCE_QUEUE, StdDuration::from_secs(180), 5)).await.unwrap();
    Fx { t, team, author, approver, queue }
}

pub fn settings(name: &str) -> Settings {
    Settings {
        name: name.into(),
        description: None,
        starts_at: None,
        ends_at: None,
        sends_per_minute: 75,
        exit_on_reply: true,
        exit_on_meeting: true,
        auto_enrol: None,
    }
}

pub fn sms(delay: Delay, body: &str) -> StepContent {
    StepContent {
        channel: Channel::Sms,
        delay,
        subject: None,
        body: body.into(),
        template_id: None,
        opener_category: None,
        variants: vec![],
    }
}

impl Fx {
    pub async fn tx<'c>(&self, conn: &'c mut deadpool_postgres::Object) -> deadpool_postgres::Transaction<'c> {
        scope::begin(conn, &Scope::team(self.team.clone())).await.unwrap()
    }

    /// Contacts with a first name (or none) and a mobile number.
    pub async fn contacts(&self, names: &[Option<&str>]) -> Vec<ContactId> {
        let su = self.t.superuser().await;
        let mut ids = Vec::new();
        for name in names {
            let id = ContactId::new();
            su.execute(
                "INSERT INTO contacts (id, team_id, first_name, score) VALUES ($1, $2, $3, 50)",
                &[&id.as_str(), &self.team.as_str(), name],
            )
            .await
            .unwrap();
            let n = PHONES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let e164 = format!("+1212555{:04}", 1000 + n);
            su.execute(
                "INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
                 VALUES ($1, $2, $3, $4, 'mobile', true)",
                &[&nextier_domain::ids::RowId::new().as_str(), &self.team.as_str(), &id.as_str(), &e164],
            )
            .await
            .unwrap();
            ids.push(id);
        }
        ids
    }

    pub async fn campaign(&self, s: Settings, steps: &[StepContent], contacts: &[ContactId]) -> CampaignId {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = self.tx(&mut conn).await;
        let id = campaigns::create(&tx, &self.team, &s, Some(&self.author), self.author.as_str()).await.unwrap();
        for st in steps {
            campaigns::insert_step(&tx, &self.team, &id, None, st).await.unwrap();
        }
        let required = nextier_campaigns::staging::required_fields(&campaigns::steps(&tx, &id).await.unwrap());
        let required: Vec<&str> = required.iter().map(String::as_str).collect();
        let rules = EnrolRules {
            team: &self.team,
            campaign: &id,
            required_fields: &required,
            exclusive: true,
            first_run_at: None,
            actor: "test",
        };
        let out = campaigns::enrol(&tx, Selection::Ids(contacts), &rules).await.unwrap();
        assert_eq!(out.enrolled as usize, contacts.len(), "{:?}", out.skipped);
        tx.commit().await.unwrap();
        id
    }

    pub async fn author(&self) -> Who<'_> {
        Who { label: self.author.as_str(), user: Some(&self.author), admin: true }
    }

    pub async fn approver(&self) -> Who<'_> {
        Who { label: self.approver.as_str(), user: Some(&self.approver), admin: true }
    }

    pub async fn move_to(
        &self,
        id: &CampaignId,
        to: CampaignStatus,
        who: Who<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = self.tx(&mut conn).await;
        lifecycle::apply(&tx, &self.team, id, to, who, None, now).await?;
        tx.commit().await.unwrap();
        Ok(())
    }

    /// Staged, approved by someone else, running from `now`.
    pub async fn launch(&self, id: &CampaignId, now: DateTime<Utc>) {
        self.move_to(id, CampaignStatus::Staged, self.author().await, now).await.unwrap();
        self.move_to(id, CampaignStatus::Approved, self.approver().await, now).await.unwrap();
        self.move_to(id, CampaignStatus::Running, self.approver().await, now).await.unwrap();
    }

    /// A sequencer whose gate delivers through `transport`.
    pub fn sequencer_with(
        &self,
        clock: &ManualClock,
        transport: &Arc<nextier_campaigns::gate::SandboxTransport>,
    ) -> Sequencer {
        Sequencer {
            db: self.t.db.clone(),
            gate: Arc::new(
                nextier_campaigns::gate::Gate::sandbox(transport.clone())
                    .with_unsubscribe_links(nextier_outbound::UnsubscribeLinks::from_env_or_local()),
            ),
            clock: Arc::new(clock.clone()),
            queue: None,
        }
    }

    pub fn sequencer(&self, clock: &ManualClock) -> Sequencer {
        Sequencer {
            db: self.t.db.clone(),
            gate: Arc::new(nextier_campaigns::gate::sandbox()),
            clock: Arc::new(clock.clone()),
            queue: None,
        }
    }

    /// Receives and processes everything on the sequence queue.
    pub async fn drain(&self, seq: &Sequencer) -> Vec<Processed> {
        let mut out = Vec::new();
        loop {
            let msgs = self.queue.receive(SEQUENCE_QUEUE, 10).await.unwrap();
            if msgs.is_empty() {
                return out;
            }
            for m in msgs {
                assert_eq!(m.attributes.get("team_id").map(String::as_str), Some(self.team.as_str()));
                assert!(m.attributes.get("correlation_id").is_some_and(|c| !c.is_empty()));
                let job: SequenceJob = serde_json::from_str(&m.body).unwrap();
                out.push(seq.process(&job).await.unwrap());
                self.queue.delete(SEQUENCE_QUEUE, &m.receipt_handle).await.unwrap();
            }
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.t.superuser().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

/// The next 15:00 UTC (10:00 or 11:00 in New York, where the test numbers are): inside the
/// quiet-hours window for hours, so tests do not depend on the time they run.
pub fn daytime() -> DateTime<Utc> {
    let now = Utc::now();
    let today = now.date_naive().and_hms_opt(15, 0, 0).unwrap().and_utc();
    if today > now {
        today
    } else {
        today + Duration::days(1)
    }
}

pub fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}
