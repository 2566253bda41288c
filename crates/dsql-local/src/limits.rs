//! Admission limits: open connections and the connection-rate token bucket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use crate::config::RateLimit;

/// Counts open connections against a maximum.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    max: usize,
    open: AtomicUsize,
}

impl ConnectionLimit {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// A slot, held until the returned guard drops; `None` when all are taken.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }
}

/// One open connection; frees its slot on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot(Arc<ConnectionLimit>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A token bucket: `per_second` tokens per second, at most `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A full bucket.
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.burst),
                updated: Instant::now(),
            }),
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn try_acquire(&self) -> bool {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> bool {
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slots_are_limited_and_returned() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn bucket_bursts_then_refills() {
        let limiter = RateLimiter::new(RateLimit::new(10.0, 3));
        let start = limiter.state.lock().expect("unpoisoned").updated;
        assert!((0..3).all(|_| limiter.try_acquire_at(start)));
        assert!(!limiter.try_acquire_at(start));
        // 10/s: one token after 100 ms, not before.
        assert!(!limiter.try_acquire_at(start + Duration::from_millis(50)));
        assert!(limiter.try_acquire_at(start + Duration::from_millis(110)));
        assert!(!limiter.try_acquire_at(start + Duration::from_millis(110)));
        // Never more than the burst.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| limiter.try_acquire_at(later)));
        assert!(!limiter.try_acquire_at(later));
    }
}
