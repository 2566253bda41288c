use std::sync::Arc;
use std::time::Duration;

/// The pool was closed.
#[derive(Debug, thiserror::Error)]
#[error("the DSQL pool is closed")]
pub struct PoolClosed;

/// No connection came within the checkout timeout. The wait covers the
/// queue of earlier callers and the connect, so nested checkouts that would
/// deadlock end here too.
#[derive(Debug, thiserror::Error)]
#[error(
    "no connection within {waited:?}: the pool holds {open} of at most {max_size} connections, {idle} idle{}",
    if .last_connect_error.is_some() { " (the last connect failed)" } else { "" }
)]
pub struct CheckoutTimeout {
    /// How long the caller waited.
    pub waited: Duration,
    /// The pool's maximum size.
    pub max_size: u32,
    /// Connections open.
    pub open: u32,
    /// Idle connections.
    pub idle: u32,
    /// The last connect error, if any (also this error's source).
    #[source]
    pub last_connect_error: Option<dsql_tower::Error>,
}

/// A pool setting, or a combination of settings, that cannot work.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolConfigError {
    /// `max_size` is zero.
    #[error("max_size must be at least 1")]
    ZeroSize,
    /// `min_idle` is larger than `max_size`.
    #[error("min_idle ({min_idle}) is larger than max_size ({max_size})")]
    MinIdleAboveMax {
        /// The minimum.
        min_idle: u32,
        /// The maximum.
        max_size: u32,
    },
    /// The idle timeout is not shorter than the lifetime, so it never applies.
    #[error("idle_timeout ({idle:?}) must be shorter than the connection lifetime ({lifetime:?})")]
    IdleTimeoutNotBelowLifetime {
        /// The idle timeout.
        idle: Duration,
        /// The lifetime.
        lifetime: Duration,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The connect stack could not be built: TLS configuration, a token
    /// provider for another host or role, a connect rate that is invalid
    /// or conflicts with the endpoint's.
    #[error(transparent)]
    Connect(#[from] Arc<dsql_tower::ConnectError>),
    /// The endpoint set cannot be built (a host given twice).
    #[error(transparent)]
    Failover(#[from] dsql_tower::failover::InvalidFailover),
}
