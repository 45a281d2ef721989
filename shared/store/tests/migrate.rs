//! The one migration runner, as the `migrate` Lambda runs it after a deploy.

use nextier_store::migrate::{self, Passwords, Target};
use nextier_testkit::pg::{connect, shared_cluster};

async fn empty_database() -> (String, String) {
    let cluster = shared_cluster().await.unwrap();
    let name = format!("m_{}", ulid::Ulid::new().to_string().to_lowercase());
    let admin = connect(&cluster.url("postgres", "postgres")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    (cluster.url("postgres", &name), name)
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_reruns_are_no_ops() {
    let (url, _) = empty_database().await;
    let first =
        migrate::run_url(&url, Passwords { app: Some("s3cret-app-password"), worker: Some("s3cret-worker-password") })
            .await
            .unwrap();
    assert_eq!(first, migrate::migrations(Target::Deployed).into_iter().map(|m| m.version).collect::<Vec<_>>());
    assert!(migrate::run_url(&url, Passwords::default()).await.unwrap().is_empty());

    let c = connect(&url).await.unwrap();
    let owner: String =
        c.query_one("SELECT tableowner::text FROM pg_tables WHERE tablename = 'teams'", &[]).await.unwrap().get(0);
    assert_eq!(owner, migrate::OWNER_ROLE, "objects belong to the owner role, not the admin");
    let local_tables: i64 =
        c.query_one("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'local\\_%'", &[]).await.unwrap().get(0);
    assert_eq!(local_tables, 0, "deployed databases never get the local stand-in tables");
    for role in [migrate::APP_ROLE, migrate::WORKER_ROLE] {
        let has_password: bool = c
            .query_one("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .get(0);
        assert!(has_password, "{role} has its password");
    }
}

#[tokio::test]
async fn an_edited_applied_migration_stops_the_run() {
    let (url, _) = empty_database().await;
    migrate::run_url(&url, Passwords::default()).await.unwrap();
    let c = connect(&url).await.unwrap();
    c.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = '0001_identity'", &[]).await.unwrap();
    let err = migrate::run_url(&url, Passwords::default()).await.unwrap_err();
    assert!(err.to_string().contains("0001_identity was changed"), "{err}");
}

#[tokio::test]
async fn concurrent_runs_apply_each_migration_exactly_once() {
    let (url, _) = empty_database().await;
    let (a, b) =
        tokio::join!(migrate::run_url(&url, Passwords::default()), migrate::run_url(&url, Passwords::default()));
    let total = a.unwrap().len() + b.unwrap().len();
    assert_eq!(total, migrate::migrations(Target::Deployed).len());
    let mut client = connect(&url).await.unwrap();
    assert!(migrate::run(&mut client, Target::Deployed).await.unwrap().is_empty());
}
