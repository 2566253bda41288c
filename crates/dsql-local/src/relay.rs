//! Relaying an authenticated session between the client and the upstream.
//!
//! Both directions are framed, so that the relay can follow the protocol:
//!
//! - every request that ends in a `ReadyForQuery` (`Query`, `Sync`,
//!   `FunctionCall`) queues a [`Pending`] entry saying what to do with its
//!   reply (forward it, hide its `ReadyForQuery`, turn its `CommandComplete`
//!   into an error, swallow it, or drop the session after it);
//! - `ReadyForQuery` gives the transaction status (`I`, `T`, `E`), hence the
//!   transaction's age for the transaction timeout;
//! - `COMMIT` is recognized in simple queries and in extended-protocol
//!   `Parse`/`Bind`/`Execute` flows, for the commit faults;
//! - PostgreSQL's serialization failures (`40001`) and deadlocks (`40P01`) are
//!   rewritten to DSQL's `OC000` conflict.
//!
//! Messages are read into one reusable buffer per direction and written in
//! batches (one write per read), so the hot path does not allocate.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::catalog::{self, Severity};
use crate::handshake::ClientStream;
use crate::protocol::{self, ErrorResponse, Frame, FrameReader};
use crate::registry::SessionCtl;
use crate::server::ServerCtx;
use crate::stats::bump;
use crate::upstream::UpstreamSession;

/// Sent upstream when a transaction outlives the transaction timeout: the
/// transaction is rolled back (releasing its locks) and replaced by an
/// aborted one, so that the client's next statements fail (`25P02`, shown as
/// the timeout error) until it ends the transaction.
const TIMEOUT_SQL: &str = "ROLLBACK; BEGIN; DO $dsql_local$BEGIN RAISE EXCEPTION \
    'dsql-local: transaction timeout' USING ERRCODE = '54000'; END$dsql_local$";

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
    /// Drop it and close the session (commit-drop fault, after forwarding).
    DropSession,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConflictKind {
    /// [`Faults::inject_commit_conflicts`](crate::Faults::inject_commit_conflicts).
    Injected,
    /// The transaction timeout.
    Timeout,
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
    let mut upstream_side = UpstreamSide {
        ctx,
        state: &state,
        reader: upstream.reader,
        out: Vec::with_capacity(16 * 1024),
        current: None,
        saw_error: false,
    };
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

/// Whether `sql` is a `COMMIT` (or `END`), not `COMMIT PREPARED`.
fn is_commit(sql: &[u8]) -> bool {
    let mut words = sql
        .split(|b| b.is_ascii_whitespace() || *b == b';')
        .filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return false;
    };
    if !(first.eq_ignore_ascii_case(b"commit") || first.eq_ignore_ascii_case(b"end")) {
        return false;
    }
    words.all(|w| {
        [&b"work"[..], b"transaction", b"and", b"no", b"chain"]
            .iter()
            .any(|ok| w.eq_ignore_ascii_case(ok))
    })
}

/// What to do with a `COMMIT`.
enum CommitAction {
    Forward,
    DropBefore,
    DropAfter,
    Conflict(ConflictKind),
}

/// Client → upstream.
struct ClientSide<'a> {
    ctx: &'a ServerCtx,
    state: &'a State,
    reader: FrameReader,
    out: Vec<u8>,
    /// Inside an extended-protocol batch (since the last `Sync`).
    batch_open: bool,
    /// Drop client messages until `Sync` (an injected conflict replaced an
    /// `Execute`).
    discard_until_sync: bool,
    /// At the next `Sync`, send `Sync` + `ROLLBACK` for an injected conflict.
    conflict_at_sync: bool,
    /// What to do with the reply to the next `Sync`.
    sync_action: Option<Pending>,
    /// Prepared statements whose SQL is a `COMMIT`.
    commit_statements: CommitNames,
    /// Portals bound to such a statement.
    commit_portals: CommitNames,
}

