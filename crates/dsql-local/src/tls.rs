//! Certificates and the rustls server configuration.
//!
//! A CA (generated, or loaded from [`ca_dir`](crate::LocalConfigBuilder::ca_dir))
//! signs a server certificate for the endpoint host, `localhost`, `127.0.0.1`
//! and `::1`. The CA is written as PEM so that clients can verify the server
//! with `sslmode=verify-full sslrootcert=<file>`.
//!
//! A generated, temporary CA (the default, without `ca_dir`) is limited so
//! that trusting it risks little:
//!
//! - **name constraints**: it may only vouch for the server's DNS names (the
//!   endpoint host, `localhost` and any extra server name), `127.0.0.0/8`,
//!   `::1` and any extra server IP address; a certificate for another name
//!   signed by its key does not verify;
//! - **short validity**: from [`CLOCK_SKEW`] (5 minutes) before it is made
//!   until [`GENERATED_VALIDITY`] (7 days) after; the server certificate has
//!   the same window, so it never outlives its CA. A server running longer
//!   needs a restart, or a persistent CA.
//!
//! A persistent CA (`ca_dir`) is kept as before: it is meant to be trusted
//! once, across restarts and endpoint changes, so it has neither constraints
//! nor a short validity.
//!
//! The regional endpoints of a [`Regions`](crate::Regions) share one CA
//! ([`Ca`]), made once for all their names, so that clients trust one PEM
//! file; each still has a server certificate of its own.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::LocalConfig;
use crate::error::StartError;

/// The ALPN protocol of PostgreSQL's direct TLS.
pub(crate) const ALPN_POSTGRESQL: &[u8] = b"postgresql";

const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// A generated CA and its server certificate are valid from this long before
/// they are made, so that a client whose clock is a little behind accepts
/// them.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// How long after it is made a generated CA (and its server certificate)
/// stays valid.
pub(crate) const GENERATED_VALIDITY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A certificate's validity window.
#[derive(Clone, Copy, Debug)]
struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Validity {
    /// The window of a CA generated at `now`.
    fn generated(now: SystemTime) -> Self {
        Self {
            not_before: now.checked_sub(CLOCK_SKEW).unwrap_or(now),
            not_after: now + GENERATED_VALIDITY,
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

/// The server's TLS identity and where its CA is.
pub(crate) struct TlsMaterial {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) ca_pem: String,
    pub(crate) ca_path: PathBuf,
    /// A temporary directory to remove at shutdown.
    pub(crate) temp_dir: Option<PathBuf>,
}

/// The CA's parameters; the same every time, so that a CA loaded from its
/// key signs certificates that chain to the stored CA certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dsql-local");
    dn.push(DnType::CommonName, "dsql-local CA");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// The parameters of a generated CA for the server `names` (see
/// [`server_names`]): [`ca_params`], constrained to those names, loopback
/// addresses and `window`.
fn generated_ca_params(names: &[String], window: &Validity) -> CertificateParams {
    let mut params = ca_params();
    window.apply(&mut params);
    let mut permitted = vec![
        GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
        GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
            std::net::Ipv6Addr::LOCALHOST.octets(),
            128,
        )),
    ];
    for name in names {
        let subtree = match name.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => continue,
            Ok(IpAddr::V4(ip)) => GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(ip.octets(), 32)),
            Ok(IpAddr::V6(ip)) => GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(ip.octets(), 128)),
            // A DNS constraint covers the name and its subdomains, so a
            // wildcard is constrained by its parent.
            Err(_) => GeneralSubtree::DnsName(name.strip_prefix("*.").unwrap_or(name).to_owned()),
        };
        if !permitted.contains(&subtree) {
            permitted.push(subtree);
        }
    }
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    });
    params
}

/// The names of the server certificate: the endpoint `host`, `localhost`,
/// `127.0.0.1`, `::1` and the `extra` server names, without duplicates.
fn server_names(host: &str, extra: &[String]) -> Vec<String> {
    let mut names = vec![host.to_owned()];
    for name in ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_owned)
        .chain(extra.iter().cloned())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn ca_file_error(path: &Path) -> impl FnOnce(io::Error) -> StartError + '_ {
    move |source| StartError::CaFile {
        path: path.to_owned(),
        source,
    }
}

/// Loads the CA from `dir`, or creates it there.
fn persistent_ca(dir: &Path) -> Result<(String, KeyPair), StartError> {
    let cert_path = dir.join(CA_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        let cert_pem = fs::read_to_string(&cert_path).map_err(ca_file_error(&cert_path))?;
        let key_pem = fs::read_to_string(&key_path).map_err(ca_file_error(&key_path))?;
        return Ok((cert_pem, KeyPair::from_pem(&key_pem)?));
    }
    fs::create_dir_all(dir).map_err(ca_file_error(dir))?;
    let key = KeyPair::generate()?;
    let cert_pem = ca_params().self_signed(&key)?.pem();
    write_private(&key_path, key.serialize_pem().as_bytes()).map_err(ca_file_error(&key_path))?;
    fs::write(&cert_path, &cert_pem).map_err(ca_file_error(&cert_path))?;
    Ok((cert_pem, key))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    fs::write(path, contents)
}

