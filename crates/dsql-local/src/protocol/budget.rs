//! [`MemoryBudget`]: one bound on the bytes that every session's message
//! buffers hold together.
//!
//! Each buffer is bounded by the largest message it accepts, but thousands of
//! sessions each holding most of a 64 MiB message would still exhaust the
//! machine. Buffers charge the budget before they grow past
//! [`FREE_PER_BUFFER`]; a buffer that cannot grow ends its session with
//! `53200 out of memory` (PostgreSQL's words) instead of taking the process
//! down.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What each buffer may hold without charging the budget: enough for the
/// ordinary traffic of a session (several read chunks).
pub(crate) const FREE_PER_BUFFER: usize = 64 * 1024;

/// A shared allowance of buffer bytes.
#[derive(Clone, Debug)]
pub(crate) struct MemoryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// A budget no buffer can exhaust (for the trusted upstream's startup).
    pub(crate) fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// Takes `bytes` from the budget, or fails without taking anything.
    pub(crate) fn try_charge(&self, bytes: usize) -> io::Result<()> {
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.inner.limit)
            })
            .map(drop)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "the buffers of all sessions would exceed bounds.max_buffered_bytes ({} bytes)",
                        self.inner.limit
                    ),
                )
            })
    }

    /// Gives `bytes` back.
    pub(crate) fn release(&self, bytes: usize) {
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes charged now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_not_past_it() {
        let budget = MemoryBudget::new(100);
        budget.try_charge(60).expect("within");
        let error = budget.try_charge(41).expect_err("past the limit");
        assert_eq!(error.kind(), io::ErrorKind::OutOfMemory);
        assert_eq!(budget.used(), 60, "a refused charge takes nothing");
        budget.try_charge(40).expect("exactly the limit");
        budget.release(100);
        assert_eq!(budget.used(), 0);
        assert!(MemoryBudget::unlimited().try_charge(usize::MAX).is_ok());
    }
}
