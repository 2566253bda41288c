//! Counters, updated with atomics and read as a [`StatsSnapshot`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RefusalReason {
    /// A plaintext startup (no TLS).
    TlsRequired,
    /// TLS without SNI.
    SniMissing,
    /// SNI names another host than the endpoint.
    SniMismatch,
    /// Direct TLS without ALPN `postgresql`.
    AlpnRequired,
    /// The maximum number of connections is open.
    TooManyConnections,
    /// The connection-rate bucket is empty.
    RateExceeded,
    /// A malformed startup or authentication message.
    ProtocolViolation,
    /// The password is not a presigned DSQL token.
    MalformedToken,
    /// The token is not signed with `AWS4-HMAC-SHA256`.
    UnsupportedAlgorithm,
    /// The token signs other headers than `host`.
    UnsupportedSignedHeaders,
    /// The credential scope's service is not `dsql`.
    WrongService,
    /// The credential scope's region is not the endpoint's.
    WrongRegion,
    /// The token was signed for another host.
    WrongHost,
    /// The token's action does not match the user (`admin` ↔ `DbConnectAdmin`).
    WrongAction,
    /// `X-Amz-Expires` is over one week.
    ExpiresTooLong,
    /// `X-Amz-Date + X-Amz-Expires` has passed.
    Expired,
    /// `X-Amz-Date` is in the future.
    NotYetValid,
    /// The access key is not configured.
    UnknownAccessKey,
    /// The session token is missing, unexpected or wrong.
    InvalidSessionToken,
    /// The signature does not match.
    SignatureMismatch,
    /// Refused by [`Faults::refuse_auth_for`](crate::Faults::refuse_auth_for)
    /// or [`Faults::refuse_next_auths`](crate::Faults::refuse_next_auths).
    FaultInjected,
    /// The upstream PostgreSQL refused or failed the session.
    Upstream,
    /// The client named another database than DSQL's one (`postgres`).
    UnknownDatabase,
    /// The role's upstream role has privileges beyond DSQL's `admin`
    /// (superuser, `CREATEROLE`, server file access, …).
    PrivilegedRole,
    /// The region is isolated from its peers
    /// ([`Faults::isolate`](crate::Faults::isolate), with
    /// [`IsolatedConnects::Refuse`](crate::IsolatedConnects::Refuse)).
    RegionIsolated,
}

impl RefusalReason {
    /// Every reason, in declaration order.
    pub const ALL: [RefusalReason; 25] = [
        Self::TlsRequired,
        Self::SniMissing,
        Self::SniMismatch,
        Self::AlpnRequired,
        Self::TooManyConnections,
        Self::RateExceeded,
        Self::ProtocolViolation,
        Self::MalformedToken,
        Self::UnsupportedAlgorithm,
        Self::UnsupportedSignedHeaders,
        Self::WrongService,
        Self::WrongRegion,
        Self::WrongHost,
        Self::WrongAction,
        Self::ExpiresTooLong,
        Self::Expired,
        Self::NotYetValid,
        Self::UnknownAccessKey,
        Self::InvalidSessionToken,
        Self::SignatureMismatch,
        Self::FaultInjected,
        Self::Upstream,
        Self::UnknownDatabase,
        Self::PrivilegedRole,
        Self::RegionIsolated,
    ];

    /// A stable snake_case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsRequired => "tls_required",
            Self::SniMissing => "sni_missing",
            Self::SniMismatch => "sni_mismatch",
            Self::AlpnRequired => "alpn_required",
            Self::TooManyConnections => "too_many_connections",
            Self::RateExceeded => "rate_exceeded",
            Self::ProtocolViolation => "protocol_violation",
            Self::MalformedToken => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnsupportedSignedHeaders => "unsupported_signed_headers",
            Self::WrongService => "wrong_service",
            Self::WrongRegion => "wrong_region",
            Self::WrongHost => "wrong_host",
            Self::WrongAction => "wrong_action",
            Self::ExpiresTooLong => "expires_too_long",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownAccessKey => "unknown_access_key",
            Self::InvalidSessionToken => "invalid_session_token",
            Self::SignatureMismatch => "signature_mismatch",
            Self::FaultInjected => "fault_injected",
            Self::Upstream => "upstream",
            Self::UnknownDatabase => "unknown_database",
            Self::PrivilegedRole => "privileged_role",
            Self::RegionIsolated => "region_isolated",
        }
    }

    fn index(self) -> usize {
        // Declaration order, the order of `ALL` (checked by a test).
        self as usize
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const REASONS: usize = RefusalReason::ALL.len();

/// Refused connections per [`RefusalReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts([u64; REASONS]);

impl RefusalCounts {
    /// Refusals for `reason`.
    pub fn get(&self, reason: RefusalReason) -> u64 {
        self.0[reason.index()]
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The reasons with at least one refusal, and their counts.
    pub fn iter(&self) -> impl Iterator<Item = (RefusalReason, u64)> + '_ {
        RefusalReason::ALL
            .iter()
            .zip(self.0.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (*r, *n))
    }
}

impl fmt::Debug for RefusalCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (r.as_str(), n)))
            .finish()
    }
}

