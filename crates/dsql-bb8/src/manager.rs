//! The bb8 `ManageConnection`: connects through a `dsql-tower` connect stack.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use dsql_tower::connect::ConnectService;
use dsql_tower::{BoxError, Classify, Error, ErrorClass, Lifetime, PgConnection, Phase};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::rate::ConnectRateLimit;

/// How a connection is checked when it is checked out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOnCheckout {
    /// Local checks only, no I/O: the client is open, its lifetime deadline
    /// has not passed, no operation marked it broken. Dead connections the
    /// client has not noticed yet are caught by error classification on use.
    #[default]
    Local,
    /// The local checks, then a round trip (`Sync`) to the server: one
    /// network round trip per checkout.
    RoundTrip,
}

/// A pooled connection: the connection, when it must be replaced, and
/// whether an operation found it unusable.
///
/// Dereferences to [`PgConnection`] (and through it to
/// `tokio_postgres::Client`).
pub struct DsqlConnection {
    connection: PgConnection,
    deadline: Instant,
    broken: bool,
    tasks: Arc<Tasks>,
}

impl DsqlConnection {
    /// When the pool replaces this connection (its jittered lifetime).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Marks the connection unusable: it is dropped when returned to the pool.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether an operation marked the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn retirement(&self, now: Instant) -> Option<Retirement> {
        if self.broken {
            Some(Retirement::Broken)
        } else if self.connection.is_closed() {
            Some(Retirement::Closed)
        } else if now >= self.deadline {
            Some(Retirement::Lifetime)
        } else {
            None
        }
    }
}

impl Deref for DsqlConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.connection
    }
}

impl DerefMut for DsqlConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.connection
    }
}

impl fmt::Debug for DsqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlConnection")
            .field("connection", &self.connection)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Drop for DsqlConnection {
    fn drop(&mut self) {
        // The socket task ends once the client (dropped right after this)
        // is gone; keep its handle so that closing the pool can wait for it.
        if let Some(task) = self.connection.take_task() {
            self.tasks.keep(task);
        }
    }
}

/// Why a connection left the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retirement {
    Lifetime,
    Closed,
    Broken,
}

/// Socket tasks of dropped connections, until they end.
#[derive(Debug, Default)]
pub(crate) struct Tasks(Mutex<Vec<JoinHandle<()>>>);

impl Tasks {
    fn keep(&self, task: JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }

    pub(crate) async fn join_all(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Counters and signals shared by the manager and the pool.
#[derive(Debug)]
pub(crate) struct Events {
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) retired_lifetime: AtomicU64,
    pub(crate) retired_closed: AtomicU64,
    pub(crate) retired_broken: AtomicU64,
    pub(crate) closed: AtomicBool,
    /// The last connect error, and a signal each time a fatal one happens.
    pub(crate) last_error: Mutex<Option<Error>>,
    pub(crate) fatal: watch::Sender<u64>,
    pub(crate) tasks: Arc<Tasks>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            retired_lifetime: AtomicU64::new(0),
            retired_closed: AtomicU64::new(0),
            retired_broken: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            last_error: Mutex::new(None),
            fatal: watch::Sender::new(0),
            tasks: Arc::default(),
        }
    }
}

