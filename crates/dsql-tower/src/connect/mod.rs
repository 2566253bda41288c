//! Connecting to DSQL: a `tower::Service` from a `tokio_postgres::Config` to
//! a live connection, over verified TLS.

mod tls;

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dsql_auth::{Action, DsqlConfig, SslNegotiation, TokenError};
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_postgres::config::{SslMode, SslNegotiation as PgSslNegotiation};
use tokio_postgres_rustls::MakeRustlsConnect;
use tower::Service;
use tracing::Instrument;

pub use self::tls::{ALPN_POSTGRESQL, client_config};
use crate::error::display_chain;

/// `application_name` sent when the configuration sets none: identifies this
/// library in `pg_stat_activity` and server logs.
pub const DEFAULT_APPLICATION_NAME: &str = concat!("dsql-rs/", env!("CARGO_PKG_VERSION"));

/// Connect timeout when the configuration sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tokio_postgres::Config` for a DSQL configuration, without a password
/// (a [`TokenLayer`](crate::TokenLayer) sets it per connect).
///
/// TLS is required and verified by the [`Connector`]'s rustls configuration
/// (tokio-postgres' `SslMode::Require` plus a verifying connector is libpq's
/// `verify-full`); the endpoint host is the TLS server name even when
/// `hostaddr` sends the TCP connection elsewhere.
pub fn pg_config(config: &DsqlConfig) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.host(config.endpoint().host())
        .port(config.port())
        .user(config.user())
        .dbname(config.database())
        .application_name(config.application_name().unwrap_or(DEFAULT_APPLICATION_NAME))
        .ssl_mode(SslMode::Require)
        .ssl_negotiation(match config.ssl_negotiation() {
            SslNegotiation::Direct => PgSslNegotiation::Direct,
            _ => PgSslNegotiation::Postgres,
        })
        .connect_timeout(config.connect_timeout().unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(addr) = config.hostaddr() {
        pg.hostaddr(addr);
    }
    pg
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No token could be obtained.
    #[error("could not get a DSQL token: {0}")]
    Token(#[from] TokenError),
    /// The TLS configuration could not be built (CA file, roots).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// Connecting, TLS or authentication failed; the server's refusal, if
    /// any, is in the message (SQLSTATE, message and hint).
    #[error("could not connect to {host}: {}", display_chain(source))]
    Postgres {
        /// The host connected to.
        host: String,
        /// What tokio-postgres reported.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The whole connect (TCP, TLS, authentication) took longer than allowed.
    #[error("connecting to {host} timed out after {timeout:?}")]
    Timeout {
        /// The host connected to.
        host: String,
        /// The limit.
        timeout: Duration,
    },
}

/// A live connection: the client, and the task that drives its socket.
///
/// Dereferences to [`tokio_postgres::Client`]. Dropping it closes the
/// connection; [`close`](Self::close) also waits for the socket task to end.
pub struct PgConnection {
    client: Client,
    task: Option<JoinHandle<()>>,
    tls: MakeRustlsConnect,
    established: Instant,
}

impl PgConnection {
    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, mutably (transactions need it).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Whether the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// When the connection was established.
    pub fn established_at(&self) -> Instant {
        self.established
    }

    /// Asks the server, on a separate connection, to cancel whatever this
    /// connection is running; used when an operation is abandoned midway.
    /// Best effort: failures are only traced.
    pub fn cancel_in_background(&self) {
        let token = self.client.cancel_token();
        let tls = self.tls.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(
                async move {
                    if let Err(error) = token.cancel_query(tls).await {
                        tracing::debug!(error = %display_chain(&error), "cancel request failed");
                    }
                }
                .instrument(tracing::debug_span!("dsql.cancel")),
            );
        }
    }

    /// Closes the connection and waits until its socket task has ended.
    pub async fn close(mut self) {
        let task = self.task.take();
        drop(self);
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Hands over the socket task, which ends once the connection is
    /// dropped: a pool keeps it to wait, at shutdown, until every
    /// connection is really closed. `None` if already taken.
    pub fn take_task(&mut self) -> Option<JoinHandle<()>> {
        self.task.take()
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("age", &self.established.elapsed())
            .finish_non_exhaustive()
    }
}

/// Connects over TLS: a `Service<tokio_postgres::Config>` returning a
/// [`PgConnection`].
///
/// The certificate and host name are always verified against the config's
/// host (the DSQL endpoint), even when `hostaddr` points the TCP connection
/// elsewhere. The socket task is spawned on the current Tokio runtime inside
/// a `dsql.connection` span, and its end is traced.
///
/// ```no_run
/// use dsql_auth::DsqlConfig;
/// use dsql_tower::connect::{pg_config, Connector};
/// use tower::{Service, ServiceExt};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let config: DsqlConfig = "postgres://admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".parse()?;
/// let mut connector = Connector::new(&config)?;
/// let mut pg = pg_config(&config);
/// pg.password("a token from dsql_auth");
/// let connection = connector.ready().await?.call(pg).await?;
/// connection.simple_query("SELECT 1").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Connector {
    tls: MakeRustlsConnect,
}

impl Connector {
    /// A connector for `config`'s TLS settings (`sslrootcert`, or the
    /// system's roots).
    pub fn new(config: &DsqlConfig) -> Result<Self, ConnectError> {
        Ok(Self::with_tls(client_config(config.ssl_root_cert())?))
    }

    /// A connector with your own rustls configuration. Keep certificate
    /// verification on and ALPN [`ALPN_POSTGRESQL`] for direct TLS.
    pub fn with_tls(tls: rustls::ClientConfig) -> Self {
        Self {
            tls: MakeRustlsConnect::new(tls),
        }
    }
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

/// The future of [`Connector`].
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<PgConnection, ConnectError>> + Send>>;

impl Service<tokio_postgres::Config> for Connector {
    type Response = PgConnection;
    type Error = ConnectError;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, config: tokio_postgres::Config) -> Self::Future {
        let tls = self.tls.clone();
        let host = describe_host(&config);
        let user = config.get_user().unwrap_or("").to_owned();
        let span = tracing::info_span!(
            "dsql.connect",
            host = %host,
            user = %user,
            action = %Action::for_user(&user),
            tls = match config.get_ssl_negotiation() {
                PgSslNegotiation::Direct => "direct",
                _ => "postgres",
            },
        );
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Box::pin(
            async move {
                let connecting = config.connect(tls.clone());
                let (client, connection) = match tokio::time::timeout(timeout, connecting).await {
                    Err(_elapsed) => return Err(ConnectError::Timeout { host, timeout }),
                    Ok(Err(source)) => {
                        tracing::debug!(error = %display_chain(&source), "connect failed");
                        return Err(ConnectError::Postgres { host, source });
                    }
                    Ok(Ok(pair)) => pair,
                };
                let task = tokio::spawn(
                    async move {
                        match connection.await {
                            Ok(()) => tracing::debug!("connection closed"),
                            Err(error) => {
                                tracing::debug!(error = %display_chain(&error), "connection ended")
                            }
                        }
                    }
                    .instrument(tracing::debug_span!("dsql.connection", host = %host)),
                );
                tracing::debug!("connected");
                Ok(PgConnection {
                    client,
                    task: Some(task),
                    tls,
                    established: Instant::now(),
                })
            }
            .instrument(span),
        )
    }
}

fn describe_host(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "(no host)".to_owned(),
    }
}

