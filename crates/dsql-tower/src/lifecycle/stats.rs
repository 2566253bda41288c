use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection left service: one vocabulary for sessions and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retirement {
    /// It reached its jittered lifetime deadline.
    Lifetime,
    /// The server or the network had closed it.
    Closed,
    /// An error left it unusable.
    Broken,
    /// An operation on it was dropped midway (a timeout above): its query
    /// was cancelled.
    Abandoned,
    /// It was left inside a transaction, or with a reply outstanding, and
    /// could not be brought back to rest.
    NotIdle,
    /// Its endpoint was declared unable to serve
    /// ([`failover`](crate::failover)).
    EndpointUnhealthy,
    /// A preferred endpoint recovered: its place moves there
    /// ([`failover`](crate::failover)).
    Failback,
}

impl Retirement {
    /// A short name, for traces and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifetime => "lifetime",
            Self::Closed => "closed",
            Self::Broken => "broken",
            Self::Abandoned => "abandoned",
            Self::NotIdle => "not_idle",
            Self::EndpointUnhealthy => "endpoint_unhealthy",
            Self::Failback => "failback",
        }
    }
}

impl fmt::Display for Retirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connections retired, by [`Retirement`] reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retirements {
    /// Replaced at their lifetime deadline.
    pub lifetime: u64,
    /// Found closed by the server or the network.
    pub closed: u64,
    /// Made unusable by an error.
    pub broken: u64,
    /// Dropped with an operation abandoned midway.
    pub abandoned: u64,
    /// Left mid-transaction and not brought back to rest.
    pub not_idle: u64,
    /// Their endpoint was declared unable to serve.
    pub endpoint_unhealthy: u64,
    /// Moved back to a recovered preferred endpoint.
    pub failback: u64,
}

impl Retirements {
    /// All retirements.
    pub fn total(&self) -> u64 {
        self.lifetime
            + self.closed
            + self.broken
            + self.abandoned
            + self.not_idle
            + self.endpoint_unhealthy
            + self.failback
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    retired: [AtomicU64; 7],
}

impl Counters {
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retired(&self, why: Retirement) {
        let slot = match why {
            Retirement::Lifetime => 0,
            Retirement::Closed => 1,
            Retirement::Broken => 2,
            Retirement::Abandoned => 3,
            Retirement::NotIdle => 4,
            Retirement::EndpointUnhealthy => 5,
            Retirement::Failback => 6,
        };
        self.retired[slot].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(reason = %why, "connection retired");
    }

    pub(crate) fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub(crate) fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn retirements(&self) -> Retirements {
        let get = |i: usize| self.retired[i].load(Ordering::Relaxed);
        Retirements {
            lifetime: get(0),
            closed: get(1),
            broken: get(2),
            abandoned: get(3),
            not_idle: get(4),
            endpoint_unhealthy: get(5),
            failback: get(6),
        }
    }
}
