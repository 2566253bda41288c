//! The pool: bb8 under the connection lifecycle, a fair queue with one
//! deadline, and typed connect errors.

mod builder;
mod checkout;
mod error;
mod park;
mod state;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dsql_auth::SharedTokenProvider;
use dsql_tower::connect::{ConnectRateLimit, ConnectService, ConnectStack};
use dsql_tower::failover::EndpointSnapshot;
use dsql_tower::lifecycle::Lifecycle;
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{BoxError, BoxFuture, Error, Lifetime, Operation, OperationExt};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

pub use self::builder::{DsqlPoolBuilder, defaults};
pub use self::checkout::PooledConnection;
pub use self::error::{CheckoutTimeout, PoolClosed, PoolConfigError};
pub use self::state::PoolState;
use crate::events::Events;
use crate::manager::DsqlConnectionManager;
use crate::service::PoolService;

/// A pool of DSQL connections (bb8 underneath).
///
/// - Connections come from `dsql-tower`'s connection lifecycle: each
///   connect gets a token from the pool's provider, over verified TLS, with
///   classified connect retries paced by a connect rate limit shared per
///   endpoint (`dsql-tower`'s connect stack).
/// - Each connection lives until its own jittered deadline (default 55
///   minutes less up to 5), so a pool created at once does not reconnect at
///   once; a connection past its deadline, closed, marked broken, abandoned
///   by an operation, or left inside a transaction is never handed out (a
///   transaction left open is rolled back first).
/// - Checkouts wait in a FIFO queue: a task that returns a connection and
///   asks again does not overtake tasks already waiting (bb8 alone lets it).
///   One deadline (`connection_timeout`) covers the whole wait.
/// - A fatal connect error (the role does not match the token's action,
///   TLS verification) is returned at once, typed.
/// - [`transaction`](Self::transaction) and [`run`](Self::run) replay an
///   operation by error class (conflicts, lost connections) when nothing it
///   did can have taken effect, and [`service`](Self::service) is the pool
///   as a `tower::Service`.
///
/// Clones share the pool.
pub struct DsqlPool<M: ConnectService = ConnectStack<SharedTokenProvider>> {
    inner: bb8::Pool<DsqlConnectionManager<M>>,
    /// The manager's lifecycle (its clone: they share their counters).
    lifecycle: Arc<Lifecycle<M>>,
    shared: Arc<Shared>,
}

type EndpointSnapshots = Box<dyn Fn() -> Vec<EndpointSnapshot> + Send + Sync>;

struct Shared {
    queue: Arc<Semaphore>,
    max_size: u32,
    connection_timeout: Duration,
    waiting: AtomicU64,
    timeouts: AtomicU64,
    events: Arc<Events>,
    retry: RetryPolicy,
    /// Whether a conflicted operation keeps its connection through its
    /// backoff (see `park`).
    keep_through_backoff: bool,
    rate_limit: Option<Arc<ConnectRateLimit>>,
    /// The endpoints' snapshots, for a pool over a [`Failover`].
    endpoints: Option<EndpointSnapshots>,
    #[cfg(feature = "metrics")]
    metrics: dsql_tower::metrics::PoolMetrics,
}

impl<M: ConnectService> Clone for DsqlPool<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            lifecycle: Arc::clone(&self.lifecycle),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: ConnectService> fmt::Debug for DsqlPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlPool")
            .field("max_size", &self.shared.max_size)
            .field("lifetime", &self.lifetime())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<M: ConnectService> DsqlPool<M> {
    /// Runs `operation` on a pooled connection, replaying it with the
    /// pool's retry policy: conflicts and lost connections when nothing the
    /// failed attempt did can have taken effect, anything retryable when
    /// the operation is idempotent.
    ///
    /// On failure the error tells the class, the phase, how many attempts
    /// were made ([`Error::attempts`]), why it was not replayed
    /// ([`Error::not_replayed`]) and the last attempt's error.
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
    /// # async fn example(pool: dsql_bb8::DsqlPool) -> Result<(), dsql_tower::Error> {
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
    /// `RetryLayer`, timeouts and concurrency limits.
    pub fn service(&self) -> PoolService<M> {
        PoolService::new(self.clone())
    }

    pub(crate) fn lifecycle_ref(&self) -> &Lifecycle<M> {
        &self.lifecycle
    }

    /// A snapshot of the pool's size and counters.
    pub fn state(&self) -> PoolState {
        let bb8 = self.inner.state();
        let lifecycle = &self.lifecycle;
        PoolState {
            connections: bb8.connections,
            idle: bb8.idle_connections,
            waiting: self.shared.waiting.load(Ordering::Relaxed),
            connects: lifecycle.connects(),
            connect_failures: lifecycle.connect_failures(),
            rate_limited: self.shared.rate_limit.as_ref().map_or(0, |limit| limit.waits()),
            timeouts: self.shared.timeouts.load(Ordering::Relaxed),
            retired: lifecycle.retirements(),
            endpoints: self
                .shared
                .endpoints
                .as_ref()
                .map_or_else(Vec::new, |snapshot| snapshot()),
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
        self.lifecycle.lifetime()
    }

    /// The pool's metrics (feature `metrics`), named
    /// [`pool_name`](DsqlPoolBuilder::pool_name).
    #[cfg(feature = "metrics")]
    pub fn metrics(&self) -> &dsql_tower::metrics::PoolMetrics {
        &self.shared.metrics
    }
}
