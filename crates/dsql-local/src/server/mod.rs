//! The server: the state every connection shares ([`ServerCtx`]) and the
//! accept loop.
//!
//! - [`handle`]: [`DsqlLocal`], the public handle that starts and stops the
//!   server and tells clients how to connect;
//! - [`connection`]: one connection's life: admission, handshake, upstream
//!   session, relay.

mod connection;
mod handle;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

pub use self::handle::DsqlLocal;
use crate::config::LocalConfig;
use crate::dialect::SqlRules;
use crate::faults::Faults;
use crate::limits::{ConnectionLimit, ConnectionSlot, RateLimiter};
use crate::network::DelayLine;
use crate::protocol::MemoryBudget;
use crate::registry::Registry;
use crate::stats::{RefusalReason, Stats, bump};
use crate::token::Verifier;
use crate::upstream::Roles;

/// How long shutdown waits for connections to close before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything a connection needs, shared by all of them.
pub(crate) struct ServerCtx {
    pub(crate) config: LocalConfig,
    pub(crate) tls: TlsAcceptor,
    pub(crate) verifier: Verifier,
    pub(crate) stats: Stats,
    pub(crate) faults: Faults,
    pub(crate) registry: Arc<Registry>,
    /// The upstream role each DSQL role runs as.
    pub(crate) roles: Roles,
    /// The modelled network in front of every accepted socket, if any.
    pub(crate) network: Option<DelayLine>,
    connections: Arc<ConnectionLimit>,
    /// Connections in their handshake
    /// ([`Bounds::max_pending_handshakes`](crate::config::Bounds::max_pending_handshakes)).
    handshakes: Arc<ConnectionLimit>,
    /// What all sessions' message buffers may hold together
    /// ([`Bounds::max_buffered_bytes`](crate::config::Bounds::max_buffered_bytes)).
    pub(crate) memory: MemoryBudget,
    /// DSQL's rules over SQL text, with the decisions cached.
    pub(crate) sql_rules: SqlRules,
    rate: Option<RateLimiter>,
    next_connection: AtomicU64,
}

impl ServerCtx {
    /// Admission at accept time: the throttle fault, a rate token, then a
    /// connection slot.
    fn admit(&self) -> Result<ConnectionSlot, RefusalReason> {
        if self.faults.take_throttle() {
            bump(&self.stats.counters.connects_throttled_by_count);
            tracing::info!("fault: connection attempt throttled");
            return Err(RefusalReason::RateExceeded);
        }
        if let Some(rate) = &self.rate
            && !rate.try_acquire()
        {
            return Err(RefusalReason::RateExceeded);
        }
        self.connections
            .try_acquire()
            .ok_or(RefusalReason::TooManyConnections)
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<ServerCtx>, mut shutdown: watch::Receiver<bool>) {
    let mut paused = ctx.faults.paused();
    let mut tasks = JoinSet::new();
    let for_tasks = shutdown.clone();
    loop {
        if *paused.borrow_and_update() {
            tokio::select! {
                () = stopped(&mut shutdown) => break,
                _ = paused.changed() => continue,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            }
        }
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            _ = paused.changed() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match ctx.handshakes.try_acquire() {
                    Some(slot) => {
                        let ctx = Arc::clone(&ctx);
                        tasks.spawn(connection::connection(tcp, peer, slot, ctx, for_tasks.clone()));
                    }
                    None => {
                        // Too many handshakes in progress: close at once,
                        // before any TLS handshake or allocation.
                        drop(tcp);
                        tracing::debug!(%peer, "connection closed: too many handshakes in progress");
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!("dsql-local stopped");
}

/// Completes when `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
