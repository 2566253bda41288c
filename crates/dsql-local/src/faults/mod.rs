//! Faults on demand: dropped sessions, refused authentication, injected
//! conflicts and statement failures, throttled connects, latency, paused
//! accepting, a region isolated from its peers.
//!
//! - this module: the public [`Faults`] handle and its knobs;
//! - [`isolation`]: [`Faults::isolate`] and what an isolated region's
//!   clients see ([`Isolation`]);
//! - [`countdown`]: the count-based knobs, which fire once at the n-th event
//!   counted from the moment they are set (deterministic, for property-based
//!   tests that shrink);
//! - [`triggers`]: what the server and the relay ask at each connection,
//!   authentication, message and statement.

mod countdown;
mod isolation;
#[cfg(test)]
mod tests;
mod triggers;

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::seq::IndexedRandom;
use tokio::sync::watch;
use tokio::time::Instant;

use self::countdown::Countdowns;
pub(crate) use self::countdown::StatementFault;
pub use self::isolation::{IsolatedCommits, IsolatedConnects, IsolatedSessions, Isolation};
use crate::registry::Registry;
use crate::stats::Stats;

/// Added latency, applied to messages from clients before they are relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latency {
    /// Every message is delayed.
    PerMessage(Duration),
    /// Every query (`Query`, or an extended-protocol `Sync`) is delayed once.
    PerQuery(Duration),
}

/// When the session is dropped at the next `COMMIT`
/// ([`Faults::drop_at_next_commit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitDrop {
    /// Before the `COMMIT` reaches the upstream: nothing was committed, but
    /// the client cannot know.
    BeforeForwarding,
    /// After the upstream answered the `COMMIT`, before the answer reaches the
    /// client: the transaction was committed, but the client cannot know.
    AfterForwarding,
}

/// When the session is cut at the n-th statement
/// ([`Faults::drop_at_statement`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementDrop {
    /// Before the statement reaches the upstream: it never ran.
    BeforeForwarding,
    /// After the upstream completed the statement (in autocommit: committed
    /// it), before its reply reaches the client, who sees a lost connection.
    AfterCompletion,
}

const LATENCY_NONE: u8 = 0;
const LATENCY_MESSAGE: u8 = 1;
const LATENCY_QUERY: u8 = 2;

const DROP_NONE: u8 = 0;
const DROP_BEFORE: u8 = 1;
const DROP_AFTER: u8 = 2;

pub(crate) struct FaultState {
    registry: Arc<Registry>,
    /// The endpoint's counters, for what the faults do at once.
    stats: Stats,
    /// The region's isolation from its peers, if any.
    isolation: watch::Sender<Option<Isolation>>,
    paused: watch::Sender<bool>,
    refuse_until: Mutex<Option<Instant>>,
    conflict_probability: AtomicU64,
    latency_kind: AtomicU8,
    latency_nanos: AtomicU64,
    commit_drop: AtomicU8,
    countdowns: Countdowns,
}

/// Injects faults into a running [`DsqlLocal`](crate::DsqlLocal); clones
/// control the same server.
///
/// ```no_run
/// # async fn example(local: dsql_local::DsqlLocal) {
/// use std::time::Duration;
/// use dsql_local::{CommitDrop, Latency, StatementDrop};
///
/// let faults = local.faults();
/// faults.inject_commit_conflicts(0.5); // half the COMMITs fail with OC000
/// faults.set_latency(Latency::PerQuery(Duration::from_millis(20)));
/// faults.drop_at_next_commit(CommitDrop::AfterForwarding);
/// faults.refuse_auth_for(Duration::from_secs(2));
/// faults.drop_sessions(0.25);
/// faults.fail_statement(3); // the third statement from now fails with OC000
/// faults.drop_at_statement(2, StatementDrop::AfterCompletion);
/// faults.refuse_next_auths(1);
/// faults.throttle_next_connects(2);
/// faults.isolate(); // the region loses its peers (see `Isolation`)
/// faults.heal();
/// faults.clear();
/// # }
/// ```
#[derive(Clone)]
pub struct Faults {
    pub(crate) state: Arc<FaultState>,
}

impl Faults {
    pub(crate) fn new(registry: Arc<Registry>, stats: Stats) -> Self {
        Self {
            state: Arc::new(FaultState {
                registry,
                stats,
                isolation: watch::Sender::new(None),
                paused: watch::Sender::new(false),
                refuse_until: Mutex::new(None),
                conflict_probability: AtomicU64::new(0_f64.to_bits()),
                latency_kind: AtomicU8::new(LATENCY_NONE),
                latency_nanos: AtomicU64::new(0),
                commit_drop: AtomicU8::new(DROP_NONE),
                countdowns: Countdowns::default(),
            }),
        }
    }

    /// Closes every open session now; returns how many.
    pub fn drop_all_sessions(&self) -> usize {
        self.state.registry.all().iter().filter(|ctl| ctl.kill()).count()
    }

    /// Closes a random `fraction` (0 to 1) of the open sessions, rounded to
    /// the nearest whole number; returns how many.
    pub fn drop_sessions(&self, fraction: f64) -> usize {
        let sessions = self.state.registry.all();
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        // The product is at most the number of sessions.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let count = ((sessions.len() as f64) * fraction).round() as usize;
        sessions
            .choose_multiple(&mut rand::rng(), count)
            .filter(|ctl| ctl.kill())
            .count()
    }