/// A fresh directory under the system's temporary directory.
fn temp_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let dir = base.join(format!(
            "dsql-local-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary directory")))
}

/// A CA that signs server certificates: loaded from (or created in) a
/// `ca_dir`, or generated in a temporary directory and constrained to the
/// server names it was made for. Several servers can share one (the
/// regional endpoints of [`Regions`](crate::Regions)), so that clients
/// trust one PEM file.
pub(crate) struct Ca {
    pub(crate) pem: String,
    pub(crate) path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The validity of a generated CA, which its server certificates share.
    window: Option<Validity>,
    /// The temporary directory holding a generated CA's file: its owner
    /// removes it.
    pub(crate) temp_dir: Option<PathBuf>,
}

impl Ca {
    /// Loads the CA from `ca_dir` (creating it there if absent), or
    /// generates one that may vouch only for `names` (see [`names`]).
    pub(crate) fn new(ca_dir: Option<&Path>, names: &[String]) -> Result<Self, StartError> {
        if let Some(dir) = ca_dir {
            let (pem, key) = persistent_ca(dir)?;
            return Ok(Self {
                pem,
                path: dir.join(CA_FILE),
                issuer: Issuer::new(ca_params(), key),
                window: None,
                temp_dir: None,
            });
        }
        let window = Validity::generated(SystemTime::now());
        let params = generated_ca_params(names, &window);
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        let base = std::env::temp_dir();
        let dir = temp_dir().map_err(ca_file_error(&base))?;
        let path = dir.join(CA_FILE);
        if let Err(e) = fs::write(&path, &pem) {
            let _ = fs::remove_dir_all(&dir);
            return Err(ca_file_error(&path)(e));
        }
        Ok(Self {
            pem,
            path,
            issuer: Issuer::new(params, key),
            window: Some(window),
            temp_dir: Some(dir),
        })
    }

    /// An acceptor with a server certificate for `names`, signed by this CA.
    pub(crate) fn acceptor(&self, names: &[String]) -> Result<TlsAcceptor, StartError> {
        acceptor(names, self.window.as_ref(), &self.issuer)
    }

    /// Removes the temporary directory, if any.
    pub(crate) fn remove_temp_dir(&self) {
        if let Some(dir) = &self.temp_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// The names of `config`'s server certificate: the endpoint host,
/// `localhost`, `127.0.0.1`, `::1` and the extra server names.
pub(crate) fn names(config: &LocalConfig) -> Vec<String> {
    server_names(config.endpoint.host(), &config.server_names)
}

/// Builds the server certificate and the acceptor, with the `shared` CA or
/// one of the server's own.
pub(crate) fn build(config: &LocalConfig, shared: Option<&Ca>) -> Result<TlsMaterial, StartError> {
    let names = names(config);
    if let Some(ca) = shared {
        return Ok(TlsMaterial {
            acceptor: ca.acceptor(&names)?,
            ca_pem: ca.pem.clone(),
            ca_path: ca.path.clone(),
            temp_dir: None,
        });
    }
    let ca = Ca::new(config.ca_dir.as_deref(), &names)?;
    match ca.acceptor(&names) {
        Ok(acceptor) => Ok(TlsMaterial {
            acceptor,
            ca_pem: ca.pem,
            ca_path: ca.path,
            temp_dir: ca.temp_dir,
        }),
        Err(e) => {
            ca.remove_temp_dir();
            Err(e)
        }
    }
}

/// The server certificate for `names` (the first is the common name), valid
/// within `window` if given, signed by `issuer`; and its key.
fn server_cert(
    names: &[String],
    window: Option<&Validity>,
    issuer: &Issuer<'static, KeyPair>,
) -> Result<(Certificate, KeyPair), StartError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = DistinguishedName::new();
    if let Some(host) = names.first() {
        params.distinguished_name.push(DnType::CommonName, host.as_str());
    }
    if let Some(window) = window {
        window.apply(&mut params);
    }
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

fn acceptor(
    names: &[String],
    window: Option<&Validity>,
    issuer: &Issuer<'static, KeyPair>,
) -> Result<TlsAcceptor, StartError> {
    let (cert, key) = server_cert(names, window, issuer)?;

    // Never `ServerConfig::builder()`: it panics when two crypto providers
    // are compiled in.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    server.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

#[cfg(test)]
mod tests {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{CertificateError, Error, RootCertStore};

    use super::*;

    const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

    /// A generated CA as [`build`] makes it: its certificate and issuer.
    fn generated_ca(
        names: &[String],
        window: &Validity,
    ) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let params = generated_ca_params(names, window);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        (cert.der().clone(), Issuer::new(params, key))
    }

    /// Verifies `leaf` for `name` at `at` with rustls against `ca` only.
    fn verify(
        ca: &CertificateDer<'static>,
        leaf: &Certificate,
        name: &str,
        at: SystemTime,
    ) -> Result<(), Error> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).expect("CA is a valid trust anchor");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("verifier");
        let name = ServerName::try_from(name.to_owned()).expect("server name");
        let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970");
        verifier
            .verify_server_cert(
                leaf.der(),
                &[],
                &name,
                &[],
                UnixTime::since_unix_epoch(since_epoch),
            )
            .map(|_| ())
    }

