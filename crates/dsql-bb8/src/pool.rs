//! The pool: bb8 with DSQL's defaults, a fair queue and typed connect errors.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dsql_auth::{DsqlConfig, SharedTokenProvider, TokenProvider};
use dsql_tower::connect::{ConnectService, ConnectStack, pg_config};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{
    BoxError, BoxFuture, DSQL_SESSION_LIMIT, Error, ErrorClass, Lifetime, Operation, OperationExt, Phase,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceBuilder;

use crate::manager::{CheckOnCheckout, DsqlConnection, DsqlConnectionManager, Events, PoolClosed};
use crate::rate::{ConnectRateLimit, DSQL_CONNECTION_RATE};
use crate::service::PoolService;

/// Pool defaults, chosen for DSQL; every one can be changed on the builder.
pub mod defaults {
    use std::time::Duration;

    /// Connections at most.
    pub const MAX_SIZE: u32 = 10;
    /// Idle connections are closed after this long (as the official
    /// connectors do).
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    /// A checkout waits this long for a connection.
    pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
    /// New connections per second, shared by every pool of an endpoint:
    /// half of DSQL's 100/s, so other clients keep room.
    pub const CONNECT_RATE: f64 = 50.0;
    /// Connections that may open at once before the rate applies.
    pub const CONNECT_BURST: u32 = 50;
}

/// A pool of DSQL connections (bb8 underneath).
///
/// - Each connect gets a token from the pool's provider, over verified TLS,
///   with classified connect retries (`dsql-tower`'s connect stack), spaced
///   by a connect rate limit shared per endpoint.
/// - Each connection lives until its own jittered deadline (default 55
///   minutes less up to 5), so a pool created at once does not reconnect at
///   once; a connection past its deadline, closed, or marked broken by an
///   operation is never handed out.
/// - Checkouts wait in a FIFO queue: a task that returns a connection and
///   asks again does not overtake tasks already waiting (bb8 alone lets it).
/// - A fatal connect error (the role does not match the token's action,
///   TLS verification) is returned at once, typed; other failures after the
///   connect stack's retries are returned when the checkout times out.
/// - [`transaction`](Self::transaction) and [`run`](Self::run) replay an
///   operation by error class (conflicts, lost connections), and
///   [`service`](Self::service) is the pool as a `tower::Service`.
///
/// Clones share the pool.
pub struct DsqlPool<M: ConnectService = ConnectStack<SharedTokenProvider>> {
    inner: bb8::Pool<DsqlConnectionManager<M>>,
    shared: Arc<Shared>,
}

struct Shared {
    queue: Arc<Semaphore>,
    max_size: u32,
    waiting: AtomicU64,
    events: Arc<Events>,
    retry: RetryPolicy,
    lifetime: Lifetime,
}

impl<M: ConnectService> Clone for DsqlPool<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: ConnectService> fmt::Debug for DsqlPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlPool")
            .field("max_size", &self.shared.max_size)
            .field("lifetime", &self.shared.lifetime)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// A checked-out connection; returned to the pool when dropped.
///
/// Dereferences to [`DsqlConnection`], and through it to
/// `tokio_postgres::Client`.
pub struct PooledConnection<M>
where
    M: ConnectService,
{
    connection: bb8::PooledConnection<'static, DsqlConnectionManager<M>>,
    _turn: OwnedSemaphorePermit,
}

impl<M> Deref for PooledConnection<M>
where
    M: ConnectService,
{
    type Target = DsqlConnection;

    fn deref(&self) -> &DsqlConnection {
        &self.connection
    }
}

impl<M> DerefMut for PooledConnection<M>
where
    M: ConnectService,
{
    fn deref_mut(&mut self) -> &mut DsqlConnection {
        &mut self.connection
    }
}

impl<M> fmt::Debug for PooledConnection<M>
where
    M: ConnectService,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.connection, f)
    }
}

