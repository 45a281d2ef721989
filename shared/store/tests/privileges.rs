//! Least privilege inside the database (migration 0017): the API's role (`nextier_app`)
//! cannot call what crosses teams, cannot read or change the outbox, cannot see deliveries
//! not yet routed to a team; nobody changes an audit row or creates in schema public. The
//! catalog tests walk every table and function, so objects added later are held to the same
//! rules.

use nextier_domain::ids::{OutboxId, TeamId};
use nextier_store::outbox::{self, Destination, OutboxMessage};
use nextier_store::tokio_postgres::{self, error::SqlState, Client};
use nextier_store::{scope, Db, Scope, StoreError};
use nextier_testkit::{fixtures, TestDb};
use serde_json::json;

/// The SECURITY DEFINER functions the API may call: the lookups that precede knowing the
/// team, and publishing outbox rows it has just staged. Anything else is the worker's.
const APP_DEFINER_FUNCTIONS: &[&str] = &[
    "auth_resolve_user",
    "auth_team_member",
    "auth_api_key",
    "auth_invitation",
    "outbox_claim_staged",
    "outbox_settle_staged",
    // The CRM connect stores, and the disconnect forgets, the tokens the API role cannot read.
    "integration_store_tokens",
    "integration_forget_tokens",
];

/// Which columns of an audit table the application may still update.
enum Updatable {
    Nothing,
    Only(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

/// Tables written once and never changed (plus any table named `*_audit`).
const AUDIT_TABLES: &[(&str, Updatable)] = &[
    ("campaign_state_changes", Updatable::Nothing),
    ("bucket_movements", Updatable::Nothing),
    ("ai_approval_log", Updatable::Nothing),
    ("message_events", Updatable::Nothing),
    ("mail_log", Updatable::Nothing),
    ("contact_merges", Updatable::Nothing),
    ("suppression_audit", Updatable::Nothing),
    ("ai_worker_policies", Updatable::Nothing),
    ("ai_routing_decisions", Updatable::Nothing),
    ("ai_prompts", Updatable::Nothing),
    ("ai_intelligence_log", Updatable::Nothing),
    // A timeline event follows its contact into the survivor of a merge.
    ("contact_events", Updatable::Only(&["contact_id"])),
    // What became of a delivery may be recorded; what arrived stays as it arrived.
    (
        "webhook_events",
        Updatable::AllBut(&[
            "id",
            "provider",
            "delivery_id",
            "event",
            "payload",
            "raw_body",
            "signed_at",
            "received_at",
            "source",
        ]),
    ),
];

/// The columns of `table` that `rule` leaves updatable.
async fn updatable(su: &Client, table: &str, rule: &Updatable) -> Vec<String> {
    let columns: Vec<String> = su
        .query(
            "SELECT attname::text FROM pg_attribute
              WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    match rule {
        Updatable::Nothing => vec![],
        Updatable::Only(cols) => columns.into_iter().filter(|c| cols.contains(&c.as_str())).collect(),
        Updatable::AllBut(cols) => columns.into_iter().filter(|c| !cols.contains(&c.as_str())).collect(),
    }
}

/// Calls that cross teams, one per function the worker may call and the API may not.
const CROSS_TENANT_CALLS: &[&str] = &[
    "SELECT * FROM campaign_claim_due(now(), 10, 10, interval '1 minute')",
    "SELECT campaign_release_claims(ARRAY['enr_none'])",
    "SELECT * FROM campaign_due_schedules(now())",
    "SELECT * FROM inbox_escalate_due(now(), 10)",
    "SELECT team_for_number('+12125550100')",
    "SELECT team_for_provider_message('signalhouse', 'msg-1')",
    "SELECT * FROM skip_trace_job_for_token('hash')",
    "SELECT analyze_import_rows()",
];

const ROLES: [&str; 2] = ["nextier_app", "nextier_worker"];

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

fn denied(result: Result<impl std::fmt::Debug, tokio_postgres::Error>, what: &str) {
    match result {
        Err(e) => assert_eq!(code(&e), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {e}"),
        Ok(v) => panic!("{what} was allowed: {v:?}"),
    }
}

/// A connection of its own (not the pool's) as the role in `url`.
async fn client(url: &str) -> Client {
    nextier_testkit::pg::connect(url).await.expect("connection")
}

/// A connection scoped to `team` for the session, so each statement below is its own
/// transaction and one refusal does not spoil the next.
async fn scoped(url: &str, team: &TeamId) -> Client {
    let c = client(url).await;
    c.execute("SELECT set_config('app.team_id', $1, false)", &[&team.as_str()]).await.unwrap();
    c
}

#[tokio::test]
async fn the_api_role_cannot_call_a_function_that_crosses_teams_and_the_worker_can() {
    let t = TestDb::new().await;
    let team = fixtures::team(&t, "alpha").await;
    fixtures::sending_number(&t, &team, "+12125550100").await;
    let app = scoped(&t.app_url(), &team).await;
    let worker = client(&t.worker_url()).await;
    for call in CROSS_TENANT_CALLS {
        denied(app.query(*call, &[]).await.map(|r| r.len()), &format!("nextier_app: {call}"));
        worker.query(*call, &[]).await.unwrap_or_else(|e| panic!("nextier_worker: {call}: {e}"));
    }
    let owner: Option<String> = worker.query_one("SELECT team_for_number('+12125550100')", &[]).await.unwrap().get(0);
    assert_eq!(owner.as_deref(), Some(team.as_str()));
    // The lookups that precede knowing the team stay the API's.
    app.query("SELECT * FROM auth_api_key('no-such-hash')", &[]).await.unwrap();
    app.query("SELECT * FROM auth_invitation('no-such-hash')", &[]).await.unwrap();
}

fn message(team: &TeamId, n: i64) -> OutboxMessage {
    OutboxMessage {
        team: Some(team.clone()),
        destination: Destination::Queue("work".into()),
        payload: json!({"n": n}),
        correlation_id: "corr".into(),
        dedupe_key: None,
    }
}

async fn stage(db: &Db, scope_team: &TeamId, msg: &OutboxMessage) -> Result<Option<OutboxId>, String> {
    let mut conn = db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(scope_team.clone())).await.unwrap();
    let id = outbox::stage(&tx, msg).await.map_err(|e| format!("{e:?}"))?;
    tx.commit().await.unwrap();
    Ok(id)
}

#[tokio::test]
async fn the_api_role_stages_and_publishes_its_own_outbox_rows_and_reads_no_other() {
    let t = TestDb::new().await;
    let (a, b) = (fixtures::team(&t, "alpha").await, fixtures::team(&t, "bravo").await);
    let theirs = stage(&t.worker, &b, &message(&b, 1)).await.unwrap().unwrap();
    let mine = stage(&t.db, &a, &message(&a, 2)).await.unwrap().unwrap();
    // Staging a row in another team's name is refused.
    let err = stage(&t.db, &a, &message(&b, 3)).await.unwrap_err();
    assert!(err.contains("row-level security"), "{err}");

    let app = scoped(&t.app_url(), &a).await;
    denied(app.query("SELECT * FROM outbox", &[]).await.map(|r| r.len()), "reading the outbox");
    denied(app.query("SELECT payload FROM outbox", &[]).await.map(|r| r.len()), "reading a payload");
    // Only its own dedupe keys are readable (staging with ON CONFLICT needs them).
    assert_eq!(app.query("SELECT dedupe_key FROM outbox", &[]).await.unwrap().len(), 1, "its own row only");
    denied(app.execute("UPDATE outbox SET published_at = now()", &[]).await, "marking rows published");
    denied(app.execute("UPDATE outbox SET available_at = now() WHERE id = $1", &[&theirs.as_str()]).await, "claim");
    denied(app.execute("DELETE FROM outbox", &[]).await, "deleting rows");
    denied(app.execute("TRUNCATE outbox", &[]).await, "truncating");
    // Sweeping every team's due rows is the worker's alone.
    match outbox::claim(&app, None, 100, 60).await {
        Err(StoreError::Db(e)) => assert_eq!(e.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{e}"),
        other => panic!("the API role swept the outbox: {other:?}"),
    }

    // What it has just staged it publishes: claim, then settle.
    let claimed = outbox::claim_staged(&app, std::slice::from_ref(&mine), 60).await.unwrap();
    assert_eq!(claimed.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), vec![mine.clone()]);
    outbox::settle_staged(&app, std::slice::from_ref(&mine), None, 0).await.unwrap();
    // A row is claimable once: the retry, and anything left behind, is the sweeper's.
    assert!(outbox::claim_staged(&app, std::slice::from_ref(&mine), 60).await.unwrap().is_empty());
    let su = t.superuser().await;
    su.execute("UPDATE outbox SET attempts = 1, available_at = now() WHERE id = $1", &[&theirs.as_str()])
        .await
        .unwrap();
    assert!(outbox::claim_staged(&app, std::slice::from_ref(&theirs), 60).await.unwrap().is_empty());

    let published: bool = su
        .query_one("SELECT published_at IS NOT NULL FROM outbox WHERE id = $1", &[&mine.as_str()])
        .await
        .unwrap()
        .get(0);
    assert!(published);
    // The worker drains every team's rows.
    let worker = client(&t.worker_url()).await;
    let due = outbox::claim(&worker, None, 100, 60).await.unwrap();
    assert_eq!(due.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), vec![theirs]);
}

async fn delivery(worker: &Client, team: Option<&TeamId>, delivery_id: &str) -> String {
    let id = format!("whe_{delivery_id}");
    worker
        .execute(
            "INSERT INTO webhook_events (id, provider, delivery_id, event, payload, team_id, raw_body)
             VALUES ($1, 'signalhouse', $2, 'message.received', '{}', $3, 'raw')",
            &[&id, &delivery_id, &team.map(|t| t.as_str())],
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn unrouted_webhook_deliveries_are_invisible_to_teams() {
    let t = TestDb::new().await;
    let (a, b) = (fixtures::team(&t, "alpha").await, fixtures::team(&t, "bravo").await);
    let worker = client(&t.worker_url()).await;
    let unrouted = delivery(&worker, None, "d-unrouted").await;
    let ours = delivery(&worker, Some(&a), "d-alpha").await;
    delivery(&worker, Some(&b), "d-bravo").await;

    let app = scoped(&t.app_url(), &a).await;
    let seen: Vec<String> =
        app.query("SELECT id FROM webhook_events", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(seen, vec![ours.clone()], "team A sees its routed delivery only");
    // Nor can it route one to itself, or insert one.
    denied(
        app.execute("UPDATE webhook_events SET team_id = $1 WHERE id = $2", &[&a.as_str(), &unrouted]).await,
        "route",
    );
    denied(
        app.execute(
            "INSERT INTO webhook_events (id, provider, delivery_id, event, payload) VALUES ('x', 'p', 'd', 'e', '{}')",
            &[],
        )
        .await,
        "insert a delivery",
    );
    let unscoped = client(&t.app_url()).await;
    assert!(unscoped.query("SELECT id FROM webhook_events", &[]).await.unwrap().is_empty());

    // The worker routes it, and can change nothing the provider sent.
    assert_eq!(worker.query("SELECT id FROM webhook_events", &[]).await.unwrap().len(), 3);
    let routed = worker
        .execute(
            "UPDATE webhook_events SET team_id = $1, outcome = 'reply', processed_at = now() WHERE id = $2",
            &[&a.as_str(), &unrouted],
        )
        .await
        .unwrap();
    assert_eq!(routed, 1);
    denied(worker.execute("UPDATE webhook_events SET payload = '{\"forged\":1}'", &[]).await, "rewrite the payload");
    denied(worker.execute("UPDATE webhook_events SET raw_body = 'forged'", &[]).await, "rewrite the raw body");
    denied(worker.execute("DELETE FROM webhook_events", &[]).await, "delete a delivery");
}

/// A column of `table` the application may not update (nor an identity column, which no
/// one may set).
async fn frozen_column(su: &Client, table: &str, rule: &Updatable) -> String {
    let allowed = updatable(su, table, rule).await;
    su.query_one(
        "SELECT attname::text FROM pg_attribute
          WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
            AND attidentity = '' AND attgenerated = '' AND attname::text <> ALL($2)
          ORDER BY attnum LIMIT 1",
        &[&table, &allowed],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_or_removed_by_either_role() {
    let t = TestDb::new().await;
    let team = fixtures::team(&t, "alpha").await;
    let su = t.superuser().await;
    let mut checked = 0;
    for (table, rule) in AUDIT_TABLES {
        let exists: bool = su.query_one("SELECT to_regclass($1) IS NOT NULL", &[table]).await.unwrap().get(0);
        if !exists {
            continue;
        }
        let column = frozen_column(&su, table, rule).await;
        for url in [t.app_url(), t.worker_url()] {
            let c = scoped(&url, &team).await;
            denied(
                c.execute(&format!("UPDATE {table} SET {column} = {column}"), &[]).await,
                &format!("UPDATE {table}"),
            );
            denied(c.execute(&format!("DELETE FROM {table}"), &[]).await, &format!("DELETE FROM {table}"));
            denied(c.execute(&format!("TRUNCATE {table}"), &[]).await, &format!("TRUNCATE {table}"));
        }
        checked += 1;
    }
    assert!(checked >= 8, "the audit tables exist");
}

#[tokio::test]
async fn no_application_role_creates_objects_in_schema_public() {
    let t = TestDb::new().await;
    for url in [t.app_url(), t.worker_url()] {
        let c = client(&url).await;
        denied(c.execute("CREATE TABLE public.smuggled (a int)", &[]).await, "CREATE TABLE");
        denied(
            c.execute("CREATE FUNCTION public.smuggled() RETURNS int LANGUAGE sql AS 'SELECT 1'", &[]).await,
            "CREATE FUNCTION",
        );
    }
}

// The catalog, walked: what others add later is held to the same rules. ----------------------

#[tokio::test]
async fn every_definer_function_the_api_role_may_call_is_on_the_allowlist() {
    let t = TestDb::new().await;
    let su = t.superuser().await;
    let callable: Vec<String> = su
        .query(
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND p.prosecdef AND has_function_privilege('nextier_app', p.oid, 'EXECUTE')
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let extra: Vec<&String> = callable.iter().filter(|f| !APP_DEFINER_FUNCTIONS.contains(&f.as_str())).collect();
    assert!(extra.is_empty(), "SECURITY DEFINER functions nextier_app may call beyond the allowlist: {extra:?}");
    assert!(callable.len() >= 3, "the auth lookups stay callable: {callable:?}");
}

#[tokio::test]
async fn every_audit_table_grants_no_update_or_delete_beyond_its_columns() {
    let t = TestDb::new().await;
    let su = t.superuser().await;
    let named: Vec<&str> = AUDIT_TABLES.iter().map(|(t, _)| *t).collect();
    let tables: Vec<String> = su
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                AND (c.relname::text = ANY($1) OR c.relname ~ '_audit$')",
            &[&named],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 8, "{tables:?}");
    let mut wrong = Vec::new();
    for table in &tables {
        let allowed = match AUDIT_TABLES.iter().find(|(t, _)| t == table) {
            Some((_, rule)) => updatable(&su, table, rule).await,
            None => vec![],
        };
        for role in ROLES {
            let row = su
                .query_one(
                    "SELECT has_table_privilege($1::name, $2::text::regclass, 'UPDATE'),
                            has_table_privilege($1::name, $2::text::regclass, 'DELETE'),
                            has_table_privilege($1::name, $2::text::regclass, 'TRUNCATE'),
                            has_table_privilege($1::name, $2::text::regclass, 'INSERT'),
                            ARRAY(SELECT a.attname::text FROM pg_attribute a
                                   WHERE a.attrelid = $2::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                                     AND has_column_privilege($1::name, $2::text::regclass, a.attnum, 'UPDATE')
                                     AND a.attname::text <> ALL($3))",
                    &[&role, table, &allowed],
                )
                .await
                .unwrap();
            let (update, delete, truncate): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
            let columns: Vec<String> = row.get(4);
            if update || delete || truncate || !columns.is_empty() {
                wrong.push(format!(
                    "{role} on {table}: update={update} delete={delete} truncate={truncate} {columns:?}"
                ));
            }
        }
        let insert: bool = su
            .query_one("SELECT has_table_privilege('nextier_worker', $1::text::regclass, 'INSERT')", &[table])
            .await
            .unwrap()
            .get(0);
        assert!(insert, "{table} can still be written");
    }
    assert!(wrong.is_empty(), "audit tables that can be changed: {wrong:#?}");
}

#[tokio::test]
async fn every_table_with_a_team_forces_row_level_security() {
    let t = TestDb::new().await;
    let su = t.superuser().await;
    let loose: Vec<String> = su
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'team_id'
                                                           AND NOT a.attisdropped)
                AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
              ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(loose.is_empty(), "tables with a team_id but no FORCE ROW LEVEL SECURITY: {loose:?}");
    // And the roles themselves bypass nothing and own nothing.
    for role in ROLES {
        let row = su
            .query_one(
                "SELECT r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb,
                        (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid)
                      + (SELECT count(*) FROM pg_proc p WHERE p.proowner = r.oid)
                   FROM pg_roles r WHERE r.rolname = $1::name",
                &[&role],
            )
            .await
            .unwrap();
        assert!(!row.get::<_, bool>(0), "{role} has no special powers");
        assert_eq!(row.get::<_, i64>(1), 0, "{role} owns nothing");
    }
}
