//! The one connection lifecycle that [`Session`](crate::Session) and the
//! pool (`dsql-bb8`) are thin users of:
//!
//! 1. [`open`](Lifecycle::open): connect through any
//!    [`ConnectService`], classify a failure once, and give the connection
//!    its jittered deadline ([`Lifetime`]);
//! 2. [`check_out`](Lifecycle::check_out): hand a connection out only if it
//!    is open, within its lifetime, not broken, and at rest (outside a
//!    transaction, nothing outstanding: a connection left mid-transaction
//!    is rolled back, or retired);
//! 3. [`execute`](Lifecycle::execute): run one [`Operation`], record what
//!    it did that may have taken effect, classify a failure once, and mark
//!    the connection broken when the failure leaves it unusable; an
//!    operation dropped midway leaves its connection marked abandoned (its
//!    query is cancelled and the connection dropped);
//! 4. [`check_in`](Lifecycle::check_in): decide whether it is kept.
//!
//! Every retirement has one [`Retirement`] reason, counted in
//! [`Retirements`], which `SessionStats` and the pool's state both report.
//!
//! [`observe`](Lifecycle::observe) gives each operation one database
//! client span over all its attempts; with the `metrics` feature the
//! lifecycle also records operation durations, connects and retirements,
//! and, for a pool (`metrics::PoolMetrics`), its
//! connections by state, create and use times.

mod connection;
mod execute;
mod lifetime;
mod observe;
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower::ServiceExt;

pub use self::connection::{DsqlConnection, Tasks};
pub use self::lifetime::{DSQL_SESSION_LIMIT, InvalidLifetime, Lifetime};
pub use self::observe::Observation;
use self::stats::Counters;
pub use self::stats::{Retirement, Retirements};
use crate::classify::SharedClassifier;
use crate::connect::{ConnectService, PgConnection, TransactionStatus};
use crate::error::{BoxError, Error, Phase};
use crate::operation::Operation;
use crate::telemetry::Peer;

/// How long a connection that is not provably at rest may take to answer
/// the round trip that settles it, before it is retired instead.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens, checks, runs and retires connections made by a connect service
/// `M`; see the [module](self).
pub struct Lifecycle<M> {
    connect: M,
    config: tokio_postgres::Config,
    lifetime: Lifetime,
    classifier: SharedClassifier,
    counters: Arc<Counters>,
    /// The server, as spans and metrics name it.
    peer: Arc<Peer>,
    #[cfg(feature = "metrics")]
    pool: Option<crate::metrics::PoolMetrics>,
}

impl<M: Clone> Clone for Lifecycle<M> {
    fn clone(&self) -> Self {
        Self {
            connect: self.connect.clone(),
            config: self.config.clone(),
            lifetime: self.lifetime,
            classifier: self.classifier.clone(),
            counters: Arc::clone(&self.counters),
            peer: Arc::clone(&self.peer),
            #[cfg(feature = "metrics")]
            pool: self.pool.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Lifecycle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("config", &self.config)
            .field("lifetime", &self.lifetime)
            .field("connects", &self.connects())
            .field("retired", &self.retirements())
            .finish_non_exhaustive()
    }
}

impl<M> Lifecycle<M> {
    /// Connections made with `connect` given `config`, living `lifetime`,
    /// their failures classified by `classifier`.
    pub fn new(
        connect: M,
        config: tokio_postgres::Config,
        lifetime: Lifetime,
        classifier: SharedClassifier,
    ) -> Self {
        // The recorder installed now learns the units and descriptions.
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        Self {
            connect,
            peer: Peer::of(&config),
            config,
            lifetime,
            classifier,
            counters: Arc::default(),
            #[cfg(feature = "metrics")]
            pool: None,
        }
    }

    /// Records the pool metrics of the connections it opens
    /// (`db.client.connection.count` by state, `create_time`, `use_time`)
    /// into `metrics`: for the lifecycle of a pool, whose checkouts are
    /// [`check_out`](Self::check_out) and returns [`check_in`](Self::check_in).
    #[cfg(feature = "metrics")]
    pub fn with_pool_metrics(mut self, metrics: crate::metrics::PoolMetrics) -> Self {
        self.pool = Some(metrics);
        self
    }

    /// The lifetime policy.
    pub fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// The classifier.
    pub fn classifier(&self) -> &SharedClassifier {
        &self.classifier
    }

    /// The connect configuration.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Connections opened so far.
    pub fn connects(&self) -> u64 {
        self.counters.connects()
    }

    /// Connect attempts that failed (after the connect service's retries).
    pub fn connect_failures(&self) -> u64 {
        self.counters.connect_failures()
    }

    /// Connections retired so far, by reason.
    pub fn retirements(&self) -> Retirements {
        self.counters.retirements()
    }

