//! TLS to the database, and the rule for when a connection may go without it.
//!
//! A connection string's `sslmode` decides (URL form: `postgres://…?sslmode=…`):
//! - `verify-full`: TLS through rustls, refusing the server unless its certificate chains to
//!   a trusted root *and* names the host connected to (libpq's `verify-full`). The trusted
//!   roots are the Amazon ones bundled into the binary ([`Roots::amazon`]: RDS Proxy's Amazon
//!   Trust Services roots and the RDS global bundle for direct connections to a cluster), or
//!   roots given by the caller (tests). A server that does not offer TLS is refused: there is
//!   no fallback to plaintext.
//! - `disable` (or no `sslmode`, or `allow`/`prefer`): plaintext, and only when every host is
//!   loopback (`localhost`, 127.0.0.0/8, `::1`) or a Unix socket: the local runtime and the
//!   tests. To any other host these are refused before anything is sent, so a deployed function
//!   whose URL lost its `sslmode=verify-full` fails at its first connection instead of talking
//!   plaintext, or TLS to whoever answers.
//! - `require`, `verify-ca`: refused everywhere. They promise TLS without checking whose
//!   certificate it is (`require`) or for which host (`verify-ca`); nothing here does that.
//!
//! The crypto provider is named explicitly (aws-lc-rs, the one the AWS SDK's HTTPS client
//! already uses): the workspace also compiles rustls with ring (reqwest in the tests), so a
//! process-wide default would have to be installed first, and nothing here relies on one.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode as WireSslMode};
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The Amazon roots every binary trusts for `sslmode=verify-full`; where each comes from is
/// written at the top of the file.
pub const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("../certs/amazon-db-roots.pem");

/// How a connection is made, read from its connection string under the policy above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext, to loopback hosts only.
    Disable,
    /// TLS, with the chain verified against trusted roots and the host name checked.
    VerifyFull,
}

/// The root certificates a verified connection trusts.
#[derive(Clone, Debug)]
pub struct Roots(Arc<RootCertStore>);

impl Roots {
    /// The bundled Amazon roots (parsed once per process).
    pub fn amazon() -> Self {
        static AMAZON: OnceLock<Roots> = OnceLock::new();
        AMAZON.get_or_init(|| Self::from_pem(AMAZON_ROOTS_PEM).expect("the bundled Amazon roots parse")).clone()
    }

    /// Roots from PEM text: every certificate in it becomes a trust anchor. At least one is
    /// required, and one that does not parse is an error (no partial trust store).
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.context("reading a PEM certificate")?;
            store.add(cert).context("a root certificate is not usable as a trust anchor")?;
        }
        if store.is_empty() {
            bail!("no certificate found in the PEM text");
        }
        Ok(Self(Arc::new(store)))
    }

    /// The trust anchors (their subjects and keys).
    pub fn store(&self) -> &RootCertStore {
        &self.0
    }

    /// The rustls connector for tokio-postgres: verify-full against these roots, on aws-lc-rs.
    pub fn connector(&self) -> MakeRustlsConnect {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(self.0.clone())
            .with_no_client_auth();
        MakeRustlsConnect::new(config)
    }
}