/// Which names (of prepared statements or portals) stand for a `COMMIT`;
/// the unnamed one (`""`) is a flag, since it is replaced at every use.
#[derive(Default)]
struct CommitNames {
    unnamed: bool,
    named: HashSet<Vec<u8>>,
}

impl CommitNames {
    fn set(&mut self, name: &[u8], commit: bool) {
        if name.is_empty() {
            self.unnamed = commit;
        } else if commit {
            self.named.insert(name.to_vec());
        } else if !self.named.is_empty() {
            self.named.remove(name);
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        if name.is_empty() {
            self.unnamed
        } else {
            self.named.contains(name)
        }
    }
}

enum Flow {
    Continue,
    End(SessionEnd),
}

impl<'a> ClientSide<'a> {
    fn new(ctx: &'a ServerCtx, state: &'a State) -> Self {
        Self {
            ctx,
            state,
            reader: FrameReader::new(),
            out: Vec::with_capacity(16 * 1024),
            batch_open: false,
            discard_until_sync: false,
            conflict_at_sync: false,
            sync_action: None,
            commit_statements: CommitNames::default(),
            commit_portals: CommitNames::default(),
        }
    }

    async fn run<R, W>(&mut self, client: &mut R, upstream: &mut W) -> SessionEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let deadline = self.transaction_deadline();
            tokio::select! {
                read = self.reader.fill(client) => match read {
                    Ok(0) => return SessionEnd::ClientClosed,
                    Ok(_) => {}
                    Err(e) => return SessionEnd::Failed(format!("client read: {e}")),
                },
                () = sleep_until_opt(deadline) => self.check_transaction_age(),
                () = self.state.wake_client_side.notified() => {}
            }
            if let Some(end) = self.process(upstream).await {
                return end;
            }
        }
    }

    /// When the open transaction times out, if the session is idle.
    fn transaction_deadline(&self) -> Option<Instant> {
        if self.batch_open || self.discard_until_sync {
            return None;
        }
        let shared = self.state.lock();
        if shared.idle() && !shared.timed_out && shared.status != b'I' {
            shared
                .txn_started
                .and_then(|t| t.checked_add(self.ctx.config.transaction_timeout))
        } else {
            None
        }
    }

    /// At a request boundary: rolls back a transaction older than the
    /// transaction timeout.
    fn check_transaction_age(&mut self) {
        if self.batch_open || self.discard_until_sync {
            return;
        }
        let timeout = self.ctx.config.transaction_timeout;
        let mut shared = self.state.lock();
        let too_old = shared
            .txn_started
            .and_then(|t| t.checked_add(timeout))
            .is_some_and(|deadline| Instant::now() >= deadline);
        if too_old && shared.idle() && !shared.timed_out && shared.status != b'I' {
            shared.timed_out = true;
            shared.pending.push_back(Pending::Swallow);
            drop(shared);
            protocol::put_query(&mut self.out, TIMEOUT_SQL);
            bump(&self.ctx.stats.counters.transactions_timed_out);
            tracing::info!(
                timeout_secs = timeout.as_secs_f64(),
                "transaction timed out and was rolled back"
            );
        }
    }

    fn push(&self, pending: Pending) {
        self.state.lock().pending.push_back(pending);
    }

    /// Handles every complete message in the buffer, then writes the batch.
    async fn process<W: AsyncWrite + Unpin>(&mut self, upstream: &mut W) -> Option<SessionEnd> {
        let mut end = None;
        loop {
            let frame = match self.reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    end = Some(SessionEnd::Failed(format!("client protocol: {e}")));
                    break;
                }
            };
            if let Some(delay) = self.ctx.faults.latency_for(frame.tag) {
                sleep(delay).await;
            }
            if let Flow::End(e) = self.on_frame(frame) {
                end = Some(e);
                break;
            }
        }
        if !self.out.is_empty() {
            if let Err(e) = upstream.write_all(&self.out).await {
                return Some(end.unwrap_or_else(|| SessionEnd::Failed(format!("upstream write: {e}"))));
            }
            self.ctx
                .stats
                .counters
                .bytes_from_clients
                .fetch_add(self.out.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.out.clear();
        }
        end
    }

    fn forward(&mut self, frame: &Frame) {
        self.out.extend_from_slice(self.reader.bytes(frame));
    }

    fn on_frame(&mut self, frame: Frame) -> Flow {
        let tag = frame.tag;
        if self.discard_until_sync && tag != b'S' {
            return Flow::Continue;
        }
        let starts_request =
            !self.batch_open && matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'D' | b'C' | b'H' | b'S' | b'F');
        if starts_request {
            self.check_transaction_age();
        }
        match tag {
            b'Q' => return self.on_query(&frame),
            b'P' => {
                self.batch_open = true;
                self.track_parse(&frame);
                self.forward(&frame);
            }
            b'B' => {
                self.batch_open = true;
                self.track_bind(&frame);
                self.forward(&frame);
            }
            b'E' => {
                self.batch_open = true;
                if self.executes_commit(&frame) {
                    return self.on_extended_commit(&frame);
                }
                self.forward(&frame);
            }
            b'C' => {
                self.batch_open = true;
                self.track_close(&frame);
                self.forward(&frame);
            }
            b'D' | b'H' => {
                self.batch_open = true;
                self.forward(&frame);
            }
            b'S' => self.on_sync(&frame),
            b'F' => {
                self.forward(&frame);
                self.push(Pending::Forward);
            }
            b'X' => {
                self.forward(&frame);
                return Flow::End(SessionEnd::ClientTerminated);
            }
            _ => self.forward(&frame),
        }
        Flow::Continue
    }

    fn commit_action(&self) -> CommitAction {
        let (status, idle, timed_out) = {
            let shared = self.state.lock();
            (shared.status, shared.idle(), shared.timed_out)
        };
        if timed_out {
            return CommitAction::Conflict(ConflictKind::Timeout);
        }
        match self.ctx.faults.take_commit_drop() {
            Some(crate::CommitDrop::BeforeForwarding) => return CommitAction::DropBefore,
            Some(crate::CommitDrop::AfterForwarding) => return CommitAction::DropAfter,
            None => {}
        }
        // With requests in flight the status is not known yet: assume a
        // transaction is open.
        let in_transaction = status == b'T' || (status == b'I' && !idle);
        if in_transaction && self.ctx.faults.roll_conflict() {
            return CommitAction::Conflict(ConflictKind::Injected);
        }
        CommitAction::Forward
    }

    fn on_query(&mut self, frame: &Frame) -> Flow {
        let body = self.reader.body(frame);
        let commit = protocol::cstr(body).is_some_and(|(sql, _)| is_commit(sql));
        if !commit {
            self.forward(frame);
            self.push(Pending::Forward);
            return Flow::Continue;
        }
        match self.commit_action() {
            CommitAction::Forward => {
                self.forward(frame);
                self.push(Pending::Forward);
            }
            CommitAction::DropBefore => {
                tracing::info!("fault: dropping the session before forwarding COMMIT");
                return Flow::End(SessionEnd::DroppedAtCommit);
            }
            CommitAction::DropAfter => {
                tracing::info!("fault: dropping the session after COMMIT completes");
                self.forward(frame);
                self.push(Pending::DropSession);
            }
            CommitAction::Conflict(kind) => {
                tracing::debug!(?kind, "COMMIT replaced by ROLLBACK");
                protocol::put_query(&mut self.out, "ROLLBACK");
                self.push(Pending::Conflict(kind));
            }
        }
        Flow::Continue
    }

    fn on_extended_commit(&mut self, frame: &Frame) -> Flow {
        match self.commit_action() {
            CommitAction::Forward => self.forward(frame),
            CommitAction::DropBefore => {
                tracing::info!("fault: dropping the session before forwarding COMMIT");
                return Flow::End(SessionEnd::DroppedAtCommit);
            }
            CommitAction::DropAfter => {
                tracing::info!("fault: dropping the session after COMMIT completes");
                self.forward(frame);
                self.sync_action = Some(Pending::DropSession);
            }
            // The upstream transaction is already aborted: its COMMIT rolls
            // back; only the reply changes.
            CommitAction::Conflict(ConflictKind::Timeout) => {
                self.forward(frame);
                self.sync_action = Some(Pending::Conflict(ConflictKind::Timeout));
            }
            // Drop the Execute and the rest of the batch; at Sync, roll back.
            CommitAction::Conflict(ConflictKind::Injected) => {
                tracing::debug!("extended-protocol COMMIT replaced by ROLLBACK");
                self.discard_until_sync = true;
                self.conflict_at_sync = true;
            }
        }
        Flow::Continue
    }

    fn on_sync(&mut self, frame: &Frame) {
        self.batch_open = false;
        self.discard_until_sync = false;
        self.forward(frame);
        if std::mem::take(&mut self.conflict_at_sync) {
            self.push(Pending::HideRfq);
            protocol::put_query(&mut self.out, "ROLLBACK");
            self.push(Pending::Conflict(ConflictKind::Injected));
        } else {
            let action = self.sync_action.take().unwrap_or(Pending::Forward);
            self.push(action);
        }
    }

    fn track_parse(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        let Some((name, rest)) = protocol::cstr(body) else {
            return;
        };
        let commit = protocol::cstr(rest).is_some_and(|(sql, _)| is_commit(sql));
        self.commit_statements.set(name, commit);
    }

    fn track_bind(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        let Some((portal, rest)) = protocol::cstr(body) else {
            return;
        };
        let Some((statement, _)) = protocol::cstr(rest) else {
            return;
        };
        let commit = self.commit_statements.contains(statement);
        self.commit_portals.set(portal, commit);
    }

    fn track_close(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        let Some((&kind, rest)) = body.split_first() else {
            return;
        };
        let Some((name, _)) = protocol::cstr(rest) else {
            return;
        };
        match kind {
            b'S' => self.commit_statements.set(name, false),
            b'P' => self.commit_portals.set(name, false),
            _ => {}
        }
    }

    fn executes_commit(&self, frame: &Frame) -> bool {
        let body = self.reader.body(frame);
        protocol::cstr(body).is_some_and(|(portal, _)| self.commit_portals.contains(portal))
    }
}

