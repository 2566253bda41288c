//! The endpoints, their health and their live connections: selection for
//! each connect, verdicts for each connection, probes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::time::Instant;
use tower::ServiceExt;
use tracing::Instrument;

use super::health::{Health, Transition};
use super::lease::{EndpointLease, Outcome, Routing, Verdict};
use super::{EndpointSnapshot, EndpointState, HealthPolicy, Probe};
use crate::classify::{Classify, ErrorClass, SharedClassifier};
use crate::connect::{ConnectService, PgConnection};
use crate::error::BoxError;

pub(crate) struct Endpoint<S> {
    pub(crate) host: String,
    pub(crate) config: tokio_postgres::Config,
    pub(crate) connect: S,
    health: Mutex<Health>,
    /// Live connections plus connects in progress.
    live: AtomicUsize,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    failures: AtomicU64,
    commits: AtomicU64,
    trips: AtomicU64,
    probes_passed: AtomicU64,
    probes_failed: AtomicU64,
    retired_unhealthy: AtomicU64,
    moved_back: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl<S> Endpoint<S> {
    pub(crate) fn new(host: String, config: tokio_postgres::Config, connect: S) -> Self {
        Self {
            host,
            config,
            connect,
            health: Mutex::default(),
            live: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

pub(crate) struct EndpointSet<S> {
    pub(crate) endpoints: Vec<Endpoint<S>>,
    pub(crate) policy: HealthPolicy,
    pub(crate) probe: Probe,
    pub(crate) classifier: SharedClassifier,
    this: Weak<Self>,
}

impl<S> EndpointSet<S> {
    pub(crate) fn new(
        endpoints: Vec<Endpoint<S>>,
        policy: HealthPolicy,
        probe: Probe,
        classifier: SharedClassifier,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            endpoints,
            policy,
            probe,
            classifier,
            this: this.clone(),
        })
    }

    fn state(&self, endpoint: usize, now: Instant) -> EndpointState {
        self.endpoints[endpoint].health().state(&self.policy, now)
    }

    fn total_live(&self) -> usize {
        self.endpoints.iter().map(Endpoint::live).sum()
    }

    /// The endpoint the next connect goes to, skipping `tried`: the first
    /// healthy one in order of preference, or a recovering one whose share
    /// is not yet filled; if none serves, a recovering one, else the most
    /// preferred not tried (everything down: try anyway).
    pub(crate) fn select(&self, now: Instant, tried: &[usize]) -> Option<usize> {
        let total = self.total_live() as f64;
        let mut recovering = None;
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            if tried.contains(&i) {
                continue;
            }
            match self.state(i, now) {
                EndpointState::Healthy => return Some(i),
                EndpointState::Recovering(share) => {
                    if (endpoint.live() as f64) < share * (total + 1.0) {
                        return Some(i);
                    }
                    recovering.get_or_insert(i);
                }
                EndpointState::Unhealthy | EndpointState::Probing => {}
            }
        }
        recovering.or_else(|| (0..self.endpoints.len()).find(|i| !tried.contains(i)))
    }

    pub(crate) fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let now = Instant::now();
        self.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let c = &e.counters;
                let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
                EndpointSnapshot {
                    host: e.host.clone(),
                    state: self.state(i, now),
                    connections: e.live(),
                    connects: get(&c.connects),
                    connect_failures: get(&c.connect_failures),
                    failures: get(&c.failures),
                    commits: get(&c.commits),
                    trips: get(&c.trips),
                    probes_passed: get(&c.probes_passed),
                    probes_failed: get(&c.probes_failed),
                    retired_unhealthy: get(&c.retired_unhealthy),
                    moved_back: get(&c.moved_back),
                }
            })
            .collect()
    }

    fn failed(&self, endpoint: usize, now: Instant) {
        let e = &self.endpoints[endpoint];
        bump(&e.counters.failures);
        if e.health().failed(&self.policy, now) == Some(Transition::Tripped) {
            bump(&e.counters.trips);
            #[cfg(feature = "metrics")]
            crate::metrics::endpoint_tripped(&e.host);
            tracing::warn!(endpoint = %e.host, "endpoint declared unhealthy: its connections move to the next endpoint");
        }
    }
}

