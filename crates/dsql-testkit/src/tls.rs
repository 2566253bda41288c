//! tokio-postgres connectors over rustls (`tokio-postgres-rustls`) that
//! verify the server against a CA (`dsql-local`'s) and the host name:
//! `sslmode=verify-full`.
//!
//! The configurations are built with rustls' aws-lc-rs provider explicitly:
//! two crypto providers are compiled into the workspace, and with both,
//! rustls' process default (`ClientConfig::builder()`) panics.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The ALPN protocol of PostgreSQL's direct TLS negotiation.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A rustls client configuration that trusts the certificates of `ca_pem`,
/// offers ALPN `postgresql` if `alpn` (direct TLS needs it) and sends SNI if
/// `sni`.
pub fn client_config(ca_pem: &str, alpn: bool, sni: bool) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM parses")).expect("CA is valid");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    }
    config.enable_sni = sni;
    config
}

/// A connector as [`client_config`] sets it up.
pub fn connector(ca_pem: &str, alpn: bool, sni: bool) -> MakeRustlsConnect {
    MakeRustlsConnect::new(client_config(ca_pem, alpn, sni))
}

/// Verify-full against `ca_pem`, with ALPN `postgresql` and SNI: what a
/// client of DSQL does.
pub fn verify_full(ca_pem: &str) -> MakeRustlsConnect {
    connector(ca_pem, true, true)
}

/// A raw TLS stream to `local`, opened as PostgreSQL clients do
/// (`SSLRequest`, then TLS verified against its CA, with ALPN and SNI), for
/// tests that speak the protocol byte by byte.
pub async fn raw_stream(
    local: &dsql_local::DsqlLocal,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(local.addr())
        .await
        .expect("connect");
    let mut packet = 8_u32.to_be_bytes().to_vec();
    packet.extend_from_slice(&80_877_103_u32.to_be_bytes());
    tcp.write_all(&packet).await.expect("SSLRequest");
    assert_eq!(tcp.read_u8().await.expect("answer"), b'S');
    let name = rustls::pki_types::ServerName::try_from(local.host().to_owned()).expect("name");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config(local.ca_pem(), true, true)))
        .connect(name, tcp)
        .await
        .expect("TLS")
}
