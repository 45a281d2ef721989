//! The tests' PostgreSQL: [`TestDb::new`] starts the shared test cluster (a
//! `nextier_pgcluster::Cluster`) on first use.

use std::fs;
use std::path::Path;
use std::time::Duration;

use nextier_store::migrate::{self, Target, APP_ROLE, OWNER_ROLE, WORKER_ROLE};
use nextier_store::Db;

pub use nextier_pgcluster::{cluster_dir, connect, pg_bin, Cluster, TlsFiles, SUPERUSER};

/// The cluster every test process of this checkout shares.
#[derive(Clone)]
pub struct ClusterHandle {
    pub port: u16,
    pub template: String,
}

impl ClusterHandle {
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }
}

static SHARED: tokio::sync::OnceCell<ClusterHandle> = tokio::sync::OnceCell::const_new();

/// Starts (or joins) the shared test cluster and makes sure a template database migrated
/// with the current migrations exists. Cross-process safe through a lock file.
pub async fn shared_cluster() -> anyhow::Result<ClusterHandle> {
    SHARED.get_or_try_init(init_shared).await.cloned()
}

async fn init_shared() -> anyhow::Result<ClusterHandle> {
    let dir = cluster_dir(&crate::state_dir("pg"));
    let lock = crate::lock_dir(&dir).await?;
    // infra/dev.sh reads this to stop the cluster after the tests.
    let _ = fs::write(crate::state_dir("pg-dir"), dir.to_string_lossy().as_bytes());
    let result = ensure_running(&dir).await;
    drop(lock);
    result
}

async fn ensure_running(dir: &Path) -> anyhow::Result<ClusterHandle> {
    let port_file = dir.join("port");
    let known = fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok());
    let port = match known {
        Some(port) if connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres")).await.is_ok() => port,
        _ => {
            let port = crate::free_port();
            let _ = Cluster::stop(dir);
            Cluster::start(dir, port, false)?;
            fs::write(&port_file, port.to_string())?;
            port
        }
    };
    let template = format!("nextier_tpl_{}", migrate::fingerprint(Target::Local));
    let admin = connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres")).await?;
    let exists = admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template]).await?.is_some();
    if !exists {
        migrate::ensure_roles(&admin, Default::default()).await?;
        let building = format!("{template}_building");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {building}")).await?;
        admin.batch_execute(&format!("CREATE DATABASE {building} OWNER {OWNER_ROLE}")).await?;
        let mut client = connect(&format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{building}")).await?;
        migrate::run(&mut client, Target::Local).await?;
        drop(client);
        admin.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}")).await?;
    }
    drop_leftovers(&admin).await;
    Ok(ClusterHandle { port, template })
}

/// Drops the databases of earlier runs. A test database lives as long as its test (minutes);
/// one whose name (`t_<ULID>`) says it is over an hour old is left over from a run that ended,
/// and across many runs of `cargo nextest` they would fill the disk.
async fn drop_leftovers(admin: &tokio_postgres::Client) {
    let Ok(rows) = admin.query("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'", &[]).await else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for row in rows {
        let name: String = row.get(0);
        let born = ulid::Ulid::from_string(&name[2..].to_uppercase()).map(|u| u.datetime());
        if born.is_ok_and(|t| t < hour_ago) {
            if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await {
                tracing::debug!(error = %e, database = %name, "leftover test database not dropped");
            }
        }
    }
}

/// A fresh, migrated database for one test, reached as the application and worker roles (so
/// row-level security and grants apply exactly as deployed) and, for setup, as the owner.
pub struct TestDb {
    pub name: String,
    pub cluster: ClusterHandle,
    /// The API functions' pool: connects as `nextier_app`.
    pub db: Db,
    /// The pool of consumers, crons and webhooks: connects as `nextier_worker`.
    pub worker: Db,
}

impl TestDb {
    pub async fn new() -> Self {
        Self::try_new().await.expect("test database")
    }

    pub async fn try_new() -> anyhow::Result<Self> {
        let cluster = shared_cluster().await?;
        let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
        let admin = connect(&cluster.url(SUPERUSER, "postgres")).await?;
        let mut tries = 0;
        loop {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {} OWNER {OWNER_ROLE}", cluster.template);
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                // Two processes cloning the template at the same instant: try again.
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::debug!(error = %e, "create database retry");
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let db = Db::connect(&cluster.url(APP_ROLE, &name), 8)?;
        let worker = Db::connect(&cluster.url(WORKER_ROLE, &name), 8)?;
        Ok(Self { name, cluster, db, worker })
    }

    pub fn app_url(&self) -> String {
        self.cluster.url(APP_ROLE, &self.name)
    }

    pub fn worker_url(&self) -> String {
        self.cluster.url(WORKER_ROLE, &self.name)
    }

    pub fn superuser_url(&self) -> String {
        self.cluster.url(SUPERUSER, &self.name)
    }

    /// A superuser connection to this test's database, for fixtures and inspection only.
    pub async fn superuser(&self) -> tokio_postgres::Client {
        connect(&self.superuser_url()).await.expect("superuser connection")
    }
}

/// A cluster of one test's own (e.g. one serving TLS, which the shared cluster does not), in a
/// fresh folder under the test state; stopped and removed when dropped. No roles or migrations:
/// the superuser and the `postgres` database only.
pub struct PrivateCluster {
    pub cluster: Cluster,
    home: std::path::PathBuf,
}

impl PrivateCluster {
    /// Starts a cluster without TLS.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_inner(None)
    }

    /// Starts a cluster with `ssl = on`, serving `cert_pem` (the leaf first, then any
    /// intermediates) with the private key `key_pem`.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        Self::start_inner(Some((cert_pem, key_pem)))
    }

    fn start_inner(tls: Option<(&str, &str)>) -> anyhow::Result<Self> {
        let home = crate::state_dir("pg-private").join(ulid::Ulid::new().to_string().to_lowercase());
        fs::create_dir_all(&home)?;
        let dir = cluster_dir(&home.join("pg"));
        let port = crate::free_port();
        let cluster = match tls {
            Some((cert_pem, key_pem)) => {
                let files = TlsFiles { cert: home.join("server.crt"), key: home.join("server.key") };
                fs::write(&files.cert, cert_pem)?;
                fs::write(&files.key, key_pem)?;
                Cluster::start_with_tls(&dir, port, false, &files)
            }
            None => Cluster::start(&dir, port, false),
        };
        match cluster {
            Ok(cluster) => Ok(Self { cluster, home }),
            Err(e) => {
                let _ = fs::remove_dir_all(&home);
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.cluster.port
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(e) = Cluster::stop(&self.cluster.dir) {
            tracing::warn!(error = %e, "stopping a private test cluster");
        }
        let _ = fs::remove_dir_all(&self.cluster.dir);
        let _ = fs::remove_dir_all(&self.home);
    }
}
