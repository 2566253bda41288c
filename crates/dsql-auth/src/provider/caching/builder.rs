//! [`CachingProviderBuilder`]: the settings of a [`CachingProvider`] and
//! their validation.

use std::fmt;
use std::time::Duration;

use super::{
    CachingProvider, DEFAULT_MIN_REMAINING, DEFAULT_REFRESH_FRACTION, DEFAULT_RETRY_AFTER_FAILURE, Settings,
};
use crate::TokenProvider;
use crate::clock::{self, SharedClock};

/// Builds a [`CachingProvider`]; see its documentation for the meaning of
/// each setting.
pub struct CachingProviderBuilder<P> {
    inner: P,
    refresh_fraction: f64,
    min_remaining: Duration,
    retry_after_failure: Duration,
    clock: SharedClock,
}

impl<P: TokenProvider + 'static> CachingProviderBuilder<P> {
    pub(super) fn new(inner: P) -> Self {
        Self {
            inner,
            refresh_fraction: DEFAULT_REFRESH_FRACTION,
            min_remaining: DEFAULT_MIN_REMAINING,
            retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
            clock: clock::system(),
        }
    }

    /// Fraction of a token's lifetime after which it is refreshed in the
    /// background, in `(0, 1]`. Default 0.8.
    pub fn refresh_fraction(mut self, fraction: f64) -> Self {
        self.refresh_fraction = fraction;
        self
    }

    /// Least validity a served token must have left; set it to at least your
    /// connect timeout. Capped at a quarter of a token's lifetime, so any
    /// value (even `Duration::MAX`) is accepted. Default 30 s.
    pub fn min_remaining(mut self, min_remaining: Duration) -> Self {
        self.min_remaining = min_remaining;
        self
    }

    /// How long to keep serving the current token after a failed background
    /// refresh before trying again. Default 1 s. Any value is accepted: with
    /// `Duration::MAX` a failed background refresh is retried only once the
    /// token stops being served (then callers wait for a fresh one).
    pub fn retry_after_failure(mut self, retry_after_failure: Duration) -> Self {
        self.retry_after_failure = retry_after_failure;
        self
    }

    /// The clock that decides token age (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<CachingProvider<P>, InvalidCacheSettings> {
        if !(self.refresh_fraction > 0.0 && self.refresh_fraction <= 1.0) {
            return Err(InvalidCacheSettings::RefreshFraction(self.refresh_fraction));
        }
        Ok(CachingProvider::from_parts(
            self.inner,
            Settings {
                refresh_fraction: self.refresh_fraction,
                min_remaining: self.min_remaining,
                retry_after_failure: self.retry_after_failure,
            },
            self.clock,
        ))
    }
}

impl<P: fmt::Debug> fmt::Debug for CachingProviderBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingProviderBuilder")
            .field("inner", &self.inner)
            .field("refresh_fraction", &self.refresh_fraction)
            .field("min_remaining", &self.min_remaining)
            .field("retry_after_failure", &self.retry_after_failure)
            .finish_non_exhaustive()
    }
}

/// A [`CachingProviderBuilder`] setting out of range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCacheSettings {
    /// `refresh_fraction` is not in `(0, 1]`.
    #[error("refresh_fraction must be greater than 0 and at most 1, got {0}")]
    RefreshFraction(f64),
}
