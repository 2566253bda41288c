//! [`LocalConfigBuilder`]: every setting with DSQL's default, validated by
//! [`build`](LocalConfigBuilder::build).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dsql_auth::Endpoint;
use dsql_auth::clock::{SharedClock, SystemClock};

use super::{
    AccessKey, Bounds, DEFAULT_CLUSTER_ID, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REGION, DEFAULT_SESSION_LIFETIME, DEFAULT_TRANSACTION_TIMEOUT, DEFAULT_UPSTREAM,
    DEFAULT_UPSTREAM_CONNECT_TIMEOUT, LocalConfig, RateLimit,
};
use crate::dialect::Dialect;
use crate::error::{ConfigError, StartError};
use crate::server::DsqlLocal;
use crate::upstream::UpstreamTarget;

/// The longest modelled round trip: beyond it a deadline computed from it
/// could overflow, and no network is that slow.
const MAX_NETWORK_ROUND_TRIP: Duration = Duration::from_secs(60);

/// Builds a [`LocalConfig`], or starts a [`DsqlLocal`] directly with
/// [`start`](Self::start). Every setting has DSQL's default.
#[derive(Clone)]
pub struct LocalConfigBuilder {
    listen: SocketAddr,
    endpoint_host: Option<String>,
    region: Option<String>,
    upstream: String,
    role_map: BTreeMap<String, String>,
    upstream_database: Option<String>,
    access_keys: Vec<AccessKey>,
    default_key: bool,
    allow_unknown_access_keys: bool,
    public_key_off_loopback: bool,
    clock: Option<SharedClock>,
    session_lifetime: Duration,
    transaction_timeout: Duration,
    max_connections: usize,
    connection_rate: Option<RateLimit>,
    handshake_timeout: Duration,
    upstream_connect_timeout: Duration,
    ca_dir: Option<PathBuf>,
    server_names: Vec<String>,
    bounds: Bounds,
    dialect: Dialect,
    never_wait: Option<Duration>,
    network_round_trip: Option<Duration>,
}

impl Default for LocalConfigBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            endpoint_host: None,
            region: None,
            upstream: DEFAULT_UPSTREAM.to_owned(),
            role_map: BTreeMap::new(),
            upstream_database: None,
            access_keys: Vec::new(),
            default_key: true,
            allow_unknown_access_keys: false,
            public_key_off_loopback: false,
            clock: None,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            transaction_timeout: DEFAULT_TRANSACTION_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_rate: Some(RateLimit::default()),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            upstream_connect_timeout: DEFAULT_UPSTREAM_CONNECT_TIMEOUT,
            ca_dir: None,
            server_names: Vec::new(),
            bounds: Bounds::default(),
            dialect: Dialect::default(),
            never_wait: None,
            network_round_trip: None,
        }
    }
}

impl LocalConfigBuilder {
    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The endpoint host name: signed into tokens, expected as SNI and put in
    /// the certificate. Default: `dsqllocal00000000000000000.dsql.<region>.on.aws`.
    /// A DSQL host name carries its region; any other name (`localhost`) uses
    /// [`region`](Self::region).
    pub fn endpoint_host(mut self, host: impl Into<String>) -> Self {
        self.endpoint_host = Some(host.into());
        self
    }

    /// The region tokens must be signed for (default `us-east-1`, or the
    /// endpoint host's).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The upstream PostgreSQL, as `postgres://user[:password]@host[:port]/database`
    /// (default [`DEFAULT_UPSTREAM`]). As in libpq, a host that starts with
    /// `/` names the directory of a Unix-domain socket, percent-encoded
    /// (`postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres`, which
    /// tokio-postgres reads the same way) or as a parameter that replaces
    /// the URL's host (`postgres://postgres@localhost/postgres?host=/var/run/postgresql`):
    /// on the same machine it costs PostgreSQL about half what loopback TCP
    /// costs per query. Its user (normally a superuser) is
    /// used only to create and check the unprivileged role each DSQL role's
    /// sessions run as (a role of the same name, or the one
    /// [`map_role`](Self::map_role) names): client sessions never run as a
    /// superuser. Its database is the one database sessions use (see
    /// [`upstream_database`](Self::upstream_database)); its password answers
    /// the upstream's SCRAM-SHA-256, md5 or cleartext password request for
    /// that user (the connection is plain TCP or a Unix-domain socket: keep
    /// the upstream on a trusted network, usually loopback). Sessions log in as their own role without a
    /// password: when the upstream asks one for it, they fall back to this
    /// user with a warning (allow trust for these roles from `dsql-local`'s
    /// address to avoid that).
    pub fn upstream(mut self, url: impl Into<String>) -> Self {
        self.upstream = url.into();
        self
    }

