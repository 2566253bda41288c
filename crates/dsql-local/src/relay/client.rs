//! Client → upstream: reads the client's messages, forwards them in batches,
//! and queues a [`Request`] for every request that ends in a `ReadyForQuery`
//! (see the module docs of [`relay`](super) for the `Sync`s that do not).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::sleep;

use super::commit::StatementTracker;
use super::dialect::{ParsePlan, QueryPlan};
use super::isolation::ClientTransaction;
use super::outbox::Outbox;
use super::tags::TagEdits;
use super::{ConflictKind, Flow, Pending, Request, SessionEnd, State, sleep_until_opt};
use crate::dialect::TransactionRules;
use crate::protocol::{self, Frame, FrameReader};
use crate::server::ServerCtx;

/// Client → upstream.
pub(super) struct ClientSide<'a> {
    pub(super) ctx: &'a ServerCtx,
    pub(super) state: &'a State,
    pub(super) reader: FrameReader,
    /// Bytes to write upstream at the end of this batch.
    pub(super) out: Outbox,
    /// Inside an extended-protocol batch (since the last `Sync`).
    pub(super) batch_open: bool,
    /// Drop client messages until `Sync` (an injected conflict or failure
    /// replaced an `Execute`).
    pub(super) discard_until_sync: bool,
    /// At the next `Sync`, send `Sync` + `ROLLBACK` for an injected conflict.
    pub(super) conflict_at_sync: Option<ConflictKind>,
    /// At the next `Sync`, send `Sync`, then the isolated region's check
    /// and `COMMIT` (a `COMMIT` whose `Execute` was held back).
    pub(super) check_commit_at_sync: bool,
    /// At the next `Sync`, fail the batch with this statement (a failed
    /// `Execute`, a refused statement).
    pub(super) fail_at_sync: Option<String>,
    /// What to do with the reply to the next `Sync`.
    pub(super) sync_action: Option<Pending>,
    /// What the prepared statements and portals run.
    pub(super) statements: StatementTracker,
    /// DSQL's transaction rules, as far as the client's statements went.
    pub(super) transaction_rules: TransactionRules,
    /// Tag edits for the next simple query's reply.
    pub(super) query_tags: TagEdits,
    /// Tag edits for the current batch's reply, by `Execute`.
    pub(super) batch_tags: TagEdits,
    /// `Execute`s in the current batch.
    pub(super) batch_executes: u32,
    /// `Parse`s and `Bind`s of the client's forwarded in the current batch.
    pub(super) batch_parses: u32,
    pub(super) batch_binds: u32,
    /// How many `CopyDone` and `CopyFail` the client sent.
    copy_ends: u64,
    /// [`copy_ends`](Self::copy_ends) at the first `Execute` of the batch.
    batch_copy_start: Option<u64>,
    /// Whether a transaction is open, as far as the client's statements
    /// went (for an isolated region).
    pub(super) client_transaction: ClientTransaction,
}

impl<'a> ClientSide<'a> {
    pub(super) fn new(ctx: &'a ServerCtx, state: &'a State) -> Self {
        Self {
            ctx,
            state,
            reader: FrameReader::budgeted(ctx.config.bounds.max_message_size, ctx.memory.clone()),
            out: Outbox::new(),
            batch_open: false,
            discard_until_sync: false,
            conflict_at_sync: None,
            check_commit_at_sync: false,
            fail_at_sync: None,
            sync_action: None,
            statements: StatementTracker::default(),
            transaction_rules: TransactionRules::default(),
            query_tags: TagEdits::default(),
            batch_tags: TagEdits::default(),
            batch_executes: 0,
            batch_parses: 0,
            batch_binds: 0,
            copy_ends: 0,
            batch_copy_start: None,
            client_transaction: ClientTransaction::default(),
        }
    }

    pub(super) async fn run<R, W>(&mut self, client: &mut R, upstream: &mut W) -> SessionEnd
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
                    Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => {
                        tracing::warn!(error = %e, "session ended: message buffers over budget");
                        return SessionEnd::OutOfMemory;
                    }
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

    /// Queues the reply to a `Query` or `FunctionCall` (the client's, or one
    /// the relay adds), with the tag edits planned for it.
    pub(super) fn push(&mut self, action: Pending) {
        let request = Request {
            tags: std::mem::take(&mut self.query_tags),
            ..Request::query(action, self.copy_ends)
        };
        self.state.lock().pending.push_back(request);
    }

    /// How many `CopyDone` and `CopyFail` the client sent.
    pub(super) fn copy_ends(&self) -> u64 {
        self.copy_ends
    }

