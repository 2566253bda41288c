//! The pool as a `tower::Service<Operation<T>>`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use dsql_tower::connect::ConnectService;
use dsql_tower::{Classify, DsqlClassifier, Error, Operation};
use tower::Service;
use tracing::Instrument;

use crate::pool::{DsqlPool, PooledConnection};

/// A [`DsqlPool`] as a `tower::Service<Operation<T>>`: each call checks out
/// a connection, runs the operation once, and returns the connection, or
/// drops it when the error leaves it unusable.
///
/// Errors come classified with their phase, so `RetryLayer` (with
/// [`RetryPolicy`](dsql_tower::retry::RetryPolicy)), `ClassifyLayer`,
/// timeouts and concurrency limits stack on top. An operation dropped midway
/// (a timeout above) gets its query cancelled and its connection dropped, so
/// a connection never returns to the pool inside an open transaction.
pub struct PoolService<M: ConnectService> {
    pool: DsqlPool<M>,
    classifier: Arc<dyn Classify>,
}

impl<M: ConnectService> Clone for PoolService<M> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            classifier: Arc::clone(&self.classifier),
        }
    }
}

impl<M: ConnectService> fmt::Debug for PoolService<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolService")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<M: ConnectService> PoolService<M> {
    /// The service of `pool`, classifying with [`DsqlClassifier`].
    pub fn new(pool: DsqlPool<M>) -> Self {
        Self {
            pool,
            classifier: Arc::new(DsqlClassifier),
        }
    }

    /// Classifies errors with `classifier` instead.
    pub fn with_classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = Arc::new(classifier);
        self
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
        let classifier = Arc::clone(&self.classifier);
        let span = tracing::debug_span!(
            "dsql.operation",
            name = %operation.name(),
            idempotent = operation.is_idempotent(),
        );
        Box::pin(
            async move {
                let connection = pool.get().await?;
                let mut guard = Abandoned(Some(connection));
                let Some(connection) = guard.0.as_mut() else {
                    unreachable!("the guard holds the connection until the end of the operation")
                };
                let result = operation.execute(connection.client_mut(), &*classifier).await;
                if let Err(error) = &result
                    && (error.class().discards_connection() || connection.is_closed())
                {
                    connection.mark_broken();
                }
                guard.0 = None;
                result
            }
            .instrument(span),
        )
    }
}

/// Holds the checked-out connection while an operation runs; if the
/// operation's future is dropped midway, the query is cancelled and the
/// connection marked broken, so the pool drops it instead of reusing it.
struct Abandoned<M>(Option<PooledConnection<M>>)
where
    M: ConnectService;

impl<M> Drop for Abandoned<M>
where
    M: ConnectService,
{
    fn drop(&mut self) {
        if let Some(mut connection) = self.0.take() {
            tracing::debug!("operation abandoned midway; cancelling and discarding its connection");
            connection.cancel_in_background();
            connection.mark_broken();
        }
    }
}
