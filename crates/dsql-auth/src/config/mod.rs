//! Connection configuration: endpoint, user, database, token duration, TLS.

mod authority;
mod builder;
mod cluster_set;
mod env;
mod error;
mod url;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use self::builder::DsqlConfigBuilder;
pub use self::cluster_set::ClusterSet;
pub use self::error::ConfigError;
use crate::{Action, Endpoint};

/// Default PostgreSQL port of DSQL.
pub const DEFAULT_PORT: u16 = 5432;
/// Default database of DSQL.
pub const DEFAULT_DATABASE: &str = "postgres";
/// Default user: the cluster's administrator role.
pub const DEFAULT_USER: &str = "admin";

/// How TLS is started on a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslNegotiation {
    /// PostgreSQL's `SSLRequest` exchange, then TLS (libpq's default).
    #[default]
    Postgres,
    /// TLS from the first byte, with ALPN `postgresql` (PostgreSQL 17's
    /// `sslnegotiation=direct`); saves a round trip at connect.
    Direct,
}

impl SslNegotiation {
    /// The libpq spelling (`postgres` or `direct`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Direct => "direct",
        }
    }
}

impl FromStr for SslNegotiation {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "postgres" => Ok(Self::Postgres),
            "direct" => Ok(Self::Direct),
            other => Err(ConfigError::InvalidValue {
                name: "sslnegotiation",
                value: other.to_owned(),
                expected: "`postgres` or `direct`",
            }),
        }
    }
}

/// Everything needed to connect to a DSQL cluster, except the token.
///
/// Build it with [`DsqlConfig::builder`], from the environment with
/// [`DsqlConfig::from_env`], or from a URL with [`str::parse`]:
///
/// ```
/// use std::time::Duration;
/// use dsql_auth::{Action, DsqlConfig};
///
/// let config: DsqlConfig =
///     "postgres://reader@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws/postgres?tokenDurationSecs=300"
///         .parse()?;
/// assert_eq!(config.user(), "reader");
/// assert_eq!(config.action(), Action::DbConnect);
/// assert_eq!(config.token_duration(), Duration::from_secs(300));
///
/// let config = DsqlConfig::builder()
///     .host("abcdefghijklmnopqrstuvwxyz")
///     .region("eu-west-1")
///     .build()?;
/// assert_eq!(config.user(), "admin");
/// assert_eq!(config.port(), 5432);
/// # Ok::<(), dsql_auth::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DsqlConfig {
    endpoint: Endpoint,
    user: String,
    database: String,
    port: u16,
    token_duration: Duration,
    hostaddr: Option<IpAddr>,
    connect_timeout: Option<Duration>,
    application_name: Option<String>,
    profile: Option<String>,
    ssl_root_cert: Option<PathBuf>,
    ssl_negotiation: SslNegotiation,
}

impl DsqlConfig {
    /// A builder with DSQL's defaults: user `admin`, database `postgres`,
    /// port 5432, tokens valid for 900 s, TLS `verify-full`.
    pub fn builder() -> DsqlConfigBuilder {
        DsqlConfigBuilder::default()
    }

    /// The endpoint: host signed into tokens and verified in TLS, and region.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The PostgreSQL role.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The IAM action tokens must authorize for [`user`](Self::user).
    pub fn action(&self) -> Action {
        Action::for_user(&self.user)
    }

    /// The database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How long signed tokens are valid.
    pub fn token_duration(&self) -> Duration {
        self.token_duration
    }

    /// The address to connect to instead of resolving the endpoint host
    /// (libpq's `hostaddr`): `dsql-local`, PrivateLink, tests. The endpoint
    /// host is still used for the token, SNI and certificate check.
    pub fn hostaddr(&self) -> Option<IpAddr> {
        self.hostaddr
    }

    /// Connect timeout, if set. Zero means "no timeout", as libpq reads
    /// `connect_timeout=0` and `PGCONNECT_TIMEOUT=0`: wait as long as the
    /// connection takes. `None` leaves the choice to the connecting library.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// `application_name` to report to the server, if set.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// AWS profile to take credentials from, if set.
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Extra PEM file of trusted CA certificates (libpq's `sslrootcert`).
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// How TLS is negotiated.
    pub fn ssl_negotiation(&self) -> SslNegotiation {
        self.ssl_negotiation
    }

    /// This configuration for another endpoint: a peer of a multi-region
    /// cluster shares every setting but where it is reached.
    pub(crate) fn with_endpoint(&self, endpoint: Endpoint, port: u16, hostaddr: Option<IpAddr>) -> Self {
        Self {
            endpoint,
            port,
            hostaddr,
            ..self.clone()
        }
    }
}

impl fmt::Debug for DsqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlConfig")
            .field("host", &self.endpoint.host())
            .field("region", &self.endpoint.region())
            .field("user", &self.user)
            .field("database", &self.database)
            .field("port", &self.port)
            .field("token_duration", &self.token_duration)
            .field("hostaddr", &self.hostaddr)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .field("profile", &self.profile)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_negotiation", &self.ssl_negotiation)
            .finish()
    }
}

impl FromStr for DsqlConfig {
    type Err = ConfigError;

    /// Parses a `postgres://`, `postgresql://` or `dsql://` URL; see
    /// [`DsqlConfig::from_url`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_url(s)
    }
}

/// Parses a whole number of seconds for the setting `name`.
fn parse_secs(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| ConfigError::InvalidValue {
            name,
            value: value.to_owned(),
            expected: "a whole number of seconds",
        })
}

fn parse_port(name: &'static str, value: &str) -> Result<u16, ConfigError> {
    match value.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ConfigError::InvalidValue {
            name,
            value: value.to_owned(),
            expected: "a port from 1 to 65535",
        }),
    }
}

fn parse_hostaddr(name: &'static str, value: &str) -> Result<IpAddr, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::InvalidValue {
        name,
        value: value.to_owned(),
        expected: "an IP address",
    })
}
