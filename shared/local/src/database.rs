//! The local runtime's database: the caller's `DATABASE_URL`, or a private cluster in
//! `.local/pg` (durable, on a free port, stopped on exit).

use std::path::Path;
use std::time::{Duration, Instant};

use nextier_pgcluster::Cluster;
use nextier_store::migrate::{self, Target, APP_ROLE, OWNER_ROLE, WORKER_ROLE};

pub struct LocalDatabase {
    /// An admin URL (migrations, seed).
    pub admin_url: String,
    /// The API's URL (role nextier_app).
    pub app_url: String,
    /// The consumers', schedules' and webhooks' URL (role nextier_worker).
    pub worker_url: String,
    /// Set when we started the cluster and must stop it.
    pub cluster_dir: Option<std::path::PathBuf>,
}

const DB_NAME: &str = "nextier";

impl LocalDatabase {
    /// Uses `admin_url` if given (and `app_url` and `worker_url`, or the same server as
    /// `nextier_app` and `nextier_worker`), else starts the private cluster under `home`.
    pub async fn open(
        home: &Path,
        admin_url: Option<String>,
        app_url: Option<String>,
        worker_url: Option<String>,
    ) -> anyhow::Result<Self> {
        if let Some(admin_url) = admin_url {
            let app_url = app_url.unwrap_or_else(|| with_user(&admin_url, APP_ROLE));
            let worker_url = worker_url.unwrap_or_else(|| with_user(&admin_url, WORKER_ROLE));
            return Ok(Self { admin_url, app_url, worker_url, cluster_dir: None });
        }
        let dir = nextier_pgcluster::cluster_dir(&home.join("pg"));
        let port_file = dir.join("port");
        let port = nextier_pgcluster::free_port();
        let _ = Cluster::stop(&dir);
        let cluster = Cluster::start(&dir, port, true)?;
        std::fs::write(&port_file, port.to_string())?;
        let admin = connect(&cluster.superuser_url("postgres")).await?;
        migrate::ensure_roles(&admin, Default::default()).await?;
        if admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB_NAME]).await?.is_none() {
            admin.batch_execute(&format!("CREATE DATABASE {DB_NAME} OWNER {OWNER_ROLE}")).await?;
        }
        Ok(Self {
            admin_url: cluster.superuser_url(DB_NAME),
            app_url: format!("postgres://{APP_ROLE}@127.0.0.1:{port}/{DB_NAME}"),
            worker_url: format!("postgres://{WORKER_ROLE}@127.0.0.1:{port}/{DB_NAME}"),
            cluster_dir: Some(dir),
        })
    }

    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let mut client = connect(&self.admin_url).await?;
        migrate::run(&mut client, Target::Local).await.map_err(|e| {
            if self.cluster_dir.is_some() && e.to_string().contains("changed after it was applied") {
                // Local data is disposable; say so rather than leave the developer stuck.
                e.context("the private database in .local/ was migrated by an older checkout; stop the runtime and delete .local/ to start afresh")
            } else {
                e
            }
        })
    }

    pub fn stop(&self) {
        if let Some(dir) = &self.cluster_dir {
            if let Err(e) = Cluster::stop(dir) {
                tracing::warn!(error = %e, "stopping the local PostgreSQL cluster");
            }
        }
    }
}

fn with_user(url: &str, user: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(_, host)| (scheme, host))) {
        Some((scheme, host)) => format!("{scheme}://{user}@{host}"),
        None => url.to_owned(),
    }
}

/// The demo team and user, created once: the dev token signs in as this user.
pub const DEMO_SUBJECT: &str = "demo-user";
pub const DEMO_EMAIL: &str = "demo@nextier.local";

pub async fn seed_demo(admin_url: &str) -> anyhow::Result<String> {
    let client = connect(admin_url).await?;
    if let Some(row) = client.query_opt("SELECT id FROM teams WHERE slug = 'demo'", &[]).await? {
        return Ok(row.get(0));
    }
    let user = nextier_domain::ids::UserId::new();
    let team = nextier_domain::ids::TeamId::new();
    client
        .execute(
            "INSERT INTO users (id, subject, email, name) VALUES ($1, $2, $3, 'Demo User') ON CONFLICT (subject) DO NOTHING",
            &[&user.as_str(), &DEMO_SUBJECT, &DEMO_EMAIL],
        )
        .await?;
    let user_id: String = client.query_one("SELECT id FROM users WHERE subject = $1", &[&DEMO_SUBJECT]).await?.get(0);
    client
        .execute(
            "INSERT INTO teams (id, name, slug, created_by) VALUES ($1, 'Demo Team', 'demo', $2)",
            &[&team.as_str(), &user_id],
        )
        .await?;
    client
        .execute(
            "INSERT INTO team_members (team_id, user_id, role, status) VALUES ($1, $2, 'OWNER', 'APPROVED')",
            &[&team.as_str(), &user_id],
        )
        .await?;
    client
        .execute(
            "INSERT INTO team_settings (team_id, scope, name, value) VALUES ($1, 'compliance', 'help_text', $2)",
            &[&team.as_str(), &"Demo Team: reply STOP to opt out, HELP for help."],
        )
        .await?;
    Ok(team.to_string())
}

/// Locally, with the sandbox playing SignalHouse, the demo team starts connected (its own
/// sandbox subgroup), so numbers can be registered without a connect call.
pub async fn connect_demo_to_sandbox(admin_url: &str, team: &str) -> anyhow::Result<()> {
    connect(admin_url)
        .await?
        .execute(
            "UPDATE teams SET signalhouse_subgroup_id = coalesce(signalhouse_subgroup_id, 'sbx-subgroup-demo')
              WHERE id = $1",
            &[&team],
        )
        .await?;
    Ok(())
}

/// An admin connection, under nextier-store's TLS policy like every other one: plaintext to
/// the private cluster (loopback), `sslmode=verify-full` against the bundled Amazon roots to a
/// caller's server elsewhere. Retries for up to ten seconds while a server starts; a URL the
/// policy refuses fails at once.
pub(crate) async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let roots = nextier_store::tls::Roots::amazon();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match nextier_store::tls::connect(url, &roots).await {
            Ok((client, _driver)) => return Ok(client),
            Err(e) if Instant::now() < deadline && e.is::<tokio_postgres::Error>() => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_app_url_swaps_only_the_user() {
        assert_eq!(
            super::with_user("postgres://postgres@127.0.0.1:5432/db", "nextier_app"),
            "postgres://nextier_app@127.0.0.1:5432/db"
        );
        assert_eq!(super::with_user("postgres://a:b@h/db", "x"), "postgres://x@h/db");
    }
}
