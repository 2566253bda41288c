use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::Retirement;
use crate::connect::PgConnection;
use crate::failover::lease::{EndpointLease, Verdict};

/// A connection in the lifecycle: the live connection, when it must be
/// replaced (its jittered deadline), and what an operation found out about
/// it. What [`Session`](crate::Session) holds and what a pool hands out.
///
/// Dereferences to [`tokio_postgres::Client`].
pub struct DsqlConnection {
    pg: PgConnection,
    deadline: Instant,
    broken: bool,
    /// Set while an operation runs; still set if its future was dropped.
    in_flight: bool,
    tasks: Option<Arc<Tasks>>,
    /// Its place in a pool's metrics (idle or used), left when dropped.
    #[cfg(feature = "metrics")]
    slot: Option<crate::metrics::PoolSlot>,
}

impl DsqlConnection {
    pub(crate) fn new(pg: PgConnection, deadline: Instant) -> Self {
        Self {
            pg,
            deadline,
            broken: false,
            in_flight: false,
            tasks: None,
            #[cfg(feature = "metrics")]
            slot: None,
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn set_slot(&mut self, slot: crate::metrics::PoolSlot) {
        self.slot = Some(slot);
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn slot(&self) -> Option<&crate::metrics::PoolSlot> {
        self.slot.as_ref()
    }

    /// The live connection (transaction status, cancel, close).
    pub fn connection(&self) -> &PgConnection {
        &self.pg
    }

    /// When the connection is replaced (its jittered lifetime).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Marks the connection unusable: it is dropped instead of reused.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether an operation marked the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Why the connection must leave service now, judged locally (no I/O).
    pub fn retirement(&self, now: Instant) -> Option<Retirement> {
        if self.in_flight {
            Some(Retirement::Abandoned)
        } else if self.broken {
            Some(Retirement::Broken)
        } else if self.pg.is_closed() {
            Some(Retirement::Closed)
        } else if now >= self.deadline {
            Some(Retirement::Lifetime)
        } else {
            match self.pg.endpoint().map(EndpointLease::verdict) {
                Some(Verdict::Unhealthy) => Some(Retirement::EndpointUnhealthy),
                Some(Verdict::MoveBack) => Some(Retirement::Failback),
                Some(Verdict::Keep) | None => None,
            }
        }
    }

    pub(crate) fn set_in_flight(&mut self, in_flight: bool) {
        self.in_flight = in_flight;
    }

    pub(crate) fn pg(&self) -> &PgConnection {
        &self.pg
    }

    /// Keeps the socket task in `tasks` when dropped, so that whoever
    /// closes a pool can wait for every socket to be closed.
    pub fn keep_task_in(&mut self, tasks: Arc<Tasks>) {
        self.tasks = Some(tasks);
    }

    /// Closes the connection and waits until its socket task has ended.
    pub async fn close(mut self) {
        self.tasks = None;
        let task = self.pg.take_task();
        drop(self);
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Deref for DsqlConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.pg.client()
    }
}

impl DerefMut for DsqlConnection {
    fn deref_mut(&mut self) -> &mut Client {
        self.pg.client_mut()
    }
}

impl fmt::Debug for DsqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlConnection")
            .field("connection", &self.pg)
            .field("broken", &self.broken)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Drop for DsqlConnection {
    fn drop(&mut self) {
        if self.in_flight {
            tracing::debug!("operation abandoned midway; cancelling it and dropping its connection");
            self.pg.cancel_in_background();
        }
        if let Some(tasks) = &self.tasks
            && let Some(task) = self.pg.take_task()
        {
            tasks.keep(task);
        }
    }
}

/// Socket tasks of dropped connections, until they end.
#[derive(Debug, Default)]
pub struct Tasks(Mutex<Vec<JoinHandle<()>>>);

impl Tasks {
    fn keep(&self, task: JoinHandle<()>) {
        let mut tasks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
    }

    /// Waits until every kept socket task has ended.
    pub async fn join_all(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            let _ = task.await;
        }
    }
}
