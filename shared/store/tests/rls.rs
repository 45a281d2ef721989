//! Row-level security is the tenant boundary: these tests write SQL that "forgets" its WHERE
//! clause and show the database still keeps teams apart.

use nextier_domain::ids::{TeamId, UserId};
use nextier_domain::team::{MemberStatus, Role};
use nextier_store::tokio_postgres;
use nextier_store::{members, scope, teams, users, Scope};
use nextier_testkit::TestDb;

fn db_msg(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

async fn team_with_owner(t: &TestDb, name: &str) -> (TeamId, UserId) {
    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    let user = users::resolve_scoped(&tx, &format!("sub-{name}"), Some("o@example.com"), None, None).await.unwrap();
    let team = TeamId::new();
    scope::apply(&tx, &Scope::team(team.clone()).with_user(Some(user.clone()))).await.unwrap();
    teams::create(&tx, &team, name, &format!("{name}-slug"), &user).await.unwrap();
    members::add(&tx, &team, &user, Role::Owner, MemberStatus::Approved).await.unwrap();
    tx.execute(
        "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'general', 'greeting', $2)",
        &[&team.as_str(), &format!("hello from {name}")],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (team, user)
}

#[tokio::test]
async fn sql_without_a_where_clause_still_sees_only_its_own_team() {
    let t = TestDb::new().await;
    let (a, _) = team_with_owner(&t, "alpha").await;
    let (b, _) = team_with_owner(&t, "bravo").await;

    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(a.clone())).await.unwrap();
    let rows = tx.query("SELECT team_id, value FROM team_settings", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), a.as_str());
    let teams_seen = tx.query("SELECT id FROM teams", &[]).await.unwrap();
    assert_eq!(teams_seen.len(), 1, "team A sees only itself");

    // A careless UPDATE touches only team A's rows.
    let changed = tx.execute("UPDATE team_settings SET value = 'overwritten'", &[]).await.unwrap();
    assert_eq!(changed, 1);
    // A careless DELETE likewise.
    let deleted = tx.execute("DELETE FROM team_members", &[]).await.unwrap();
    assert_eq!(deleted, 1);
    tx.rollback().await.unwrap();

    // Writing a row for another team is refused outright.
    let tx = scope::begin(&mut conn, &Scope::team(a.clone())).await.unwrap();
    let err = tx
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'general', 'x', 'y')",
            &[&b.as_str()],
        )
        .await
        .unwrap_err();
    assert!(db_msg(&err).contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    let tx = scope::begin(&mut conn, &Scope::team(b.clone())).await.unwrap();
    let value: String = tx.query_one("SELECT value FROM team_settings", &[]).await.unwrap().get(0);
    assert_eq!(value, "hello from bravo", "team B's row was untouched");
}

#[tokio::test]
async fn a_transaction_with_no_team_set_sees_no_tenant_rows() {
    let t = TestDb::new().await;
    team_with_owner(&t, "alpha").await;
    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::default()).await.unwrap();
    for table in ["teams", "team_members", "team_settings", "api_keys", "team_invitations", "users"] {
        let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table} leaked rows with no team set");
    }
    // Not even a raw session without set_config at all.
    drop(tx);
    let n: i64 = conn.query_one("SELECT count(*) FROM team_settings", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_team_setting_does_not_outlive_its_transaction() {
    let t = TestDb::new().await;
    let (a, _) = team_with_owner(&t, "alpha").await;
    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(a)).await.unwrap();
    let n: i64 = tx.query_one("SELECT count(*) FROM teams", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    // Same pooled connection, next transaction: nothing visible again.
    let n: i64 = conn.query_one("SELECT count(*) FROM teams", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_application_role_cannot_bypass_or_disable_row_level_security() {
    let t = TestDb::new().await;
    let conn = t.db.conn().await.unwrap();
    let row =
        conn.query_one("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user", &[]).await.unwrap();
    assert!(!row.get::<_, bool>(0) && !row.get::<_, bool>(1));
    let owned: i64 = conn
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = current_user",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0, "the application role must own nothing");
    let err = conn.batch_execute("ALTER TABLE team_settings DISABLE ROW LEVEL SECURITY").await.unwrap_err();
    assert!(db_msg(&err).contains("must be owner"), "{err}");
    let err = conn.batch_execute("SET row_security = off; SELECT * FROM team_settings").await;
    assert!(err.is_err() || conn.query("SELECT 1 FROM team_settings", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_table_with_a_team_id_forces_row_level_security() {
    // Guards future migrations too: a new tenant table without FORCE RLS fails here.
    let t = TestDb::new().await;
    let admin = t.superuser().await;
    let rows = admin
        .query(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind = 'r'
                AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'team_id')
                AND c.relname NOT IN ('outbox')",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 4);
    for r in rows {
        let name: String = r.get(0);
        assert!(r.get::<_, bool>(1) && r.get::<_, bool>(2), "{name} must ENABLE and FORCE row level security");
    }
}

#[tokio::test]
async fn a_row_cannot_point_at_another_teams_contact_even_knowing_its_id() {
    // Foreign-key checks bypass row-level security; the composite key (team_id, contact_id)
    // is what keeps a phone of team A from hanging off a contact of team B.
    let t = TestDb::new().await;
    let (a, _) = team_with_owner(&t, "alpha").await;
    let (b, _) = team_with_owner(&t, "bravo").await;
    let admin = t.superuser().await;
    admin
        .execute(
            "INSERT INTO contacts (id, team_id, first_name) VALUES ('con_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, 'Bea')",
            &[&b.as_str()],
        )
        .await
        .unwrap();
    let mut conn = t.db.conn().await.unwrap();
    let tx = scope::begin(&mut conn, &Scope::team(a.clone())).await.unwrap();
    let err = tx
        .execute(
            "INSERT INTO contact_phones (id, team_id, contact_id, e164) VALUES ('row_01JD8Z6Q3M4N5P6R7S8T9V0W1X', $1, 'con_01JD8Z6Q3M4N5P6R7S8T9V0W1X', '+15164079249')",
            &[&a.as_str()],
        )
        .await
        .unwrap_err();
    assert!(db_msg(&err).contains("foreign key"), "{err}");
}
