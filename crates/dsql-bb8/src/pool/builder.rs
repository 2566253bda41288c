use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dsql_auth::{ClusterSet, DsqlConfig, TokenProvider};
use dsql_tower::connect::{ConnectRateLimit, ConnectService, ConnectStack, StackBuilder, pg_config};
use dsql_tower::failover::{Failover, FailoverBuilder, HealthPolicy, Probe, connect_retries};
use dsql_tower::lifecycle::Lifecycle;
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{Classify, Lifetime, SharedClassifier};
use tokio::sync::Semaphore;

use super::{DsqlPool, EndpointSnapshots, PoolConfigError, Shared};
use crate::events::{Events, FailedConnects};
use crate::manager::{CheckOnCheckout, DsqlConnectionManager};

/// Pool defaults, chosen for DSQL; every one can be changed on the builder.
pub mod defaults {
    use std::time::Duration;

    /// Connections at most.
    pub const MAX_SIZE: u32 = 10;
    /// Idle connections are closed after this long (as the official
    /// connectors do).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    /// A checkout waits this long for a connection, queue included.
    pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
    /// New connections per second, shared by every pool of an endpoint.
    pub const CONNECT_RATE: f64 = dsql_tower::connect::DEFAULT_CONNECT_RATE;
    /// Connections that may open at once before the rate applies.
    pub const CONNECT_BURST: u32 = dsql_tower::connect::DEFAULT_CONNECT_BURST;
}

/// Builds a [`DsqlPool`] with DSQL's defaults; see [`defaults`].
///
/// ```no_run
/// use std::time::Duration;
/// use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
/// use dsql_bb8::DsqlPool;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let config = DsqlConfig::from_env()?;
/// let tokens = SharedTokenProvider::new(CachingProvider::new(SigningProvider::load(&config).await));
/// let pool = DsqlPool::builder(&config)
///     .max_size(16)
///     .connection_timeout(Duration::from_secs(5))
///     .build(tokens)?;
/// let n: i64 = pool
///     .transaction(|tx| Box::pin(async move {
///         Ok::<i64, tokio_postgres::Error>(tx.query_one("SELECT count(*) FROM orders", &[]).await?.get(0))
///     }))
///     .await?;
/// pool.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DsqlPoolBuilder {
    config: DsqlConfig,
    max_size: u32,
    min_idle: Option<u32>,
    lifetime: Lifetime,
    idle_timeout: Option<Duration>,
    connection_timeout: Duration,
    reaper_rate: Option<Duration>,
    connect_rate: Option<(f64, u32)>,
    check: CheckOnCheckout,
    retry: RetryPolicy,
    keep_through_backoff: bool,
    classifier: SharedClassifier,
    health: HealthPolicy,
    probe: Probe,
    #[cfg(feature = "metrics")]
    pool_name: Option<String>,
}

impl DsqlPool {
    /// A builder with DSQL's defaults for `config`.
    pub fn builder(config: &DsqlConfig) -> DsqlPoolBuilder {
        DsqlPoolBuilder {
            config: config.clone(),
            max_size: defaults::MAX_SIZE,
            min_idle: None,
            lifetime: Lifetime::default(),
            idle_timeout: Some(defaults::IDLE_TIMEOUT),
            connection_timeout: defaults::CONNECTION_TIMEOUT,
            reaper_rate: None,
            connect_rate: Some((defaults::CONNECT_RATE, defaults::CONNECT_BURST)),
            check: CheckOnCheckout::Local,
            retry: RetryPolicy::for_operations(),
            keep_through_backoff: true,
            classifier: SharedClassifier::default(),
            health: HealthPolicy::default(),
            probe: Probe::default(),
            #[cfg(feature = "metrics")]
            pool_name: None,
        }
    }
}

impl DsqlPoolBuilder {
    /// Connections at most (default 10).
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    /// Idle connections to keep open (default none).
    pub fn min_idle(mut self, min_idle: impl Into<Option<u32>>) -> Self {
        self.min_idle = min_idle.into();
        self
    }

