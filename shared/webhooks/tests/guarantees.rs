//! Opt-outs under attack, through the path a deployed system runs: a signed SignalHouse
//! webhook in, the outbox published to the (Postgres-backed, SQS-semantics) queues, the queue
//! handlers the Lambdas run, the outbound gate, the sandbox carrier; the effect read back.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use chrono::Utc;
use http::{Request, StatusCode};
use nextier_domain::ids::{ContactId, TeamId};
use nextier_domain::phone::E164;
use nextier_domain::webhook_signature::sign_signalhouse;
use nextier_inbound::Processor;
use nextier_outbound::{Gate, OutboundRequest, Prepared, Purpose, SandboxTransport, Verdict};
use nextier_platform::local::{PgEventBus, PgQueue, QueueSpec};
use nextier_platform::outbox::OutboxPublisher;
use nextier_platform::ports::clock::ManualClock;
use nextier_platform::Queue;
use nextier_store::campaigns::Channel;
use nextier_store::contacts::{self, Fields, NewContact, NewPhone};
use nextier_store::{scope, Scope};
use nextier_testkit::fixtures::{sending_number, team};
use nextier_testkit::TestDb;
use nextier_webhooks::signalhouse::{self as webhook, WebhookState};
use serde_json::json;
use tower::ServiceExt;

const SECRET: &[u8] = b"whsec_guarantees";
const NUMBER: &str = "+12127363100";
const QUEUES: [&str; 3] = [nextier_inbound::QUEUE, nextier_inbound::ANSWERS_QUEUE, nextier_inbound::AI_QUEUE];

struct Fx {
    t: TestDb,
    team: TeamId,
    sandbox: Arc<SandboxTransport>,
    p: Arc<Processor>,
    queue: Arc<PgQueue>,
    router: axum::Router,
}

async fn fx() -> Fx {
    let t = TestDb::new().await;
    let team = team(&t, "Acme").await;
    sending_number(&t, &team, NUMBER).await;
    let queue = Arc::new(PgQueue::new(t.worker.clone()));
    for q in QUEUES {
        queue.declare(&QueueSpec::with_dlq(q, std::time::Duration::from_secs(180), 5)).await.unwrap();
    }
    let publisher =
        OutboxPublisher::new(t.worker.clone(), queue.clone(), Arc::new(PgEventBus::new(t.worker.clone(), "default")));
    let sandbox = Arc::new(SandboxTransport::new());
    let p = Arc::new(Processor {
        db: t.worker.clone(),
        gate: Arc::new(Gate::sandbox(sandbox.clone())),
        clock: Arc::new(ManualClock::at(Utc::now())),
        outbox: Some(publisher.clone()),
        suggester: Arc::new(nextier_inbound::suggest::TemplateSuggester),
    });
    let router = webhook::router(WebhookState::new(t.worker.clone(), publisher, vec![SECRET.to_vec()]));
    Fx { t, team, sandbox, p, queue, router }
}

impl Fx {
    /// A reply from `from`, signed and posted to the webhook as SignalHouse would.
    async fn reply(&self, from: &str, text: &str) {
        let id = nextier_domain::ids::RowId::new().to_string();
        let body = json!({"event": "message.received", "text": text, "to": NUMBER, "from": from,
                          "message_id": format!("sh-{id}"), "timestamp": "2026-01-27T18:21:10.78-05:00"})
        .to_string();
        let ts = Utc::now().timestamp_millis();
        let sig = sign_signalhouse(SECRET, ts, body.as_bytes());
        let req = Request::post(webhook::PATH)
            .header("content-type", "application/json")
            .header("x-signalhouse-signature-v1", format!("t={ts},v1={sig}"))
            .header("x-signalhouse-delivery-id", id)
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Runs every queue's handler (as the Lambdas' event source mappings would) until all are
    /// empty; returns how many messages failed.
    async fn drain(&self) -> usize {
        let mut failed = 0;
        for _ in 0..20 {
            let mut any = false;
            for q in QUEUES {
                let batch = self.queue.receive(q, 10).await.unwrap();
                if batch.is_empty() {
                    continue;
                }
                any = true;
                let event = sqs_event(q, &batch);
                let resp = nextier_inbound::handle_queue(&self.p, q, event).await;
                let bad: Vec<String> = resp.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
                failed += bad.len();
                for m in batch.iter().filter(|m| !bad.contains(&m.id)) {
                    self.queue.delete(q, &m.receipt_handle).await.unwrap();
                }
            }
            if !any {
                break;
            }
        }
        failed
    }