/// A copy of the counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// TCP connections accepted by the listener.
    pub accepted: u64,
    /// Connections refused, by reason.
    pub refused: RefusalCounts,
    /// Connections that failed before startup for other reasons (TLS error,
    /// handshake timeout, client gone).
    pub handshakes_failed: u64,
    /// Sessions authenticated and relayed to the upstream.
    pub sessions_opened: u64,
    /// Sessions closed because they reached the session lifetime.
    pub sessions_expired: u64,
    /// Sessions closed by a fault ([`Faults`](crate::Faults)).
    pub sessions_dropped_by_faults: u64,
    /// Transactions rolled back by the transaction timeout.
    pub transactions_timed_out: u64,
    /// PostgreSQL serialization failures and deadlocks rewritten to `OC000`.
    pub conflicts_rewritten: u64,
    /// `OC000` conflicts injected at `COMMIT` by a fault.
    pub conflicts_injected: u64,
    /// Statements failed with `OC000` by
    /// [`Faults::fail_statement`](crate::Faults::fail_statement).
    pub statements_failed: u64,
    /// Statements refused by DSQL's dialect (what DSQL does not support,
    /// its transaction rules).
    pub statements_refused: u64,
    /// Sessions cut at a statement by
    /// [`Faults::drop_at_statement`](crate::Faults::drop_at_statement) (also
    /// counted in `sessions_dropped_by_faults`).
    pub statement_drops: u64,
    /// Authentications refused by
    /// [`Faults::refuse_next_auths`](crate::Faults::refuse_next_auths) (also
    /// counted as [`RefusalReason::FaultInjected`] refusals).
    pub auths_refused_by_count: u64,
    /// Connection attempts refused with `53400` by
    /// [`Faults::throttle_next_connects`](crate::Faults::throttle_next_connects)
    /// (also counted as [`RefusalReason::RateExceeded`] refusals).
    pub connects_throttled_by_count: u64,
    /// Cancel requests relayed to the upstream.
    pub cancels_relayed: u64,
    /// Tokens received that were signed for another endpoint host (another
    /// region's peer, another cluster), whatever check refused them first
    /// (a peer in another region usually refuses them for their region,
    /// [`RefusalReason::WrongRegion`]). A client that signs one token per
    /// peer keeps it at zero.
    pub tokens_for_other_host: u64,
    /// Authenticated connections refused because the region was isolated
    /// ([`Faults::isolate`](crate::Faults::isolate); also counted as
    /// [`RefusalReason::RegionIsolated`] refusals).
    pub connects_refused_by_isolation: u64,
    /// Sessions cut at the moment the region was isolated (also counted in
    /// `sessions_dropped_by_faults`).
    pub sessions_cut_by_isolation: u64,
    /// Transactions that could not commit because the region was isolated:
    /// `COMMIT`s of transactions that wrote (rolled back instead) and
    /// autocommit writes (not applied).
    pub commits_failed_by_isolation: u64,
    /// Turns of the conversation through the network delay line
    /// ([`network_round_trip`](crate::LocalConfigBuilder::network_round_trip)):
    /// each time a client sent bytes after the server had sent some (or for
    /// the first time). Zero without a delay line.
    pub round_trips: u64,
    /// Entries the network delay line's clock ran at their due instant:
    /// a chunk either way, or a direction's end. Zero without a delay
    /// line.
    pub line_deliveries: u64,
    /// Microseconds by which the clock ran those entries after they were
    /// due, summed (÷ `line_deliveries` for the mean): its timer's
    /// precision and the machine's CPU contention, which a real network's
    /// delay would not depend on. What comes after (the server's reader
    /// being scheduled, a send put off because the client's socket was
    /// full) is not in it.
    pub line_late_us: u64,
    /// Bytes relayed from clients to the upstream.
    pub bytes_from_clients: u64,
    /// Bytes relayed from the upstream to clients.
    pub bytes_to_clients: u64,
    /// Sessions open now.
    pub current_sessions: u64,
    /// Connections open now (sessions and handshakes in progress).
    pub current_connections: u64,
}