/// Reads a connection string: the driver's configuration (its `sslmode` set to what the mode
/// needs on the wire) and the mode, or an error when the policy refuses it. Connects nowhere.
pub fn parse(url: &str) -> anyhow::Result<(Config, SslMode)> {
    let (rest, requested) = take_sslmode(url)?;
    // The driver's errors do not quote the string, so no password ends up in a log.
    let mut config: Config = rest.parse().map_err(|e| anyhow!("invalid database connection string: {e}"))?;
    let requested = match requested {
        Some(mode) => Some(mode),
        // A key=value string: the driver read its sslmode (disable, prefer or require; prefer
        // is also its default, so it counts as unsaid).
        None => match config.get_ssl_mode() {
            WireSslMode::Disable => Some("disable".to_owned()),
            WireSslMode::Require => Some("require".to_owned()),
            _ => None,
        },
    };
    let mode = match requested.as_deref() {
        Some("verify-full") => SslMode::VerifyFull,
        Some(weak @ ("require" | "verify-ca")) => bail!(
            "sslmode={weak} is not supported: it accepts a certificate without checking {}; use \
             sslmode=verify-full (or sslmode=disable for a database on this machine)",
            if weak == "require" { "who issued it" } else { "which host it names" }
        ),
        None | Some("disable" | "allow" | "prefer") if is_local(&config) => SslMode::Disable,
        None | Some("disable" | "allow" | "prefer") => bail!(
            "the database host ({}) is not loopback: its connection string must say \
             sslmode=verify-full (it says {}); plaintext is allowed only to this machine",
            hosts(&config),
            requested.as_deref().map_or("nothing".to_owned(), |m| format!("sslmode={m}"))
        ),
        Some(other) => bail!("unknown sslmode `{other}`: use verify-full, or disable for a database on this machine"),
    };
    config.ssl_mode(match mode {
        SslMode::Disable => WireSslMode::Disable,
        // TLS or nothing: a server that answers the TLS request with "no" is refused.
        SslMode::VerifyFull => WireSslMode::Require,
    });
    Ok((config, mode))
}

/// One connection (not pooled) under the same policy, e.g. the migration runner's. Returns the
/// client and its connection's driver task.
pub async fn connect(
    url: &str,
    roots: &Roots,
) -> anyhow::Result<(Client, JoinHandle<Result<(), tokio_postgres::Error>>)> {
    let (config, mode) = parse(url)?;
    Ok(match mode {
        SslMode::Disable => {
            let (client, conn) = config.connect(NoTls).await?;
            (client, tokio::spawn(conn))
        }
        SslMode::VerifyFull => {
            let (client, conn) = config.connect(roots.connector()).await?;
            (client, tokio::spawn(conn))
        }
    })
}

/// Takes `sslmode` out of a URL's query (tokio-postgres knows only disable, prefer and
/// require), splitting the URL as tokio-postgres does: the credentials end at the first `@`,
/// the query starts at the first `?` after them. Other strings are returned unchanged.
fn take_sslmode(url: &str) -> anyhow::Result<(Cow<'_, str>, Option<String>)> {
    let Some(scheme) = ["postgres://", "postgresql://"].into_iter().find(|p| url.starts_with(p)) else {
        return Ok((Cow::Borrowed(url), None));
    };
    let after_scheme = &url[scheme.len()..];
    let host_start = scheme.len() + after_scheme.find('@').map_or(0, |at| at + 1);
    let Some(query_start) = url[host_start..].find('?').map(|q| host_start + q) else {
        return Ok((Cow::Borrowed(url), None));
    };
    let (base, query) = (&url[..query_start], &url[query_start + 1..]);
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == "sslmode" {
            mode = Some(decode(value)?.into_owned());
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((Cow::Owned(rest), mode))
}

fn decode(s: &str) -> anyhow::Result<Cow<'_, str>> {
    percent_encoding::percent_decode_str(s).decode_utf8().context("a database URL parameter is not UTF-8")
}

/// Whether every place the connection may go is this machine.
fn is_local(config: &Config) -> bool {
    let hosts = config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    });
    hosts && config.get_hostaddrs().iter().all(|addr| addr.is_loopback())
}