    async fn contact(&self, phones: &[&str], emails: &[&str]) -> ContactId {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let new = NewContact {
            fields: Fields {
                first_name: Some("Ada".into()),
                status: "active".into(),
                pipeline_status: "raw".into(),
                custom_fields: json!({}),
                ..Fields::default()
            },
            phones: phones
                .iter()
                .enumerate()
                .map(|(i, p)| NewPhone { e164: E164::parse(p).unwrap(), kind: "mobile".into(), is_primary: i == 0 })
                .collect(),
            emails: emails.iter().map(|e| e.to_string()).collect(),
            address: None,
            needs_review: false,
        };
        let id = contacts::create(&tx, &self.team, &new, "test").await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn sql(&self, q: &str) {
        self.t.superuser().await.batch_execute(q).await.unwrap();
    }

    async fn rows(&self, q: &str) -> Vec<Vec<String>> {
        let rows = self.t.superuser().await.query(q, &[]).await.unwrap();
        rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default()).collect()).collect()
    }

    async fn count(&self, q: &str) -> i64 {
        self.t.superuser().await.query_one(q, &[]).await.unwrap().get(0)
    }

    /// What the gate decides for an outreach message to the contact on `channel`.
    async fn outreach(&self, contact: &ContactId, channel: Channel, key: &str) -> Verdict {
        let mut conn = self.t.db.conn().await.unwrap();
        let tx = scope::begin(&mut conn, &Scope::team(self.team.clone())).await.unwrap();
        let (c, _) = contacts::get_any(&tx, contact).await.unwrap();
        let req = OutboundRequest {
            team: &self.team,
            contact: &c,
            channel,
            subject: Some("Hello".into()),
            body: "Still interested in selling?".into(),
            send_key: key.into(),
            campaign: None,
            sent_by: "test",
            purpose: Purpose::Outreach,
            to: None,
            now: Utc::now(),
        };
        match self.p.gate.prepare(&tx, &req).await.unwrap() {
            Prepared::Decided(v) => v,
            Prepared::Ready(d) => Verdict::Sent { message: d.message().clone() },
        }
    }
}

