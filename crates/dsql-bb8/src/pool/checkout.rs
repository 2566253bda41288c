//! Checking out: a fair queue, one deadline over the whole wait, fatal
//! connect errors at once.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dsql_tower::connect::ConnectService;
use dsql_tower::{DsqlConnection, Error, ErrorClass, Phase};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{CheckoutTimeout, DsqlPool, PoolClosed, Shared};
use crate::manager::DsqlConnectionManager;

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

impl<M: ConnectService> Deref for PooledConnection<M> {
    type Target = DsqlConnection;

    fn deref(&self) -> &DsqlConnection {
        &self.connection
    }
}

impl<M: ConnectService> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut DsqlConnection {
        &mut self.connection
    }
}

impl<M: ConnectService> fmt::Debug for PooledConnection<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.connection, f)
    }
}

/// Counts a caller as waiting until dropped, however its wait ends.
struct Waiting<'a> {
    counter: &'a AtomicU64,
    #[cfg(feature = "metrics")]
    _pending: dsql_tower::metrics::PendingRequest,
}

impl<'a> Waiting<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.waiting.fetch_add(1, Ordering::Relaxed);
        Self {
            counter: &shared.waiting,
            #[cfg(feature = "metrics")]
            _pending: shared.metrics.pending(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M: ConnectService> DsqlPool<M> {
    /// Checks out a connection, waiting in line behind earlier callers.
    ///
    /// The pool's `connection_timeout` bounds the whole wait, the queue
    /// included: the error is then a [`CheckoutTimeout`] (as the source of
    /// an [`Error`] of [`Phase::Connect`]). A fatal connect error (a role
    /// that does not match the token) is returned at once.
    pub async fn get(&self) -> Result<PooledConnection<M>, Error> {
        let shared = &self.shared;
        if shared.events.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let started = Instant::now();
        let deadline = started + shared.connection_timeout;
        let waiting = Waiting::enter(shared);
        let turn = match tokio::time::timeout_at(deadline, Arc::clone(&shared.queue).acquire_owned()).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(_closed)) => return Err(closed()),
            Err(_elapsed) => return Err(self.timed_out(started)),
        };
        let mut fatal = shared.events.fatal.subscribe();
        fatal.mark_unchanged();
        let mut failed = shared.events.failed.subscribe();
        let got = loop {
            failed.mark_unchanged();
            tokio::select! {
                biased;
                got = tokio::time::timeout_at(deadline, self.inner.get_owned()) => break got,
                Ok(()) = fatal.changed() => {
                    return Err(shared.events.last_error().unwrap_or_else(|| self.timed_out(started)));
                }
                // A connect failed: ask bb8 again, which approves a new
                // connect for this wait (the connect stack paces them).
                Ok(()) = failed.changed() => {}
            }
        };
        drop(waiting);
        match got {
            Ok(Ok(connection)) => {
                #[cfg(feature = "metrics")]
                shared.metrics.waited(started.elapsed());
                Ok(PooledConnection {
                    connection,
                    _turn: turn,
                })
            }
            Ok(Err(bb8::RunError::User(error))) => Err(error),
            Ok(Err(bb8::RunError::TimedOut)) | Err(_) => Err(self.timed_out(started)),
        }
    }

    fn timed_out(&self, started: Instant) -> Error {
        self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.shared.metrics.timed_out();
        let state = self.inner.state();
        let last = self.shared.events.last_error();
        let class = last.as_ref().map_or(ErrorClass::Throttled, Error::class);
        Error::new(
            class,
            Phase::Connect,
            CheckoutTimeout {
                waited: started.elapsed(),
                max_size: self.shared.max_size,
                open: state.connections,
                idle: state.idle_connections,
                last_connect_error: last,
            },
        )
    }
}

fn closed() -> Error {
    Error::new(ErrorClass::Fatal, Phase::Connect, PoolClosed)
}
