use crate::EndpointError;

/// Why a configuration was rejected. Every message names the setting at
/// fault; none repeats a password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint host, cluster id or region is invalid.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// No host or cluster id was given.
    #[error("no DSQL endpoint: set a host name or cluster id (CLUSTER_ENDPOINT, or the host of a URL)")]
    MissingHost,
    /// A setting has a value it cannot take.
    #[error("invalid {name} `{value}`: expected {expected}")]
    InvalidValue {
        /// The setting (parameter or environment variable) at fault.
        name: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The token duration is outside DSQL's 1 s to 1 week.
    #[error("token duration of {secs} s is out of range: DSQL accepts 1 to 604800 s (one week)")]
    TokenDurationOutOfRange {
        /// The duration given, in seconds.
        secs: u64,
    },
    /// Two region settings disagree.
    #[error("region conflict: {first} is `{first_value}` but {second} is `{second_value}`")]
    RegionConflict {
        /// The first setting.
        first: &'static str,
        /// Its value.
        first_value: String,
        /// The second setting.
        second: &'static str,
        /// Its value.
        second_value: String,
    },
    /// An environment variable is set but not valid Unicode.
    #[error("the environment variable {name} is not valid Unicode")]
    NotUnicode {
        /// The variable.
        name: &'static str,
    },
    /// The URL cannot be parsed.
    #[error("invalid connection URL: {reason}")]
    InvalidUrl {
        /// What is wrong (never the URL itself, which may hold a password).
        reason: String,
    },
    /// The URL's scheme is not `postgres`, `postgresql` or `dsql`.
    #[error("unsupported URL scheme `{scheme}`: use postgres://, postgresql:// or dsql://")]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },
    /// The URL carries a password; DSQL authenticates with IAM tokens.
    #[error(
        "the connection URL contains a password: DSQL authenticates with IAM tokens, \
         so remove the password (it was not used, nor shown here)"
    )]
    PasswordInUrl,
    /// The URL has a parameter this library does not know.
    #[error(
        "unknown URL parameter `{name}`: supported are region, profile, tokenDurationSecs, \
         application_name (applicationName), sslmode, sslrootcert, sslnegotiation, hostaddr, connect_timeout"
    )]
    UnknownParameter {
        /// The parameter's name.
        name: String,
    },
    /// A URL parameter was given twice.
    #[error("URL parameter `{name}` is given more than once")]
    DuplicateParameter {
        /// The parameter's name.
        name: String,
    },
    /// A host is in a [`ClusterSet`](crate::ClusterSet) twice.
    #[error(
        "the host `{host}` is in the cluster set twice: each member is a distinct endpoint, \
         with its own tokens"
    )]
    DuplicateHost {
        /// The host, normalized.
        host: String,
    },
    /// A peer was given by a name that holds no region (a bare cluster id,
    /// a custom host name), so its region would be a guess.
    #[error(
        "the peer `{host}` has no region in its name: give its full endpoint host name \
         `<cluster-id>.dsql.<region>.on.aws` (a peer's region is never taken from the local \
         endpoint's settings), or a complete configuration of it"
    )]
    PeerWithoutRegion {
        /// The peer as given.
        host: String,
    },
    /// A peer's configuration disagrees with the local member's on a setting
    /// all members share.
    #[error(
        "the peer `{host}` has {field} `{peer}` but the local endpoint has {field} `{local}`: \
         every member of a cluster set connects as the same user to the same database"
    )]
    PeerMismatch {
        /// The peer's host.
        host: String,
        /// The setting (`user`, `database`).
        field: &'static str,
        /// The local member's value.
        local: String,
        /// The peer's value.
        peer: String,
    },
    /// A multi-host URL's `hostaddr` list does not have one entry per host.
    #[error(
        "hostaddr must list one address per host, in the hosts' order (an empty entry: resolve \
         that host's name), or be absent (hosts: {hosts}, hostaddr entries: {hostaddrs})"
    )]
    HostaddrCount {
        /// How many hosts the URL has.
        hosts: usize,
        /// How many comma-separated entries `hostaddr` has.
        hostaddrs: usize,
    },
    /// In a multi-host URL, `region` contradicts the region of a host name.
    #[error(
        "region conflict: the host `{host}` is in `{host_region}` but the URL gives the region \
         `{region}`; each DSQL host name carries its own region, so remove `region=` (it is for \
         host names without one)"
    )]
    HostRegionConflict {
        /// The host as written.
        host: String,
        /// The region read from its name.
        host_region: String,
        /// The region the URL gives.
        region: String,
    },
    /// `sslmode` is not `verify-full`.
    #[error(
        "sslmode `{value}` is not supported: DSQL connections always use TLS with certificate \
         and host name verification (verify-full)"
    )]
    UnsupportedSslMode {
        /// The mode given.
        value: String,
    },
}
