//! Real parts for tests: a private PostgreSQL cluster started from the system's binaries
//! (one per checkout, shared by every test process through a file lock, a fresh database
//! per test cloned from a migrated template) and the moto AWS emulator on 127.0.0.1.

pub mod fake_zoho;
pub mod fakes;
pub mod fixtures;
pub mod moto;
pub mod pg;

pub use pg::{ClusterHandle, TestDb};

/// The workspace root (tests run with the package directory as their working directory).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).expect("testkit lives in shared/testkit").to_path_buf()
}

/// Where shared test services keep their state: `target/testkit/<name>`.
pub fn state_dir(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("testkit").join(name)
}

/// Takes the exclusive lock file of a shared service's folder (blocking other test
/// processes until dropped).
pub async fn lock_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
    Ok(tokio::task::spawn_blocking(move || file.lock().map(|_| file)).await??)
}

pub use nextier_pgcluster::free_port;
