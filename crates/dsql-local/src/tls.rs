//! Certificates and the rustls server configuration.
//!
//! A CA (generated, or loaded from [`ca_dir`](crate::LocalConfigBuilder::ca_dir))
//! signs a server certificate for the endpoint host, `localhost`, `127.0.0.1`
//! and `::1`. The CA is written as PEM so that clients can verify the server
//! with `sslmode=verify-full sslrootcert=<file>`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
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

/// Builds the CA, the server certificate and the acceptor.
pub(crate) fn build(config: &LocalConfig) -> Result<TlsMaterial, StartError> {
    let (ca_pem, ca_key, ca_path, temp) = match &config.ca_dir {
        Some(dir) => {
            let (pem, key) = persistent_ca(dir)?;
            (pem, key, dir.join(CA_FILE), None)
        }
        None => {
            let base = std::env::temp_dir();
            let dir = temp_dir().map_err(ca_file_error(&base))?;
            let key = KeyPair::generate()?;
            let pem = ca_params().self_signed(&key)?.pem();
            let path = dir.join(CA_FILE);
            if let Err(e) = fs::write(&path, &pem) {
                let _ = fs::remove_dir_all(&dir);
                return Err(ca_file_error(&path)(e));
            }
            (pem, key, path, Some(dir))
        }
    };
    let acceptor = acceptor(config, Issuer::new(ca_params(), ca_key));
    let acceptor = match acceptor {
        Ok(acceptor) => acceptor,
        Err(e) => {
            if let Some(dir) = &temp {
                let _ = fs::remove_dir_all(dir);
            }
            return Err(e);
        }
    };
    Ok(TlsMaterial {
        acceptor,
        ca_pem,
        ca_path,
        temp_dir: temp,
    })
}

fn acceptor(config: &LocalConfig, issuer: Issuer<'static, KeyPair>) -> Result<TlsAcceptor, StartError> {
    let host = config.endpoint.host().to_owned();
    let mut names = vec![host.clone()];
    for name in ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(str::to_owned)
        .chain(config.server_names.iter().cloned())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, host);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

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
