//! Relaying an authenticated session between the client and the upstream.
//!
//! Both directions are framed, so that the relay can follow the protocol:
//!
//! - [`client`]: client → upstream. Every request that ends in a
//!   `ReadyForQuery` (`Query`, `Sync`, `FunctionCall`) queues a [`Pending`]
//!   entry saying what to do with its reply (forward it, hide its
//!   `ReadyForQuery`, turn its `CommandComplete` into an error, swallow it, or
//!   drop the session after it).
//! - [`upstream`]: upstream → client. Replies are handled as their
//!   [`Pending`] entry says; `ReadyForQuery` gives the transaction status
//!   (`I`, `T`, `E`), hence the transaction's age for the transaction timeout
//!   ([`transaction_timeout`]); PostgreSQL's serialization failures (`40001`) and
//!   deadlocks (`40P01`) are rewritten to DSQL's `OC000` conflict.
//! - [`commit`]: `COMMIT` is recognized in simple queries and in
//!   extended-protocol `Parse`/`Bind`/`Execute` flows, for the commit faults.
//! - [`faults`]: what the [`Faults`](crate::Faults) knobs do to a statement
//!   or a `COMMIT`: forward it, drop the session before or after it, fail it
//!   (the upstream raises the error itself, so that the transaction state is
//!   PostgreSQL's own), or replace a `COMMIT` by `ROLLBACK` and an error.
//!
//! Messages are read into one reusable buffer per direction and written in
//! batches (one write per read), so the hot path does not allocate.

mod client;
mod commit;
mod faults;
#[cfg(test)]
mod tests;
mod transaction_timeout;
mod upstream;

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until, timeout};

use crate::handshake::ClientStream;
use crate::registry::SessionCtl;
use crate::server::ServerCtx;
use crate::upstream::UpstreamSession;

use self::client::ClientSide;
use self::upstream::UpstreamSide;

/// `Terminate`.
const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The client closed the connection.
    ClientClosed,
    /// The client sent `Terminate`.
    ClientTerminated,
    /// The upstream closed the connection.
    UpstreamClosed,
    /// The session lifetime passed.
    Expired,
    /// A fault closed the session.
    Killed,
    /// The commit-drop fault closed the session.
    DroppedAtCommit,
    /// The statement-drop fault closed the session.
    DroppedAtStatement,
    /// The server is shutting down.
    Shutdown,
    /// An I/O or protocol error.
    Failed(String),
}

/// What to do with the reply to one request (everything up to and including
/// its `ReadyForQuery`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    /// Forward it.
    Forward,
    /// Forward it but not its `ReadyForQuery` (a request the relay added).
    HideRfq,
    /// It answers a `ROLLBACK` that replaced a `COMMIT`: drop the
    /// `CommandComplete` and send the error before `ReadyForQuery`.
    Conflict(ConflictKind),
    /// Drop it all (a request the relay sent on its own).
    Swallow,
    /// Drop it and close the session (a drop fault, after forwarding).
    DropSession(DropCause),
    /// It answers the statement that replaced a failed one
    /// ([`Faults::fail_statement`](crate::Faults::fail_statement)): send
    /// DSQL's conflict instead of its error. `sync_follows`: a `Sync` was sent
    /// after it (extended protocol), whose extra `ReadyForQuery` is hidden.
    FailStatement { sync_follows: bool },
}

/// Which fault drops the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropCause {
    /// [`Faults::drop_at_next_commit`](crate::Faults::drop_at_next_commit).
    Commit,
    /// [`Faults::drop_at_statement`](crate::Faults::drop_at_statement).
    Statement,
}

impl DropCause {
    fn end(self) -> SessionEnd {
        match self {
            Self::Commit => SessionEnd::DroppedAtCommit,
            Self::Statement => SessionEnd::DroppedAtStatement,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConflictKind {
    /// [`Faults::inject_commit_conflicts`](crate::Faults::inject_commit_conflicts).
    Injected,
    /// The transaction timeout.
    Timeout,
    /// [`Faults::fail_statement`](crate::Faults::fail_statement) picked the
    /// `COMMIT` of an open transaction.
    FailedStatement,
}

/// State shared by both directions.
struct Shared {
    pending: VecDeque<Pending>,
    /// The upstream is sending a reply (its first message was seen, not yet
    /// its `ReadyForQuery`).
    responding: bool,
    /// The upstream's last transaction status.
    status: u8,
    /// When the upstream transaction was first seen open.
    txn_started: Option<Instant>,
    /// The transaction timeout rolled the client's transaction back; the
    /// client has not ended it yet.
    timed_out: bool,
}

struct State {
    shared: Mutex<Shared>,
    /// Wakes the client side to arm the transaction timer.
    wake_client_side: Notify,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// No request is in flight.
    fn idle(&self) -> bool {
        self.pending.is_empty() && !self.responding
    }
}

/// Relays until the session ends; closes both connections cleanly.
pub(crate) async fn run(
    client: ClientStream,
    upstream: UpstreamSession,
    ctx: &ServerCtx,
    ctl: &SessionCtl,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = upstream.stream.into_split();
    let state = State {
        shared: Mutex::new(Shared {
            pending: VecDeque::with_capacity(16),
            responding: false,
            status: b'I',
            txn_started: None,
            timed_out: false,
        }),
        wake_client_side: Notify::new(),
    };
    let mut client_side = ClientSide::new(ctx, &state);
    let mut upstream_side = UpstreamSide::new(ctx, &state, upstream.reader);
    let lifetime_end = Instant::now().checked_add(ctx.config.session_lifetime);
    let end = tokio::select! {
        end = client_side.run(&mut client_read, &mut upstream_write) => end,
        end = upstream_side.run(&mut upstream_read, &mut client_write) => end,
        () = sleep_until_opt(lifetime_end) => SessionEnd::Expired,
        () = ctl.killed() => SessionEnd::Killed,
        () = crate::server::stopped(shutdown) => SessionEnd::Shutdown,
    };
    if !matches!(end, SessionEnd::UpstreamClosed | SessionEnd::ClientTerminated) {
        let _ = timeout(Duration::from_millis(100), upstream_write.write_all(&TERMINATE)).await;
    }
    let mut client = client_read.unsplit(client_write);
    let _ = timeout(Duration::from_millis(200), client.shutdown()).await;
    end
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

enum Flow {
    Continue,
    End(SessionEnd),
}
