//! Configuration: endpoint, upstream, access keys and every limit, with DSQL's
//! defaults.
//!
//! - this module: the defaults, [`RateLimit`] and the validated
//!   [`LocalConfig`];
//! - [`access_key`]: the access keys tokens may be signed with;
//! - [`builder`]: [`LocalConfigBuilder`], which checks every setting.

mod access_key;
mod bounds;
mod builder;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dsql_auth::Endpoint;
use dsql_auth::clock::SharedClock;
use dsql_auth::limits;

pub use self::access_key::AccessKey;
// Re-exported from the crate root with its defaults once `lib.rs` lists it;
// until then the builder's per-bound setters reach every field.
pub use self::bounds::{
    Bounds, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_PENDING_HANDSHAKES,
    DEFAULT_MAX_STARTUP_PACKET, DEFAULT_REFUSED_HANDSHAKE_TIMEOUT, MAX_MESSAGE_SIZE_LIMIT,
};
pub use self::builder::LocalConfigBuilder;
use crate::dialect::Dialect;
use crate::upstream::UpstreamTarget;

/// Cluster id of the default endpoint host (26 lowercase letters and digits).
pub const DEFAULT_CLUSTER_ID: &str = "dsqllocal00000000000000000";
/// Region of the default endpoint.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Upstream PostgreSQL when none is configured.
pub const DEFAULT_UPSTREAM: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Access key id of the built-in test key. It is public: never use it for
/// anything but `dsql-local`.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIDLOCAL";
/// Secret of the built-in test key (public, like [`DEFAULT_ACCESS_KEY_ID`]).
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "dsql-local/test/secret/not-a-real-aws-key";
/// DSQL closes a session after 60 minutes ([`limits::SESSION_LIMIT`]).
pub const DEFAULT_SESSION_LIFETIME: Duration = limits::SESSION_LIMIT;
/// DSQL aborts a transaction open longer than 5 minutes
/// ([`limits::TRANSACTION_AGE`]).
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = limits::TRANSACTION_AGE;
/// DSQL accepts at most 10,000 connections per cluster
/// ([`limits::MAX_CONNECTIONS`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = limits::MAX_CONNECTIONS;
/// DSQL's connection rate: 100 new connections per second…
/// ([`limits::CONNECTION_RATE`]).
pub const DEFAULT_CONNECTION_RATE: f64 = limits::CONNECTION_RATE;
/// …with bursts of up to 1,000 ([`limits::CONNECTION_BURST`]).
pub const DEFAULT_CONNECTION_BURST: u32 = limits::CONNECTION_BURST;
/// Time a client has to finish TLS, startup and authentication.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to connect to and authenticate with the upstream PostgreSQL.
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A token bucket for new connections: `per_second` tokens are added each
/// second up to `burst`; each connection takes one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Refill rate, in connections per second.
    pub per_second: f64,
    /// Bucket size: the largest burst of connections accepted at once.
    pub burst: u32,
}

impl RateLimit {
    /// A bucket refilled at `per_second` that holds up to `burst` tokens.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }
}

impl Default for RateLimit {
    /// DSQL's: 100 per second, burst 1,000.
    fn default() -> Self {
        Self::new(DEFAULT_CONNECTION_RATE, DEFAULT_CONNECTION_BURST)
    }
}

/// Everything `dsql-local` needs to run. Build it with
/// [`LocalConfig::builder`] (or [`DsqlLocal::builder`](crate::DsqlLocal::builder)).
#[derive(Clone)]
pub struct LocalConfig {
    pub(crate) listen: SocketAddr,
    pub(crate) endpoint: Endpoint,
    pub(crate) upstream: UpstreamTarget,
    pub(crate) role_map: BTreeMap<String, String>,
    pub(crate) upstream_database: Option<String>,
    pub(crate) access_keys: Vec<AccessKey>,
    pub(crate) allow_unknown_access_keys: bool,
    /// Tokens anyone can sign are accepted on a non-loopback address.
    pub(crate) public_key_off_loopback: bool,
    pub(crate) clock: SharedClock,
    pub(crate) session_lifetime: Duration,
    pub(crate) transaction_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) connection_rate: Option<RateLimit>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) upstream_connect_timeout: Duration,
    pub(crate) ca_dir: Option<PathBuf>,
    pub(crate) server_names: Vec<String>,
    pub(crate) bounds: Bounds,
    pub(crate) dialect: Dialect,
    /// Fail statements that wait this long for a row lock with DSQL's
    /// conflict ([`LocalConfigBuilder::never_wait`]).
    pub(crate) never_wait: Option<Duration>,
    /// The modelled network's round trip
    /// ([`LocalConfigBuilder::network_round_trip`]).
    pub(crate) network_round_trip: Option<Duration>,
}

