//! One endpoint's circuit breaker: a pure state machine over outcomes and
//! time, so that every transition is tested without a network.

use std::collections::VecDeque;
use std::fmt;

use tokio::time::Instant;

use super::HealthPolicy;

/// Outcomes kept per endpoint at most (a window of a busy endpoint is a
/// sample, not a log).
const MAX_OUTCOMES: usize = 256;

/// Where an endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum EndpointState {
    /// Serving: it gets its connections.
    Healthy,
    /// Declared unable to serve: no new connections, its own retired.
    Unhealthy,
    /// Unhealthy, with a probe in flight.
    Probing,
    /// A probe passed: it gets this share (0 to 1) of the connections,
    /// growing over the failback ramp.
    Recovering(f64),
}

impl EndpointState {
    /// A short name, for traces and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Probing => "probing",
            Self::Recovering(_) => "recovering",
        }
    }

    /// Whether it may get new connections.
    pub fn is_serving(self) -> bool {
        matches!(self, Self::Healthy | Self::Recovering(_))
    }
}

impl fmt::Display for EndpointState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Recovering(share) => write!(f, "recovering ({:.0}%)", share * 100.0),
            other => f.write_str(other.as_str()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Healthy,
    Open { next_probe: Instant },
    Probing,
    Recovering { since: Instant },
}

/// What a change of state was, for the caller to count and trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Declared unhealthy.
    Tripped,
    /// A probe passed: the ramp starts.
    Recovering,
    /// A probe failed: still unhealthy.
    StillDown,
}

#[derive(Debug)]
pub(crate) struct Health {
    phase: Phase,
    /// `(when, failed)`, oldest first, within the window.
    outcomes: VecDeque<(Instant, bool)>,
    /// Failures since the last success.
    consecutive: u32,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            phase: Phase::Healthy,
            outcomes: VecDeque::new(),
            consecutive: 0,
        }
    }
}

impl Health {
    pub(crate) fn state(&mut self, policy: &HealthPolicy, now: Instant) -> EndpointState {
        match self.phase {
            Phase::Healthy => EndpointState::Healthy,
            Phase::Open { .. } => EndpointState::Unhealthy,
            Phase::Probing => EndpointState::Probing,
            Phase::Recovering { since } => {
                let ramp = policy.get_failback_ramp();
                let elapsed = now.saturating_duration_since(since);
                if elapsed >= ramp {
                    self.phase = Phase::Healthy;
                    EndpointState::Healthy
                } else {
                    EndpointState::Recovering(elapsed.as_secs_f64() / ramp.as_secs_f64())
                }
            }
        }
    }

    /// A commit or another proof of service.
    pub(crate) fn succeeded(&mut self, policy: &HealthPolicy, now: Instant) {
        self.consecutive = 0;
        self.push(policy, now, false);
    }

    /// A failure that says the region cannot serve now.
    pub(crate) fn failed(&mut self, policy: &HealthPolicy, now: Instant) -> Option<Transition> {
        self.push(policy, now, true);
        self.consecutive = self.consecutive.saturating_add(1);
        if !matches!(self.phase, Phase::Healthy | Phase::Recovering { .. }) {
            return None;
        }
        // A cut is abrupt: failures in a row, whatever came before. An
        // intermittent fault shows in the window's ratio instead.
        let failures = self.outcomes.iter().filter(|(_, failed)| *failed).count();
        let ratio = failures as f64 / self.outcomes.len() as f64;
        let in_a_row = self.consecutive >= policy.get_min_failures();
        if in_a_row || (failures >= policy.get_min_failures() as usize && ratio >= policy.get_failure_ratio())
        {
            self.trip(policy, now);
            return Some(Transition::Tripped);
        }
        None
    }

