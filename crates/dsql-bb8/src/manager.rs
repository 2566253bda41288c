//! The bb8 `ManageConnection`: a thin user of `dsql-tower`'s connection
//! lifecycle.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dsql_tower::connect::ConnectService;
use dsql_tower::lifecycle::Lifecycle;
use dsql_tower::{DsqlConnection, Error, ErrorClass, Phase, Retirement};

use crate::events::Events;
use crate::pool::PoolClosed;

/// How a connection is checked when it is checked out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckOnCheckout {
    /// The lifecycle's checks: open, within its lifetime, not broken, at
    /// rest (outside a transaction, nothing outstanding), with no I/O for a
    /// connection at rest. Dead connections the client has not noticed yet
    /// are caught by error classification on use.
    #[default]
    Local,
    /// The local checks, then a round trip (`Sync`) to the server: one
    /// network round trip per checkout.
    RoundTrip,
}

/// A bb8 [`ManageConnection`](bb8::ManageConnection) for DSQL over a
/// [`Lifecycle`]: connects through its connect service (usually
/// [`dsql_tower::connect::stack`]: a token, verified TLS, paced and
/// classified connect retries), hands out only connections the lifecycle
/// checks out, and drops those it retires on return.
pub struct DsqlConnectionManager<M> {
    lifecycle: Lifecycle<M>,
    check: CheckOnCheckout,
    pub(crate) events: Arc<Events>,
}

impl<M> DsqlConnectionManager<M> {
    /// A manager over `lifecycle`.
    pub fn new(lifecycle: Lifecycle<M>) -> Self {
        Self {
            lifecycle,
            check: CheckOnCheckout::Local,
            events: Arc::default(),
        }
    }

    /// How checkouts are checked.
    pub fn check_on_checkout(mut self, check: CheckOnCheckout) -> Self {
        self.check = check;
        self
    }

    /// The lifecycle.
    pub fn lifecycle(&self) -> &Lifecycle<M> {
        &self.lifecycle
    }
}

impl<M> fmt::Debug for DsqlConnectionManager<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlConnectionManager")
            .field("lifecycle", &self.lifecycle)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

impl<M: ConnectService> bb8::ManageConnection for DsqlConnectionManager<M> {
    type Connection = DsqlConnection;
    type Error = Error;

    async fn connect(&self) -> Result<DsqlConnection, Error> {
        if self.events.closed.load(Ordering::Acquire) {
            // Fatal, and signalled as such: a waiting checkout returns it
            // rather than asking for another connect that fails the same way.
            let error = Error::new(ErrorClass::Fatal, Phase::Connect, PoolClosed);
            self.events.connect_failed(&error);
            return Err(error);
        }
        let mut connection = self
            .lifecycle
            .open()
            .await
            .inspect_err(|error| self.events.connect_failed(error))?;
        connection.keep_task_in(Arc::clone(&self.events.tasks));
        Ok(connection)
    }

    async fn is_valid(&self, connection: &mut DsqlConnection) -> Result<(), Error> {
        let retired = |why: Retirement| {
            Error::new(
                ErrorClass::Reconnect,
                Phase::Connect,
                format!("connection retired at checkout: {why}"),
            )
        };
        self.lifecycle.check_out(connection).await.map_err(retired)?;
        if self.check == CheckOnCheckout::RoundTrip && connection.check_connection().await.is_err() {
            self.lifecycle.retire(Retirement::Closed);
            return Err(retired(Retirement::Closed));
        }
        Ok(())
    }

    fn has_broken(&self, connection: &mut DsqlConnection) -> bool {
        self.lifecycle.check_in(connection).is_some()
    }
}
