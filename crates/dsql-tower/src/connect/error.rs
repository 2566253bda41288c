use std::time::Duration;

use dsql_auth::TokenError;

/// Why a connection could not be made.
///
/// `Display` shows one level; the driver's error (with the server's
/// refusal: SQLSTATE, message, hint) is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No token could be obtained, or the provider signs for another
    /// (host, user) than the connect is for.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The connect rate asked for is invalid or conflicts with the one
    /// already in force for the endpoint.
    #[error(transparent)]
    RateLimit(super::rate::RateLimitConflict),
    /// The TLS configuration could not be built (CA file, roots).
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The connect configuration asks for something that would send the
    /// token without verified TLS; nothing was sent.
    #[error("refusing to connect with {setting}: a DSQL token is only ever sent over verified TLS")]
    Insecure {
        /// The offending setting.
        setting: &'static str,
    },
    /// Connecting, TLS or authentication failed; the server's refusal, if
    /// any, is in the source (SQLSTATE, message and hint).
    #[error("could not connect to {host}")]
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
