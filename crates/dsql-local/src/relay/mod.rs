//! Relaying an authenticated session between the client and the upstream.
//!
//! Both directions are framed, so that the relay can follow the protocol:
//!
//! - [`client`]: client → upstream. Every request that may end in a
//!   `ReadyForQuery` (`Query`, `Sync`, `FunctionCall`) queues a [`Request`]:
//!   its sync point and a [`Pending`] entry saying what to do with its reply
//!   (forward it, hide its `ReadyForQuery`, turn its `CommandComplete` into an
//!   error, swallow it, or drop the session after it).
//! - [`upstream`]: upstream → client. Replies are handled as their
//!   [`Pending`] entry says; `ReadyForQuery` gives the transaction status
//!   (`I`, `T`, `E`), hence the transaction's age for the transaction timeout
//!   ([`transaction_timeout`]); PostgreSQL's serialization failures (`40001`) and
//!   deadlocks (`40P01`) are rewritten to DSQL's `OC000` conflict, and so,
//!   in the never-wait mode, are its lock timeouts (`55P03`, and the
//!   `57014` PostgreSQL sometimes reports one as, unless the client
//!   cancelled: see [`upstream::rewrites_conflict`]).
//! - [`commit`]: `COMMIT` is recognized in simple queries and in
//!   extended-protocol `Parse`/`Bind`/`Execute` flows, for the commit faults.
//!   `COMMIT AND CHAIN` is not a `COMMIT` here: it is forwarded untouched.
//! - [`faults`]: what the [`Faults`](crate::Faults) knobs do to a statement
//!   or a `COMMIT`: forward it, drop the session before or after it, fail it
//!   (the upstream raises the error itself, so that the transaction state is
//!   PostgreSQL's own), or replace a `COMMIT` by `ROLLBACK` and an error;
//! - [`isolation`]: what a region isolated from its peers does to writes
//!   and `COMMIT`s.
//!
//! # Which request a `ReadyForQuery` answers
//!
//! The queue is built from what the client sent, but what closes an entry is
//! the backend: a reply starts with the backend's first message and ends with
//! its `ReadyForQuery`, and the backend decides which client messages get one.
//! PostgreSQL answers every `Query` and `FunctionCall` and every `Sync` it
//! processes with exactly one `ReadyForQuery`; after an error in the extended
//! protocol it skips messages up to the `Sync`, which is answered once (so one
//! entry per `Sync` stays right). The exception is copy-in mode: PostgreSQL
//! ignores `Sync` (and `Flush`) between entering copy-in mode
//! (`CopyInResponse`, or `CopyBothResponse`) and the client's `CopyDone` or
//! `CopyFail`, and tokio-postgres' `copy_in` sends `Bind`/`Execute`/`Sync`
//! and later `CopyDone`/`Sync`, two `Sync`s for one `ReadyForQuery`.
//!
//! So the client side counts the copy ends it sends (`CopyDone`, `CopyFail`)
//! and each [`Request`] records that count where it was sent and where a copy
//! in its reply would begin (the `Query`, or the first `Execute` of the
//! `Sync`'s batch); the copy ends at the client's next copy end. The
//! upstream side notes when the backend enters copy-in mode in a reply. At
//! that reply's `ReadyForQuery`:
//!
//! - if the reply is a `Query`'s, the copy was the query's own: the `Sync`s
//!   queued behind it up to the one after the copy's end were ignored by the
//!   backend and are dropped from the queue;
//! - if it is a `Sync`'s that was sent before the copy's end, that `Sync`
//!   was ignored too, and so were the following ones up to the copy's end:
//!   the `ReadyForQuery` answers the first request after the copy's end.
//!
//! The requests in question are queued by then: the client side queues a
//! request before forwarding it, and the backend answers only after reading
//! it. A dropped entry's action (e.g. drop the session after the statement)
//! is carried over to the entry that is answered; a reply that drops the
//! session still forwards `CopyInResponse`, or the statement could not
//! complete. `CopyData`, `CopyDone` and
//! `CopyFail` outside copy-in mode (after a `COPY` that failed) are ignored by
//! PostgreSQL and change nothing here. Copy-out mode (`CopyOutResponse`)
//! needs nothing: the backend sends the data and then reads on as before.
//!
//! Not modelled (no driver does it): a `Query` or `FunctionCall` inside an
//! unsynced extended-protocol batch that failed earlier (PostgreSQL skips it,
//! so it gets no `ReadyForQuery`), and a `Sync` sent in the middle of copy
//! data when the backend fails the copy before reaching it.
//!
//! Messages are read into one reusable buffer per direction and written in
//! batches (one write per read), so the hot path does not allocate.

