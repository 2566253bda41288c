//! A reconnecting single-connection `Service<Operation<T>>`.

mod builder;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Mutex;
use tower::Service;

pub use self::builder::SessionBuilder;
use crate::connect::ConnectService;
use crate::error::Error;
use crate::lifecycle::{DsqlConnection, Lifecycle, Retirements};
use crate::operation::Operation;

/// One connection to DSQL, as a `tower::Service<Operation<T>>` that is
/// always ready and reconnects on its own: a thin user of the connection
/// [lifecycle](crate::lifecycle).
///
/// - connects lazily, through any connect service `M` (usually
///   [`connect::stack`](crate::connect::stack): token, TLS, connect retries);
/// - runs one operation at a time (a transaction needs the connection to
///   itself); concurrent calls wait their turn;
/// - replaces the connection when the lifecycle retires it: an error left
///   it unusable, it was closed, it reached its [`Lifetime`](crate::Lifetime)
///   deadline (default 55 minutes less up to 5, drawn per connection,
///   before DSQL ends the session at 60), or an operation on it was
///   abandoned midway (a timeout above: its query is cancelled);
/// - errors come back classified ([`Error::class`]) with the phase they
///   happened in and what the attempt did ([`Error::effects`]), so a retry
///   layer above can tell a safe replay from an unsafe one.
///
/// Clones share the connection.
pub struct Session<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    lifecycle: Lifecycle<M>,
    slot: Mutex<Option<DsqlConnection>>,
}

/// What a [`Session`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Connections established.
    pub connects: u64,
    /// Connect attempts that failed (after the connect service's retries).
    pub connect_failures: u64,
    /// Connections retired, by reason (the pool reports the same).
    pub retired: Retirements,
}

impl<M> Clone for Session<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> fmt::Debug for Session<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("lifecycle", &self.shared.lifecycle)
            .finish_non_exhaustive()
    }
}

impl<M> Session<M> {
    /// A session that connects with `connect`, given `config` (usually
    /// [`connect::pg_config`](crate::connect::pg_config)), with the default
    /// lifetime and [`DsqlClassifier`](crate::DsqlClassifier).
    pub fn new(connect: M, config: tokio_postgres::Config) -> Self {
        Self::builder(connect, config).build()
    }

    /// A builder to set the lifetime and the classifier.
    pub fn builder(connect: M, config: tokio_postgres::Config) -> SessionBuilder<M> {
        SessionBuilder::new(connect, config)
    }

    fn from_lifecycle(lifecycle: Lifecycle<M>) -> Self {
        Self {
            shared: Arc::new(Shared {
                lifecycle,
                slot: Mutex::new(None),
            }),
        }
    }

    /// Counters of connects and retirements.
    pub fn stats(&self) -> SessionStats {
        let lifecycle = &self.shared.lifecycle;
        SessionStats {
            connects: lifecycle.connects(),
            connect_failures: lifecycle.connect_failures(),
            retired: lifecycle.retirements(),
        }
    }

    /// Closes the current connection, if any, and waits for its socket task
    /// to end. The session reconnects if used again.
    pub async fn close(&self) {
        let connection = self.shared.slot.lock().await.take();
        if let Some(connection) = connection {
            connection.close().await;
        }
    }
}

impl<P> Session<crate::connect::ConnectStack<P>>
where
    P: dsql_auth::TokenProvider + Clone + 'static,
{
    /// A session for `config` over the standard [connect
    /// stack](crate::connect::stack), with tokens from `provider` (which
    /// must sign for `config`'s host and user, when it says which).
    pub fn from_config(config: &dsql_auth::DsqlConfig, provider: P) -> Result<Self, crate::ConnectError> {
        Ok(Self::new(
            crate::connect::stack(config, provider)?,
            crate::connect::pg_config(config),
        ))
    }
}

/// The future of [`Session`].
pub type SessionFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

impl<M: ConnectService, T: Send + 'static> Service<Operation<T>> for Session<M> {
    type Response = T;
    type Error = Error;
    type Future = SessionFuture<T>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        // One span over every attempt a retry layer above makes.
        let observation = shared.lifecycle.observe(&operation);
        Box::pin(observation.run(async move { shared.run(operation).await }))
    }
}

impl<M: ConnectService> Shared<M> {
    async fn run<T>(&self, operation: Operation<T>) -> Result<T, Error> {
        let mut slot = self.slot.lock().await;
        let kept = match slot.take() {
            Some(mut connection) => self
                .lifecycle
                .check_out(&mut connection)
                .await
                .ok()
                .map(|()| connection),
            None => None,
        };
        let mut connection = match kept {
            Some(connection) => connection,
            None => self.lifecycle.open().await?,
        };
        // Dropped midway (a timeout above), `connection` goes with the
        // future, marked in flight: its query is cancelled.
        let result = self.lifecycle.execute(&mut connection, &operation).await;
        if self.lifecycle.check_in(&connection).is_none() {
            *slot = Some(connection);
        }
        result
    }
}
