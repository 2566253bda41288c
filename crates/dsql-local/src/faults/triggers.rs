//! What the server and the relay ask the faults at each connection,
//! authentication, message and statement.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    CommitDrop, DROP_AFTER, DROP_BEFORE, DROP_NONE, Faults, LATENCY_MESSAGE, LATENCY_QUERY, StatementFault,
};

impl Faults {
    pub(crate) fn paused(&self) -> watch::Receiver<bool> {
        self.state.paused.subscribe()
    }

    pub(crate) fn refusing_auth(&self) -> bool {
        let until = *self
            .state
            .refuse_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.is_some_and(|until| Instant::now() < until)
    }

    /// The delay to apply before relaying a client message with `tag`.
    pub(crate) fn latency_for(&self, tag: u8) -> Option<Duration> {
        let kind = self.state.latency_kind.load(Ordering::Acquire);
        let applies = match kind {
            LATENCY_MESSAGE => true,
            LATENCY_QUERY => matches!(tag, b'Q' | b'S'),
            _ => false,
        };
        applies.then(|| Duration::from_nanos(self.state.latency_nanos.load(Ordering::Relaxed)))
    }

    /// Takes the pending commit drop, if any.
    pub(crate) fn take_commit_drop(&self) -> Option<CommitDrop> {
        match self.state.commit_drop.swap(DROP_NONE, Ordering::AcqRel) {
            DROP_BEFORE => Some(CommitDrop::BeforeForwarding),
            DROP_AFTER => Some(CommitDrop::AfterForwarding),
            _ => None,
        }
    }

    /// Whether this `COMMIT` gets an injected conflict.
    pub(crate) fn roll_conflict(&self) -> bool {
        let p = f64::from_bits(self.state.conflict_probability.load(Ordering::Relaxed));
        p > 0.0 && (p >= 1.0 || rand::random::<f64>() < p)
    }

    /// Counts one statement (a `Query` or an `Execute`); the fault it fires.
    pub(crate) fn take_statement_fault(&self) -> Option<StatementFault> {
        self.state.countdowns.statement()
    }

    /// Whether this authentication is refused by
    /// [`refuse_next_auths`](Self::refuse_next_auths) (counts it).
    pub(crate) fn take_auth_refusal(&self) -> bool {
        self.state.countdowns.auth()
    }

    /// Whether this connection attempt is refused by
    /// [`throttle_next_connects`](Self::throttle_next_connects) (counts it).
    pub(crate) fn take_throttle(&self) -> bool {
        self.state.countdowns.connect()
    }
}
