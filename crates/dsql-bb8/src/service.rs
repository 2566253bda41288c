//! The pool as a `tower::Service<Operation<T>>`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use dsql_tower::connect::ConnectService;
use dsql_tower::{Error, Operation};
use tower::Service;

use crate::pool::DsqlPool;

/// A [`DsqlPool`] as a `tower::Service<Operation<T>>`: each call checks out
/// a connection and runs the operation once through the connection
/// lifecycle, which retires the connection when the error leaves it
/// unusable.
///
/// An attempt that fails with a conflict the retry layer may replay keeps
/// its connection in the operation ([`Operation::park`]) through the
/// backoff, and the replay runs on it without a checkout: a connection
/// given back during the backoff would go to another transaction on the
/// same rows, and the backoff would thin out nothing. If no replay comes,
/// the connection returns to the pool when the retry layer drops the
/// request. See
/// [`DsqlPoolBuilder::keep_connection_through_conflict_backoff`](crate::DsqlPoolBuilder::keep_connection_through_conflict_backoff).
///
/// Errors come classified (by the pool's classifier) with their phase and
/// what the attempt did, so `RetryLayer` (with
/// [`RetryPolicy`](dsql_tower::retry::RetryPolicy)), timeouts and
/// concurrency limits stack on top. An operation dropped midway (a timeout
/// above) gets its query cancelled and its connection dropped, so a
/// connection never returns to the pool inside an open transaction.
pub struct PoolService<M: ConnectService> {
    pool: DsqlPool<M>,
}

impl<M: ConnectService> Clone for PoolService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<M: ConnectService> fmt::Debug for PoolService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolService").field("pool", &self.pool).finish()
    }
}

impl<M: ConnectService> PoolService<M> {
    /// The service of `pool`.
    pub fn new(pool: DsqlPool<M>) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn get_ref(&self) -> &DsqlPool<M> {
        &self.pool
    }

    /// Unwraps the pool.
    pub fn into_inner(self) -> DsqlPool<M> {
        self.pool
    }
}

/// The future of [`PoolService`].
pub type PoolFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

impl<M, T> Service<Operation<T>> for PoolService<M>
where
    M: ConnectService,
    T: Send + 'static,
{
    type Response = T;
    type Error = Error;
    type Future = PoolFuture<T>;

    /// Always ready: checkouts wait in the pool's fair queue inside the call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let pool = self.pool.clone();
        // One span (and duration) over every attempt a retry layer above
        // makes, the waits for a connection included.
        let observation = pool.lifecycle_ref().observe(&operation);
        Box::pin(observation.run(async move {
            // A replay after a conflict takes back the connection its
            // failed attempt parked, instead of queueing for another.
            let mut connection = match pool.take_parked(&operation).await {
                Some(connection) => connection,
                None => pool.get().await?,
            };
            let result = pool.lifecycle_ref().execute(&mut connection, &operation).await;
            if let Err(error) = &result {
                pool.park(&operation, error, connection);
            }
            result
        }))
    }
}
