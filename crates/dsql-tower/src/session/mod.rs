//! A reconnecting single-connection `Service<Operation<T>>`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::Mutex;
use tower::{Service, ServiceExt};
use tracing::Instrument;

use crate::classify::{Classify, DsqlClassifier};
use crate::connect::PgConnection;
use crate::error::{BoxError, Error, Phase};
use crate::lifetime::Lifetime;
use crate::operation::Operation;

/// One connection to DSQL, as a `tower::Service<Operation<T>>` that is
/// always ready and reconnects on its own.
///
/// - connects lazily, through any connect service `M` (usually
///   [`connect::stack`](crate::connect::stack): token, TLS, connect retries);
/// - runs one operation at a time (a transaction needs the connection to
///   itself); concurrent calls wait their turn;
/// - drops the connection after an error that leaves it unusable
///   ([`ErrorClass::discards_connection`](crate::ErrorClass::discards_connection)) and never runs an operation on a
///   closed client;
/// - replaces the connection between operations once it reaches its
///   [`Lifetime`] deadline (default 55 minutes less up to 5, drawn per
///   connection), before DSQL ends the session at 60;
/// - if an operation's future is dropped midway (a timeout above), the
///   connection is discarded and a cancel request is sent, so it never
///   comes back inside an open transaction;
/// - errors come back classified ([`Error::class`]) with the phase they
///   happened in, so a retry layer above can tell a safe replay from an
///   unknown outcome.
///
/// Clones share the connection.
pub struct Session<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    connect: M,
    config: tokio_postgres::Config,
    lifetime: Lifetime,
    classifier: Arc<dyn Classify>,
    slot: Mutex<Option<Live>>,
    stats: Counters,
}

struct Live {
    connection: PgConnection,
    deadline: Instant,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    recycled: AtomicU64,
    discarded: AtomicU64,
}

/// What a [`Session`] has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Connections established.
    pub connects: u64,
    /// Connections replaced because they reached their lifetime deadline.
    pub recycled: u64,
    /// Connections dropped because they were closed or an error made them
    /// unusable.
    pub discarded: u64,
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
            .field("config", &self.shared.config)
            .field("lifetime", &self.shared.lifetime)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<M> Session<M> {
    /// A session that connects with `connect`, given `config` (usually
    /// [`connect::pg_config`](crate::connect::pg_config)), with the default
    /// lifetime and [`DsqlClassifier`].
    pub fn new(connect: M, config: tokio_postgres::Config) -> Self {
        Self::builder(connect, config).build()
    }

    /// A builder to set the lifetime and the classifier.
    pub fn builder(connect: M, config: tokio_postgres::Config) -> SessionBuilder<M> {
        SessionBuilder {
            connect,
            config,
            lifetime: Lifetime::default(),
            classifier: Arc::new(DsqlClassifier),
        }
    }

    /// Counters of connects, recycles and discards.
    pub fn stats(&self) -> SessionStats {
        let stats = &self.shared.stats;
        SessionStats {
            connects: stats.connects.load(Ordering::Relaxed),
            recycled: stats.recycled.load(Ordering::Relaxed),
            discarded: stats.discarded.load(Ordering::Relaxed),
        }
    }

    /// Closes the current connection, if any, and waits for its socket task
    /// to end. The session reconnects if used again.
    pub async fn close(&self) {
        let live = self.shared.slot.lock().await.take();
        if let Some(live) = live {
            live.connection.close().await;
        }
    }
}

impl<P> Session<crate::connect::ConnectStack<P>>
where
    P: dsql_auth::TokenProvider + Clone + 'static,
{
    /// A session for `config` over the standard [connect
    /// stack](crate::connect::stack), with tokens from `provider`.
    pub fn from_config(config: &dsql_auth::DsqlConfig, provider: P) -> Result<Self, crate::ConnectError> {
        Ok(Self::new(
            crate::connect::stack(config, provider)?,
            crate::connect::pg_config(config),
        ))
    }
}