impl Events {
    fn retired(&self, why: Retirement) {
        let counter = match why {
            Retirement::Lifetime => &self.retired_lifetime,
            Retirement::Closed => &self.retired_closed,
            Retirement::Broken => &self.retired_broken,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(reason = ?why, "connection retired from the pool");
    }

    pub(crate) fn last_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A bb8 [`ManageConnection`](bb8::ManageConnection) for DSQL: each connect
/// goes through a connect service `M` (usually
/// [`dsql_tower::connect::stack`]: a fresh or cached token, TLS, classified
/// connect retries), under a connect rate limit shared per endpoint.
///
/// Checks are local (no I/O): a connection is invalid once its client is
/// closed, its jittered lifetime deadline has passed, or an operation marked
/// it broken.
pub struct DsqlConnectionManager<M> {
    connect: M,
    config: tokio_postgres::Config,
    lifetime: Lifetime,
    rate_limit: Option<Arc<ConnectRateLimit>>,
    check: CheckOnCheckout,
    classifier: Arc<dyn Classify>,
    pub(crate) events: Arc<Events>,
}

impl<M> DsqlConnectionManager<M> {
    /// A manager connecting with `connect` given `config`.
    pub fn new(connect: M, config: tokio_postgres::Config) -> Self {
        Self {
            connect,
            config,
            lifetime: Lifetime::default(),
            rate_limit: None,
            check: CheckOnCheckout::Local,
            classifier: Arc::new(dsql_tower::DsqlClassifier),
            events: Arc::default(),
        }
    }

    /// How long connections live (jittered per connection).
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Spaces connects with `limit`.
    pub fn rate_limit(mut self, limit: Arc<ConnectRateLimit>) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// How checkouts are checked.
    pub fn check_on_checkout(mut self, check: CheckOnCheckout) -> Self {
        self.check = check;
        self
    }

    /// Classifies connect errors with `classifier`.
    pub fn classifier(mut self, classifier: Arc<dyn Classify>) -> Self {
        self.classifier = classifier;
        self
    }

    pub(crate) fn lifetime_ref(&self) -> &Lifetime {
        &self.lifetime
    }

    fn connect_error(&self, error: BoxError) -> Error {
        let error = Error::new(self.classifier.classify(&*error), Phase::Connect, error);
        self.events.connect_failures.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(class = %error.class(), error = %error, "pool connect failed");
        error
    }

    /// Keeps the error as the pool's last one, signalling waiters when it is
    /// fatal.
    fn record_failure(&self, error: Error) -> Error {
        *self
            .events
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        if error.class() == ErrorClass::Fatal {
            self.events.fatal.send_modify(|n| *n += 1);
        }
        error
    }
}

impl<M> fmt::Debug for DsqlConnectionManager<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlConnectionManager")
            .field("config", &self.config)
            .field("lifetime", &self.lifetime)
            .field("rate_limit", &self.rate_limit.as_ref().map(|l| l.per_second()))
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// The pool was closed.
#[derive(Debug, thiserror::Error)]
#[error("the DSQL pool is closed")]
pub struct PoolClosed;

impl<M: ConnectService> bb8::ManageConnection for DsqlConnectionManager<M> {
    type Connection = DsqlConnection;
    type Error = Error;

    async fn connect(&self) -> Result<DsqlConnection, Error> {
        if self.events.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorClass::Fatal, Phase::Connect, PoolClosed));
        }
        if let Some(limit) = &self.rate_limit
            && !limit.acquire().await.is_zero()
        {
            self.events.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let mut connect = self.connect.clone();
        let ready = connect.ready().await.map_err(|e| self.connect_error(e.into()));
        let connection = match ready {
            Ok(ready) => ready
                .call(self.config.clone())
                .await
                .map_err(|e| self.connect_error(e.into())),
            Err(error) => Err(error),
        }
        .map_err(|error| self.record_failure(error))?;
        self.events.connects.fetch_add(1, Ordering::Relaxed);
        Ok(DsqlConnection {
            deadline: self.lifetime.deadline(connection.established_at()),
            connection,
            broken: false,
            tasks: Arc::clone(&self.events.tasks),
        })
    }

    async fn is_valid(&self, connection: &mut DsqlConnection) -> Result<(), Error> {
        if let Some(why) = connection.retirement(Instant::now()) {
            self.events.retired(why);
            return Err(Error::new(
                ErrorClass::Reconnect,
                Phase::Connect,
                format!("connection retired at checkout: {why:?}"),
            ));
        }
        if self.check == CheckOnCheckout::RoundTrip
            && let Err(error) = connection.check_connection().await
        {
            self.events.retired(Retirement::Closed);
            return Err(Error::new(ErrorClass::Reconnect, Phase::Connect, error));
        }
        Ok(())
    }

    fn has_broken(&self, connection: &mut DsqlConnection) -> bool {
        match connection.retirement(Instant::now()) {
            Some(why) => {
                self.events.retired(why);
                true
            }
            None => false,
        }
    }
}