/// What the pool holds and has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolState {
    /// Connections open (idle and in use).
    pub connections: u32,
    /// Idle connections.
    pub idle: u32,
    /// Callers waiting for a connection.
    pub waiting: u64,
    /// Connections established since the pool was built.
    pub connects: u64,
    /// Connect attempts that failed after the connect stack's retries.
    pub connect_failures: u64,
    /// Connects that waited for the connect rate limit.
    pub rate_limited: u64,
    /// Connections replaced at their lifetime deadline.
    pub retired_lifetime: u64,
    /// Connections dropped because the server had closed them.
    pub retired_closed: u64,
    /// Connections dropped because an operation found them unusable.
    pub retired_broken: u64,
}

impl<M> DsqlPool<M>
where
    M: ConnectService,
{
    /// Checks out a connection, waiting in line behind earlier callers.
    pub async fn get(&self) -> Result<PooledConnection<M>, Error> {
        if self.shared.events.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorClass::Fatal, Phase::Connect, PoolClosed));
        }
        self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        let turn = Arc::clone(&self.shared.queue).acquire_owned().await;
        self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        let turn = turn.map_err(|_| Error::new(ErrorClass::Fatal, Phase::Connect, PoolClosed))?;

        let mut fatal = self.shared.events.fatal.subscribe();
        fatal.mark_unchanged();
        tokio::select! {
            biased;
            got = self.inner.get_owned() => match got {
                Ok(connection) => Ok(PooledConnection { connection, _turn: turn }),
                Err(bb8::RunError::User(error)) => Err(error),
                Err(bb8::RunError::TimedOut) => Err(self.timed_out()),
            },
            Ok(()) = fatal.changed() => Err(self.shared.events.last_error().unwrap_or_else(|| self.timed_out())),
        }
    }

    fn timed_out(&self) -> Error {
        let state = self.inner.state();
        let waited = format!(
            "timed out waiting for a connection ({} open, {} idle)",
            state.connections, state.idle_connections
        );
        match self.shared.events.last_error() {
            Some(last) => Error::new(
                last.class(),
                Phase::Connect,
                format!("{waited}; last connect error: {last}"),
            ),
            None => Error::new(ErrorClass::Throttled, Phase::Connect, waited),
        }
    }

    /// Runs `operation` on a pooled connection, replaying it by error class
    /// with the pool's retry policy (conflicts, lost connections; unknown
    /// outcomes only when the operation is idempotent).
    ///
    /// On failure the error tells the class, the phase, how many attempts
    /// were made ([`Error::attempts`]) and the last attempt's error.
    pub async fn run<T: Send + 'static>(&self, operation: Operation<T>) -> Result<T, Error> {
        let mut service = ServiceBuilder::new()
            .layer(self.shared.retry.clone().layer())
            .service(self.service());
        service.run(operation).await
    }

    /// Runs `f` in a transaction, replaying the whole transaction on
    /// conflicts (`40001`, `OC000`/`OC001`) and lost connections before
    /// `COMMIT`; returns the closure's value.
    ///
    /// ```no_run
    /// # async fn example(pool: dsql_bb8::DsqlPool<dsql_tower::connect::ConnectStack<dsql_auth::SharedTokenProvider>>)
    /// # -> Result<(), dsql_tower::Error> {
    /// let balance: i64 = pool
    ///     .transaction(|tx| Box::pin(async move {
    ///         tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
    ///         let row = tx.query_one("SELECT balance FROM accounts WHERE id = 1", &[]).await?;
    ///         Ok::<i64, tokio_postgres::Error>(row.get(0))
    ///     }))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transaction<T, F, E>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c, 't> Fn(&'c mut tokio_postgres::Transaction<'t>) -> BoxFuture<'c, Result<T, E>>
            + Send
            + Sync
            + 'static,
        E: Into<BoxError> + 'static,
    {
        self.run(Operation::transaction(f)).await
    }

    /// The pool as a `tower::Service<Operation<T>>`, to put under
    /// `RetryLayer`, `ClassifyLayer`, timeouts and concurrency limits.
    pub fn service(&self) -> PoolService<M> {
        PoolService::new(self.clone())
    }

    /// A snapshot of the pool's size and counters.
    pub fn state(&self) -> PoolState {
        let bb8 = self.inner.state();
        let events = &self.shared.events;
        PoolState {
            connections: bb8.connections,
            idle: bb8.idle_connections,
            waiting: self.shared.waiting.load(Ordering::Relaxed),
            connects: events.connects.load(Ordering::Relaxed),
            connect_failures: events.connect_failures.load(Ordering::Relaxed),
            rate_limited: events.rate_limited.load(Ordering::Relaxed),
            retired_lifetime: events.retired_lifetime.load(Ordering::Relaxed),
            retired_closed: events.retired_closed.load(Ordering::Relaxed),
            retired_broken: events.retired_broken.load(Ordering::Relaxed),
        }
    }

    /// Closes the pool: refuses new checkouts, waits for checked-out
    /// connections to come back, closes every connection and waits until
    /// their sockets are closed.
    pub async fn close(&self) {
        self.shared.events.closed.store(true, Ordering::Release);
        // Every turn taken means every connection is back in the pool.
        let all = Arc::clone(&self.shared.queue)
            .acquire_many_owned(self.shared.max_size)
            .await;
        let idle = self.inner.state().idle_connections;
        for _ in 0..idle {
            match tokio::time::timeout(Duration::from_secs(1), self.inner.get()).await {
                Ok(Ok(mut connection)) => connection.mark_broken(),
                _ => break,
            }
        }
        self.shared.queue.close();
        drop(all);
        self.shared.events.tasks.join_all().await;
        let state = self.state();
        tracing::info!(?state, "DSQL pool closed");
    }

    /// The connections' lifetime policy.
    pub fn lifetime(&self) -> Lifetime {
        self.shared.lifetime
    }
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
/// let pool = DsqlPool::builder(&config).max_size(16).build(tokens)?;
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
}