/// The connect stack: connect retries (throttling, refused tokens, transient
/// I/O) around token injection around the TLS [`Connector`].
pub type ConnectStack<P> =
    tower::retry::Retry<crate::retry::RetryPolicy, crate::token::TokenService<Connector, P>>;

/// Builds the [`ConnectStack`] for `config`, with tokens from `provider`.
///
/// Refused tokens are invalidated in the provider and retried with a new
/// one; `53300`, `53400` and `57P03` back off; a fatal refusal (the role
/// does not match the token's action) fails at once.
pub fn stack<P>(config: &DsqlConfig, provider: P) -> Result<ConnectStack<P>, ConnectError>
where
    P: dsql_auth::TokenProvider + Clone + 'static,
{
    Ok(tower::ServiceBuilder::new()
        .layer(crate::retry::RetryPolicy::for_connects().layer())
        .layer(crate::token::TokenLayer::new(provider))
        .service(Connector::new(config)?))
}

/// What a [`Session`](crate::Session) or a pool connects with: a clonable
/// `Service<tokio_postgres::Config>` returning a [`PgConnection`], such as
/// [`ConnectStack`] or your own stack around [`Connector`]. Implemented for
/// every such service.
///
/// ```no_run
/// use std::time::Duration;
/// use dsql_auth::{DsqlConfig, SharedTokenProvider};
/// use dsql_tower::connect::{self, ConnectService};
/// use tower::ServiceBuilder;
///
/// /// The standard stack with a layer of your own is still a connect service.
/// fn with_deadline(connect: impl ConnectService) -> impl ConnectService {
///     ServiceBuilder::new().timeout(Duration::from_secs(3)).service(connect)
/// }
///
/// # fn example(config: DsqlConfig, tokens: SharedTokenProvider) -> Result<(), dsql_tower::ConnectError> {
/// let session = dsql_tower::Session::new(
///     with_deadline(connect::stack(&config, tokens)?),
///     connect::pg_config(&config),
/// );
/// # let _ = session;
/// # Ok(())
/// # }
/// ```
pub trait ConnectService:
    Service<tokio_postgres::Config, Response = PgConnection, Error: Into<crate::BoxError>, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> ConnectService for S
where
    S: Service<tokio_postgres::Config, Response = PgConnection> + Clone + Send + Sync + 'static,
    S::Error: Into<crate::BoxError>,
    S::Future: Send,
{
}