    /// How long connections live, jittered per connection (default 55
    /// minutes less up to 5; [`Lifetime::new`] refuses DSQL's 60 or more).
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Close connections idle this long (default 10 minutes; `None` never).
    pub fn idle_timeout(mut self, idle_timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = idle_timeout.into();
        self
    }

    /// How long a checkout waits, the queue of earlier callers included
    /// (default 30 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How often bb8's reaper closes idle and over-age connections (default:
    /// 30 s, or a quarter of the lifetime jitter if shorter).
    pub fn reaper_rate(mut self, rate: Duration) -> Self {
        self.reaper_rate = Some(rate);
        self
    }

    /// New connections per second and burst, shared by every pool and
    /// session of the endpoint in this process, which must agree (default
    /// 50/s, burst 50). Applies to [`build`](Self::build)'s connect stack.
    pub fn connect_rate(mut self, per_second: f64, burst: u32) -> Self {
        self.connect_rate = Some((per_second, burst));
        self
    }

    /// Connects as fast as the connect stack goes.
    pub fn no_connect_rate_limit(mut self) -> Self {
        self.connect_rate = None;
        self
    }

    /// How checkouts are checked (default: locally, no I/O for a
    /// connection at rest).
    pub fn check_on_checkout(mut self, check: CheckOnCheckout) -> Self {
        self.check = check;
        self
    }

    /// The retry policy of [`DsqlPool::run`] and [`DsqlPool::transaction`]
    /// (its classifier is replaced by the pool's).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Whether an operation whose attempt failed with a conflict keeps its
    /// connection through the backoff before its replay (default: yes).
    ///
    /// Kept, the connection stays out of the pool until the replay runs on
    /// it, so the backoff lowers the contention: given back, it would go at
    /// once to another transaction, and with more tasks than connections as
    /// many attempts would contend on the hot rows as without a backoff
    /// (`dsql-bench occ`, see BENCHMARKS.md). The cost: during the backoff
    /// (up to 250 ms a retry with the default rule) the connection serves
    /// nobody, so a pool saturated with other work serves it less while
    /// transactions back off. Only conflicts that will be replayed keep
    /// their connection; any other failure gives it back at once.
    pub fn keep_connection_through_conflict_backoff(mut self, keep: bool) -> Self {
        self.keep_through_backoff = keep;
        self
    }