/// Builds a [`Session`].
pub struct SessionBuilder<M> {
    connect: M,
    config: tokio_postgres::Config,
    lifetime: Lifetime,
    classifier: Arc<dyn Classify>,
}

impl<M> SessionBuilder<M> {
    /// How long a connection is used before it is replaced.
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Classifies errors with `classifier` instead of [`DsqlClassifier`].
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// Builds the session; nothing is connected yet.
    pub fn build(self) -> Session<M> {
        Session {
            shared: Arc::new(Shared {
                connect: self.connect,
                config: self.config,
                lifetime: self.lifetime,
                classifier: self.classifier,
                slot: Mutex::new(None),
                stats: Counters::default(),
            }),
        }
    }
}

impl<M> fmt::Debug for SessionBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("config", &self.config)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// The future of [`Session`].
pub type SessionFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

impl<M, T> Service<Operation<T>> for Session<M>
where
    M: Service<tokio_postgres::Config, Response = PgConnection> + Clone + Send + Sync + 'static,
    M::Error: Into<BoxError>,
    M::Future: Send,
    T: Send + 'static,
{
    type Response = T;
    type Error = Error;
    type Future = SessionFuture<T>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, operation: Operation<T>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let span = tracing::debug_span!(
            "dsql.operation",
            name = %operation.name(),
            idempotent = operation.is_idempotent(),
        );
        Box::pin(async move { shared.run(operation).await }.instrument(span))
    }
}

impl<M> Shared<M>
where
    M: Service<tokio_postgres::Config, Response = PgConnection> + Clone + Send + Sync + 'static,
    M::Error: Into<BoxError>,
    M::Future: Send,
{
    async fn run<T>(&self, operation: Operation<T>) -> Result<T, Error> {
        let mut slot = self.slot.lock().await;
        let live = match slot.take() {
            Some(live) if !live.connection.is_closed() && Instant::now() < live.deadline => live,
            previous => {
                if let Some(previous) = previous {
                    self.retire(previous);
                }
                self.connect().await?
            }
        };
        // Dropped midway (a timeout above), the guard discards the connection.
        let mut guard = Abandoned(Some(live));
        let result = operation.execute(guard.client_mut(), &*self.classifier).await;
        let live = guard.keep();
        match result {
            Ok(value) => {
                *slot = Some(live);
                Ok(value)
            }
            Err(error) => {
                if error.class().discards_connection() || live.connection.is_closed() {
                    self.stats.discarded.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(class = %error.class(), "connection discarded after an error");
                } else {
                    *slot = Some(live);
                }
                Err(error)
            }
        }
    }

    fn retire(&self, previous: Live) {
        if previous.connection.is_closed() {
            self.stats.discarded.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("connection was closed; reconnecting");
        } else {
            self.stats.recycled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("connection reached its lifetime; reconnecting");
        }
    }

    async fn connect(&self) -> Result<Live, Error> {
        let mut connect = self.connect.clone();
        let ready = connect
            .ready()
            .await
            .map_err(|error| self.connect_error(error.into()));
        let connection = ready?
            .call(self.config.clone())
            .await
            .map_err(|error| self.connect_error(error.into()))?;
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Live {
            deadline: self.lifetime.deadline(connection.established_at()),
            connection,
        })
    }
}

impl<M> Shared<M> {
    fn connect_error(&self, error: BoxError) -> Error {
        Error::new(self.classifier.classify(&*error), Phase::Connect, error)
    }
}

/// Holds the connection while an operation runs; if the operation's future
/// is dropped, the connection is cancelled and dropped with it.
struct Abandoned(Option<Live>);

impl Abandoned {
    fn client_mut(&mut self) -> &mut tokio_postgres::Client {
        self.0
            .as_mut()
            .map(|live| live.connection.client_mut())
            .expect("the connection is held until keep()")
    }

    fn keep(mut self) -> Live {
        self.0.take().expect("keep() is called once")
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(live) = self.0.take() {
            tracing::debug!("operation abandoned midway; cancelling and discarding its connection");
            live.connection.cancel_in_background();
        }
    }
}
