use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: the `n`th retry waits a uniformly
/// random time in `[0, min(cap, base · 2ⁿ)]`.
///
/// Full jitter spreads clients that failed together (a failover, a mass
/// session cut) over the whole window instead of bunching them around each
/// step, which is what tower's `ExponentialBackoff` (`base + U[0, base·j]`)
/// does.
///
/// ```
/// use std::time::Duration;
/// use dsql_tower::retry::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
/// assert!(backoff.delay(0) <= Duration::from_millis(10));
/// assert!(backoff.delay(20) <= Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Windows doubling from `base`, never above `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The upper bound of the `retry`th delay (0-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base
            .checked_mul(1_u32 << retry.min(31))
            .map_or(self.cap, |window| window.min(self.cap))
    }

    /// A random delay for the `retry`th retry (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }
}
