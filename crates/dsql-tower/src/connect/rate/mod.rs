//! A connect-rate limit: a token bucket that spaces connects, shared by
//! every pool and session of one endpoint in the process.

mod layer;
mod registry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use self::layer::{ConnectRateLimitLayer, RateLimitedConnect};
pub use self::registry::RateLimitConflict;

/// A token bucket that spaces connects: `per_second` on average, up to
/// `burst` at once.
///
/// Callers reserve a slot and sleep until it comes, so they are served in
/// arrival order and never spin; a caller that gives up (its future is
/// dropped) gives its slot back. In the [connect stack](super::stack) it
/// sits below the connect retries, so every attempt, retries included, is
/// paced. One limiter serves every pool of the same endpoint in the process
/// ([`ConnectRateLimit::shared`]), so that pools warming up together, or
/// reconnecting after a mass session cut, stay under DSQL's limit together.
#[derive(Debug)]
pub struct ConnectRateLimit {
    per_second: f64,
    burst: u32,
    state: Mutex<Bucket>,
    waits: AtomicU64,
    /// The endpoint it paces (`server.address` of its waits), when shared.
    #[cfg(feature = "metrics")]
    endpoint: Option<std::sync::Arc<str>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A connect rate that cannot work: not a positive, finite number of
/// connects per second, a burst of zero, or above DSQL's own limit.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "invalid connect rate {per_second}/s with burst {burst}: the rate must be positive and at most DSQL's {max}/s, \
     the burst at least 1"
)]
pub struct InvalidConnectRate {
    /// Connects per second given.
    pub per_second: f64,
    /// Burst given.
    pub burst: u32,
    /// DSQL's limit.
    pub max: f64,
}

impl ConnectRateLimit {
    /// A limiter of its own.
    pub fn new(per_second: f64, burst: u32) -> Result<Self, InvalidConnectRate> {
        let max = dsql_auth::limits::CONNECTION_RATE;
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= max) || burst == 0 {
            return Err(InvalidConnectRate {
                per_second,
                burst,
                max,
            });
        }
        Ok(Self {
            per_second,
            burst,
            state: Mutex::new(Bucket {
                tokens: f64::from(burst),
                updated: Instant::now(),
            }),
            waits: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            endpoint: None,
        })
    }

    /// Connects per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Connects at once before the rate applies.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How many connects have had to wait so far.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Waits for a connect slot; returns how long it waited. Dropped before
    /// it returns, it gives the slot back.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if wait.is_zero() {
            return wait;
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let refund = Refund(Some(self));
        tokio::time::sleep(wait).await;
        refund.keep();
        #[cfg(feature = "metrics")]
        crate::metrics::rate_limited(self.endpoint.as_ref(), wait);
        wait
    }

    fn reserve(&self) -> Duration {
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(self.burst));
        bucket.updated = now;
        // Reserve now, even into debt: the debt is the queue ahead.
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.per_second)
        }
    }

    fn give_back(&self) {
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.burst));
    }
}

/// Gives a reserved slot back unless kept.
struct Refund<'a>(Option<&'a ConnectRateLimit>);

impl Refund<'_> {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        if let Some(limit) = self.0.take() {
            limit.give_back();
        }
    }
}

#[cfg(test)]
mod tests;
