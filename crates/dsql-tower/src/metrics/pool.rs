//! A pool's metrics (`db.client.connection.*`): what any pool built on the
//! lifecycle records, whatever its implementation.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics::{Label, counter, gauge, histogram};

use crate::semconv::{attribute, metric, value};

/// The metrics of one pool, each labelled with its name
/// (`db.client.connection.pool.name`).
///
/// Give it to the pool's [`Lifecycle`](crate::lifecycle::Lifecycle)
/// ([`with_pool_metrics`](crate::lifecycle::Lifecycle::with_pool_metrics)),
/// which keeps `db.client.connection.count` by state and records
/// `create_time` and `use_time` for the connections it opens, checks out
/// and checks in; the pool records the rest with the methods below.
/// `dsql-bb8` does both.
///
/// ```
/// use std::time::Duration;
/// use dsql_tower::metrics::PoolMetrics;
///
/// let metrics = PoolMetrics::new("orders");
/// metrics.max(16);
/// let waiting = metrics.pending(); // db.client.connection.pending_requests + 1
/// metrics.waited(Duration::from_millis(3));
/// drop(waiting); // - 1
/// ```
#[derive(Clone)]
pub struct PoolMetrics {
    name: Arc<str>,
}

impl PoolMetrics {
    /// The metrics of the pool named `name`: unique in the process, few
    /// (each name is a series of its own). Its gauges and its timeouts
    /// start at zero in the recorder installed now, so that a scrape shows
    /// them before anything happened.
    pub fn new(name: impl Into<String>) -> Self {
        let metrics = Self {
            name: name.into().into(),
        };
        metrics.count(value::IDLE).increment(0);
        metrics.count(value::USED).increment(0);
        gauge!(metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS, metrics.labels()).increment(0);
        counter!(metric::DB_CLIENT_CONNECTION_TIMEOUTS, metrics.labels()).increment(0);
        metrics
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn labels(&self) -> Vec<Label> {
        vec![Label::new(
            attribute::DB_CLIENT_CONNECTION_POOL_NAME,
            Arc::clone(&self.name),
        )]
    }

    fn count(&self, state: &'static str) -> metrics::Gauge {
        let mut labels = self.labels();
        labels.push(Label::from_static_parts(
            attribute::DB_CLIENT_CONNECTION_STATE,
            state,
        ));
        gauge!(metric::DB_CLIENT_CONNECTION_COUNT, labels)
    }

    /// The most connections the pool opens (`db.client.connection.max`).
    pub fn max(&self, max: u32) {
        gauge!(metric::DB_CLIENT_CONNECTION_MAX, self.labels()).set(max);
    }

    /// A caller starts waiting for a connection
    /// (`db.client.connection.pending_requests`); it stops when the guard
    /// is dropped, however the wait ends.
    pub fn pending(&self) -> PendingRequest {
        gauge!(metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS, self.labels()).increment(1);
        PendingRequest { pool: self.clone() }
    }

    /// A checkout got its connection after `wait`
    /// (`db.client.connection.wait_time`).
    pub fn waited(&self, wait: Duration) {
        histogram!(metric::DB_CLIENT_CONNECTION_WAIT_TIME, self.labels()).record(wait.as_secs_f64());
    }

    /// A checkout timed out (`db.client.connection.timeouts`).
    pub fn timed_out(&self) {
        counter!(metric::DB_CLIENT_CONNECTION_TIMEOUTS, self.labels()).increment(1);
    }

    /// A connection was opened in `took` (`db.client.connection.create_time`).
    pub(crate) fn created(&self, took: Duration) {
        histogram!(metric::DB_CLIENT_CONNECTION_CREATE_TIME, self.labels()).record(took.as_secs_f64());
    }

    /// The place of a connection just opened: idle until checked out.
    pub(crate) fn slot(&self) -> PoolSlot {
        self.count(value::IDLE).increment(1);
        PoolSlot {
            pool: self.clone(),
            used_since: Mutex::new(None),
        }
    }
}

impl fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PoolMetrics").field(&self.name).finish()
    }
}

/// A caller waiting for a connection; see [`PoolMetrics::pending`].
#[derive(Debug)]
#[must_use = "the wait ends when the guard is dropped"]
pub struct PendingRequest {
    pool: PoolMetrics,
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        gauge!(metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS, self.pool.labels()).decrement(1);
    }
}

/// A pooled connection's place in `db.client.connection.count`: idle, or
/// used since its checkout; it leaves the count when the connection is
/// dropped, however (returned broken, reaped idle, refused at checkout).
pub(crate) struct PoolSlot {
    pool: PoolMetrics,
    used_since: Mutex<Option<Instant>>,
}

impl PoolSlot {
    fn used_since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.used_since.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checked out: idle → used.
    pub(crate) fn check_out(&self) {
        let mut since = self.used_since();
        if since.is_none() {
            *since = Some(Instant::now());
            self.pool.count(value::IDLE).decrement(1);
            self.pool.count(value::USED).increment(1);
        }
    }

    /// Returned: used → idle, and its use time.
    pub(crate) fn check_in(&self) {
        if let Some(since) = self.used_since().take() {
            histogram!(metric::DB_CLIENT_CONNECTION_USE_TIME, self.pool.labels())
                .record(since.elapsed().as_secs_f64());
            self.pool.count(value::USED).decrement(1);
            self.pool.count(value::IDLE).increment(1);
        }
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        let used = self.used_since().is_some();
        self.pool
            .count(if used { value::USED } else { value::IDLE })
            .decrement(1);
    }
}

impl fmt::Debug for PoolSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolSlot")
            .field("pool", &self.pool.name)
            .field("used", &self.used_since().is_some())
            .finish()
    }
}
