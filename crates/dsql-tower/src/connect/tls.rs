//! TLS for DSQL connections: rustls, certificate and host name always verified.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::ConnectError;

/// ALPN protocol of PostgreSQL, required for direct TLS (`sslnegotiation=direct`).
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A rustls client configuration that verifies the server certificate and
/// host name (libpq's `verify-full`), offers ALPN `postgresql`, and uses the
/// aws-lc-rs provider explicitly (rustls panics on its process default when
/// two providers are compiled in).
///
/// Trusted roots: the PEM file `root_cert` if given (like libpq's
/// `sslrootcert`, it replaces the system's roots), otherwise the operating
/// system's store.
pub fn client_config(root_cert: Option<&Path>) -> Result<ClientConfig, ConnectError> {
    let roots = match root_cert {
        Some(path) => roots_from_pem(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(format!("no usable TLS protocol version: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(config)
}

fn roots_from_pem(path: &Path) -> Result<RootCertStore, ConnectError> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConnectError::Tls(format!("cannot read the CA file {shown}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConnectError::Tls(format!("the CA file {shown} is not valid PEM: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ConnectError::Tls(format!(
            "the CA file {shown} holds no usable certificate"
        )));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, ConnectError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(ConnectError::Tls(format!(
            "no trusted root certificates found on this system ({}); install ca-certificates or \
             set sslrootcert",
            if errors.is_empty() {
                "none installed".to_owned()
            } else {
                errors.join("; ")
            }
        )));
    }
    Ok(roots)
}