impl StatsSnapshot {
    /// Conflicts sent to clients: rewritten, injected at `COMMIT`, and failed
    /// statements.
    pub fn conflicts(&self) -> u64 {
        self.conflicts_rewritten + self.conflicts_injected + self.statements_failed
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    refused: [AtomicU64; REASONS],
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) sessions_opened: AtomicU64,
    pub(crate) sessions_expired: AtomicU64,
    pub(crate) sessions_dropped_by_faults: AtomicU64,
    pub(crate) transactions_timed_out: AtomicU64,
    pub(crate) conflicts_rewritten: AtomicU64,
    pub(crate) conflicts_injected: AtomicU64,
    pub(crate) statements_failed: AtomicU64,
    pub(crate) statements_refused: AtomicU64,
    pub(crate) statement_drops: AtomicU64,
    pub(crate) auths_refused_by_count: AtomicU64,
    pub(crate) connects_throttled_by_count: AtomicU64,
    pub(crate) cancels_relayed: AtomicU64,
    pub(crate) tokens_for_other_host: AtomicU64,
    pub(crate) connects_refused_by_isolation: AtomicU64,
    pub(crate) sessions_cut_by_isolation: AtomicU64,
    pub(crate) commits_failed_by_isolation: AtomicU64,
    pub(crate) round_trips: AtomicU64,
    pub(crate) line_deliveries: AtomicU64,
    pub(crate) line_late_us: AtomicU64,
    pub(crate) bytes_from_clients: AtomicU64,
    pub(crate) bytes_to_clients: AtomicU64,
    pub(crate) current_sessions: AtomicU64,
    pub(crate) current_connections: AtomicU64,
}

impl Counters {
    pub(crate) fn refused(&self, reason: RefusalReason) {
        self.refused[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// One entry the delay line's clock ran (a chunk or an end), `late`
    /// after it was due.
    pub(crate) fn count_delivery(&self, late: std::time::Duration) {
        bump(&self.line_deliveries);
        let micros = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.line_late_us.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A gauge held up while the guard lives.
pub(crate) struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    pub(crate) fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The counters of a running [`DsqlLocal`](crate::DsqlLocal); clones share
/// them.
#[derive(Clone)]
pub struct Stats {
    pub(crate) counters: Arc<Counters>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            counters: Arc::new(Counters::default()),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &*self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut refused = RefusalCounts::default();
        for (slot, counter) in refused.0.iter_mut().zip(c.refused.iter()) {
            *slot = load(counter);
        }
        StatsSnapshot {
            accepted: load(&c.accepted),
            refused,
            handshakes_failed: load(&c.handshakes_failed),
            sessions_opened: load(&c.sessions_opened),
            sessions_expired: load(&c.sessions_expired),
            sessions_dropped_by_faults: load(&c.sessions_dropped_by_faults),
            transactions_timed_out: load(&c.transactions_timed_out),
            conflicts_rewritten: load(&c.conflicts_rewritten),
            conflicts_injected: load(&c.conflicts_injected),
            statements_failed: load(&c.statements_failed),
            statements_refused: load(&c.statements_refused),
            statement_drops: load(&c.statement_drops),
            auths_refused_by_count: load(&c.auths_refused_by_count),
            connects_throttled_by_count: load(&c.connects_throttled_by_count),
            cancels_relayed: load(&c.cancels_relayed),
            tokens_for_other_host: load(&c.tokens_for_other_host),
            connects_refused_by_isolation: load(&c.connects_refused_by_isolation),
            sessions_cut_by_isolation: load(&c.sessions_cut_by_isolation),
            commits_failed_by_isolation: load(&c.commits_failed_by_isolation),
            round_trips: load(&c.round_trips),
            line_deliveries: load(&c.line_deliveries),
            line_late_us: load(&c.line_late_us),
            bytes_from_clients: load(&c.bytes_from_clients),
            bytes_to_clients: load(&c.bytes_to_clients),
            current_sessions: load(&c.current_sessions),
            current_connections: load(&c.current_connections),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason() {
        let stats = Stats::new();
        stats.counters.refused(RefusalReason::Expired);
        stats.counters.refused(RefusalReason::Expired);
        stats.counters.refused(RefusalReason::Upstream);
        let snap = stats.snapshot();
        assert_eq!(snap.refused.get(RefusalReason::Expired), 2);
        assert_eq!(snap.refused.get(RefusalReason::Upstream), 1);
        assert_eq!(snap.refused.get(RefusalReason::TlsRequired), 0);
        assert_eq!(snap.refused.total(), 3);
        assert_eq!(format!("{:?}", snap.refused), r#"{"expired": 2, "upstream": 1}"#);
        for (i, reason) in RefusalReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }
}
