//! tokio-postgres' TLS hooks over rustls: verified TLS, SNI, ALPN checked on
//! direct TLS, channel binding, and the [`wire`](super::wire) watcher inside
//! the encryption.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use x509_cert::der::Decode;
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_SHA_1, ID_SHA_256, ID_SHA_384, ID_SHA_512,
    SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};

use super::tls::ALPN_POSTGRESQL;
use super::wire::{Wire, WireStream};

/// Makes one TLS connection per connect: `MakeTlsConnect` for
/// tokio-postgres, carrying the [`Wire`] of the connection it serves.
#[derive(Clone)]
pub(crate) struct Tls {
    config: Arc<ClientConfig>,
    require_alpn: bool,
    wire: Arc<Wire>,
}

impl Tls {
    /// `config` must already offer ALPN `postgresql` and send SNI (the
    /// [`Connector`](super::Connector) makes sure). With `require_alpn`
    /// (direct TLS), the handshake fails unless the server selected it.
    pub(crate) fn new(config: Arc<ClientConfig>, require_alpn: bool, wire: Arc<Wire>) -> Self {
        Self {
            config,
            require_alpn,
            wire,
        }
    }
}

impl<S> MakeTlsConnect<S> for Tls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = TlsConnectOne;
    type Error = io::Error;

    /// `domain` is the config's host (the DSQL endpoint), also when
    /// `hostaddr` sends the TCP connection elsewhere: it is what the
    /// certificate is verified against and what SNI names.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<TlsConnectOne> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        Ok(TlsConnectOne {
            tls: self.clone(),
            name,
        })
    }
}

/// One TLS connect to a named server.
pub(crate) struct TlsConnectOne {
    tls: Tls,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for TlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let Self { tls, name } = self;
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(tls.config)
                .connect(name, stream)
                .await?;
            let (_, session) = stream.get_ref();
            if tls.require_alpn && session.alpn_protocol() != Some(ALPN_POSTGRESQL) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "direct TLS: the server did not select ALPN protocol \"postgresql\"",
                ));
            }
            Ok(TlsStream(WireStream::new(stream, tls.wire)))
        })
    }
}

impl Tls {
    /// The same TLS settings for a side connection (a cancel request),
    /// with a watcher of its own.
    pub(crate) fn for_side_connection(&self) -> Self {
        Self::new(Arc::clone(&self.config), self.require_alpn, Arc::default())
    }
}

/// A client TLS stream, watched.
pub(crate) struct TlsStream<S>(WireStream<tokio_rustls::client::TlsStream<S>>);

impl<S> tokio_postgres::tls::TlsStream for TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref().get_ref();
        let Some(certificate) = session.peer_certificates().and_then(<[_]>::first) else {
            return ChannelBinding::none();
        };
        // RFC 5929 tls-server-end-point: the certificate hashed with its
        // signature's hash (SHA-1 upgraded to SHA-256).
        let Ok(parsed) = x509_cert::Certificate::from_der(certificate) else {
            return ChannelBinding::none();
        };
        let digest = match parsed.signature_algorithm.oid {
            ID_SHA_1
            | ID_SHA_256
            | SHA_1_WITH_RSA_ENCRYPTION
            | SHA_256_WITH_RSA_ENCRYPTION
            | ECDSA_WITH_SHA_256 => Sha256::digest(certificate).to_vec(),
            ID_SHA_384 | SHA_384_WITH_RSA_ENCRYPTION | ECDSA_WITH_SHA_384 => {
                Sha384::digest(certificate).to_vec()
            }
            ID_SHA_512 | SHA_512_WITH_RSA_ENCRYPTION => Sha512::digest(certificate).to_vec(),
            _ => return ChannelBinding::none(),
        };
        ChannelBinding::tls_server_end_point(digest)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
