//! A connection-rate limit shared by every pool of one endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

/// DSQL refuses connections beyond 100 per second per cluster (burst 1,000).
pub const DSQL_CONNECTION_RATE: f64 = 100.0;

/// A token bucket that spaces connects: `per_second` on average, up to
/// `burst` at once.
///
/// Callers reserve a slot and sleep until it comes, so they are served in
/// arrival order and never spin. One limiter is shared by every pool of the
/// same endpoint in the process ([`ConnectRateLimit::shared`]), so that
/// several pools warming up together, or reconnecting after a mass session
/// cut, stay under DSQL's limit together.
#[derive(Debug)]
pub struct ConnectRateLimit {
    per_second: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl ConnectRateLimit {
    /// A limiter of its own.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst),
            state: Mutex::new(Bucket {
                tokens: f64::from(burst),
                updated: Instant::now(),
            }),
        }
    }

    /// The limiter of `endpoint` in this process, made with these settings
    /// by its first user; later users share it as it is.
    pub fn shared(endpoint: &str, per_second: f64, burst: u32) -> Arc<Self> {
        static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<ConnectRateLimit>>>> = OnceLock::new();
        let mut registry = REGISTRY
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        registry.retain(|_, limiter| limiter.strong_count() > 0);
        if let Some(limiter) = registry.get(endpoint).and_then(Weak::upgrade) {
            if limiter.per_second != per_second || limiter.burst != f64::from(burst) {
                tracing::debug!(
                    endpoint,
                    per_second = limiter.per_second,
                    burst = limiter.burst,
                    "sharing the endpoint's existing connect rate limit"
                );
            }
            return limiter;
        }
        let limiter = Arc::new(Self::new(per_second, burst));
        registry.insert(endpoint.to_owned(), Arc::downgrade(&limiter));
        limiter
    }

    /// Connects per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Waits for a connect slot; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let wait = {
            let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let refill = now.duration_since(bucket.updated).as_secs_f64() * self.per_second;
            bucket.tokens = (bucket.tokens + refill).min(self.burst);
            bucket.updated = now;
            // Reserve now, even into debt: the debt is the queue ahead.
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens / self.per_second)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_connects_after_the_burst() {
        let limit = Arc::new(ConnectRateLimit::new(10.0, 5));
        let started = Instant::now();
        let tasks: Vec<_> = (0..25)
            .map(|_| {
                let limit = Arc::clone(&limit);
                tokio::spawn(async move {
                    limit.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap().duration_since(started));
        }
        times.sort();
        // Five at once, then one every 100 ms: the last at 2 s.
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 5);
        assert!(times[24] >= Duration::from_millis(1990), "{:?}", times[24]);
        assert!(times[24] <= Duration::from_millis(2010), "{:?}", times[24]);
        for window in times.windows(11) {
            // Never more than burst + rate·Δt in any stretch.
            let span = window[10].saturating_sub(window[0]).as_secs_f64();
            assert!(10.0 <= 5.0 + 10.0 * span + 1e-6, "11 connects within {span} s");
        }
    }

    #[test]
    fn one_limiter_per_endpoint() {
        let a = ConnectRateLimit::shared("x.dsql.us-east-1.on.aws", 50.0, 10);
        let b = ConnectRateLimit::shared("x.dsql.us-east-1.on.aws", 20.0, 5);
        let c = ConnectRateLimit::shared("y.dsql.us-east-1.on.aws", 20.0, 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(b.per_second(), 50.0);
    }
}
