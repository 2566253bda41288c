//! Upstream → client: relays each reply as its [`Pending`] entry says,
//! follows the transaction status and copy-in mode (which makes PostgreSQL
//! ignore `Sync`s: see the module docs of [`relay`](super)), and rewrites
//! PostgreSQL's serialization failures and deadlocks to DSQL's `OC000`
//! conflict (and, in the never-wait mode, its lock timeouts: see
//! [`rewrites_conflict`]).

use std::fmt;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::dialect::REFUSAL_MARKER;
use super::faults::FAIL_MARKER;
use super::isolation::{COMMIT_DETAIL, ISOLATION_MARKER, WRITE_DETAIL};
use super::outbox::Outbox;
use super::{ConflictKind, DropCause, Flow, Pending, Request, SessionEnd, State};
use crate::catalog::{self, Severity};
use crate::protocol::{self, ErrorResponse, Frame, FrameReader};
use crate::registry::SessionCtl;
use crate::server::ServerCtx;
use crate::stats::bump;

/// Upstream → client.
pub(super) struct UpstreamSide<'a> {
    ctx: &'a ServerCtx,
    state: &'a State,
    /// The session's control: whether a client's cancel was relayed to it.
    ctl: &'a SessionCtl,
    reader: FrameReader,
    out: Outbox,
    /// The request whose reply is being relayed.
    current: Option<Request>,
    /// The backend entered copy-in (or copy-both) mode in the current reply.
    copy_in: bool,
    /// An error was relayed in the current [`Pending::Conflict`] reply.
    saw_error: bool,
    /// The last [`Pending::IsolationCheck`] raised: the transaction wrote,
    /// and the `COMMIT` after it rolls back.
    commit_refused: bool,
    /// `ParseComplete`s and `BindComplete`s seen in the current
    /// [`Pending::FailBatch`] reply.
    parse_completes: u32,
    bind_completes: u32,
    /// Completions (`CommandComplete`, `PortalSuspended`,
    /// `EmptyQueryResponse`) seen in the current reply, for its tag edits.
    completions: u32,
}