mod client;
mod commit;
mod dialect;
mod faults;
mod isolation;
mod outbox;
mod tags;
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
use self::tags::TagEdits;
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
    /// A client message was larger than the bound: the client is told why.
    MessageTooLarge,
    /// The message buffers of all sessions reached their budget: the client
    /// is told why.
    OutOfMemory,
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
    /// DSQL's conflict instead of its error.
    FailStatement,
    /// It answers an extended-protocol batch that the relay failed with a
    /// statement of its own (`Parse`/`Bind`/`Execute` before the client's
    /// `Sync`): as [`FailStatement`](Self::FailStatement), and the
    /// `ParseComplete`s and `BindComplete`s past the client's own (`parses`,
    /// `binds`: those its forwarded messages may get) are the relay's,
    /// dropped.
    FailBatch { parses: u32, binds: u32 },
    /// It answers an isolated region's check before a `COMMIT`: drop it,
    /// but for the error it raises when the transaction wrote, which is
    /// sent as DSQL's.
    IsolationCheck,
    /// It answers the `COMMIT` after that check: forward it, unless the
    /// check failed: then only its `ReadyForQuery` (the `COMMIT` of the
    /// aborted transaction rolled it back).
    AfterIsolationCheck,
}

/// A request that ends in a `ReadyForQuery` (unless PostgreSQL ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    action: Pending,
    /// A `Sync`; else a `Query` or `FunctionCall` (the client's, or one the
    /// relay added), answered by its own `ReadyForQuery`.
    sync: bool,
    /// How many copy ends (`CopyDone`, `CopyFail`) the client had sent
    /// before this request.
    copy_ends: u64,
    /// The same count where a copy started in this request's reply would
    /// have begun: at the `Query` itself, or at the first `Execute` of the
    /// `Sync`'s batch. The copy ends at the client's next copy end.
    copy_start: u64,
    /// Command tags to put on the reply's completions.
    tags: TagEdits,
}

impl Request {
    /// A `Query` or `FunctionCall` the relay or the client sends now.
    fn query(action: Pending, copy_ends: u64) -> Self {
        Self {
            action,
            sync: false,
            copy_ends,
            copy_start: copy_ends,
            tags: TagEdits::default(),
        }
    }
}

impl Pending {
    /// The action for a reply that also stands for an ignored request's:
    /// the first one that is not a plain [`Pending::Forward`].
    fn merge(self, later: Self) -> Self {
        if self == Self::Forward { later } else { self }
    }
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
    /// The region is isolated, and the `COMMIT` came with other statements
    /// that may have written.
    Isolated,
}

/// State shared by both directions.
struct Shared {
    pending: VecDeque<Request>,
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
    let (mut upstream_read, mut upstream_write) = crate::upstream::into_split(upstream.stream);
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
    let mut upstream_side = UpstreamSide::new(ctx, &state, ctl, upstream.reader);
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
    let refusal = match end {
        SessionEnd::MessageTooLarge => Some(&crate::catalog::MESSAGE_TOO_LARGE),
        SessionEnd::OutOfMemory => Some(&crate::catalog::OUT_OF_MEMORY),
        _ => None,
    };
    if let Some(entry) = refusal {
        let refusal = crate::protocol::ErrorResponse::from_catalog(entry);
        let _ = timeout(Duration::from_millis(200), refusal.send(&mut client)).await;
    }
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