/// Whether a failure of this class says the endpoint's region cannot
/// serve now: lost connections and lost answers do; a refused role or
/// token, throttling and conflicts do not.
pub(crate) fn is_region_failure(class: ErrorClass) -> bool {
    matches!(class, ErrorClass::Reconnect | ErrorClass::OutcomeUnknown)
}

impl<S: ConnectService> EndpointSet<S> {
    /// Connects to `endpoint`; the connection carries its lease.
    pub(crate) async fn connect(
        self: &Arc<Self>,
        endpoint: usize,
    ) -> Result<PgConnection, (ErrorClass, BoxError)> {
        let e = &self.endpoints[endpoint];
        e.live.fetch_add(1, Ordering::Relaxed);
        let result = match e.connect.clone().ready_oneshot().await.map_err(Into::into) {
            Ok(mut connect) => connect.call(e.config.clone()).await.map_err(Into::into),
            Err(error) => Err(error),
        };
        match result {
            Ok(mut pg) => {
                bump(&e.counters.connects);
                let routing: Arc<dyn Routing> = Arc::clone(self) as Arc<dyn Routing>;
                pg.set_endpoint(EndpointLease::new(routing, endpoint));
                Ok(pg)
            }
            Err(error) => {
                e.live.fetch_sub(1, Ordering::Relaxed);
                bump(&e.counters.connect_failures);
                let class = self.classifier.classify(&*error);
                if is_region_failure(class) {
                    self.failed(endpoint, Instant::now());
                }
                Err((class, error))
            }
        }
    }

    /// Starts the probes that are due, each in its own task.
    pub(crate) fn start_due_probes(&self, now: Instant) {
        let Some(this) = self.this.upgrade() else { return };
        for (i, e) in self.endpoints.iter().enumerate() {
            if !e.health().start_probe(now) {
                continue;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                e.health().probed(&self.policy, now, false);
                continue;
            };
            let set = Arc::clone(&this);
            let span = tracing::info_span!("dsql.probe", server.address = %e.host);
            runtime.spawn(async move { set.probe(i).await }.instrument(span));
        }
    }

    async fn probe(self: Arc<Self>, endpoint: usize) {
        let e = &self.endpoints[endpoint];
        let attempt = async {
            let mut connect = e.connect.clone().ready_oneshot().await.map_err(Into::into)?;
            let pg = connect.call(e.config.clone()).await.map_err(Into::into)?;
            let result = self.probe.run(&pg, &e.host).await;
            pg.close().await;
            result
        };
        let passed = match tokio::time::timeout(self.policy.get_probe_timeout(), attempt).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                let error: BoxError = error;
                tracing::info!(error = %crate::error::display_chain(&*error), "probe failed");
                false
            }
            Err(_) => {
                tracing::info!("probe timed out");
                false
            }
        };
        let transition = e.health().probed(&self.policy, Instant::now(), passed);
        #[cfg(feature = "metrics")]
        crate::metrics::endpoint_probed(&e.host, passed);
        if transition == Transition::Recovering {
            bump(&e.counters.probes_passed);
            tracing::warn!(endpoint = %e.host, "probe passed: endpoint recovering, connections move back over the failback ramp");
        } else {
            bump(&e.counters.probes_failed);
        }
    }
}

impl<S: ConnectService> Routing for EndpointSet<S> {
    fn verdict(&self, endpoint: usize) -> Verdict {
        let now = Instant::now();
        self.start_due_probes(now);
        let states: Vec<EndpointState> = (0..self.endpoints.len()).map(|i| self.state(i, now)).collect();
        let live: Vec<usize> = self.endpoints.iter().map(Endpoint::live).collect();
        let verdict = verdict(&states, &live, endpoint);
        let counters = &self.endpoints[endpoint].counters;
        match verdict {
            Verdict::Unhealthy => bump(&counters.retired_unhealthy),
            Verdict::MoveBack => bump(&counters.moved_back),
            Verdict::Keep => {}
        }
        verdict
    }

    fn record(&self, endpoint: usize, outcome: Outcome) {
        let now = Instant::now();
        match outcome {
            Outcome::Committed => {
                let e = &self.endpoints[endpoint];
                bump(&e.counters.commits);
                e.health().succeeded(&self.policy, now);
            }
            Outcome::Failed => self.failed(endpoint, now),
        }
    }

