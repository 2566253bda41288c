//! Connection lifetimes below DSQL's 60-minute session limit, with jitter.

use std::time::{Duration, Instant};

use rand::Rng;

/// DSQL closes every session after this long ([`dsql_auth::limits::SESSION_LIMIT`]).
pub const DSQL_SESSION_LIMIT: Duration = dsql_auth::limits::SESSION_LIMIT;

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

/// A [`Lifetime`] whose maximum is zero, reaches DSQL's 60-minute session
/// limit (the server would end sessions first), or is not larger than its
/// jitter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid connection lifetime: max {max:?} must be positive, below DSQL's 60-minute session limit, and larger \
     than the jitter {jitter:?}"
)]
pub struct InvalidLifetime {
    max: Duration,
    jitter: Duration,
}

impl InvalidLifetime {
    /// The maximum given.
    pub fn max(&self) -> Duration {
        self.max
    }
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
    /// At most `max`, less up to `jitter`. `max` must stay below DSQL's
    /// session limit ([`DSQL_SESSION_LIMIT`]).
    pub fn new(max: Duration, jitter: Duration) -> Result<Self, InvalidLifetime> {
        if max.is_zero() || max >= DSQL_SESSION_LIMIT || jitter >= max {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lifetime_reaching_the_session_limit_is_refused() {
        for max in [DSQL_SESSION_LIMIT, DSQL_SESSION_LIMIT * 2, Duration::MAX] {
            assert!(Lifetime::new(max, Duration::ZERO).is_err(), "{max:?}");
        }
        assert!(Lifetime::new(Duration::ZERO, Duration::ZERO).is_err());
        assert!(Lifetime::new(Duration::from_secs(10), Duration::from_secs(10)).is_err());
        let almost = DSQL_SESSION_LIMIT - Duration::from_secs(1);
        let lifetime = Lifetime::new(almost, Duration::from_secs(60)).unwrap();
        let _ = lifetime.deadline(Instant::now());
    }
}