    /// Refuses every authentication for `window` from now, with DSQL's
    /// "not authorized" hint.
    pub fn refuse_auth_for(&self, window: Duration) {
        let until = Instant::now().checked_add(window);
        *self
            .state
            .refuse_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some(until.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)));
    }

    /// Ends a [`refuse_auth_for`](Self::refuse_auth_for) window early.
    pub fn stop_refusing_auth(&self) {
        *self
            .state
            .refuse_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Fails each `COMMIT` of an open transaction with probability
    /// `probability` (0 to 1): `ROLLBACK` is sent upstream instead, and the
    /// client gets `40001` `… (OC000)`. Zero turns it off.
    pub fn inject_commit_conflicts(&self, probability: f64) {
        let p = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        self.state
            .conflict_probability
            .store(p.to_bits(), Ordering::Relaxed);
    }

    /// Adds latency to messages from clients.
    pub fn set_latency(&self, latency: Latency) {
        let (kind, delay) = match latency {
            Latency::PerMessage(d) => (LATENCY_MESSAGE, d),
            Latency::PerQuery(d) => (LATENCY_QUERY, d),
        };
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.state.latency_nanos.store(nanos, Ordering::Relaxed);
        self.state.latency_kind.store(kind, Ordering::Release);
    }

    /// Removes added latency.
    pub fn clear_latency(&self) {
        self.state.latency_kind.store(LATENCY_NONE, Ordering::Release);
    }

    /// Stops accepting connections: new clients wait in the listen backlog
    /// (their connect or TLS handshake times out) until
    /// [`resume_accepting`](Self::resume_accepting).
    pub fn pause_accepting(&self) {
        self.state.paused.send_replace(true);
    }

    /// Accepts connections again.
    pub fn resume_accepting(&self) {
        self.state.paused.send_replace(false);
    }

    /// Whether accepting is paused.
    pub fn is_paused(&self) -> bool {
        *self.state.paused.borrow()
    }

    /// Drops the session that sends the next `COMMIT` (any session; once), at
    /// the moment `when` says.
    pub fn drop_at_next_commit(&self, when: CommitDrop) {
        let value = match when {
            CommitDrop::BeforeForwarding => DROP_BEFORE,
            CommitDrop::AfterForwarding => DROP_AFTER,
        };
        self.state.commit_drop.store(value, Ordering::Release);
    }

    /// Fails the `n`-th statement (1-based) the endpoint receives from now
    /// on, in any session, once: it is not executed and the client gets
    /// `40001` with [`catalog::CHANGE_CONFLICT`](crate::catalog::CHANGE_CONFLICT)'s
    /// message. A statement is a simple-protocol `Query` message (however
    /// many statements its text holds) or an extended-protocol `Execute`;
    /// `Parse`, `Bind`, `Describe` and `Sync` are not counted, nor is what the
    /// relay sends on its own. Zero turns the knob off.
    ///
    /// As in PostgreSQL and DSQL: inside an explicit transaction the
    /// transaction is aborted (later statements get `25P02`, and its `COMMIT`
    /// rolls back); in autocommit nothing is applied and the session goes on.
    /// A `COMMIT` of an open transaction fails like an
    /// [injected conflict](Self::inject_commit_conflicts): it is rolled back
    /// and the transaction is over. Over the extended protocol, the rest of
    /// the client's batch up to its `Sync` is skipped, as after any error; the
    /// relay then runs a simple query upstream, which discards the unnamed
    /// prepared statement.
    pub fn fail_statement(&self, n: u64) {
        self.state.countdowns.fail_statement(n);
    }

    /// Cuts the session of the `n`-th statement (1-based, counted as in
    /// [`fail_statement`](Self::fail_statement)) from now on, once: both
    /// connections are closed at the moment `when` says. Zero turns the knob
    /// off. When both statement knobs pick the same statement, the drop wins.
    pub fn drop_at_statement(&self, n: u64, when: StatementDrop) {
        self.state.countdowns.drop_at_statement(n, when);
    }

    /// Refuses the next `n` authentications that would otherwise succeed, as
    /// [`refuse_auth_for`](Self::refuse_auth_for) does (`08006`, DSQL's
    /// "not authorized" hint); zero turns the knob off.
    pub fn refuse_next_auths(&self, n: u64) {
        self.state.countdowns.refuse_next_auths(n);
    }

    /// Refuses the next `n` connection attempts (TCP connections accepted)
    /// with [`catalog::RATE_EXCEEDED`](crate::catalog::RATE_EXCEEDED)
    /// (`53400`), as the connection-rate limiter does, without taking a token
    /// from its bucket; zero turns the knob off.
    pub fn throttle_next_connects(&self, n: u64) {
        self.state.countdowns.throttle_next_connects(n);
    }

    /// Turns every fault off (resumes accepting, heals an isolation).
    pub fn clear(&self) {
        self.heal();
        self.state.countdowns.clear();
        self.stop_refusing_auth();
        self.inject_commit_conflicts(0.0);
        self.clear_latency();
        self.resume_accepting();
        self.state.commit_drop.store(DROP_NONE, Ordering::Release);
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("paused", &self.is_paused())
            .field("refusing_auth", &self.refusing_auth())
            .field(
                "conflict_probability",
                &f64::from_bits(self.state.conflict_probability.load(Ordering::Relaxed)),
            )
            .field("latency_kind", &self.state.latency_kind.load(Ordering::Relaxed))
            .field("commit_drop", &self.state.commit_drop.load(Ordering::Relaxed))
            .field("countdowns", &self.state.countdowns)
            .field("isolation", &self.isolation())
            .finish()
    }
}