    /// Whether a probe is due; if so, it is now in flight.
    pub(crate) fn start_probe(&mut self, now: Instant) -> bool {
        match self.phase {
            Phase::Open { next_probe } if now >= next_probe => {
                self.phase = Phase::Probing;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn probed(&mut self, policy: &HealthPolicy, now: Instant, passed: bool) -> Transition {
        if passed {
            self.outcomes.clear();
            self.consecutive = 0;
            self.phase = if policy.get_failback_ramp().is_zero() {
                Phase::Healthy
            } else {
                Phase::Recovering { since: now }
            };
            Transition::Recovering
        } else {
            self.phase = Phase::Open {
                next_probe: now + policy.get_probe_interval(),
            };
            Transition::StillDown
        }
    }

    fn trip(&mut self, policy: &HealthPolicy, now: Instant) {
        self.outcomes.clear();
        self.consecutive = 0;
        self.phase = Phase::Open {
            next_probe: now + policy.get_probe_interval(),
        };
    }

    fn push(&mut self, policy: &HealthPolicy, now: Instant, failed: bool) {
        let horizon = now.checked_sub(policy.get_window());
        while let Some(&(at, _)) = self.outcomes.front() {
            if horizon.is_some_and(|horizon| at < horizon) || self.outcomes.len() >= MAX_OUTCOMES {
                self.outcomes.pop_front();
            } else {
                break;
            }
        }
        self.outcomes.push_back((now, failed));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy::default()
            .min_failures(3)
            .failure_ratio(0.5)
            .window(Duration::from_secs(10))
            .probe_interval(Duration::from_secs(5))
            .failback_ramp(Duration::from_secs(20))
    }

    #[test]
    fn trips_on_enough_failures_in_the_window_and_no_sooner() {
        let (p, t0) = (policy(), Instant::now());
        let mut h = Health::default();
        assert_eq!(h.failed(&p, t0), None);
        assert_eq!(h.failed(&p, t0), None);
        assert_eq!(h.failed(&p, t0), Some(Transition::Tripped));
        assert_eq!(h.state(&p, t0), EndpointState::Unhealthy);
    }

    #[test]
    fn failures_in_a_row_trip_it_whatever_came_before() {
        let (p, t0) = (policy(), Instant::now());
        let mut h = Health::default();
        for _ in 0..100 {
            h.succeeded(&p, t0);
        }
        assert_eq!(h.failed(&p, t0), None);
        assert_eq!(h.failed(&p, t0), None);
        assert_eq!(h.failed(&p, t0), Some(Transition::Tripped));
    }

    #[test]
    fn interleaved_commits_hold_it_until_failures_are_half_the_window() {
        let (p, t0) = (policy(), Instant::now());
        let mut h = Health::default();
        for _ in 0..3 {
            h.succeeded(&p, t0);
            assert_eq!(h.failed(&p, t0), None);
            h.succeeded(&p, t0);
        }
        assert_eq!(h.failed(&p, t0), None, "4 of 10");
        assert_eq!(h.failed(&p, t0), None, "5 of 11");
        h.succeeded(&p, t0);
        let later = t0 + Duration::from_secs(11);
        assert_eq!(h.failed(&p, later), None, "the others left the window");
        assert_eq!(h.state(&p, later), EndpointState::Healthy);
        h.succeeded(&p, later);
        assert_eq!(h.failed(&p, later), None);
        assert_eq!(h.failed(&p, later), Some(Transition::Tripped), "3 of 4");
    }

    #[test]
    fn probes_come_at_the_interval_and_recovery_ramps_up() {
        let (p, t0) = (policy(), Instant::now());
        let mut h = Health::default();
        for _ in 0..3 {
            h.failed(&p, t0);
        }
        assert!(!h.start_probe(t0 + Duration::from_secs(4)));
        let t1 = t0 + Duration::from_secs(5);
        assert!(h.start_probe(t1));
        assert!(!h.start_probe(t1), "one probe at a time");
        assert_eq!(h.state(&p, t1), EndpointState::Probing);
        assert_eq!(h.probed(&p, t1, false), Transition::StillDown);
        assert!(!h.start_probe(t1 + Duration::from_secs(1)));
        let t2 = t1 + Duration::from_secs(5);
        assert!(h.start_probe(t2));
        assert_eq!(h.probed(&p, t2, true), Transition::Recovering);
        assert_eq!(
            h.state(&p, t2 + Duration::from_secs(5)),
            EndpointState::Recovering(0.25)
        );
        assert_eq!(h.state(&p, t2 + Duration::from_secs(20)), EndpointState::Healthy);
    }

    #[test]
    fn failures_while_recovering_trip_it_again() {
        let (p, t0) = (policy(), Instant::now());
        let mut h = Health::default();
        for _ in 0..3 {
            h.failed(&p, t0);
        }
        let t1 = t0 + Duration::from_secs(5);
        assert!(h.start_probe(t1));
        h.probed(&p, t1, true);
        for _ in 0..2 {
            assert_eq!(h.failed(&p, t1), None);
        }
        assert_eq!(h.failed(&p, t1), Some(Transition::Tripped));
    }

    #[test]
    fn a_zero_ramp_recovers_at_once() {
        let p = policy().failback_ramp(Duration::ZERO);
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.failed(&p, t0);
        }
        let t1 = t0 + Duration::from_secs(5);
        assert!(h.start_probe(t1));
        h.probed(&p, t1, true);
        assert_eq!(h.state(&p, t1), EndpointState::Healthy);
    }
}
