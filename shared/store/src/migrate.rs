//! The one migration runner: used by the `migrate` Lambda after deploy, by the local runtime
//! and by the tests. Migrations are embedded in the binary, applied in order, each in its own
//! transaction, under an advisory lock; an applied file whose text changed is an error.

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

static MIGRATIONS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../migrations");

/// The role that owns every object (and so is the only one that may alter them).
pub const OWNER_ROLE: &str = "nextier_owner";
/// The role the API functions connect as: owns nothing, no BYPASSRLS, sees only the rows of
/// the team in scope and calls no function that crosses teams.
pub const APP_ROLE: &str = "nextier_app";
/// The role consumers, crons and webhooks connect as: everything the application role may do
/// (it is a member), plus the functions that route work across teams, the outbox, and
/// webhook deliveries not yet routed to a team (migration 0017).
pub const WORKER_ROLE: &str = "nextier_worker";

const LOCK_KEY: i64 = 0x006e_6578_7469_6572; // "nextier"

/// Which migrations to apply: the deployed schema, or that plus the local runtime's
/// Postgres stand-ins for SQS and EventBridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Deployed,
    Local,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: String,
    pub sql: &'static str,
    pub checksum: String,
}

pub fn migrations(target: Target) -> Vec<Migration> {
    let mut out = collect(&MIGRATIONS, "");
    if target == Target::Local {
        if let Some(local) = MIGRATIONS.get_dir("local") {
            out.extend(collect(local, "local/"));
        }
    }
    out
}

fn collect(dir: &'static Dir<'static>, prefix: &str) -> Vec<Migration> {
    let mut files: Vec<_> = dir
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "sql"))
        .map(|f| {
            let name = f.path().file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let sql = f.contents_utf8().expect("migrations are UTF-8");
            Migration {
                version: format!("{prefix}{}", name.trim_end_matches(".sql")),
                sql,
                checksum: hex::encode(Sha256::digest(sql.as_bytes())),
            }
        })
        .collect();
    files.sort_by(|a, b| a.version.cmp(&b.version));
    files
}

/// A fingerprint of a target's migrations, e.g. to know whether a cached template database
/// is current.
pub fn fingerprint(target: Target) -> String {
    let mut h = Sha256::new();
    for m in migrations(target) {
        h.update(m.version.as_bytes());
        h.update(m.checksum.as_bytes());
    }
    hex::encode(h.finalize())[..16].to_owned()
}

/// Login passwords to set on the roles (deployed: from Secrets Manager; locally: none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Passwords<'a> {
    pub app: Option<&'a str>,
    pub worker: Option<&'a str>,
}

/// Creates the three roles if they do not exist, makes the worker a member of the
/// application role, and lets the connecting (admin) user act as the owner. Needs CREATEROLE
/// (superuser locally, the RDS master user when deployed). Passwords given are set.
pub async fn ensure_roles(client: &Client, passwords: Passwords<'_>) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN
                 CREATE ROLE {OWNER_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
               END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                 CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
               END IF;
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WORKER_ROLE}') THEN
                 CREATE ROLE {WORKER_ROLE} LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
               END IF;
               IF NOT pg_has_role('{WORKER_ROLE}', '{APP_ROLE}', 'MEMBER') THEN
                 GRANT {APP_ROLE} TO {WORKER_ROLE};
               END IF;
               IF NOT pg_has_role(current_user, '{OWNER_ROLE}', 'MEMBER') THEN
                 EXECUTE format('GRANT {OWNER_ROLE} TO %I', current_user);
               END IF;
             END $$;"
        ))
        .await?;
    for (role, password) in [(APP_ROLE, passwords.app), (WORKER_ROLE, passwords.worker)] {
        if let Some(password) = password {
            let row = client
                .query_one(&format!("SELECT format('ALTER ROLE {role} PASSWORD %L', $1::text)"), &[&password])
                .await?;
            client.batch_execute(row.get::<_, &str>(0)).await?;
        }
    }
    Ok(())
}

/// Applies pending migrations as the owner role. Returns the versions applied now.
pub async fn run(client: &mut Client, target: Target) -> anyhow::Result<Vec<String>> {
    run_with(client, target, Passwords::default()).await
}

/// Everything happens under one advisory lock, role and schema grants included: concurrent
/// GRANTs on one object can fail ("tuple concurrently updated"), and two deploys may overlap.
/// Only the owner creates objects: nobody else may CREATE in schema public (PostgreSQL 15
/// already denies PUBLIC by default; a database created otherwise may not).
async fn run_with(client: &mut Client, target: Target, passwords: Passwords<'_>) -> anyhow::Result<Vec<String>> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = async {
        ensure_roles(client, passwords).await?;
        client
            .batch_execute(&format!(
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {APP_ROLE}, {WORKER_ROLE};
                 GRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE};
                 GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {WORKER_ROLE};"
            ))
            .await?;
        apply_all(client, target).await
    }
    .await;
    // Unlock even when a migration failed; the session ends soon after anyway.
    let _ = client.batch_execute("RESET ROLE").await;
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    result
}

async fn apply_all(client: &mut Client, target: Target) -> anyhow::Result<Vec<String>> {
    client.batch_execute(&format!("SET ROLE {OWNER_ROLE}")).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version text PRIMARY KEY,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let applied: std::collections::HashMap<String, String> = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();

    let mut done = Vec::new();
    for m in migrations(target) {
        match applied.get(&m.version) {
            Some(sum) if *sum == m.checksum => continue,
            Some(_) => {
                anyhow::bail!("migration {} was changed after it was applied; add a new migration instead", m.version)
            }
            None => {}
        }
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| anyhow::anyhow!("migration {} failed: {}", m.version, db_message(&e)))?;
        tx.execute("INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", &[&m.version, &m.checksum])
            .await?;
        tx.commit().await?;
        tracing::info!(version = %m.version, "migration applied");
        done.push(m.version);
    }
    Ok(done)
}

/// Connects to `url` (an admin user able to create roles), ensures the roles (setting the
/// login roles' passwords when given) and applies the deployed migrations. The connection
/// follows the TLS policy of [`crate::tls`]: `sslmode=verify-full` (deployed: the cluster
/// endpoint) is verified against the bundled Amazon roots.
pub async fn run_url(url: &str, passwords: Passwords<'_>) -> anyhow::Result<Vec<String>> {
    run_url_with_roots(url, passwords, &crate::tls::Roots::amazon()).await
}

/// [`run_url`], trusting `roots` for `sslmode=verify-full`.
pub async fn run_url_with_roots(
    url: &str,
    passwords: Passwords<'_>,
    roots: &crate::tls::Roots,
) -> anyhow::Result<Vec<String>> {
    let (mut client, driver) = crate::tls::connect(url, roots).await?;
    let applied = run_with(&mut client, Target::Deployed, passwords).await;
    drop(client);
    let _ = driver.await;
    applied
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_local_ones_come_last() {
        let deployed = migrations(Target::Deployed);
        assert!(deployed.len() >= 2);
        assert!(deployed.windows(2).all(|w| w[0].version < w[1].version));
        assert!(deployed.iter().all(|m| !m.version.starts_with("local/")));
        let local = migrations(Target::Local);
        assert!(local.len() > deployed.len());
        assert!(local.last().unwrap().version.starts_with("local/"));
        assert_ne!(fingerprint(Target::Deployed), fingerprint(Target::Local));
    }
}
