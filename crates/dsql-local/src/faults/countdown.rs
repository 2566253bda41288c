//! The count-based knobs: each counts events from the moment it is set,
//! across all sessions of the endpoint, and fires once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::StatementDrop;

/// What a count-based knob does to the statement that fires it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatementFault {
    /// [`Faults::fail_statement`](crate::Faults::fail_statement).
    Fail,
    /// [`Faults::drop_at_statement`](crate::Faults::drop_at_statement).
    Drop(StatementDrop),
}

/// Remaining counts (0: off).
#[derive(Debug, Default)]
struct Counts {
    /// Statements until the failing one (1: the next).
    fail_statement: u64,
    /// Statements until the one whose session is dropped, and when.
    drop_statement: u64,
    drop_when: Option<StatementDrop>,
    /// Authentications still to refuse.
    refuse_auths: u64,
    /// Connection attempts still to throttle.
    throttle_connects: u64,
}

impl Counts {
    fn any(&self) -> bool {
        self.fail_statement > 0
            || self.drop_statement > 0
            || self.refuse_auths > 0
            || self.throttle_connects > 0
    }
}

/// The counts behind a lock, with a lock-free "nothing armed" fast path.
#[derive(Debug, Default)]
pub(crate) struct Countdowns {
    counts: Mutex<Counts>,
    armed: AtomicBool,
}

/// Counts one event on `count`: true when it was the last one.
fn tick(count: &mut u64) -> bool {
    match *count {
        0 => false,
        1 => {
            *count = 0;
            true
        }
        _ => {
            *count -= 1;
            false
        }
    }
}

/// Takes one of `count`: true if there was one.
fn take(count: &mut u64) -> bool {
    let some = *count > 0;
    *count = count.saturating_sub(1);
    some
}

impl Countdowns {
    /// Changes the counts and re-arms the fast path; returns `f`'s result.
    fn update<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        let mut counts: MutexGuard<'_, Counts> = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut counts);
        self.armed.store(counts.any(), Ordering::Release);
        result
    }

    /// Like [`update`](Self::update), but only when a knob is armed.
    fn when_armed<T: Default>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        if self.armed.load(Ordering::Acquire) {
            self.update(f)
        } else {
            T::default()
        }
    }

    pub(crate) fn fail_statement(&self, n: u64) {
        self.update(|c| c.fail_statement = n);
    }

    pub(crate) fn drop_at_statement(&self, n: u64, when: StatementDrop) {
        self.update(|c| {
            c.drop_statement = n;
            c.drop_when = (n > 0).then_some(when);
        });
    }

    pub(crate) fn refuse_next_auths(&self, n: u64) {
        self.update(|c| c.refuse_auths = n);
    }

    pub(crate) fn throttle_next_connects(&self, n: u64) {
        self.update(|c| c.throttle_connects = n);
    }

    pub(crate) fn clear(&self) {
        self.update(|c| *c = Counts::default());
    }

    /// Counts one statement; the fault it fires, if any. When both statement
    /// knobs fire at the same statement, the drop wins.
    pub(crate) fn statement(&self) -> Option<StatementFault> {
        self.when_armed(|c| {
            let fail = tick(&mut c.fail_statement);
            let drop = if tick(&mut c.drop_statement) {
                c.drop_when.take()
            } else {
                None
            };
            match (drop, fail) {
                (Some(when), _) => Some(StatementFault::Drop(when)),
                (None, true) => Some(StatementFault::Fail),
                (None, false) => None,
            }
        })
    }

    /// Whether this authentication is refused.
    pub(crate) fn auth(&self) -> bool {
        self.when_armed(|c| take(&mut c.refuse_auths))
    }

    /// Whether this connection attempt is throttled.
    pub(crate) fn connect(&self) -> bool {
        self.when_armed(|c| take(&mut c.throttle_connects))
    }
}
