//! Multi-region clusters: one connect service over peered regional
//! endpoints, with health per endpoint, failover and gradual failback.
//!
//! DSQL's peered clusters each have their own endpoint, and both serve
//! strongly consistent reads and writes; when one region is cut off it can
//! no longer commit, while the other goes on. [`Failover`] is a
//! [`ConnectService`](crate::connect::ConnectService) over the endpoints
//! (the local region's first), so that a [`Session`](crate::Session) or a
//! pool built on it moves to a region that serves, and back:
//!
//! | file | what |
//! |---|---|
//! | [`Failover`] | the connect service: selection, immediate failover of connects |
//! | [`FailoverBuilder`] | endpoints in order of preference, each with its own connect service |
//! | [`HealthPolicy`] | the circuit breaker's thresholds, probe interval, failback ramp |
//! | [`Probe`] | what a probe runs: a committing operation, e.g. a heartbeat upsert |
//! | [`EndpointState`], [`EndpointSnapshot`] | where each endpoint stands, and its counters |
//!
//! Health counts what says a region cannot serve: connects that fail (not a
//! refused role or token, not throttling), sessions cut, answers lost.
//! Only commits and passed probes count as service, since an isolated
//! region may still accept connects and answer reads.
//!
//! Replays across regions follow the same rule as within one: an operation
//! is replayed only when nothing it did can have taken effect, or when it
//! is idempotent. A `COMMIT` lost while a region was being cut off is an
//! unknown outcome, surfaced as such.

mod builder;
mod health;
pub(crate) mod lease;
mod policy;
mod probe;
mod service;
mod set;

pub(crate) use self::set::is_region_failure;

pub use self::builder::{FailoverBuilder, InvalidFailover, connect_retries};
pub use self::health::EndpointState;
pub use self::policy::{
    DEFAULT_FAILBACK_RAMP, DEFAULT_FAILURE_RATIO, DEFAULT_MIN_FAILURES, DEFAULT_PROBE_INTERVAL,
    DEFAULT_PROBE_TIMEOUT, DEFAULT_WINDOW, HealthPolicy,
};
pub use self::probe::Probe;
pub use self::service::Failover;

/// One endpoint's state and counters.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EndpointSnapshot {
    /// Its host.
    pub host: String,
    /// Where it stands.
    pub state: EndpointState,
    /// Connections to it that are alive or being opened.
    pub connections: usize,
    /// Connects that succeeded.
    pub connects: u64,
    /// Connects that failed.
    pub connect_failures: u64,
    /// Failures counted against it (connects, operations).
    pub failures: u64,
    /// Transactions committed on it.
    pub commits: u64,
    /// Times it was declared unhealthy.
    pub trips: u64,
    /// Probes that passed.
    pub probes_passed: u64,
    /// Probes that failed.
    pub probes_failed: u64,
    /// Connections retired because it was declared unhealthy.
    pub retired_unhealthy: u64,
    /// Connections retired to move back to a preferred endpoint.
    pub moved_back: u64,
}
