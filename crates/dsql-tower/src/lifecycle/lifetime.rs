//! Connection lifetimes below DSQL's 60-minute session limit, with jitter.

use std::time::{Duration, Instant};

use rand::Rng;

/// DSQL closes every session after this long.
pub const DSQL_SESSION_LIMIT: Duration = Duration::from_secs(60 * 60);

/// How long a connection is used before it is replaced: at most `max`, less
/// a random part of up to `jitter`, drawn per connection.
///
/// Connections opened together (a pool at start-up, after a failover) would
/// otherwise all expire in the same second, and reconnect into DSQL's
/// connection-rate limit together. The default, 55 minutes less up to 5,
/// spreads them over five minutes and stays clear of the 60-minute limit.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dsql_tower::Lifetime;
///
/// let lifetime = Lifetime::new(Duration::from_secs(600), Duration::from_secs(60))?;
/// let now = Instant::now();
/// let deadline = lifetime.deadline(now);
/// assert!(deadline <= now + Duration::from_secs(600));
/// assert!(deadline >= now + Duration::from_secs(540));
/// # Ok::<(), dsql_tower::InvalidLifetime>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    max: Duration,
    jitter: Duration,
}

/// A [`Lifetime`] whose jitter is not smaller than its maximum, or whose
/// maximum is zero.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection lifetime: max {max:?} must be positive and larger than the jitter {jitter:?}")]
pub struct InvalidLifetime {
    max: Duration,
    jitter: Duration,
}

impl Default for Lifetime {
    fn default() -> Self {
        Self {
            max: Duration::from_secs(55 * 60),
            jitter: Duration::from_secs(5 * 60),
        }
    }
}

impl Lifetime {
    /// At most `max`, less up to `jitter`.
    pub fn new(max: Duration, jitter: Duration) -> Result<Self, InvalidLifetime> {
        if max.is_zero() || jitter >= max {
            return Err(InvalidLifetime { max, jitter });
        }
        Ok(Self { max, jitter })
    }

    /// The longest lifetime.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The largest random reduction.
    pub fn jitter(&self) -> Duration {
        self.jitter
    }

    /// When a connection established at `established` must be replaced.
    pub fn deadline(&self, established: Instant) -> Instant {
        let cut = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=self.jitter)
        };
        established + (self.max - cut)
    }
}