/// A pool setting, or a combination of settings, that cannot work.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolConfigError {
    /// `max_size` is zero.
    #[error("max_size must be at least 1")]
    ZeroSize,
    /// `min_idle` is larger than `max_size`.
    #[error("min_idle ({min_idle}) is larger than max_size ({max_size})")]
    MinIdleAboveMax {
        /// The minimum.
        min_idle: u32,
        /// The maximum.
        max_size: u32,
    },
    /// The connection lifetime reaches DSQL's 60-minute session limit.
    #[error(
        "a connection lifetime of {max:?} reaches DSQL's 60-minute session limit: the server would end \
         sessions before the pool replaces them"
    )]
    LifetimeAboveSessionLimit {
        /// The lifetime given.
        max: Duration,
    },
    /// The idle timeout is not shorter than the lifetime, so it never applies.
    #[error("idle_timeout ({idle:?}) must be shorter than the connection lifetime ({lifetime:?})")]
    IdleTimeoutNotBelowLifetime {
        /// The idle timeout.
        idle: Duration,
        /// The lifetime.
        lifetime: Duration,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The connect rate is not a positive number of connects per second, or
    /// the burst is zero.
    #[error(
        "connect rate must be a positive number of connects per second with a burst of at least 1, got {per_second}/s burst {burst}"
    )]
    InvalidConnectRate {
        /// Connects per second.
        per_second: f64,
        /// Burst.
        burst: u32,
    },
    /// The connect rate is above DSQL's per-cluster limit.
    #[error("a connect rate of {0}/s is above DSQL's limit of 100 connections per second per cluster")]
    ConnectRateAboveDsqlLimit(f64),
    /// The connect stack could not be built (TLS configuration).
    #[error(transparent)]
    Connect(#[from] Arc<dsql_tower::ConnectError>),
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
    /// minutes less up to 5).
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Close connections idle this long (default 10 minutes; `None` never).
    pub fn idle_timeout(mut self, idle_timeout: impl Into<Option<Duration>>) -> Self {
        self.idle_timeout = idle_timeout.into();
        self
    }

    /// How long a checkout waits (default 30 s).
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

    /// New connections per second and burst, shared by every pool of the
    /// endpoint in this process (default 50/s, burst 50).
    pub fn connect_rate(mut self, per_second: f64, burst: u32) -> Self {
        self.connect_rate = Some((per_second, burst));
        self
    }

    /// Connects as fast as the connect stack goes.
    pub fn no_connect_rate_limit(mut self) -> Self {
        self.connect_rate = None;
        self
    }

    /// How checkouts are checked (default: locally, no I/O).
    pub fn check_on_checkout(mut self, check: CheckOnCheckout) -> Self {
        self.check = check;
        self
    }

    /// The retry policy of [`DsqlPool::run`] and [`DsqlPool::transaction`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
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
        if self.lifetime.max() >= DSQL_SESSION_LIMIT {
            return Err(PoolConfigError::LifetimeAboveSessionLimit {
                max: self.lifetime.max(),
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
        if let Some((per_second, burst)) = self.connect_rate {
            if !(per_second.is_finite() && per_second > 0.0) || burst == 0 {
                return Err(PoolConfigError::InvalidConnectRate { per_second, burst });
            }
            if per_second > DSQL_CONNECTION_RATE {
                return Err(PoolConfigError::ConnectRateAboveDsqlLimit(per_second));
            }
        }
        Ok(())
    }

    /// Builds the pool over the standard connect stack, with tokens from
    /// `tokens`. Nothing is connected until the first checkout (or
    /// `min_idle`).
    pub fn build<P>(self, tokens: P) -> Result<DsqlPool<ConnectStack<P>>, PoolConfigError>
    where
        P: TokenProvider + Clone + 'static,
    {
        self.validate()?;
        let stack = dsql_tower::connect::stack(&self.config, tokens).map_err(Arc::new)?;
        self.build_with(stack)
    }

    /// Builds the pool over your own connect service (for instance the
    /// standard stack with a layer of yours added).
    pub fn build_with<M>(self, connect: M) -> Result<DsqlPool<M>, PoolConfigError>
    where
        M: ConnectService,
    {
        self.validate()?;
        let mut manager = DsqlConnectionManager::new(connect, pg_config(&self.config))
            .lifetime(self.lifetime)
            .check_on_checkout(self.check);
        if let Some((per_second, burst)) = self.connect_rate {
            manager = manager.rate_limit(ConnectRateLimit::shared(
                self.config.endpoint().host(),
                per_second,
                burst,
            ));
        }
        let events = Arc::clone(&manager.events);
        let lifetime = *manager.lifetime_ref();
        let reaper_rate = self.reaper_rate.unwrap_or_else(|| {
            Duration::from_secs(30).min((lifetime.jitter() / 4).max(Duration::from_millis(100)))
        });
        let inner = bb8::Pool::builder()
            .max_size(self.max_size)
            .min_idle(self.min_idle)
            // Local checks only (see `CheckOnCheckout`): a closed, expired or
            // broken connection is never handed out, at no round-trip cost.
            .test_on_check_out(true)
            // The per-connection deadline is enforced at checkout and return;
            // bb8's own max lifetime is the reaper's backstop for idle ones.
            .max_lifetime(Some(lifetime.max()))
            .idle_timeout(self.idle_timeout)
            .connection_timeout(self.connection_timeout)
            .reaper_rate(reaper_rate)
            // Connect retries are classified in the connect stack; bb8's own
            // are not, and would retry a fatal refusal until the timeout.
            .retry_connection(false)
            .build_unchecked(manager);
        Ok(DsqlPool {
            inner,
            shared: Arc::new(Shared {
                queue: Arc::new(Semaphore::new(self.max_size as usize)),
                max_size: self.max_size,
                waiting: AtomicU64::new(0),
                events,
                retry: self.retry,
                lifetime,
            }),
        })
    }
}
