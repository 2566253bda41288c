//! When an endpoint is declared unable to serve, when it is probed, and how
//! fast traffic moves back: the breaker's settings, with their defaults.

use std::time::Duration;

/// Within this window, failures are weighed against commits.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Failures in a row, or in the window, before an endpoint can be declared
/// unhealthy.
pub const DEFAULT_MIN_FAILURES: u32 = 3;
/// The share of failures among outcomes in the window that declares it.
pub const DEFAULT_FAILURE_RATIO: f64 = 0.5;
/// How long an unhealthy endpoint waits between probes.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a recovered endpoint takes to get its full share back.
pub const DEFAULT_FAILBACK_RAMP: Duration = Duration::from_secs(30);
/// How long one probe may take (connect and operation) before it fails.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The circuit breaker's settings, one per endpoint set.
///
/// An endpoint is declared **unhealthy** after
/// [`min_failures`](Self::min_failures) failures in a row (a cut is
/// abrupt), or when, within [`window`](Self::window), at least that many
/// failures were seen and they are at least
/// [`failure_ratio`](Self::failure_ratio) of its outcomes (an intermittent
/// fault).
/// Failures are what says "this region cannot serve now": connects that
/// fail (not a refused role or token, not throttling), sessions cut, a
/// `COMMIT` whose answer was lost or refused as an isolated region's is.
/// Outcomes that count as successes are commits and passed probes only: an
/// isolated region may still accept connects and answer `SELECT 1`.
///
/// An unhealthy endpoint gets no new connections; its connections are
/// retired when next returned or checked out. Every
/// [`probe_interval`](Self::probe_interval) one probe (a connect and the
/// [`Probe`](super::Probe) operation, within
/// [`probe_timeout`](Self::probe_timeout)) tries it; when one passes, it
/// **recovers**: its share of the connections grows linearly from zero to
/// all of them over [`failback_ramp`](Self::failback_ramp), connections
/// elsewhere moving back one at a time as they are returned, so that the
/// move costs no reconnect storm. Probes are started by traffic (a
/// connect, a checkout, a return), in a task of their own: an idle pool
/// does not probe, and no background task outlives the failover.
///
/// ```
/// use std::time::Duration;
/// use dsql_tower::failover::HealthPolicy;
///
/// let policy = HealthPolicy::default()
///     .min_failures(5)
///     .failback_ramp(Duration::from_secs(60));
/// assert_eq!(policy.get_min_failures(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HealthPolicy {
    window: Duration,
    min_failures: u32,
    failure_ratio: f64,
    probe_interval: Duration,
    probe_timeout: Duration,
    failback_ramp: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            min_failures: DEFAULT_MIN_FAILURES,
            failure_ratio: DEFAULT_FAILURE_RATIO,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            failback_ramp: DEFAULT_FAILBACK_RAMP,
        }
    }
}

impl HealthPolicy {
    /// The window outcomes are weighed in (default 10 s; at least 1 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// Failures needed in a row or in the window (default 3; at least 1).
    pub fn min_failures(mut self, failures: u32) -> Self {
        self.min_failures = failures.max(1);
        self
    }

    /// The share of failures that declares an endpoint unhealthy (default
    /// 0.5; clamped to 0..=1, NaN keeps the default).
    pub fn failure_ratio(mut self, ratio: f64) -> Self {
        if !ratio.is_nan() {
            self.failure_ratio = ratio.clamp(0.0, 1.0);
        }
        self
    }

    /// Time between probes of an unhealthy endpoint (default 5 s; at least
    /// 10 ms).
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long a probe may take (default 5 s; at least 10 ms).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// How long a recovered endpoint takes to get its full share back
    /// (default 30 s; zero moves everything back at once).
    pub fn failback_ramp(mut self, ramp: Duration) -> Self {
        self.failback_ramp = ramp;
        self
    }

    /// The window.
    pub fn get_window(&self) -> Duration {
        self.window
    }

    /// Failures needed in the window.
    pub fn get_min_failures(&self) -> u32 {
        self.min_failures
    }

    /// The share of failures that declares an endpoint unhealthy.
    pub fn get_failure_ratio(&self) -> f64 {
        self.failure_ratio
    }

    /// Time between probes.
    pub fn get_probe_interval(&self) -> Duration {
        self.probe_interval
    }

    /// How long a probe may take.
    pub fn get_probe_timeout(&self) -> Duration {
        self.probe_timeout
    }

    /// The failback ramp.
    pub fn get_failback_ramp(&self) -> Duration {
        self.failback_ramp
    }
}