    #[test]
    fn generated_ca_vouches_for_the_server_names() {
        let names = server_names(HOST, &["db.internal".to_owned(), "10.1.2.3".to_owned()]);
        let now = SystemTime::now();
        let window = Validity::generated(now);
        let (ca, issuer) = generated_ca(&names, &window);
        let (leaf, _) = server_cert(&names, Some(&window), &issuer).expect("server certificate");
        for name in [HOST, "localhost", "127.0.0.1", "::1", "db.internal", "10.1.2.3"] {
            verify(&ca, &leaf, name, now).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn names_outside_the_constraints_do_not_verify() {
        let names = server_names(HOST, &[]);
        let now = SystemTime::now();
        let window = Validity::generated(now);
        let (ca, issuer) = generated_ca(&names, &window);
        for outside in [
            "example.com",
            "dsql.us-east-1.on.aws",
            "localhost.example.com",
            "10.0.0.1",
            "::2",
        ] {
            // A leaf that claims the name, signed by the CA's own key.
            let (leaf, _) = server_cert(&[outside.to_owned()], Some(&window), &issuer).expect("leaf");
            let err = verify(&ca, &leaf, outside, now).expect_err(outside);
            assert!(
                matches!(&err, Error::InvalidCertificate(CertificateError::Other(other))
                    if format!("{other:?}").contains("NameConstraintViolation")),
                "{outside}: {err:?}"
            );
        }
        // Subdomains of a permitted name are inside the constraints.
        let (leaf, _) = server_cert(&["db.localhost".to_owned()], Some(&window), &issuer).expect("leaf");
        verify(&ca, &leaf, "db.localhost", now).expect("subdomain of localhost");
        let (leaf, _) = server_cert(&["127.9.9.9".to_owned()], Some(&window), &issuer).expect("leaf");
        verify(&ca, &leaf, "127.9.9.9", now).expect("inside 127.0.0.0/8");
    }

    #[test]
    fn generated_ca_is_short_lived() {
        let names = server_names("localhost", &[]);
        let now = SystemTime::now();
        let window = Validity::generated(now);
        assert_eq!(
            window.not_after.duration_since(now).ok(),
            Some(GENERATED_VALIDITY)
        );
        let (ca, issuer) = generated_ca(&names, &window);
        let (leaf, _) = server_cert(&names, Some(&window), &issuer).expect("server certificate");
        // A client up to 5 minutes behind accepts it, …
        verify(&ca, &leaf, "localhost", now - CLOCK_SKEW + Duration::from_secs(2)).expect("skewed clock");
        verify(
            &ca,
            &leaf,
            "localhost",
            now + GENERATED_VALIDITY - Duration::from_secs(2),
        )
        .expect("last day");
        // … but not before, nor after 7 days.
        let err = verify(
            &ca,
            &leaf,
            "localhost",
            now - CLOCK_SKEW - Duration::from_secs(60),
        )
        .expect_err("too early");
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{err:?}"
        );
        let err = verify(
            &ca,
            &leaf,
            "localhost",
            now + GENERATED_VALIDITY + Duration::from_secs(60),
        )
        .expect_err("expired");
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn wildcard_server_names_are_constrained_by_their_parent() {
        let names = server_names("localhost", &["*.db.internal".to_owned()]);
        let window = Validity::generated(SystemTime::now());
        let params = generated_ca_params(&names, &window);
        let permitted = params.name_constraints.expect("constraints").permitted_subtrees;
        assert!(permitted.contains(&GeneralSubtree::DnsName("db.internal".to_owned())));
        assert!(permitted.contains(&GeneralSubtree::DnsName("localhost".to_owned())));
        assert!(
            !permitted
                .iter()
                .any(|s| matches!(s, GeneralSubtree::DnsName(n) if n.contains('*')))
        );
    }
}