/// Upstream → client.
struct UpstreamSide<'a> {
    ctx: &'a ServerCtx,
    state: &'a State,
    reader: FrameReader,
    out: Vec<u8>,
    /// What to do with the reply being relayed.
    current: Option<Pending>,
    /// An error was relayed in the current [`Pending::Conflict`] reply.
    saw_error: bool,
}

impl fmt::Debug for UpstreamSide<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamSide")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl UpstreamSide<'_> {
    async fn run<R, W>(&mut self, upstream: &mut R, client: &mut W) -> SessionEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let mut end = None;
            loop {
                let frame = match self.reader.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        end = Some(SessionEnd::Failed(format!("upstream protocol: {e}")));
                        break;
                    }
                };
                if let Flow::End(e) = self.on_frame(frame) {
                    end = Some(e);
                    break;
                }
            }
            if !self.out.is_empty() {
                let written = async {
                    client.write_all(&self.out).await?;
                    client.flush().await
                };
                if let Err(e) = written.await {
                    return end.unwrap_or_else(|| SessionEnd::Failed(format!("client write: {e}")));
                }
                self.ctx
                    .stats
                    .counters
                    .bytes_to_clients
                    .fetch_add(self.out.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.out.clear();
            }
            if let Some(end) = end {
                return end;
            }
            match self.reader.fill(upstream).await {
                Ok(0) => return SessionEnd::UpstreamClosed,
                Ok(_) => {}
                Err(e) => return SessionEnd::Failed(format!("upstream read: {e}")),
            }
        }
    }

    fn forward(&mut self, frame: &Frame) {
        self.out.extend_from_slice(self.reader.bytes(frame));
    }

    fn on_frame(&mut self, frame: Frame) -> Flow {
        if self.current.is_none() {
            let mut shared = self.state.lock();
            self.current = shared.pending.pop_front();
            shared.responding = self.current.is_some();
        }
        let mode = self.current.unwrap_or(Pending::Forward);
        let tag = frame.tag;
        match (mode, tag) {
            (_, b'Z') => return self.on_ready(&frame, mode),
            (Pending::Forward | Pending::HideRfq, b'E') => self.forward_error(&frame),
            (Pending::Forward | Pending::HideRfq, _) => self.forward(&frame),
            (Pending::Conflict(_), b'C') => {}
            (Pending::Conflict(_), b'E') => {
                self.saw_error = true;
                self.forward_error(&frame);
            }
            (Pending::Conflict(_), _) => self.forward(&frame),
            (Pending::Swallow, b'A' | b'S') => self.forward(&frame),
            (Pending::Swallow | Pending::DropSession, _) => {}
        }
        Flow::Continue
    }

    fn on_ready(&mut self, frame: &Frame, mode: Pending) -> Flow {
        let status = self.reader.body(frame).first().copied().unwrap_or(b'I');
        let wake = {
            let mut shared = self.state.lock();
            shared.status = status;
            shared.responding = false;
            if status == b'I' {
                shared.txn_started = None;
                shared.timed_out = false;
            } else if shared.txn_started.is_none() {
                shared.txn_started = Some(Instant::now());
            }
            status != b'I' && shared.idle()
        };
        if wake {
            self.state.wake_client_side.notify_one();
        }
        self.current = None;
        match mode {
            Pending::Forward => self.forward(frame),
            Pending::HideRfq | Pending::Swallow => {}
            Pending::Conflict(kind) => {
                if !std::mem::take(&mut self.saw_error) {
                    self.emit_conflict(kind);
                }
                self.forward(frame);
            }
            Pending::DropSession => return Flow::End(SessionEnd::DroppedAtCommit),
        }
        Flow::Continue
    }

    fn emit_conflict(&mut self, kind: ConflictKind) {
        match kind {
            ConflictKind::Injected => {
                bump(&self.ctx.stats.counters.conflicts_injected);
                ErrorResponse::from_catalog(&catalog::CHANGE_CONFLICT).encode(&mut self.out);
            }
            ConflictKind::Timeout => self.timeout_error(),
        }
    }

    fn timeout_error(&mut self) {
        let detail = format!(
            "The transaction was open longer than {} s and was rolled back.",
            self.ctx.config.transaction_timeout.as_secs_f64()
        );
        ErrorResponse::from_catalog(&catalog::TRANSACTION_TIMEOUT)
            .detail(&detail)
            .encode(&mut self.out);
    }

    /// Forwards an `ErrorResponse`, rewriting conflicts to DSQL's form.
    fn forward_error(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        match protocol::error_field(body, b'C') {
            Some(b"40001" | b"40P01") => {
                let original = protocol::error_field(body, b'M')
                    .map(|m| format!("PostgreSQL reported: {}", String::from_utf8_lossy(m)))
                    .unwrap_or_default();
                bump(&self.ctx.stats.counters.conflicts_rewritten);
                tracing::debug!("serialization failure rewritten to OC000");
                let mut error = ErrorResponse::from_catalog(&catalog::CHANGE_CONFLICT);
                error.severity = Severity::Error;
                if !original.is_empty() {
                    error = error.detail(&original);
                }
                error.encode(&mut self.out);
            }
            Some(b"25P02") if self.state.lock().timed_out => self.timeout_error(),
            _ => self.forward(frame),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_commits() {
        for sql in [
            "COMMIT",
            "commit;",
            "  Commit Work ; ",
            "END",
            "end transaction",
            "COMMIT AND NO CHAIN",
        ] {
            assert!(is_commit(sql.as_bytes()), "{sql}");
        }
        for sql in [
            "",
            "ROLLBACK",
            "COMMIT PREPARED 'x'",
            "SELECT 'COMMIT'",
            "committed",
            "END; SELECT 1",
        ] {
            assert!(!is_commit(sql.as_bytes()), "{sql}");
        }
    }
}
