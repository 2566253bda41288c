//! The `tokio_postgres::Config` for a DSQL configuration.

use std::time::Duration;

use dsql_auth::{DsqlConfig, SslNegotiation};
use tokio_postgres::config::{SslMode, SslNegotiation as PgSslNegotiation};

/// `application_name` sent when the configuration sets none: identifies this
/// library in `pg_stat_activity` and server logs.
pub const DEFAULT_APPLICATION_NAME: &str = concat!("dsql-rs/", env!("CARGO_PKG_VERSION"));

/// Connect timeout when the configuration sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tokio_postgres::Config` for a DSQL configuration, without a password
/// (a [`TokenLayer`](crate::TokenLayer) sets it per connect).
///
/// TLS is required and verified whatever this config says: the
/// [`Connector`](super::Connector) enforces it. The endpoint host is the TLS
/// server name even when `hostaddr` sends the TCP connection elsewhere. A
/// connect timeout of zero means no timeout, as in libpq.
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