    /// Counts a retirement decided outside the lifecycle (a pool closing).
    pub fn retire(&self, why: Retirement) {
        self.counters.retired(why);
        #[cfg(feature = "metrics")]
        crate::metrics::retired(&self.peer, why);
    }

    /// Whether a connection coming back can be kept; counts the retirement
    /// if not. Local, no I/O.
    pub fn check_in(&self, connection: &DsqlConnection) -> Option<Retirement> {
        #[cfg(feature = "metrics")]
        if let Some(slot) = connection.slot() {
            slot.check_in();
        }
        let why = connection.retirement(Instant::now());
        if let Some(why) = why {
            self.retire(why);
        }
        why
    }

    /// Prepares a connection to be handed out: `Ok` if it may be used now;
    /// otherwise the reason it must be retired (counted). A connection at
    /// rest costs nothing; one that is not (a reply outstanding, a
    /// transaction left open or failed) costs a round trip that settles it,
    /// and a `ROLLBACK` if it is still in a transaction.
    pub async fn check_out(&self, connection: &mut DsqlConnection) -> Result<(), Retirement> {
        let result = match connection.retirement(Instant::now()) {
            Some(why) => Err(why),
            None if connection.pg().is_idle() => Ok(()),
            None => settle(connection).await,
        };
        if let Err(why) = result {
            self.retire(why);
        }
        #[cfg(feature = "metrics")]
        if let (Ok(()), Some(slot)) = (result, connection.slot()) {
            slot.check_out();
        }
        result
    }

    /// Runs `operation` once on `connection`. Records in the operation what
    /// the attempt did that may have taken effect ([`Effects`](crate::Effects),
    /// observed on the wire and from whether `COMMIT` was answered, never
    /// inferred from the class), classifies a failure once, and marks the
    /// connection broken when the failure leaves it unusable. A lost answer
    /// (an unanswered autocommit statement or `COMMIT`) makes the error
    /// [`OutcomeUnknown`](crate::ErrorClass::OutcomeUnknown) unless the
    /// classifier calls it fatal. If the returned future is dropped midway,
    /// the connection stays marked in flight: it is retired as abandoned,
    /// and its query cancelled.
    pub async fn execute<T>(
        &self,
        connection: &mut DsqlConnection,
        operation: &Operation<T>,
    ) -> Result<T, Error> {
        execute::execute(connection, operation, &self.classifier).await
    }
}

impl<M: ConnectService> Lifecycle<M> {
    /// Opens a connection: connects through the connect service, classifies
    /// a failure once ([`Phase::Connect`]), and gives the connection its
    /// deadline.
    pub async fn open(&self) -> Result<DsqlConnection, Error> {
        #[cfg(feature = "metrics")]
        let started = Instant::now();
        let mut connect = self.connect.clone();
        let connected: Result<PgConnection, BoxError> = match connect.ready().await.map_err(Into::into) {
            Ok(connect) => connect.call(self.config.clone()).await.map_err(Into::into),
            Err(error) => Err(error),
        };
        match connected {
            Ok(pg) => {
                self.counters.connected();
                #[cfg(feature = "metrics")]
                crate::metrics::connected(&self.peer, pg.endpoint_host(), None);
                let deadline = self.lifetime.deadline(pg.established_at());
                #[cfg_attr(not(feature = "metrics"), expect(unused_mut))]
                let mut connection = DsqlConnection::new(pg, deadline);
                #[cfg(feature = "metrics")]
                if let Some(pool) = &self.pool {
                    pool.created(started.elapsed());
                    connection.set_slot(pool.slot());
                }
                Ok(connection)
            }
            Err(error) => {
                self.counters.connect_failed();
                let error = crate::classify::classify(&self.classifier, error, Phase::Connect);
                tracing::debug!(class = %error.class(), error = %error.report(), "connect failed");
                #[cfg(feature = "metrics")]
                crate::metrics::connected(&self.peer, None, Some(&error));
                Err(error)
            }
        }
    }
}

/// One round trip drains every earlier reply; then a transaction still
/// open is rolled back.
async fn settle(connection: &mut DsqlConnection) -> Result<(), Retirement> {
    let settled = tokio::time::timeout(SETTLE_TIMEOUT, async {
        connection.batch_execute("").await?;
        connection.pg().wire().resynchronized();
        if connection.pg().transaction_status() != TransactionStatus::Idle {
            tracing::debug!("connection handed back inside a transaction; rolling it back");
            connection.batch_execute("ROLLBACK").await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    })
    .await;
    match settled {
        Ok(Ok(())) if connection.pg().is_idle() => Ok(()),
        Ok(Ok(())) => Err(Retirement::NotIdle),
        Ok(Err(_)) => Err(Retirement::Closed),
        Err(_elapsed) => {
            connection.pg().cancel_in_background();
            Err(Retirement::NotIdle)
        }
    }
}
