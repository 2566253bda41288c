//! Keeping a conflicted transaction's connection through its backoff.
//!
//! A conflict is replayed after a backoff, so that fewer transactions
//! contend on the same rows at once. But with more tasks than connections,
//! a connection given back to the pool during the backoff goes at once to
//! the next task in the checkout queue: as many attempts run on the hot
//! rows as before, each fails as often, and the backoff only adds latency
//! (measured with `dsql-bench occ` at 128 tasks on 16 connections: as many
//! wasted attempts per commit as replaying at once, and a few transactions
//! exhausting their attempts). Ethernet's backoff works because the
//! station backing off leaves its slot empty; here the slot is the
//! connection. So the pool parks it in the operation
//! ([`Operation::park`]) and the replay takes it back, without a checkout.
//!
//! The trade-off: while a transaction backs off (up to 250 ms a retry with
//! the default conflict rule), its connection serves nobody. A pool
//! saturated with other work serves that work less; without contention
//! nothing is parked. [`DsqlPoolBuilder::keep_connection_through_conflict_backoff`](super::DsqlPoolBuilder::keep_connection_through_conflict_backoff)
//! turns it off. In the pool's metrics the connection counts as used
//! through the backoff (it is: nobody else can have it), and its use time
//! includes the backoff; the operation's span and duration, which already
//! covered every attempt and backoff, do not change.
//!
//! Nothing leaks: a parked connection lives in the operation's record,
//! which the retry layer's copies of the request share; when the retry
//! gives up (or a timeout drops it), the last copy is dropped and the
//! connection with it, which returns it to bb8 (`has_broken` runs as for
//! any return) and its turn to the fair queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dsql_tower::connect::ConnectService;
use dsql_tower::{Error, ErrorClass, Operation};
use std::time::Instant;

use super::{DsqlPool, PooledConnection, Shared};

/// A connection parked by a pool, tagged with the pool: an operation
/// replayed through another pool (of the same type) does not use it there.
struct ParkedConnection<M: ConnectService> {
    pool: Arc<Shared>,
    connection: PooledConnection<M>,
}

impl<M: ConnectService> DsqlPool<M> {
    /// After a failed attempt: parks `connection` in `operation` if the
    /// failure is a conflict that the retry layer may replay (nothing the
    /// attempt did can have taken effect, or the operation is idempotent)
    /// and the connection can be used again; otherwise drops it, which
    /// returns it to the pool.
    pub(crate) fn park<T>(&self, operation: &Operation<T>, error: &Error, connection: PooledConnection<M>) {
        let replayable = !error.effects().may_have_landed() || operation.is_idempotent();
        if self.shared.keep_through_backoff
            && error.class() == ErrorClass::Conflict
            && replayable
            && reusable(&connection)
        {
            operation.park(ParkedConnection {
                pool: Arc::clone(&self.shared),
                connection,
            });
        }
    }

    /// The connection an earlier attempt of `operation` parked in this
    /// pool, if it can be used now: checked out again through the
    /// lifecycle, as bb8 would at checkout. One that must be retired (its
    /// deadline passed during the backoff, its endpoint turned unhealthy)
    /// is dropped, and bb8 retires it on return; the caller then checks out
    /// as usual.
    pub(crate) async fn take_parked<T>(&self, operation: &Operation<T>) -> Option<PooledConnection<M>> {
        let parked = operation.take_parked::<ParkedConnection<M>>()?;
        if !Arc::ptr_eq(&parked.pool, &self.shared) || self.is_closing() {
            return None;
        }
        let mut connection = parked.connection;
        // Judged locally first: a connection to retire goes back to bb8,
        // which counts the retirement once (on return); one not at rest is
        // settled by the next checkout, as any connection returned so.
        if !reusable(&connection) {
            return None;
        }
        // What bb8's checkout would run (`is_valid`): for a connection at
        // rest within its lifetime, no I/O, and it cannot fail unless the
        // deadline passed since the line above (then the retirement is
        // counted here and, marked broken, once more on return).
        match self.lifecycle.check_out(&mut connection).await {
            Ok(()) => Some(connection),
            Err(_counted) => {
                connection.mark_broken();
                None
            }
        }
    }

    fn is_closing(&self) -> bool {
        self.shared.events.closed.load(Ordering::Acquire)
    }
}

/// Within its lifetime, not broken, and at rest (outside a transaction,
/// nothing outstanding): judged locally, no I/O.
fn reusable<M: ConnectService>(connection: &PooledConnection<M>) -> bool {
    connection.retirement(Instant::now()).is_none() && connection.connection().is_idle()
}