    /// Classifies every failure of the pool with `classifier`: connects
    /// (refused tokens, connect retries), operations, and what
    /// [`DsqlPool::run`] replays. Whatever it says, an operation is
    /// replayed only when nothing it did can have taken effect, or when it
    /// is idempotent.
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = SharedClassifier::new(classifier);
        self
    }

    /// When an endpoint of a multi-region cluster counts as unable to
    /// serve, and how fast connections move back
    /// ([`build_cluster`](Self::build_cluster) only).
    pub fn health_policy(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// What probes an unhealthy endpoint runs ([`build_cluster`](Self::build_cluster)
    /// only; default a committed empty transaction, prefer
    /// [`Probe::heartbeat`]).
    pub fn probe(mut self, probe: Probe) -> Self {
        self.probe = probe;
        self
    }

    /// The pool's name in its metrics (`db.client.connection.pool.name`;
    /// feature `metrics`). Default `host:port/database`, as OpenTelemetry
    /// suggests for a pool without a name; give pools of the same endpoint
    /// and database in one process names of their own.
    #[cfg(feature = "metrics")]
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        self.pool_name = Some(name.into());
        self
    }

    fn validate(&self) -> Result<(), PoolConfigError> {
        if self.max_size == 0 {
            return Err(PoolConfigError::ZeroSize);
        }
        if let Some(min_idle) = self.min_idle
            && min_idle > self.max_size
        {
            return Err(PoolConfigError::MinIdleAboveMax {
                min_idle,
                max_size: self.max_size,
            });
        }
        if let Some(idle) = self.idle_timeout
            && idle >= self.lifetime.max()
        {
            return Err(PoolConfigError::IdleTimeoutNotBelowLifetime {
                idle,
                lifetime: self.lifetime.max(),
            });
        }
        if self.connection_timeout.is_zero() {
            return Err(PoolConfigError::ZeroDuration("connection_timeout"));
        }
        if self.reaper_rate.is_some_and(|rate| rate.is_zero()) {
            return Err(PoolConfigError::ZeroDuration("reaper_rate"));
        }
        Ok(())
    }

    /// Builds the pool over the standard connect stack, with tokens from
    /// `tokens` (which must sign for the config's host and user, when the
    /// provider says which). Nothing is connected until the first checkout
    /// (or `min_idle`).
    pub fn build<P>(self, tokens: P) -> Result<DsqlPool<ConnectStack<P>>, PoolConfigError>
    where
        P: TokenProvider + Clone + 'static,
    {
        self.validate()?;
        let mut stack = StackBuilder::new(&self.config, tokens).classifier(self.classifier.clone());
        stack = match self.connect_rate {
            Some((per_second, burst)) => stack.connect_rate(per_second, burst),
            None => stack.no_rate_limit(),
        };
        let stack = stack.build().map_err(Arc::new)?;
        let rate_limit = stack.get_ref().limit().cloned();
        self.assemble(stack, rate_limit, None)
    }

    /// Builds the pool over your own connect service (for instance the
    /// standard stack with a layer of yours added). Its connects are paced
    /// by whatever it contains (the standard stack paces them; add
    /// [`ConnectRateLimitLayer`](dsql_tower::connect::ConnectRateLimitLayer)
    /// to your own), so [`connect_rate`](Self::connect_rate) does not apply.
    pub fn build_with<M>(self, connect: M) -> Result<DsqlPool<M>, PoolConfigError>
    where
        M: ConnectService,
    {
        self.validate()?;
        self.assemble(connect, None, None)
    }

    /// Builds the pool over a multi-region cluster: one standard connect
    /// stack per member (local first) with tokens from `tokens_for(member)`
    /// (a token is bound to one endpoint host), under a
    /// [`Failover`] with this builder's classifier,
    /// [`health_policy`](Self::health_policy) and [`probe`](Self::probe).
    /// Connections go to the local endpoint while it serves; when it is
    /// declared unhealthy its connections are retired (idle ones at
    /// checkout, others when returned) and the pool refills at the next
    /// endpoint, under that endpoint's connect rate; when it recovers they
    /// move back over the failback ramp. [`DsqlPool::state`] reports each
    /// endpoint.
    ///
    /// ```no_run
    /// use dsql_auth::{CachingProvider, ClusterSet, SharedTokenProvider, SigningProvider};
    /// use dsql_bb8::DsqlPool;
    /// use dsql_tower::failover::Probe;
    ///
    /// # fn example(sdk: dsql_auth::aws::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = ClusterSet::from_env()?; // CLUSTER_ENDPOINT and CLUSTER_PEER_ENDPOINTS
    /// let pool = DsqlPool::builder(cluster.local())
    ///     .max_size(32)
    ///     .probe(Probe::heartbeat("heartbeat"))
    ///     .build_cluster(&cluster, |member| {
    ///         SharedTokenProvider::new(CachingProvider::new(SigningProvider::from_sdk_config(member, &sdk)))
    ///     })?;
    /// # let _ = pool;
    /// # Ok(())
    /// # }
    /// ```
    pub fn build_cluster<P>(
        self,
        cluster: &ClusterSet,
        mut tokens_for: impl FnMut(&DsqlConfig) -> P,
    ) -> Result<DsqlPool<Failover<ConnectStack<P>>>, PoolConfigError>
    where
        P: TokenProvider + Clone + 'static,
    {
        self.validate()?;
        let failover = FailoverBuilder::for_cluster_with(cluster, |member| {
            let stack = StackBuilder::new(member, tokens_for(member))
                .classifier(self.classifier.clone())
                .connect_retries(connect_retries());
            match self.connect_rate {
                Some((per_second, burst)) => stack.connect_rate(per_second, burst),
                None => stack.no_rate_limit(),
            }
        })
        .map_err(Arc::new)?
        .shared_classifier(self.classifier.clone())
        .policy(self.health)
        .probe(self.probe.clone())
        .build()?;
        self.build_failover(failover)
    }

    /// Builds the pool over a [`Failover`] of your own; [`DsqlPool::state`]
    /// reports its endpoints. Its stacks pace their own connects.
    pub fn build_failover<S>(self, failover: Failover<S>) -> Result<DsqlPool<Failover<S>>, PoolConfigError>
    where
        S: ConnectService,
    {
        self.validate()?;
        let endpoints = failover.clone();
        self.assemble(failover, None, Some(Box::new(move || endpoints.endpoints())))
    }

    fn assemble<M: ConnectService>(
        self,
        connect: M,
        rate_limit: Option<Arc<ConnectRateLimit>>,
        endpoints: Option<EndpointSnapshots>,
    ) -> Result<DsqlPool<M>, PoolConfigError> {
        let lifecycle = Lifecycle::new(
            connect,
            pg_config(&self.config),
            self.lifetime,
            self.classifier.clone(),
        );
        #[cfg(feature = "metrics")]
        let metrics = {
            let config = &self.config;
            let name = self.pool_name.clone().unwrap_or_else(|| {
                format!(
                    "{}:{}/{}",
                    config.endpoint().host(),
                    config.port(),
                    config.database()
                )
            });
            let metrics = dsql_tower::metrics::PoolMetrics::new(name);
            metrics.max(self.max_size);
            metrics
        };
        #[cfg(feature = "metrics")]
        let lifecycle = lifecycle.with_pool_metrics(metrics.clone());
        let manager = DsqlConnectionManager::new(lifecycle.clone()).check_on_checkout(self.check);
        let events: Arc<Events> = Arc::clone(&manager.events);
        let reaper_rate = self.reaper_rate.unwrap_or_else(|| {
            Duration::from_secs(30).min((self.lifetime.jitter() / 4).max(Duration::from_millis(100)))
        });
        let inner = bb8::Pool::builder()
            .max_size(self.max_size)
            .min_idle(self.min_idle)
            // The lifecycle's checks (see `CheckOnCheckout`): a closed,
            // expired, broken, abandoned or mid-transaction connection is
            // never handed out, at no round-trip cost for one at rest.
            .test_on_check_out(true)
            // The per-connection deadline is enforced at checkout and return;
            // bb8's own max lifetime is the reaper's backstop for idle ones.
            .max_lifetime(Some(self.lifetime.max()))
            .idle_timeout(self.idle_timeout)
            .connection_timeout(self.connection_timeout)
            .reaper_rate(reaper_rate)
            // Connect retries are classified in the connect stack; bb8's own
            // are not, and would retry a fatal refusal until the timeout.
            .retry_connection(false)
            .error_sink(Box::new(FailedConnects(Arc::clone(&events))))
            .build_unchecked(manager);
        Ok(DsqlPool {
            inner,
            lifecycle: Arc::new(lifecycle),
            shared: Arc::new(Shared {
                queue: Arc::new(Semaphore::new(self.max_size as usize)),
                max_size: self.max_size,
                connection_timeout: self.connection_timeout,
                waiting: AtomicU64::new(0),
                timeouts: AtomicU64::new(0),
                events,
                retry: self.retry.classifier(self.classifier),
                keep_through_backoff: self.keep_through_backoff,
                rate_limit,
                endpoints,
                #[cfg(feature = "metrics")]
                metrics,
            }),
        })
    }
}
