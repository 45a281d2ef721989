use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::Result;
use crate::tls::{self, Roots, SslMode};

/// The connection pool. Built once per Lambda cold start (or once by the local runtime);
/// small by design: a Lambda instance serves one request at a time.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// How the pool connects, for [`Db::sibling`].
    source: Arc<Source>,
}

struct Source {
    config: tokio_postgres::Config,
    mode: SslMode,
    roots: Option<Roots>,
}

/// The connections a function's own code may hold at once: the transaction of the request (or
/// message) it serves, and one spare so a handler that reads beside its transaction does not wait
/// on itself. Publishing after
/// commit and the local adapters have pools of their own ([`Db::sibling`]), so they never wait
/// on these. `DB_POOL_SIZE` overrides it where the template runs a batch's messages side by side.
pub const OWN_CONNECTIONS: usize = 2;

impl Db {
    /// A pool for `url`, under the TLS policy of [`crate::tls`]: `sslmode=verify-full` is
    /// verified against the bundled Amazon roots; plaintext only to loopback hosts. Connects
    /// nowhere yet (a refused URL is refused here, though).
    pub fn connect(url: &str, max_size: usize) -> anyhow::Result<Self> {
        Self::build(url, max_size, None)
    }

    /// The same, trusting `roots` instead of the Amazon ones for `sslmode=verify-full`.
    pub fn connect_with_roots(url: &str, max_size: usize, roots: &Roots) -> anyhow::Result<Self> {
        Self::build(url, max_size, Some(roots))
    }

    fn build(url: &str, max_size: usize, roots: Option<&Roots>) -> anyhow::Result<Self> {
        let (mut config, mode) = tls::parse(url)?;
        if config.get_application_name().is_none() {
            config.application_name("nextier");
        }
        config.connect_timeout(Duration::from_secs(5));
        Ok(Self::pool(Arc::new(Source { config, mode, roots: roots.cloned() }), max_size))
    }

    /// Another pool of `max_size` connections to the same database as the same role, for a
    /// component that must never wait on connections its caller holds: the outbox publisher
    /// (which runs while the request still holds its transaction's connection) and the
    /// Postgres-backed local adapters. Connects nowhere yet.
    pub fn sibling(&self, max_size: usize) -> Self {
        Self::pool(self.source.clone(), max_size)
    }

    fn pool(source: Arc<Source>, max_size: usize) -> Self {
        let config = source.config.clone();
        // Fast recycling: a ping only when a connection has been idle (the pool checks
        // `is_closed` always), so a warm Lambda does not pay a round trip per request.
        let recycling = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match source.mode {
            SslMode::Disable => Manager::from_config(config, NoTls, recycling),
            SslMode::VerifyFull => {
                let connector = source.roots.clone().unwrap_or_else(Roots::amazon).connector();
                Manager::from_config(config, connector, recycling)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(max_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            // Building fails only for timeouts without a runtime, and the runtime is set.
            .expect("the pool has a runtime for its timeouts");
        Self { pool, source }
    }

    /// The API functions' pool, as the application role: from `DATABASE_URL` (the RDS Proxy
    /// endpoint when deployed), of `DB_POOL_SIZE` (else [`OWN_CONNECTIONS`]) connections.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_env_var("DATABASE_URL")
    }

    /// The pool of consumers, crons and webhooks, as the worker role (the functions that
    /// cross teams, the outbox, unrouted webhook deliveries): from `WORKER_DATABASE_URL`.
    pub fn worker_from_env() -> anyhow::Result<Self> {
        Self::from_env_var("WORKER_DATABASE_URL")
    }

    fn from_env_var(name: &str) -> anyhow::Result<Self> {
        let url = nextier_runtime::config::var(name)?;
        let size = nextier_runtime::config::parse("DB_POOL_SIZE").unwrap_or(OWN_CONNECTIONS);
        Self::connect(&url, size)
    }

    /// Whether the database answers a trivial statement.
    pub async fn ping(&self) -> bool {
        match self.conn().await {
            Ok(conn) => conn.query_typed("SELECT 1", &[]).await.is_ok(),
            Err(_) => false,
        }
    }

    pub async fn conn(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }
}