fn hosts(config: &Config) -> String {
    let mut names: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    names.extend(config.get_hostaddrs().iter().map(|addr| addr.to_string()));
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> anyhow::Result<SslMode> {
        parse(url).map(|(_, mode)| mode)
    }

    #[test]
    fn loopback_hosts_may_go_plaintext() {
        for url in [
            "postgres://nextier_app@127.0.0.1:5432/nextier",
            "postgres://nextier_app@127.0.0.1:5432/nextier?sslmode=disable",
            "postgres://u@localhost/db?sslmode=prefer",
            "postgres://u@[::1]:5433/db?application_name=x&sslmode=disable",
            "postgres://u@127.1.2.3/db?sslmode=allow",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            "host=127.0.0.1 user=postgres sslmode=disable",
            "host=localhost user=postgres",
        ] {
            assert_eq!(mode(url).unwrap(), SslMode::Disable, "{url}");
            assert_eq!(parse(url).unwrap().0.get_ssl_mode(), WireSslMode::Disable, "{url}");
        }
    }

    #[test]
    fn other_hosts_need_verify_full() {
        for url in [
            "postgres://u:p@db.example.com:5432/nextier",
            "postgres://u:p@db.example.com:5432/nextier?sslmode=disable",
            "postgres://u:p@db.example.com/nextier?sslmode=prefer",
            "postgres://u:p@10.0.0.5/nextier?sslmode=allow",
            // One non-loopback host, or an address behind a loopback name, is enough.
            "postgres://u@127.0.0.1,db.example.com/nextier",
            "postgres://u@localhost/nextier?hostaddr=10.1.2.3",
            "host=db.example.com user=u sslmode=disable",
            "host=db.example.com user=u",
        ] {
            let err = mode(url).unwrap_err().to_string();
            assert!(err.contains("must say sslmode=verify-full"), "{url}: {err}");
        }
    }

    #[test]
    fn weaker_tls_modes_are_refused_everywhere() {
        for url in [
            "postgres://u@db.example.com/nextier?sslmode=require",
            "postgres://u@db.example.com/nextier?sslmode=verify-ca",
            "postgres://u@127.0.0.1/nextier?sslmode=require",
            "postgres://u@127.0.0.1/nextier?sslmode=verify-ca",
            "host=db.example.com user=u sslmode=require",
        ] {
            let err = mode(url).unwrap_err().to_string();
            assert!(err.contains("is not supported"), "{url}: {err}");
        }
        assert!(mode("postgres://u@127.0.0.1/db?sslmode=bogus").unwrap_err().to_string().contains("unknown sslmode"));
    }

    #[test]
    fn verify_full_is_taken_out_of_the_url_and_requires_tls_on_the_wire() {
        let url = "postgres://nextier_app:pa%3Fss@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?application_name=api&ssl%6Dode=verify-full&connect_timeout=3";
        let (config, mode) = parse(url).unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(config.get_ssl_mode(), WireSslMode::Require);
        assert_eq!(config.get_hosts(), &[Host::Tcp("nextier.proxy-abc.us-east-1.rds.amazonaws.com".to_owned())]);
        assert_eq!(config.get_user(), Some("nextier_app"));
        assert_eq!(config.get_password(), Some(&b"pa?ss"[..]));
        assert_eq!(config.get_dbname(), Some("nextier"));
        assert_eq!(config.get_application_name(), Some("api"));
        assert_eq!(config.get_connect_timeout(), Some(&std::time::Duration::from_secs(3)));
        // Loopback with verify-full is verified too (the tests' TLS cluster).
        assert_eq!(mode_of("postgres://u@localhost:5/db?sslmode=verify-full"), SslMode::VerifyFull);
        // The last sslmode wins, as in the driver.
        assert_eq!(mode_of("postgres://u@db.example.com/db?sslmode=disable&sslmode=verify-full"), SslMode::VerifyFull);
    }

    fn mode_of(url: &str) -> SslMode {
        mode(url).unwrap()
    }

    #[test]
    fn errors_do_not_repeat_the_password() {
        for url in [
            "postgres://u:hunter2secret@db.example.com/nextier",
            "postgres://u:hunter2secret@db.example.com/nextier?sslmode=require",
            "postgres://u:hunter2secret@db.example.com:notaport/nextier?sslmode=verify-full",
        ] {
            let err = format!("{:#}", mode(url).unwrap_err());
            assert!(!err.contains("hunter2secret"), "{err}");
        }
    }

    #[test]
    fn the_bundled_roots_parse() {
        let roots = Roots::from_pem(AMAZON_ROOTS_PEM).unwrap();
        assert_eq!(roots.store().len(), CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM).count());
        assert!(!roots.store().is_empty());
    }

    #[test]
    fn pem_without_certificates_is_an_error() {
        assert!(Roots::from_pem(b"").is_err());
        assert!(Roots::from_pem(b"# nothing here\n").is_err());
    }
}