    /// Queues the reply to the client's `Sync`.
    pub(super) fn push_sync(&mut self, action: Pending) {
        self.batch_executes = 0;
        self.batch_parses = 0;
        self.batch_binds = 0;
        let request = Request {
            action,
            sync: true,
            copy_ends: self.copy_ends,
            copy_start: self.batch_copy_start.take().unwrap_or(self.copy_ends),
            tags: std::mem::take(&mut self.batch_tags),
        };
        self.state.lock().pending.push_back(request);
    }

    /// Handles every complete message in the buffer, then writes the batch.
    async fn process<W: AsyncWrite + Unpin>(&mut self, upstream: &mut W) -> Option<SessionEnd> {
        let mut end = None;
        loop {
            let frame = match self.reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    // A message over the bound ends here, its body unread
                    // and nothing reserved for it.
                    tracing::info!(error = %e, "client message refused");
                    end = Some(match e {
                        crate::protocol::ProtocolError::BadLength(len) if len > self.reader.max_len() => {
                            SessionEnd::MessageTooLarge
                        }
                        e => SessionEnd::Failed(format!("client protocol: {e}")),
                    });
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
            if let Err(e) = self.out.write_to(&self.reader, upstream).await {
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

    pub(super) fn forward(&mut self, frame: &Frame) {
        self.out.frame(&self.reader, frame);
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
            self.settle_transaction_rules();
            self.settle_isolation();
        }
        match tag {
            b'Q' => return self.on_query(&frame),
            b'P' => {
                self.batch_open = true;
                match self.plan_parse(&frame) {
                    ParsePlan::Forward { body: None, .. } => {
                        self.batch_parses += 1;
                        self.forward(&frame);
                    }
                    ParsePlan::Forward { body: Some(body), .. } => {
                        self.batch_parses += 1;
                        protocol::put_message(&mut self.out, b'P', |out| out.extend_from_slice(&body));
                    }
                    ParsePlan::Refuse { sql } => self.refuse_batch(sql),
                }
            }
            b'B' => {
                self.batch_open = true;
                self.statements.bind(self.reader.body(&frame));
                self.batch_binds += 1;
                self.forward(&frame);
            }
            b'E' => {
                self.batch_open = true;
                self.batch_copy_start.get_or_insert(self.copy_ends);
                let prepared = self.statements.executes(self.reader.body(&frame));
                if let Some(sql) = self.check_execute(prepared.kind) {
                    self.refuse_batch(sql);
                    return Flow::Continue;
                }
                if let Some(tag) = prepared.tag {
                    self.batch_tags.set(self.batch_executes, tag);
                }
                self.batch_executes += 1;
                return self.on_execute(&frame, prepared);
            }
            b'C' => {
                self.batch_open = true;
                self.statements.close(self.reader.body(&frame));
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
            // `CopyDone`, `CopyFail`: the end of a copy, if the backend is
            // in copy-in mode.
            b'c' | b'f' => {
                self.copy_ends += 1;
                self.forward(&frame);
            }
            b'X' => {
                self.forward(&frame);
                return Flow::End(SessionEnd::ClientTerminated);
            }
            _ => self.forward(&frame),
        }
        Flow::Continue
    }

    fn on_query(&mut self, frame: &Frame) -> Flow {
        match self.plan_query(frame) {
            QueryPlan::Forward { commit } => self.on_simple_statement(frame, None, commit),
            QueryPlan::Replace { sql, commit } => self.on_simple_statement(frame, Some(&sql), commit),
            QueryPlan::Refuse { sql } => {
                protocol::put_query(&mut self.out, &sql);
                self.push(Pending::Forward);
                Flow::Continue
            }
        }
    }

    /// Drops the rest of the batch (PostgreSQL skips it after an error);
    /// at its `Sync`, `sql` fails it.
    fn refuse_batch(&mut self, sql: String) {
        self.discard_until_sync = true;
        self.fail_at_sync = Some(sql);
    }

    fn on_sync(&mut self, frame: &Frame) {
        self.batch_open = false;
        self.end_batch_rules();
        if self.discard_until_sync || self.fail_at_sync.is_some() {
            self.batch_copy_start = None;
        }
        self.discard_until_sync = false;
        if let Some(sql) = self.fail_at_sync.take() {
            self.fail_batch(frame, &sql);
            return;
        }
        self.forward(frame);
        if let Some(kind) = self.conflict_at_sync.take() {
            self.push_sync(Pending::HideRfq);
            protocol::put_query(&mut self.out, "ROLLBACK");
            self.push(Pending::Conflict(kind));
        } else if std::mem::take(&mut self.check_commit_at_sync) {
            self.push_sync(Pending::HideRfq);
            self.check_commit(None);
        } else {
            let action = self.sync_action.take().unwrap_or(Pending::Forward);
            self.push_sync(action);
        }
    }
}