    fn released(&self, endpoint: usize) {
        self.endpoints[endpoint].live.fetch_sub(1, Ordering::Relaxed);
    }

    fn host(&self, endpoint: usize) -> &str {
        &self.endpoints[endpoint].host
    }
}

/// What to do with a connection to `endpoint`, given every endpoint's state
/// and live connections: leave an endpoint declared unhealthy (unless
/// nothing serves: there is no better place), and move back to a preferred
/// endpoint that serves, within its share while it recovers.
fn verdict(states: &[EndpointState], live: &[usize], endpoint: usize) -> Verdict {
    if !states[endpoint].is_serving() && states.iter().any(|s| s.is_serving()) {
        return Verdict::Unhealthy;
    }
    let total = live.iter().sum::<usize>() as f64;
    let move_back = states[..endpoint]
        .iter()
        .zip(live)
        .any(|(state, &live)| match *state {
            EndpointState::Healthy => true,
            EndpointState::Recovering(share) => (live as f64) < share * total,
            EndpointState::Unhealthy | EndpointState::Probing => false,
        });
    if move_back {
        Verdict::MoveBack
    } else {
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EndpointState::*;

    #[test]
    fn connections_leave_an_unhealthy_endpoint_unless_nothing_serves() {
        assert_eq!(verdict(&[Unhealthy, Healthy], &[3, 3], 0), Verdict::Unhealthy);
        assert_eq!(verdict(&[Probing, Healthy], &[3, 3], 0), Verdict::Unhealthy);
        assert_eq!(verdict(&[Unhealthy, Unhealthy], &[3, 3], 0), Verdict::Keep);
        assert_eq!(verdict(&[Healthy, Healthy], &[3, 3], 0), Verdict::Keep);
    }

    #[test]
    fn connections_move_back_within_the_recovering_share() {
        assert_eq!(verdict(&[Healthy, Healthy], &[0, 8], 1), Verdict::MoveBack);
        assert_eq!(
            verdict(&[Recovering(0.25), Healthy], &[1, 7], 1),
            Verdict::MoveBack
        );
        assert_eq!(verdict(&[Recovering(0.25), Healthy], &[2, 6], 1), Verdict::Keep);
        assert_eq!(verdict(&[Unhealthy, Healthy], &[0, 8], 1), Verdict::Keep);
    }

    fn set(states: usize) -> Arc<EndpointSet<()>> {
        let endpoints = (0..states)
            .map(|i| Endpoint::new(format!("e{i}"), tokio_postgres::Config::new(), ()))
            .collect();
        EndpointSet::new(
            endpoints,
            HealthPolicy::default(),
            Probe::default(),
            SharedClassifier::default(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn connects_prefer_the_first_serving_endpoint_and_skip_those_tried() {
        let set = set(2);
        let now = Instant::now();
        assert_eq!(set.select(now, &[]), Some(0));
        assert_eq!(set.select(now, &[0]), Some(1));
        assert_eq!(set.select(now, &[0, 1]), None);
        for _ in 0..DEFAULT_MIN_FAILURES_USIZE {
            set.failed(0, now);
        }
        assert_eq!(set.select(now, &[]), Some(1));
        assert_eq!(
            set.select(now, &[1]),
            Some(0),
            "everything else tried: try it anyway"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovering_endpoint_gets_its_share_of_connects() {
        let set = set(2);
        let t0 = Instant::now();
        for _ in 0..DEFAULT_MIN_FAILURES_USIZE {
            set.failed(0, t0);
        }
        let t1 = t0 + set.policy.get_probe_interval();
        assert!(set.endpoints[0].health().start_probe(t1));
        set.endpoints[0].health().probed(&set.policy, t1, true);
        set.endpoints[1].live.store(9, Ordering::Relaxed);
        let quarter = t1 + set.policy.get_failback_ramp() / 4;
        // A quarter of the connections: 0 gets connects until it holds them.
        assert_eq!(set.select(quarter, &[]), Some(0));
        set.endpoints[0].live.store(4, Ordering::Relaxed);
        assert_eq!(set.select(quarter, &[]), Some(1));
    }

    const DEFAULT_MIN_FAILURES_USIZE: usize = super::super::DEFAULT_MIN_FAILURES as usize;
}
