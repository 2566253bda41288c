use dsql_tower::Retirements;
use dsql_tower::failover::EndpointSnapshot;

/// What the pool holds and has done.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PoolState {
    /// Connections open (idle and in use).
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
    /// Callers waiting for a connection (exact: a caller that gives up
    /// stops counting).
    pub waiting: u64,
    /// Connections established since the pool was built.
    pub connects: u64,
    /// Connect attempts that failed after the connect stack's retries.
    pub connect_failures: u64,
    /// Connects that waited for the endpoint's connect rate limit (shared
    /// by every pool of the endpoint in the process).
    pub rate_limited: u64,
    /// Checkouts that timed out.
    pub timeouts: u64,
    /// Connections retired, by reason (a session reports the same).
    pub retired: Retirements,
    /// Per endpoint of a multi-region cluster, in order of preference
    /// ([`DsqlPoolBuilder::build_cluster`](crate::DsqlPoolBuilder::build_cluster)):
    /// its state, connections and events. Empty for a single endpoint.
    pub endpoints: Vec<EndpointSnapshot>,
}
