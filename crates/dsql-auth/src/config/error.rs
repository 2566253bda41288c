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
