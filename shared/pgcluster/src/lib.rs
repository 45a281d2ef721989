//! A private PostgreSQL cluster in a folder of ours, started from the system's binaries and
//! listening on 127.0.0.1 only: the local runtime's database (durable, in `.local/pg`) and,
//! through `nextier-testkit`, the tests' (fsync off). Not test code: the local runtime runs on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio_postgres::NoTls;

pub const SUPERUSER: &str = "postgres";

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

/// A server certificate (PEM, the chain's leaf first) and its private key (PEM) for a cluster
/// to serve TLS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Cluster {
    /// Starts the cluster in `dir`, creating it if needed. `durable = false` turns fsync off
    /// (tests only). No TLS: the server answers a client's TLS request with "no".
    pub fn start(dir: &Path, port: u16, durable: bool) -> anyhow::Result<Self> {
        Self::start_with(dir, port, durable, None)
    }

    /// The same with `ssl = on`, serving `tls`'s certificate (both files are copied into the
    /// cluster's folder, the key readable by the server only). Clients may still connect
    /// without TLS (the authentication rules are unchanged): their `sslmode` decides.
    pub fn start_with_tls(dir: &Path, port: u16, durable: bool, tls: &TlsFiles) -> anyhow::Result<Self> {
        Self::start_with(dir, port, durable, Some(tls))
    }

    fn start_with(dir: &Path, port: u16, durable: bool, tls: Option<&TlsFiles>) -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let data = dir.join("data");
        let tls_opts = match tls {
            Some(tls) => {
                let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
                fs::copy(&tls.cert, &cert).with_context(|| format!("copying {}", tls.cert.display()))?;
                fs::copy(&tls.key, &key).with_context(|| format!("copying {}", tls.key.display()))?;
                // The server refuses a key that others may read.
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
                format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", path(&cert), path(&key))
            }
            None => String::new(),
        };
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
        opts.push_str(&tls_opts);
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

/// Connects, retrying for up to ten seconds while the server starts.
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

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
