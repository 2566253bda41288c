use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tracing::Instrument;

use super::tls_connect::Tls;
use super::wire::{Progress, TransactionStatus, Wire};
use crate::error::display_chain;
use crate::failover::lease::EndpointLease;

/// A live connection: the client, the task that drives its socket, and
/// what its traffic says about its state.
///
/// Dereferences to [`tokio_postgres::Client`]. Dropping it closes the
/// connection; [`close`](Self::close) also waits for the socket task to end.
pub struct PgConnection {
    client: Client,
    task: Option<JoinHandle<()>>,
    tls: Tls,
    wire: Arc<Wire>,
    established: Instant,
    /// Set when made through a [`Failover`](crate::failover::Failover).
    endpoint: Option<EndpointLease>,
}

impl PgConnection {
    pub(crate) fn new(client: Client, task: JoinHandle<()>, tls: Tls, wire: Arc<Wire>) -> Self {
        Self {
            client,
            task: Some(task),
            tls,
            wire,
            established: Instant::now(),
            endpoint: None,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client, mutably (transactions need it).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The endpoint host of a connection made through a
    /// [`Failover`](crate::failover::Failover).
    pub fn endpoint_host(&self) -> Option<&str> {
        self.endpoint.as_ref().map(EndpointLease::host)
    }

    pub(crate) fn endpoint(&self) -> Option<&EndpointLease> {
        self.endpoint.as_ref()
    }

    pub(crate) fn set_endpoint(&mut self, lease: EndpointLease) {
        self.endpoint = Some(lease);
    }

    /// Whether the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// When the connection was established.
    pub fn established_at(&self) -> Instant {
        self.established
    }

    /// The transaction status the server reported last (tokio-postgres
    /// does not expose it; it is read from the traffic).
    pub fn transaction_status(&self) -> TransactionStatus {
        self.wire.status()
    }

    /// Whether the connection is provably at rest: outside a transaction,
    /// no reply outstanding. `false` does not mean busy: after a `COPY` the
    /// count of replies may need a round trip to settle.
    pub fn is_idle(&self) -> bool {
        self.wire.is_idle()
    }

    pub(crate) fn wire(&self) -> &Wire {
        &self.wire
    }

    pub(crate) fn progress(&self) -> Progress {
        self.wire.progress()
    }

    /// Asks the server, on a separate connection, to cancel whatever this
    /// connection is running; used when an operation is abandoned midway.
    /// Best effort: failures are only traced.
    pub fn cancel_in_background(&self) {
        let token = self.client.cancel_token();
        let tls = self.tls.for_side_connection();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(
                async move {
                    if let Err(error) = token.cancel_query(tls).await {
                        tracing::debug!(error = %display_chain(&error), "cancel request failed");
                    }
                }
                .instrument(tracing::debug_span!("dsql.cancel")),
            );
        }
    }

    /// Closes the connection and waits until its socket task has ended.
    pub async fn close(mut self) {
        let task = self.task.take();
        drop(self);
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Hands over the socket task, which ends once the connection is
    /// dropped: a pool keeps it to wait, at shutdown, until every
    /// connection is really closed. `None` if already taken.
    pub fn take_task(&mut self) -> Option<JoinHandle<()>> {
        self.task.take()
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.client.is_closed())
            .field("status", &self.wire.status())
            .field("age", &self.established.elapsed())
            .field("endpoint", &self.endpoint_host())
            .finish_non_exhaustive()
    }
}