    /// Maps a client role to an upstream role (default: the role of the same
    /// name, created without privileges on first use). A role that is, or
    /// belongs to, a superuser or a role with `CREATEROLE`, `CREATEDB`,
    /// `REPLICATION`, `BYPASSRLS` or server file or program access is refused.
    pub fn map_role(mut self, client_role: impl Into<String>, upstream_role: impl Into<String>) -> Self {
        self.role_map.insert(client_role.into(), upstream_role.into());
        self
    }

    /// Always use this upstream database, whatever database name the client
    /// sends (default: the upstream URL's database; clients may then name
    /// `postgres`, DSQL's one database, or that database, or none: any other
    /// name is refused with `3D000`).
    pub fn upstream_database(mut self, database: impl Into<String>) -> Self {
        self.upstream_database = Some(database.into());
        self
    }

    /// Accepts tokens signed with this key, besides the built-in test key.
    pub fn access_key(mut self, key: AccessKey) -> Self {
        self.access_keys.push(key);
        self
    }

    /// Accepts the built-in public test key (and
    /// [unknown access keys](Self::allow_unknown_access_keys)) even when the
    /// listen address is not a loopback address (default `false`: starting
    /// then fails with [`ConfigError::PublicKeyOffLoopback`]). Anyone who can
    /// reach the port can then sign tokens: only for a trusted network.
    pub fn allow_public_key_off_loopback(mut self, allow: bool) -> Self {
        self.public_key_off_loopback = allow;
        self
    }

    /// Does not accept the built-in test key ([`DEFAULT_ACCESS_KEY_ID`](crate::DEFAULT_ACCESS_KEY_ID)).
    pub fn without_default_key(mut self) -> Self {
        self.default_key = false;
        self
    }

    /// Accepts tokens signed with access keys that are not configured,
    /// without checking their signature (every other check still applies).
    /// Convenient to run an application with its real AWS credentials against
    /// `dsql-local`; default `false`.
    pub fn allow_unknown_access_keys(mut self, allow: bool) -> Self {
        self.allow_unknown_access_keys = allow;
        self
    }

    /// The wall clock token expiry is checked against (default: the system
    /// clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long a session may live before the server closes it (default
    /// 3,600 s).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How long a transaction may stay open before it is rolled back
    /// (default 300 s).
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// The maximum number of open connections (default 10,000); more are
    /// refused with `53300`.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// The connection-rate token bucket (default 100/s, burst 1,000); an
    /// empty bucket refuses connections with `53400`.
    pub fn connection_rate(mut self, limit: RateLimit) -> Self {
        self.connection_rate = Some(limit);
        self
    }

    /// No connection-rate limit.
    pub fn no_connection_rate_limit(mut self) -> Self {
        self.connection_rate = None;
        self
    }

