//! Test support: a rustls connector for tokio-postgres that verifies the
//! server against dsql-local's CA (verify-full), token signing with
//! dsql-auth, and helpers for the real PostgreSQL on 127.0.0.1:5432.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsql_auth::aws::Credentials;
use dsql_auth::clock::SharedClock;
use dsql_auth::{DsqlConfig, SigningProvider, SslNegotiation, TokenProvider};
use dsql_local::{DsqlLocal, LocalConfigBuilder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::DbError;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls, Socket};

/// The real PostgreSQL behind dsql-local (trust authentication).
pub const UPSTREAM: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Starts dsql-local over the local PostgreSQL.
pub async fn start(builder: LocalConfigBuilder) -> DsqlLocal {
    builder
        .upstream(UPSTREAM)
        .start()
        .await
        .expect("dsql-local starts")
}

/// A tokio-postgres TLS connector over rustls.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// Verifies the server against `ca_pem` and the host name, with ALPN
    /// `postgresql` (needed for direct TLS) and SNI.
    pub fn verify_full(ca_pem: &str) -> Self {
        Self::new(ca_pem, true, true)
    }

    /// As [`verify_full`](Self::verify_full), choosing ALPN and SNI.
    pub fn new(ca_pem: &str, alpn: bool, sni: bool) -> Self {
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
            config.alpn_protocols = vec![b"postgresql".to_vec()];
        }
        config.enable_sni = sni;
        Self {
            config: Arc::new(config),
        }
    }
}

impl Tls {
    /// The rustls configuration.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

impl MakeTlsConnect<Socket> for Tls {
    type Stream = TlsStream;
    type TlsConnect = TlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<TlsConnectOne> {
        let name = ServerName::try_from(domain.to_owned()).map_err(io::Error::other)?;
        Ok(TlsConnectOne {
            config: Arc::clone(&self.config),
            name,
        })
    }
}

/// Connects one stream.
pub struct TlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for TlsConnectOne {
    type Stream = TlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(TlsStream(stream))
        })
    }
}

/// A client TLS stream.
pub struct TlsStream(tokio_rustls::client::TlsStream<Socket>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
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

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// Signs a token for `config` with `credentials` (and `clock`, if given).
pub async fn sign(config: &DsqlConfig, credentials: Credentials, clock: Option<SharedClock>) -> String {
    let mut builder = SigningProvider::builder(config).credentials_provider(credentials);
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let token = builder.build().token().await.expect("token signed");
    token.expose_secret().to_owned()
}

/// A token for `user` on `local`, signed with its credentials.
pub async fn token(local: &DsqlLocal, user: &str) -> String {
    let config = local.client_config(user).expect("client config");
    sign(&config, local.credentials(), None).await
}

/// A tokio-postgres configuration from a dsql-auth one: host (SNI and
/// certificate check), hostaddr, port, user, database, TLS required.
pub fn pg_config(config: &DsqlConfig, password: &str) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.host(config.endpoint().host())
        .port(config.port())
        .user(config.user())
        .dbname(config.database())
        .password(password)
        .ssl_mode(SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    if let Some(addr) = config.hostaddr() {
        pg.hostaddr(addr);
    }
    if config.ssl_negotiation() == SslNegotiation::Direct {
        pg.ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    }
    if let Some(name) = config.application_name() {
        pg.application_name(name);
    }
    pg
}

/// Connects and spawns the connection task.
pub async fn connect_with(pg: &tokio_postgres::Config, tls: Tls) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = pg.connect(tls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Connects to `local` as `user` with a fresh token, verify-full.
pub async fn connect(local: &DsqlLocal, user: &str) -> Result<Client, tokio_postgres::Error> {
    let config = local.client_config(user).expect("client config");
    let token = sign(&config, local.credentials(), None).await;
    connect_with(&pg_config(&config, &token), Tls::verify_full(local.ca_pem())).await
}

/// Connects directly to the upstream PostgreSQL, to check its state.
pub async fn direct() -> Client {
    let (client, connection) =
        tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", NoTls)
            .await
            .expect("direct connection to PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A table name no other test (or test binary) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "dsql_local_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The server error inside a tokio-postgres error.
pub fn db_error(error: &tokio_postgres::Error) -> &DbError {
    error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"))
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Upstream sessions with this `application_name`.
pub async fn upstream_sessions(check: &Client, app: &str) -> i64 {
    check
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Waits until no upstream session has this `application_name`.
pub async fn no_upstream_sessions(app: &str) -> bool {
    let check = direct().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if upstream_sessions(&check, app).await == 0 {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects to `local` as `user` with an `application_name`.
pub async fn connect_app(local: &DsqlLocal, user: &str, app: &str) -> Client {
    let config = local
        .client_config(user)
        .expect("config")
        .to_builder()
        .application_name(app)
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    connect_with(&pg_config(&config, &token), Tls::verify_full(local.ca_pem()))
        .await
        .expect("connects")
}
