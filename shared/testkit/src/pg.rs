//! The private PostgreSQL cluster. The local runtime uses [`Cluster`] too (durably, in
//! `.local/pg`); tests use [`TestDb::new`], which starts the shared test cluster on first use.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nextier_store::migrate::{self, Target, APP_ROLE, OWNER_ROLE, WORKER_ROLE};
use nextier_store::Db;
use tokio_postgres::NoTls;

const SUPERUSER: &str = "postgres";

/// Finds the PostgreSQL server binaries: `PG_BIN`, then Debian's layout, then `PATH`.
pub fn pg_bin() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    debian.sort();
    if let Some(dir) = debian.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("sh").args(["-c", "command -v initdb"]).output() {
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if let Some(dir) = Path::new(&path).parent().filter(|_| !path.is_empty()) {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them with \
         `apt-get install postgresql` (Debian/Ubuntu) or set PG_BIN to their directory, \
         or set DATABASE_URL to use an existing server."
    )
}

fn is_root() -> bool {
    // SAFETY-free check: root's home is /root and `id -u` prints 0.
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses root).
fn run_pg(bin: &Path, args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd.args(args).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {:?} failed: {}{}",
            bin.display(),
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Where a cluster can live. As root, the server runs as the `postgres` user, which may not
/// be able to enter `preferred` (a checkout under /root, or in a mode-700 temporary folder);
/// then a folder under /tmp named after `preferred` is used instead.
pub fn cluster_dir(preferred: &Path) -> PathBuf {
    if !is_root() {
        return preferred.to_path_buf();
    }
    let _ = fs::create_dir_all(preferred);
    let reachable = Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(preferred.parent().unwrap_or(preferred))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if reachable {
        return preferred.to_path_buf();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    preferred.hash(&mut h);
    let fallback = std::env::temp_dir().join(format!("nextier-pg-{:016x}", h.finish()));
    tracing::info!(preferred = %preferred.display(), fallback = %fallback.display(), "postgres cannot enter the preferred folder; using a temporary one");
    fallback
}

/// A PostgreSQL cluster in a folder of ours, listening on 127.0.0.1 only.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// Starts the cluster in `dir`, creating it if needed. `durable = false` turns fsync off
    /// (tests only).
    pub fn start(dir: &Path, port: u16, durable: bool) -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let data = dir.join("data");
        if is_root() {
            run_cmd("chown", &["-R", "postgres:postgres", dir.to_str().unwrap_or_default()])?;
        }
        if !data.join("PG_VERSION").exists() {
            run_pg(
                &bin.join("initdb"),
                &["-D", path(&data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            )?;
        }
        let mut opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=64MB",
            path(&dir)
        );
        if !durable {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = dir.join("server.log");
        run_pg(&bin.join("pg_ctl"), &["-D", path(&data), "-l", path(&log), "-w", "-t", "60", "-o", &opts, "start"])?;
        Ok(Self { dir, port })
    }

    pub fn stop(dir: &Path) -> anyhow::Result<()> {
        let bin = pg_bin()?;
        run_pg(&bin.join("pg_ctl"), &["-D", path(&dir.join("data")), "-m", "fast", "-w", "stop"])
    }

    pub fn superuser_url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }
}

fn run_cmd(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(cmd).args(args).status()?;
    if !status.success() {
        bail!("{cmd} {args:?} failed");
    }
    Ok(())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("paths are UTF-8")
}

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
    Ok(ClusterHandle { port, template })
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok(client);
            }
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
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
