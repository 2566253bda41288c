use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dsql_auth::{Action, DsqlConfig};
use tokio_postgres::config::{Host, SslMode, SslNegotiation};
use tokio_postgres::error::SqlState;
use tower::Service;
use tracing::Instrument;
use tracing::field::Empty;

use super::config::DEFAULT_CONNECT_TIMEOUT;
use super::tls::{ALPN_POSTGRESQL, client_config};
use super::tls_connect::Tls;
use super::{ConnectError, PgConnection};
use crate::error::display_chain;
use crate::semconv::value;
use crate::telemetry::port_of;

/// Connects over verified TLS: a `Service<tokio_postgres::Config>`
/// returning a [`PgConnection`].
///
/// It owns the transport's guarantees, whatever config it is handed (one
/// from [`pg_config`](super::pg_config), or your own
/// `tokio_postgres::Config`, whose default is `sslmode=prefer`):
/// - TLS is required: `prefer` (tokio-postgres' default) is upgraded to
///   `require`, so a server that declines TLS never receives the token;
///   `sslmode=disable` and Unix-socket hosts are refused with
///   [`ConnectError::Insecure`] before anything is sent;
/// - the certificate and host name are verified against the config's host
///   (the DSQL endpoint), also when `hostaddr` sends the TCP connection
///   elsewhere; SNI names that host;
/// - with direct TLS (`sslnegotiation=direct`) the server must select ALPN
///   `postgresql`;
/// - a connect timeout of zero means none (libpq's reading); without one,
///   [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) applies.
///
/// Each connect runs in a `dsql.connect` span, a database client span in
/// OpenTelemetry's terms ([`semconv`](crate::semconv)) with the server, role
/// and action, and the error's type on failure (never the token). The socket
/// task is spawned on the current Tokio runtime inside a `dsql.connection`
/// span, and its end is traced.
///
/// ```no_run
/// use dsql_auth::DsqlConfig;
/// use dsql_tower::connect::Connector;
/// use tower::{Service, ServiceExt};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let config: DsqlConfig = "postgres://admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".parse()?;
/// let mut connector = Connector::new(&config)?;
/// // A config of your own: TLS is enforced all the same.
/// let mut pg = tokio_postgres::Config::new();
/// pg.host(config.endpoint().host()).user("admin").dbname("postgres");
/// pg.password("a token from dsql_auth");
/// let connection = connector.ready().await?.call(pg).await?;
/// connection.simple_query("SELECT 1").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// A connector for `config`'s TLS settings (`sslrootcert`, or the
    /// system's roots).
    pub fn new(config: &DsqlConfig) -> Result<Self, ConnectError> {
        Ok(Self::with_tls(client_config(config.ssl_root_cert())?))
    }

    /// A connector with your own rustls configuration (roots, client
    /// certificates). ALPN `postgresql` is added to what it offers and SNI
    /// is turned on. Keep certificate verification on: this is the one
    /// guarantee a rustls configuration can remove.
    pub fn with_tls(mut tls: rustls::ClientConfig) -> Self {
        if !tls.alpn_protocols.iter().any(|p| p == ALPN_POSTGRESQL) {
            tls.alpn_protocols.push(ALPN_POSTGRESQL.to_vec());
        }
        tls.enable_sni = true;
        Self { tls: Arc::new(tls) }
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
        let host = describe_host(&config);
        let user = config.get_user().unwrap_or("").to_owned();
        let direct = matches!(config.get_ssl_negotiation(), SslNegotiation::Direct);
        // A database client span in OpenTelemetry's terms (semconv): the
        // server, the role and the action; never the token.
        let span = tracing::info_span!(
            "dsql.connect",
            otel.name = "connect",
            otel.kind = "client",
            db.system.name = value::POSTGRESQL,
            server.address = %host,
            server.port = port_of(&config),
            dsql.user = %user,
            dsql.action = %Action::for_user(&user),
            dsql.tls = if direct { "direct" } else { "postgres" },
            db.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        let tls = self.tls.clone();
        let connecting = async move {
            let (config, timeout) = secured(config)?;
            let wire = Arc::default();
            let tls = Tls::new(tls, direct, Arc::clone(&wire));
            let connecting = config.connect(tls.clone());
            let connected = match timeout {
                Some(timeout) => tokio::time::timeout(timeout, connecting)
                    .await
                    .map_err(|_elapsed| ConnectError::Timeout {
                        host: host.clone(),
                        timeout,
                    })?,
                None => connecting.await,
            };
            let (client, connection) = connected.map_err(|source| {
                tracing::debug!(error = %display_chain(&source), "connect failed");
                ConnectError::Postgres {
                    host: host.clone(),
                    source,
                }
            })?;
            let task = tokio::spawn(
                async move {
                    match connection.await {
                        Ok(()) => tracing::debug!("connection closed"),
                        Err(error) => {
                            tracing::debug!(error = %display_chain(&error), "connection ended")
                        }
                    }
                }
                .instrument(tracing::debug_span!("dsql.connection", server.address = %host)),
            );
            tracing::debug!("connected");
            Ok::<_, ConnectError>(PgConnection::new(client, task, tls, wire))
        };
        Box::pin(
            async move {
                let result = connecting.await;
                if let Err(error) = &result {
                    let span = tracing::Span::current();
                    span.record("error.type", error_type(error));
                    if let Some(code) = sqlstate(error) {
                        span.record("db.response.status_code", code.code());
                    }
                    span.record("otel.status_code", "ERROR");
                }
                result
            }
            .instrument(span),
        )
    }
}