impl fmt::Debug for UpstreamSide<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamSide")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl<'a> UpstreamSide<'a> {
    pub(super) fn new(
        ctx: &'a ServerCtx,
        state: &'a State,
        ctl: &'a SessionCtl,
        mut reader: FrameReader,
    ) -> Self {
        // A client can make the upstream send large rows: they count too.
        reader.charge_to(ctx.memory.clone());
        Self {
            ctx,
            state,
            ctl,
            reader,
            out: Outbox::new(),
            current: None,
            copy_in: false,
            saw_error: false,
            commit_refused: false,
            parse_completes: 0,
            bind_completes: 0,
            completions: 0,
        }
    }

    pub(super) async fn run<R, W>(&mut self, upstream: &mut R, client: &mut W) -> SessionEnd
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
                    self.out.write_to(&self.reader, client).await?;
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
                Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                    tracing::warn!(error = %e, "session ended: message buffers over budget");
                    return SessionEnd::OutOfMemory;
                }
                Err(e) => return SessionEnd::Failed(format!("upstream read: {e}")),
            }
        }
    }

    fn forward(&mut self, frame: &Frame) {
        self.out.frame(&self.reader, frame);
    }

    /// Forwards a statement's completion, with the tag DSQL gives it.
    fn forward_completion(&mut self, frame: &Frame) {
        let index = self.completions;
        self.completions += 1;
        let edit = self.current.and_then(|r| r.tags.get(index));
        match edit {
            Some(tag) if frame.tag == b'C' => {
                protocol::put_message(&mut self.out, b'C', |out| {
                    out.extend_from_slice(tag.as_bytes());
                    out.push(0);
                });
            }
            _ => self.forward(frame),
        }
    }

    fn on_frame(&mut self, frame: Frame) -> Flow {
        if self.current.is_none() {
            let mut shared = self.state.lock();
            self.current = shared.pending.pop_front();
            shared.responding = self.current.is_some();
            self.completions = 0;
            self.parse_completes = 0;
            self.bind_completes = 0;
        }
        let mode = self.current.map_or(Pending::Forward, |r| r.action);
        let tag = frame.tag;
        if matches!(tag, b'G' | b'W') {
            self.copy_in = true;
        }
        match (mode, tag) {
            (_, b'Z') => return self.on_ready(&frame, mode),
            (Pending::FailStatement | Pending::FailBatch { .. }, b'E') => self.on_failure(&frame),
            // The relay's own `Parse` and `Bind`, past the client's.
            (Pending::FailBatch { parses, .. }, b'1') => {
                self.parse_completes += 1;
                if self.parse_completes <= parses {
                    self.forward(&frame);
                }
            }
            (Pending::FailBatch { binds, .. }, b'2') => {
                self.bind_completes += 1;
                if self.bind_completes <= binds {
                    self.forward(&frame);
                }
            }
            (Pending::FailBatch { .. }, b'C' | b's' | b'I') => self.forward_completion(&frame),
            (Pending::Forward | Pending::HideRfq, b'E') => self.forward_error(&frame),
            (Pending::Forward | Pending::HideRfq, b'C' | b's' | b'I') => self.forward_completion(&frame),
            (Pending::Forward | Pending::HideRfq, _) => self.forward(&frame),
            (Pending::Conflict(_), b'C') => {}
            (Pending::Conflict(_), b'E') => {
                self.saw_error = true;
                self.forward_error(&frame);
            }
            (Pending::Conflict(_) | Pending::FailStatement | Pending::FailBatch { .. }, _) => {
                self.forward(&frame);
            }
            (Pending::IsolationCheck, b'E') => self.on_isolation_check(&frame),
            (Pending::AfterIsolationCheck, b'E') if !self.commit_refused => self.forward_error(&frame),
            (Pending::AfterIsolationCheck, b'C' | b's' | b'I') if !self.commit_refused => {
                self.forward_completion(&frame)
            }
            (Pending::Swallow | Pending::IsolationCheck | Pending::AfterIsolationCheck, b'A' | b'S') => {
                self.forward(&frame)
            }
            (Pending::AfterIsolationCheck, _) if !self.commit_refused => self.forward(&frame),
            (Pending::IsolationCheck | Pending::AfterIsolationCheck, _) => {}
            // The statement completes only once the client sent its data.
            (Pending::DropSession(_), b'G' | b'W') => self.forward(&frame),
            (Pending::Swallow | Pending::DropSession(_), _) => {}
        }
        Flow::Continue
    }

    fn on_ready(&mut self, frame: &Frame, mode: Pending) -> Flow {
        let status = self.reader.body(frame).first().copied().unwrap_or(b'I');
        let mut mode = mode;
        let wake = {
            let mut shared = self.state.lock();
            if std::mem::take(&mut self.copy_in)
                && let Some(current) = self.current
            {
                mode = skip_ignored_syncs(&mut shared.pending, current, mode);
            }
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
            Pending::HideRfq | Pending::Swallow | Pending::IsolationCheck => {}
            Pending::AfterIsolationCheck => {
                self.commit_refused = false;
                self.forward(frame);
            }
            Pending::Conflict(kind) => {
                if !std::mem::take(&mut self.saw_error) {
                    self.emit_conflict(kind);
                }
                self.forward(frame);
            }
            Pending::FailStatement | Pending::FailBatch { .. } => self.forward(frame),
            Pending::DropSession(cause) => {
                if cause == DropCause::Statement {
                    bump(&self.ctx.stats.counters.statement_drops);
                }
                return Flow::End(cause.end());
            }
        }
        Flow::Continue
    }

    fn emit_conflict(&mut self, kind: ConflictKind) {
        match kind {
            ConflictKind::Injected => {
                bump(&self.ctx.stats.counters.conflicts_injected);
                ErrorResponse::from_catalog(&catalog::CHANGE_CONFLICT).encode(&mut self.out);
            }
            ConflictKind::FailedStatement => {
                bump(&self.ctx.stats.counters.statements_failed);
                ErrorResponse::from_catalog(&catalog::CHANGE_CONFLICT).encode(&mut self.out);
            }
            ConflictKind::Timeout => self.timeout_error(),
            ConflictKind::Isolated => self.isolation_error(COMMIT_DETAIL),
        }
    }

    /// DSQL's error for what an isolated region cannot commit.
    fn isolation_error(&mut self, detail: &str) {
        bump(&self.ctx.stats.counters.commits_failed_by_isolation);
        ErrorResponse::from_catalog(&catalog::REGION_ISOLATED_COMMIT)
            .detail(detail)
            .encode(&mut self.out);
    }

    /// An error in the reply to an isolated region's check before a
    /// `COMMIT`. `25P02`: the transaction was aborted already, and the
    /// `COMMIT` answers as PostgreSQL does (`ROLLBACK`). Any other error,
    /// the one the check raises when the transaction wrote first, aborted
    /// the transaction: the `COMMIT` rolls it back, and DSQL's error says
    /// so (a bare `ROLLBACK` would read as a success).
    fn on_isolation_check(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        if protocol::error_field(body, b'C') == Some(b"25P02") {
            return;
        }
        if protocol::error_field(body, b'D') != Some(ISOLATION_MARKER) {
            tracing::warn!(
                code = ?protocol::error_field(body, b'C').map(String::from_utf8_lossy),
                "region isolated: the COMMIT check failed; the transaction is rolled back"
            );
        }
        self.commit_refused = true;
        self.isolation_error(COMMIT_DETAIL);
    }

    /// An error in the reply to a failed statement's replacement: DSQL's
    /// conflict if it is the one the replacement raised, else (an earlier
    /// error, or an aborted transaction) forwarded as any error.
    fn on_failure(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        let raised = protocol::error_field(body, b'C') == Some(catalog::CHANGE_CONFLICT.code.as_bytes())
            && protocol::error_field(body, b'D') == Some(FAIL_MARKER);
        if raised {
            bump(&self.ctx.stats.counters.statements_failed);
            ErrorResponse::from_catalog(&catalog::CHANGE_CONFLICT).encode(&mut self.out);
        } else if protocol::error_field(body, b'D') == Some(ISOLATION_MARKER) {
            self.isolation_error(WRITE_DETAIL);
        } else {
            self.forward_error(frame);
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

    /// Forwards an `ErrorResponse`, rewriting conflicts to DSQL's form and
    /// refusals to DSQL's words alone.
    fn forward_error(&mut self, frame: &Frame) {
        let body = self.reader.body(frame);
        if protocol::error_field(body, b'D') == Some(REFUSAL_MARKER) {
            let field = |kind| {
                protocol::error_field(body, kind)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .unwrap_or_default()
            };
            ErrorResponse {
                severity: Severity::Error,
                code: field(b'C'),
                message: field(b'M'),
                detail: None,
                hint: None,
            }
            .encode(&mut self.out);
            bump(&self.ctx.stats.counters.statements_refused);
            return;
        }
        let never_wait = self.ctx.config.never_wait.is_some();
        // Read only for a `57014`, the one code that needs it.
        let cancel_relayed = || self.ctl.cancel_relayed();
        match protocol::error_field(body, b'C') {
            code if rewrites_conflict(body, never_wait, cancel_relayed) => {
                let original = protocol::error_field(body, b'M')
                    .map(|m| format!("PostgreSQL reported: {}", String::from_utf8_lossy(m)))
                    .unwrap_or_default();
                bump(&self.ctx.stats.counters.conflicts_rewritten);
                tracing::debug!(
                    code = ?code.map(String::from_utf8_lossy),
                    "conflict rewritten to OC000"
                );
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

/// PostgreSQL's message for a statement canceled by a cancel request (or by
/// its lock-timeout race: see [`rewrites_conflict`]).
const USER_CANCEL_MESSAGE: &[u8] = b"canceling statement due to user request";

/// Whether an error with this body is a conflict to rewrite to DSQL's:
///
/// - `40001` (serialization failure) and `40P01` (deadlock): always;
/// - `55P03` (lock_not_available): only in the never-wait mode, where it
///   comes from the `lock_timeout` dsql-local sets; elsewhere it is a
///   `NOWAIT` the client asked for;
/// - `57014` "canceling statement due to user request": only in the
///   never-wait mode, and only if no cancel request was ever relayed to the
///   session (`cancel_relayed` says; it is asked only then). PostgreSQL 15
///   has a race between the `lock_timeout` interrupt and the lock being
///   granted: about once in 20,000 lock timeouts, milliseconds after one on
///   the same backend, it reports a lock timeout as this cancel although no
///   cancel request exists. DSQL never sends it, so it is the conflict the
///   lock timeout stands for. A client's real cancel must still come back as
///   `57014`; a cancel sent for one statement may land in the next one, so
///   rather than guess which statement it was meant for, one relayed cancel
///   turns this rewrite off for the rest of the session. Other `57014`s
///   (e.g. "canceling statement due to statement timeout") are left alone.
pub(super) fn rewrites_conflict(
    body: &[u8],
    never_wait: bool,
    cancel_relayed: impl FnOnce() -> bool,
) -> bool {
    match protocol::error_field(body, b'C') {
        Some(b"40001" | b"40P01") => true,
        Some(b"55P03") => never_wait,
        Some(b"57014") => {
            never_wait && protocol::error_field(body, b'M') == Some(USER_CANCEL_MESSAGE) && !cancel_relayed()
        }
        _ => false,
    }
}

/// At the `ReadyForQuery` of a reply in which the backend entered copy-in
/// mode: drops the `Sync`s PostgreSQL ignored (those sent before the copy's
/// end, including `current` if it is one), and returns what to do with the
/// `ReadyForQuery`, which answers `current` if it is a `Query`, else the first
/// request after the copy's end.
pub(super) fn skip_ignored_syncs(
    pending: &mut std::collections::VecDeque<Request>,
    current: Request,
    mut mode: Pending,
) -> Pending {
    // The client's first copy end after the copy began ends it.
    let ignored = |r: &Request| r.sync && r.copy_ends <= current.copy_start;
    while let Some(next) = pending.front().filter(|r| ignored(r)).copied() {
        pending.pop_front();
        tracing::trace!(?next, "Sync ignored in copy-in mode");
        mode = mode.merge(next.action);
    }
    if ignored(&current)
        && let Some(answered) = pending.pop_front()
    {
        mode = mode.merge(answered.action);
    }
    mode
}