impl LocalConfig {
    /// A builder with DSQL's defaults.
    pub fn builder() -> LocalConfigBuilder {
        LocalConfigBuilder::default()
    }

    /// The address to listen on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The endpoint: host name (certificate, SNI, tokens) and region.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The upstream URL, without its password.
    pub fn upstream(&self) -> String {
        self.upstream.redacted_url()
    }

    /// The upstream role a client role's sessions run as: the mapped role,
    /// or the role of the same name (created without privileges on first
    /// use). When the upstream asks a password for it, or the upstream URL's
    /// user cannot create it, sessions fall back to the upstream URL's user,
    /// with a warning.
    pub fn upstream_role<'a>(&'a self, client_role: &'a str) -> &'a str {
        self.role_map.get(client_role).map_or(client_role, String::as_str)
    }

    /// The one upstream database every session uses.
    pub fn upstream_database(&self) -> &str {
        self.database()
    }

    pub(crate) fn database(&self) -> &str {
        self.upstream_database
            .as_deref()
            .unwrap_or(&self.upstream.database)
    }

    /// Whether tokens anyone can sign (the public test key, or unknown
    /// access keys) are accepted on a non-loopback address
    /// ([`allow_public_key_off_loopback`](LocalConfigBuilder::allow_public_key_off_loopback)).
    pub fn public_key_off_loopback(&self) -> bool {
        self.public_key_off_loopback
    }

    /// The accepted access keys.
    pub fn access_keys(&self) -> &[AccessKey] {
        &self.access_keys
    }

    /// Whether tokens signed with unknown access keys are accepted without
    /// checking their signature.
    pub fn allow_unknown_access_keys(&self) -> bool {
        self.allow_unknown_access_keys
    }

    /// The session lifetime.
    pub fn session_lifetime(&self) -> Duration {
        self.session_lifetime
    }

    /// The transaction timeout.
    pub fn transaction_timeout(&self) -> Duration {
        self.transaction_timeout
    }

    /// The maximum number of open connections.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The connection-rate token bucket, if any.
    pub fn connection_rate(&self) -> Option<RateLimit> {
        self.connection_rate
    }

    /// The time a client has to finish TLS, startup and authentication.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The time allowed to connect to the upstream PostgreSQL.
    pub fn upstream_connect_timeout(&self) -> Duration {
        self.upstream_connect_timeout
    }

    /// The bounds on message sizes and handshakes in progress.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The modelled network's round trip, if any.
    pub fn network_round_trip(&self) -> Option<Duration> {
        self.network_round_trip
    }

    /// The SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The directory holding a persistent CA, if any.
    pub fn ca_dir(&self) -> Option<&Path> {
        self.ca_dir.as_deref()
    }
}

impl fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConfig")
            .field("listen", &self.listen)
            .field("endpoint", &self.endpoint.host())
            .field("region", &self.endpoint.region())
            .field("upstream", &self.upstream.redacted_url())
            .field("role_map", &self.role_map)
            .field("upstream_database", &self.upstream_database)
            .field("access_keys", &self.access_keys)
            .field("allow_unknown_access_keys", &self.allow_unknown_access_keys)
            .field("public_key_off_loopback", &self.public_key_off_loopback)
            .field("session_lifetime", &self.session_lifetime)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("max_connections", &self.max_connections)
            .field("connection_rate", &self.connection_rate)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("upstream_connect_timeout", &self.upstream_connect_timeout)
            .field("ca_dir", &self.ca_dir)
            .field("server_names", &self.server_names)
            .field("bounds", &self.bounds)
            .field("dialect", &self.dialect)
            .field("never_wait", &self.never_wait)
            .field("network_round_trip", &self.network_round_trip)
            .finish_non_exhaustive()
    }
}