    /// The time a client has to finish TLS, startup and authentication
    /// (default 30 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The time allowed to connect to and authenticate with the upstream
    /// (default 10 s).
    pub fn upstream_connect_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_connect_timeout = timeout;
        self
    }

    /// Keeps the CA in this directory (`ca.pem`, `ca-key.pem`): loaded when
    /// present, created otherwise, so `sslrootcert` stays valid across
    /// restarts. Default: a fresh CA in a temporary directory removed at
    /// shutdown.
    pub fn ca_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ca_dir = Some(dir.into());
        self
    }

    /// Another name (DNS name or IP address) for the server certificate,
    /// besides the endpoint host, `localhost`, `127.0.0.1` and `::1`.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_names.push(name.into());
        self
    }

    /// All the bounds on message sizes and handshakes in progress at once
    /// (default: PostgreSQL's 10,000-byte startup packets, 64 MiB client
    /// messages, 256 handshakes at once, 5 s for refused connections); each
    /// also has its own setter below. Start from
    /// [`LocalConfig::bounds`] of a built configuration.
    pub fn bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// The largest startup packet accepted, in bytes (default 10,000,
    /// PostgreSQL's; 8 to 65,536). A longer one is refused with
    /// [`MESSAGE_TOO_LARGE`](crate::catalog::MESSAGE_TOO_LARGE) before it is
    /// read.
    pub fn max_startup_packet(mut self, bytes: usize) -> Self {
        self.bounds.max_startup_packet = bytes;
        self
    }

    /// The largest message a client may send in a session, in bytes (the
    /// wire length; default 64 MiB, **a deliberate difference** from
    /// PostgreSQL's 1 GiB − 1; 1 MiB to 1 GiB − 1). A client declaring a
    /// longer one has its session closed as soon as the header arrives,
    /// without anything reserved for the declared length.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.bounds.max_message_size = bytes;
        self
    }

    /// How many bytes the message buffers of all sessions may hold together
    /// beyond 64 KiB each (default 512 MiB; at least
    /// [`max_message_size`](Self::max_message_size)). A session whose buffer
    /// would grow past it ends with
    /// [`OUT_OF_MEMORY`](crate::catalog::OUT_OF_MEMORY): many large messages
    /// at once cannot exhaust the machine.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.bounds.max_buffered_bytes = bytes;
        self
    }

    /// How many connections may be in their handshake (TLS, startup,
    /// authentication, cancel requests included) at once (default 256, at
    /// least 1). Connections beyond it are closed at once, before any TLS
    /// handshake.
    pub fn max_pending_handshakes(mut self, connections: usize) -> Self {
        self.bounds.max_pending_handshakes = connections;
        self
    }

    /// The time a connection already refused at admission (connection rate
    /// or maximum connections) gets to negotiate TLS and read its error
    /// (default 5 s; the [`handshake_timeout`](Self::handshake_timeout) when
    /// shorter).
    pub fn refused_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.bounds.refused_handshake_timeout = timeout;
        self
    }

    /// The SQL dialect: [`Dialect::Dsql`] (the default) checks every
    /// statement against DSQL's rules; [`Dialect::Postgres`] passes them
    /// through.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// DSQL's writers never wait for each other: the loser fails at
    /// `COMMIT`. PostgreSQL's writers take row locks and wait. With this
    /// set, a statement that waits longer than `lock_wait` for a row lock
    /// fails at once with DSQL's conflict (`40001 … (OC000)`): the first
    /// locker wins rather than the first committer, but nothing blocks,
    /// which is what DSQL's clients must be ready for. Off by default
    /// (PostgreSQL's waiting, then its serialization failure at the
    /// statement, rewritten to DSQL's conflict).
    pub fn never_wait(mut self, lock_wait: Duration) -> Self {
        self.never_wait = Some(lock_wait);
        self
    }

    /// A network between clients and the server with this round trip, as
    /// in a region (about 1 ms) rather than on loopback (tens of
    /// microseconds): each direction is delayed by half of it, from the
    /// moment a connection is accepted (TLS and the startup's round trips
    /// included), with bytes in flight overlapping as on a real network.
    /// Off by default; zero turns it off; more than 60 s is refused by
    /// [`build`](Self::build). With it on,
    /// [`StatsSnapshot::round_trips`](crate::StatsSnapshot::round_trips)
    /// counts each turn of every conversation.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), dsql_local::StartError> {
    /// use std::time::Duration;
    ///
    /// let local = dsql_local::DsqlLocal::builder()
    ///     .network_round_trip(Duration::from_millis(1))
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn network_round_trip(mut self, round_trip: Duration) -> Self {
        self.network_round_trip = (!round_trip.is_zero()).then_some(round_trip);
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<LocalConfig, ConfigError> {
        let endpoint = match &self.endpoint_host {
            None => Endpoint::cluster(
                DEFAULT_CLUSTER_ID,
                self.region.as_deref().unwrap_or(DEFAULT_REGION),
            )?,
            Some(host) => match Endpoint::parse(host, self.region.as_deref()) {
                Err(dsql_auth::EndpointError::MissingRegion { .. }) => {
                    Endpoint::parse(host, Some(DEFAULT_REGION))?
                }
                other => other?,
            },
        };
        let upstream = UpstreamTarget::parse(&self.upstream)?;
        let mut access_keys = Vec::with_capacity(self.access_keys.len() + 1);
        if self.default_key {
            access_keys.push(AccessKey::default_test_key());
        }
        for key in self.access_keys {
            if key.access_key_id().is_empty() || key.secret_access_key().is_empty() {
                return Err(ConfigError::invalid(
                    "access_key",
                    "an empty access key id or secret",
                ));
            }
            access_keys.retain(|k: &AccessKey| k.access_key_id() != key.access_key_id());
            access_keys.push(key);
        }
        if access_keys.is_empty() && !self.allow_unknown_access_keys {
            return Err(ConfigError::invalid(
                "access_key",
                "no access key is configured, so no token could be accepted",
            ));
        }
        let ip = match self.listen.ip() {
            std::net::IpAddr::V6(v6) => v6.to_canonical(),
            ip => ip,
        };
        let public = access_keys
            .iter()
            .any(|k| k.access_key_id() == super::DEFAULT_ACCESS_KEY_ID)
            || self.allow_unknown_access_keys;
        if public && !ip.is_loopback() && !self.public_key_off_loopback {
            return Err(ConfigError::PublicKeyOffLoopback { listen: self.listen });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid("max_connections", "must be at least 1"));
        }
        if let Some(rate) = self.connection_rate
            && (!rate.per_second.is_finite() || rate.per_second <= 0.0 || rate.burst == 0)
        {
            return Err(ConfigError::invalid(
                "connection_rate",
                "the rate must be a positive number and the burst at least 1",
            ));
        }
        for (name, value) in [
            ("session_lifetime", self.session_lifetime),
            ("transaction_timeout", self.transaction_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("upstream_connect_timeout", self.upstream_connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(name, "must be longer than zero"));
            }
        }
        self.bounds.validate()?;
        if cfg!(not(feature = "dialect")) && self.dialect == Dialect::Dsql {
            return Err(ConfigError::invalid(
                "dialect",
                "dsql-local was built without its `dialect` feature (which parses SQL with \
                 pg_query and needs libclang to build): enable it, or choose Dialect::Postgres",
            ));
        }
        for (client, upstream) in &self.role_map {
            if client.is_empty() || upstream.is_empty() || client.contains('\0') || upstream.contains('\0') {
                return Err(ConfigError::invalid(
                    "role_map",
                    "role names must be non-empty, without NUL",
                ));
            }
        }
        if self
            .network_round_trip
            .is_some_and(|round_trip| round_trip > MAX_NETWORK_ROUND_TRIP)
        {
            return Err(ConfigError::invalid(
                "network_round_trip",
                "must be at most 60 s (a region's round trip is about 1 ms)",
            ));
        }
        if let Some(db) = &self.upstream_database
            && (db.is_empty() || db.contains('\0'))
        {
            return Err(ConfigError::invalid(
                "upstream_database",
                "must be non-empty, without NUL",
            ));
        }
        Ok(LocalConfig {
            listen: self.listen,
            endpoint,
            upstream,
            role_map: self.role_map,
            upstream_database: self.upstream_database,
            access_keys,
            allow_unknown_access_keys: self.allow_unknown_access_keys,
            public_key_off_loopback: public && !ip.is_loopback(),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            session_lifetime: self.session_lifetime,
            transaction_timeout: self.transaction_timeout,
            max_connections: self.max_connections,
            connection_rate: self.connection_rate,
            handshake_timeout: self.handshake_timeout,
            upstream_connect_timeout: self.upstream_connect_timeout,
            ca_dir: self.ca_dir,
            server_names: self.server_names,
            bounds: self.bounds,
            never_wait: self.never_wait,
            network_round_trip: self.network_round_trip,
            dialect: self.dialect,
        })
    }

    /// Validates the settings and starts the server.
    pub async fn start(self) -> Result<DsqlLocal, StartError> {
        DsqlLocal::start(self.build()?).await
    }
}

impl fmt::Debug for LocalConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalConfigBuilder")
            .field("listen", &self.listen)
            .field("endpoint_host", &self.endpoint_host)
            .field("region", &self.region)
            .field("access_keys", &self.access_keys)
            .field("allow_public_key_off_loopback", &self.public_key_off_loopback)
            .field("session_lifetime", &self.session_lifetime)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("max_connections", &self.max_connections)
            .field("connection_rate", &self.connection_rate)
            .field("network_round_trip", &self.network_round_trip)
            .finish_non_exhaustive()
    }
}
