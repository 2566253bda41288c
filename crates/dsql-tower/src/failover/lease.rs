//! What a connection knows of its endpoint: a lease that counts it as live
//! there, reports its outcomes, and says whether it should still be used.

use std::fmt;
use std::sync::Arc;

/// What the lifecycle should do with a connection, given its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Its endpoint is declared unable to serve.
    Unhealthy,
    /// A preferred endpoint serves again and should get this connection's
    /// place.
    MoveBack,
}

/// An outcome on a connection that says something about its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    /// A failure that means "this region cannot serve now".
    Failed,
}

/// The endpoint set as a connection sees it (type-erased: connections do
/// not know the connect service).
pub(crate) trait Routing: Send + Sync {
    fn verdict(&self, endpoint: usize) -> Verdict;
    fn record(&self, endpoint: usize, outcome: Outcome);
    fn released(&self, endpoint: usize);
    fn host(&self, endpoint: usize) -> &str;
}

/// Held by a [`PgConnection`](crate::PgConnection) made through a
/// [`Failover`](super::Failover): released (uncounted) when the connection
/// is dropped.
pub(crate) struct EndpointLease {
    routing: Arc<dyn Routing>,
    endpoint: usize,
}

impl EndpointLease {
    /// Counted live by the caller already.
    pub(crate) fn new(routing: Arc<dyn Routing>, endpoint: usize) -> Self {
        Self { routing, endpoint }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        self.routing.verdict(self.endpoint)
    }

    pub(crate) fn record(&self, outcome: Outcome) {
        self.routing.record(self.endpoint, outcome);
    }

    pub(crate) fn host(&self) -> &str {
        self.routing.host(self.endpoint)
    }
}

impl Drop for EndpointLease {
    fn drop(&mut self) {
        self.routing.released(self.endpoint);
    }
}

impl fmt::Debug for EndpointLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EndpointLease").field(&self.host()).finish()
    }
}