fn sqs_event(queue: &str, batch: &[nextier_platform::ReceivedMessage]) -> aws_lambda_events::event::sqs::SqsEvent {
    let records: Vec<_> = batch
        .iter()
        .map(|m| {
            json!({"messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
                   "attributes": {"ApproximateReceiveCount": m.receive_count.to_string()},
                   "messageAttributes": HashMap::<String, String>::new(),
                   "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue}")})
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

/// Two running campaigns with the contact enrolled, and an open call-queue entry.
async fn engaged(f: &Fx, contact: &ContactId) {
    use nextier_domain::ids::{CallId, CampaignId, EnrolmentId};
    let (c1, c2) = (CampaignId::new(), CampaignId::new());
    f.sql(&format!(
        "SET session_replication_role = replica;
         INSERT INTO campaigns (id, team_id, name, status, created_by, approved_at)
              VALUES ('{c1}', '{t}', 'One', 'RUNNING', 'test', now()), ('{c2}', '{t}', 'Two', 'RUNNING', 'test', now());
         INSERT INTO campaign_enrolments (id, team_id, campaign_id, contact_id, exclusive, next_run_at, enrolled_by)
              VALUES ('{e1}', '{t}', '{c1}', '{c}', false, now(), 'test'),
                     ('{e2}', '{t}', '{c2}', '{c}', false, now(), 'test');
         INSERT INTO call_queue (id, team_id, contact_id, phone, priority, reason, source)
              VALUES ('{q}', '{t}', '{c}', (SELECT e164 FROM contact_phones WHERE contact_id = '{c}' LIMIT 1),
                      80, 'manual', 'test');
         SET session_replication_role = DEFAULT;",
        t = f.team,
        c = contact,
        e1 = EnrolmentId::new(),
        e2 = EnrolmentId::new(),
        q = CallId::new(),
    ))
    .await;
}

#[tokio::test]
async fn a_stop_from_one_number_is_the_persons_on_every_number_address_and_channel_in_any_state() {
    let f = fx().await;
    let (a, b, mail) = ("+13127360143", "+17737360188", "ada@example.com");
    let contact = f.contact(&[a, b], &[mail]).await;
    engaged(&f, &contact).await;
    // A closed lead is still a person whose stop counts.
    f.sql(&format!("UPDATE contacts SET lead_state = 'closed' WHERE id = '{contact}'")).await;

    f.reply(b, "please stop texting me").await;
    assert_eq!(f.drain().await, 0, "nothing fails");

    let entries = f
        .rows("SELECT address, kind, source, coalesce(source_message_id, '') FROM suppressions ORDER BY address")
        .await;
    let addresses: Vec<&str> = entries.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(addresses, vec![a, b, mail], "every number and the email");
    assert!(entries.iter().all(|r| r[1] == "OPTED_OUT" && r[2] == "inbound_reply" && r[3].starts_with("msg_")));
    assert_eq!(
        f.count("SELECT count(*) FROM campaign_enrolments WHERE status = 'exited' AND exit_reason = 'opt_out'").await,
        2
    );
    assert_eq!(f.count("SELECT count(*) FROM call_queue WHERE status = 'cancelled'").await, 1);
    assert_eq!(
        f.rows(&format!("SELECT lead_state::text FROM contacts WHERE id = '{contact}'")).await[0][0],
        "suppressed"
    );
    let sent = f.sandbox.sent();
    assert_eq!(sent.len(), 1, "exactly one confirmation: {sent:?}");
    assert_eq!(sent[0].to, b, "to the number that said stop");

    // The other number says stop too, and the first again: no second confirmation.
    f.reply(a, "STOP").await;
    f.reply(b, "STOP!!").await;
    assert_eq!(f.drain().await, 0);
    assert_eq!(f.sandbox.sent().len(), 1, "one confirmation per revocation, ever");

    // Every channel is closed, and a number added later is the same person's.
    for (i, channel) in [Channel::Sms, Channel::Voice, Channel::Email].into_iter().enumerate() {
        let v = f.outreach(&contact, channel, &format!("k-{i}")).await;
        assert!(matches!(v, Verdict::Blocked { ref reason } if reason == "opt_out"), "{channel:?}: {v:?}");
    }
    f.sql(&format!("UPDATE contacts SET lead_state = 'responded' WHERE id = '{contact}'")).await;
    let later = "+16467360101";
    f.sql(&format!(
        "INSERT INTO contact_phones (id, team_id, contact_id, e164, type, is_primary)
              VALUES ('row_later', '{}', '{contact}', '{later}', 'mobile', true);
         UPDATE contact_phones SET is_primary = false WHERE e164 <> '{later}'",
        f.team
    ))
    .await;
    let v = f.outreach(&contact, Channel::Sms, "k-later").await;
    assert!(matches!(v, Verdict::Blocked { ref reason } if reason == "opt_out"), "{v:?}");
    assert_eq!(f.sandbox.sent().len(), 1);
}

#[tokio::test]
async fn a_stop_from_a_deleted_contact_or_an_unknown_number_is_still_recorded() {
    let f = fx().await;
    let gone = "+13127360177";
    let contact = f.contact(&[gone], &["gone@example.com"]).await;
    engaged(&f, &contact).await;
    f.sql(&format!("UPDATE contacts SET deleted_at = now() WHERE id = '{contact}'")).await;
    f.reply(gone, "Unsubscribe").await;
    let stranger = "+14157360123";
    f.reply(stranger, "stop").await;
    assert_eq!(f.drain().await, 0);

    let entries = f.rows("SELECT address, kind FROM suppressions ORDER BY address").await;
    let want: Vec<Vec<String>> =
        [gone, stranger, "gone@example.com"].iter().map(|a| vec![a.to_string(), "OPTED_OUT".to_string()]).collect();
    assert_eq!(entries, want);
    assert_eq!(f.count("SELECT count(*) FROM campaign_enrolments WHERE status = 'exited'").await, 2);
    assert_eq!(f.count("SELECT count(*) FROM call_queue WHERE status = 'cancelled'").await, 1);
    let to: Vec<String> = f.sandbox.sent().iter().map(|s| s.to.clone()).collect();
    assert_eq!(to.len(), 2, "one confirmation each: {to:?}");
    assert!(to.contains(&gone.to_string()) && to.contains(&stranger.to_string()));
    // The deleted contact was not brought back into the inbox.
    assert_eq!(
        f.count(&format!("SELECT count(*) FROM inbox_items WHERE contact_id = '{contact}'")).await,
        0,
        "nothing filed for a deleted contact"
    );
    assert_eq!(f.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL").await, 0);
}

#[tokio::test]
async fn no_reply_or_call_outcome_weakens_an_opt_out_and_the_audit_keeps_every_change() {
    let f = fx().await;
    let n = "+13127360166";
    let contact = f.contact(&[n], &[]).await;
    f.reply(n, "STOP").await;
    // "Wrong number" after a stop (a classic way to weaken it), then START and STOP again.
    f.reply(n, "wrong number").await;
    assert_eq!(f.drain().await, 0);
    assert_eq!(f.rows("SELECT kind FROM suppressions").await, vec![vec!["OPTED_OUT".to_string()]]);
    f.reply(n, "START").await;
    assert_eq!(f.drain().await, 0);
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0, "the person's own START lifts it");
    f.reply(n, "stop").await;
    assert_eq!(f.drain().await, 0);
    let audit =
        f.rows("SELECT action, kind, actor, source, coalesce(reason, '') FROM suppression_audit ORDER BY id").await;
    let actions: Vec<&str> = audit.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(actions, vec!["add", "repeat", "lift", "add"], "{audit:?}");
    assert_eq!(audit[2][4], "opted back in by text");
    assert!(audit.iter().all(|r| r[2] == "inbound" && r[3] == "inbound_reply"));
    assert_eq!(
        f.rows(&format!("SELECT lead_state::text FROM contacts WHERE id = '{contact}'")).await[0][0],
        "suppressed"
    );
    // Two confirmations: one per revocation (the START's answer is the third text).
    assert_eq!(f.sandbox.sent().iter().filter(|s| s.body.to_lowercase().contains("unsubscribed")).count(), 2);

    // The application role cannot rewrite the record, nor weaken or drop the entry by hand.
    let mut conn = f.t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(f.team.clone())).await.unwrap();
    for bad in [
        "UPDATE suppression_audit SET reason = 'nothing happened'",
        "DELETE FROM suppression_audit",
        "UPDATE suppressions SET kind = 'WRONG_NUMBER'",
        "UPDATE suppressions SET expires_at = now() + interval '1 day'",
        "DELETE FROM suppressions",
    ] {
        let e = tx.batch_execute(&format!("SAVEPOINT s; {bad}")).await;
        assert!(e.is_err(), "{bad} must be refused");
        tx.batch_execute("ROLLBACK TO SAVEPOINT s").await.unwrap();
    }
    drop(tx);
    assert_eq!(f.rows("SELECT kind FROM suppressions").await, vec![vec!["OPTED_OUT".to_string()]]);
}

#[tokio::test]
async fn a_stop_whose_job_was_lost_is_redriven_by_the_sweeper_once_due() {
    let f = fx().await;
    let n = "+13127360199";
    f.reply(n, "STOP").await;
    // The job is lost between the queue and the consumer (a crash, a DLQ): nothing processes it.
    for m in f.queue.receive(nextier_inbound::QUEUE, 10).await.unwrap() {
        f.queue.delete(nextier_inbound::QUEUE, &m.receipt_handle).await.unwrap();
    }
    assert_eq!(f.drain().await, 0);
    assert_eq!(f.count("SELECT count(*) FROM suppressions").await, 0);
    let publisher = f.p.outbox.as_ref().unwrap();
    // Not yet due: a delivery that is merely slow is left alone.
    let after = nextier_inbound::redrive::AFTER;
    assert_eq!(nextier_inbound::redrive::run(&f.t.worker, publisher, after).await.unwrap(), 0);
    f.sql("UPDATE webhook_events SET received_at = now() - interval '10 minutes'").await;
    assert_eq!(nextier_inbound::redrive::run(&f.t.worker, publisher, after).await.unwrap(), 1);
    // Re-driven once per period, not on every sweep.
    assert_eq!(nextier_inbound::redrive::run(&f.t.worker, publisher, after).await.unwrap(), 0);
    assert_eq!(f.drain().await, 0);
    assert_eq!(
        f.rows("SELECT address, kind FROM suppressions").await,
        vec![vec![n.to_string(), "OPTED_OUT".to_string()]]
    );
    assert_eq!(f.count("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL").await, 0);
    assert_eq!(f.sandbox.sent().len(), 1, "the confirmation, once");
}

#[tokio::test]
async fn a_batch_keeps_each_conversation_in_order_while_others_run_beside_it() {
    let f = fx().await;
    let n = "+13127360177";
    let contact = f.contact(&[n], &[]).await;
    // One batch: this person's STOP, START and STOP again, between replies from six others.
    let others: Vec<String> = (0..6).map(|i| format!("+1312736{:04}", 200 + i)).collect();
    f.reply(n, "STOP").await;
    f.reply(&others[0], "Yes I am interested").await;
    f.reply(&others[1], "how much?").await;
    f.reply(n, "START").await;
    f.reply(&others[2], "call me tomorrow").await;
    f.reply(&others[3], "ok").await;
    f.reply(n, "stop").await;
    f.reply(&others[4], "not now").await;
    f.reply(&others[5], "sounds good").await;
    assert_eq!(f.drain().await, 0, "nothing fails");
    // Read in the order written: stopped, back in, stopped again.
    let actions: Vec<String> =
        f.rows("SELECT action FROM suppression_audit ORDER BY id").await.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(actions, vec!["add", "lift", "add"]);
    assert_eq!(f.rows("SELECT kind FROM suppressions").await, vec![vec!["OPTED_OUT".to_string()]]);
    assert_eq!(
        f.rows(&format!("SELECT lead_state::text FROM contacts WHERE id = '{contact}'")).await[0][0],
        "suppressed"
    );
    // Every other reply was filed, once.
    assert_eq!(f.count("SELECT count(*) FROM messages WHERE direction = 'inbound'").await, 9);
}