/// `error.type` of a failed connect attempt: its kind, a few fixed words.
fn error_type(error: &ConnectError) -> &'static str {
    match error {
        ConnectError::Token(_) => "token",
        ConnectError::RateLimit(_) => "rate_limit",
        ConnectError::Tls(_) => "tls",
        ConnectError::Insecure { .. } => "insecure",
        ConnectError::Postgres { .. } => "postgres",
        ConnectError::Timeout { .. } => "timeout",
    }
}

/// The SQLSTATE of the server's refusal, if it answered.
fn sqlstate(error: &ConnectError) -> Option<&SqlState> {
    match error {
        ConnectError::Postgres { source, .. } => source.code(),
        _ => None,
    }
}

/// The config as it will be used, with TLS required, and the timeout of
/// the whole connect (`None`: no limit).
fn secured(
    mut config: tokio_postgres::Config,
) -> Result<(tokio_postgres::Config, Option<Duration>), ConnectError> {
    match config.get_ssl_mode() {
        SslMode::Disable => {
            return Err(ConnectError::Insecure {
                setting: "sslmode=disable",
            });
        }
        SslMode::Require => {}
        // `prefer` (the default of a config built by hand) falls back to
        // cleartext when the server declines: never with a token.
        _ => {
            config.ssl_mode(SslMode::Require);
        }
    }
    if config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, Host::Unix(_)))
    {
        return Err(ConnectError::Insecure {
            setting: "a Unix-socket host (no TLS)",
        });
    }
    let timeout = match config.get_connect_timeout() {
        Some(zero) if zero.is_zero() => {
            // tokio-postgres would time out each socket at once.
            config.connect_timeout(Duration::MAX);
            None
        }
        Some(timeout) => Some(*timeout),
        None => Some(DEFAULT_CONNECT_TIMEOUT),
    };
    Ok((config, timeout))
}

fn describe_host(config: &tokio_postgres::Config) -> String {
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "(no host)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_whatever_the_config_says() {
        let mut prefer = tokio_postgres::Config::new();
        prefer.host("h.dsql.us-east-1.on.aws");
        let (config, timeout) = secured(prefer).unwrap();
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(timeout, Some(DEFAULT_CONNECT_TIMEOUT));

        let mut disable = tokio_postgres::Config::new();
        disable.host("h").ssl_mode(SslMode::Disable);
        let error = secured(disable).unwrap_err();
        assert!(error.to_string().contains("sslmode=disable"), "{error}");

        let mut unix = tokio_postgres::Config::new();
        unix.host_path("/run/postgresql");
        assert!(matches!(secured(unix), Err(ConnectError::Insecure { .. })));
    }

    #[test]
    fn a_zero_connect_timeout_means_none() {
        let mut config = tokio_postgres::Config::new();
        config.host("h").connect_timeout(Duration::ZERO);
        let (config, timeout) = secured(config).unwrap();
        assert_eq!(timeout, None);
        assert_eq!(config.get_connect_timeout(), Some(&Duration::MAX));
    }
}
