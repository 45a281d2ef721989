//! The moto AWS emulator (`moto_server`), shared by the test processes of a checkout the same
//! way as the PostgreSQL cluster. Tests create uniquely named resources, so sharing is safe.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

static SHARED: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// The emulator's endpoint URL, starting it on first use.
pub async fn endpoint() -> anyhow::Result<String> {
    SHARED.get_or_try_init(init).await.cloned()
}

fn moto_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("MOTO_SERVER") {
        return Ok(PathBuf::from(bin));
    }
    let venv = crate::workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    let out = Command::new("sh").args(["-c", "command -v moto_server"]).output()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !path.is_empty() {
        return Ok(PathBuf::from(path));
    }
    bail!("moto_server was not found: run `infra/dev.sh setup` (it installs moto[server] into .venv)")
}

async fn init() -> anyhow::Result<String> {
    let dir = crate::state_dir("moto");
    let lock = crate::lock_dir(&dir).await?;
    let port_file = dir.join("port");
    if let Some(port) = fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse::<u16>().ok()) {
        let url = format!("http://127.0.0.1:{port}");
        if ready(port).await {
            drop(lock);
            return Ok(url);
        }
    }
    let port = crate::free_port();
    let log = fs::File::create(dir.join("server.log"))?;
    let child = Command::new(moto_binary()?)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting moto_server")?;
    // Every server started is recorded (appended), so cleanup stops them all even if a slow
    // one was given up on and replaced.
    {
        use std::io::Write;
        let mut pids = fs::OpenOptions::new().create(true).append(true).open(dir.join("pids"))?;
        writeln!(pids, "{}", child.id())?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(port).await {
        if Instant::now() > deadline {
            bail!("moto_server did not start on port {port}; see {}", dir.join("server.log").display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fs::write(&port_file, port.to_string())?;
    drop(lock);
    Ok(format!("http://127.0.0.1:{port}"))
}

async fn ready(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let req = "GET /moto-api/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf)).await, Ok(Ok(_)))
        && buf.starts_with(b"HTTP/1.1 200")
}
