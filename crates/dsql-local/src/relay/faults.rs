//! What the [`Faults`](crate::Faults) knobs (and the transaction timeout) do
//! to a statement (a `Query`, or an `Execute`): forward it, drop the session
//! before or after it, fail it, or replace a `COMMIT` by a `ROLLBACK`
//! followed by an error.
//!
//! A failed statement is replaced by [`fail_sql`], which makes the upstream
//! raise the error itself: the transaction state that follows (aborted in an
//! explicit transaction, nothing applied in autocommit) is PostgreSQL's own,
//! and so is the `ReadyForQuery` the client gets. The upstream side swaps the
//! raised error for DSQL's conflict.

use super::client::ClientSide;
use super::commit::Prepared;
use super::isolation::{self, Verdict};
use super::{ConflictKind, DropCause, Flow, Pending};
use crate::catalog;
use crate::dialect::Kind;
use crate::faults::StatementFault;
use crate::protocol::{self, Frame};
use crate::stats::bump;
use crate::{CommitDrop, StatementDrop};

/// The `DETAIL` of the error [`fail_sql`] raises, to recognize it.
pub(super) const FAIL_MARKER: &[u8] = b"dsql-local: fail_statement";

/// The statement that replaces a failed one.
pub(super) fn fail_sql() -> String {
    format!(
        "DO $dsql_local$BEGIN RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = '{}', DETAIL = '{}'; \
         END$dsql_local$",
        catalog::CHANGE_CONFLICT.code,
        catalog::CHANGE_CONFLICT.message.replace('\'', "''"),
        String::from_utf8_lossy(FAIL_MARKER),
    )
}

/// What to do with a statement.
enum Action {
    Forward,
    /// Close the session without forwarding it.
    DropBefore(DropCause),
    /// Forward it; close the session once its reply is complete.
    DropAfter(DropCause),
    /// Replace the `COMMIT` by `ROLLBACK`, then send the error.
    Conflict(ConflictKind),
    /// Replace it by [`fail_sql`].
    Fail,
    /// Replace it by the isolated region's refusal (a write in autocommit).
    RefuseWrite,
    /// Send the isolated region's check before the `COMMIT`.
    CheckCommit,
}

impl ClientSide<'_> {
    /// Counts the statement for the faults and decides what to do with it,
    /// the isolation's `verdict` included.
    fn statement_action(&self, commit: bool, verdict: Verdict) -> Action {
        let fault = self.ctx.faults.take_statement_fault();
        match fault {
            Some(StatementFault::Drop(StatementDrop::BeforeForwarding)) => {
                return Action::DropBefore(DropCause::Statement);
            }
            Some(StatementFault::Drop(StatementDrop::AfterCompletion)) => {
                return Action::DropAfter(DropCause::Statement);
            }
            Some(StatementFault::Fail) if !commit => return Action::Fail,
            Some(StatementFault::Fail) | None => {}
        }
        if verdict == Verdict::RefuseWrite {
            return Action::RefuseWrite;
        }
        if !commit {
            return Action::Forward;
        }
        let (status, idle, timed_out) = {
            let shared = self.state.lock();
            (shared.status, shared.idle(), shared.timed_out)
        };
        if timed_out {
            return Action::Conflict(ConflictKind::Timeout);
        }
        // With requests in flight the status is not known yet: assume a
        // transaction is open.
        let in_transaction = status == b'T' || (status == b'I' && !idle);
        if fault == Some(StatementFault::Fail) {
            return if in_transaction {
                Action::Conflict(ConflictKind::FailedStatement)
            } else {
                Action::Fail
            };
        }
        match verdict {
            Verdict::CheckCommit => return Action::CheckCommit,
            Verdict::FailCommit => return Action::Conflict(ConflictKind::Isolated),
            Verdict::Serve | Verdict::RefuseWrite => {}
        }
        match self.ctx.faults.take_commit_drop() {
            Some(CommitDrop::BeforeForwarding) => return Action::DropBefore(DropCause::Commit),
            Some(CommitDrop::AfterForwarding) => return Action::DropAfter(DropCause::Commit),
            None => {}
        }
        if in_transaction && self.ctx.faults.roll_conflict() {
            return Action::Conflict(ConflictKind::Injected);
        }
        Action::Forward
    }

    /// Closes the session before forwarding a statement.
    fn drop_before(&self, cause: DropCause) -> Flow {
        tracing::info!(
            ?cause,
            "fault: dropping the session before forwarding the statement"
        );
        if cause == DropCause::Statement {
            bump(&self.ctx.stats.counters.statement_drops);
        }
        Flow::End(cause.end())
    }

    /// Sends a simple-protocol `Query`: the client's, or `replacement`.
    fn send_query(&mut self, frame: &Frame, replacement: Option<&str>) {
        match replacement {
            Some(sql) => protocol::put_query(&mut self.out, sql),
            None => self.forward(frame),
        }
    }

    /// Sends the isolated region's check, then the `COMMIT`: the
    /// client's `frame` (or `COMMIT` for an `Execute` held back).
    pub(super) fn check_commit(&mut self, frame: Option<&Frame>) {
        tracing::debug!("region isolated: COMMIT checked for writes");
        protocol::put_query(&mut self.out, &isolation::check_commit_sql());
        self.push(Pending::IsolationCheck);
        match frame {
            Some(frame) => self.forward(frame),
            None => protocol::put_query(&mut self.out, "COMMIT"),
        }
        self.push(Pending::AfterIsolationCheck);
    }

    /// A simple-protocol `Query` (sent as `replacement` if given).
    pub(super) fn on_simple_statement(
        &mut self,
        frame: &Frame,
        replacement: Option<&str>,
        commit: bool,
    ) -> Flow {
        let verdict = self.isolation_of_query(frame);
        match self.statement_action(commit, verdict) {
            Action::Forward => {
                self.send_query(frame, replacement);
                self.push(Pending::Forward);
            }
            Action::DropBefore(cause) => return self.drop_before(cause),
            Action::DropAfter(cause) => {
                tracing::info!(
                    ?cause,
                    "fault: dropping the session after the statement completes"
                );
                self.send_query(frame, replacement);
                self.push(Pending::DropSession(cause));
            }
            Action::Conflict(kind) => {
                tracing::debug!(?kind, "COMMIT replaced by ROLLBACK");
                protocol::put_query(&mut self.out, "ROLLBACK");
                self.push(Pending::Conflict(kind));
            }
            Action::Fail => {
                tracing::debug!("fault: statement failed with OC000");
                protocol::put_query(&mut self.out, &fail_sql());
                self.push(Pending::FailStatement);
            }
            Action::RefuseWrite => {
                tracing::debug!("region isolated: write in autocommit refused");
                protocol::put_query(&mut self.out, &isolation::refuse_write_sql());
                self.push(Pending::FailStatement);
            }
            // A `COMMIT` alone (else the verdict fails it): the client's
            // text, whatever `replacement` DSQL's dialect made of it.
            Action::CheckCommit => self.check_commit(Some(frame)),
        }
        Flow::Continue
    }

    /// An extended-protocol `Execute` of `prepared`.
    pub(super) fn on_execute(&mut self, frame: &Frame, prepared: Prepared) -> Flow {
        let verdict = self.isolation_of_execute(prepared);
        match self.statement_action(prepared.kind == Kind::Commit, verdict) {
            Action::Forward => self.forward(frame),
            Action::DropBefore(cause) => return self.drop_before(cause),
            Action::DropAfter(cause) => {
                tracing::info!(
                    ?cause,
                    "fault: dropping the session after the statement completes"
                );
                self.forward(frame);
                self.sync_action = Some(Pending::DropSession(cause));
            }
            // The upstream transaction is already aborted: its COMMIT rolls
            // back; only the reply changes.
            Action::Conflict(ConflictKind::Timeout) => {
                self.forward(frame);
                self.sync_action = Some(Pending::Conflict(ConflictKind::Timeout));
            }
            // Drop the Execute and the rest of the batch; at Sync, roll back.
            Action::Conflict(kind) => {
                tracing::debug!(?kind, "extended-protocol COMMIT replaced by ROLLBACK");
                self.discard_until_sync = true;
                self.conflict_at_sync = Some(kind);
            }
            // Drop the Execute and the rest of the batch (PostgreSQL skips
            // them after an error); at Sync, fail.
            Action::Fail => {
                tracing::debug!("fault: extended-protocol statement failed with OC000");
                self.discard_until_sync = true;
                self.fail_at_sync = Some(fail_sql());
            }
            Action::RefuseWrite => {
                tracing::debug!("region isolated: extended-protocol write in autocommit refused");
                self.discard_until_sync = true;
                self.fail_at_sync = Some(isolation::refuse_write_sql());
            }
            // Drop the Execute and the rest of the batch; at Sync, check
            // and commit.
            Action::CheckCommit => {
                self.discard_until_sync = true;
                self.check_commit_at_sync = true;
            }
        }
        Flow::Continue
    }

    /// Ends a batch whose `Execute` failed (or that a refusal ends): `sql`
    /// ([`fail_sql`], a refusal) runs as one more statement of the batch
    /// (unnamed `Parse`, `Bind`, `Execute`), so that the batch fails as a
    /// whole, as it would have in PostgreSQL: if an earlier message failed
    /// already, PostgreSQL skips it as the rest; either way the client's
    /// `Sync` gets the one `ReadyForQuery`.
    pub(super) fn fail_batch(&mut self, sync: &Frame, sql: &str) {
        protocol::put_message(&mut self.out, b'P', |out| {
            protocol::put_cstr(out, b"");
            protocol::put_cstr(out, sql.as_bytes());
            out.extend_from_slice(&0_u16.to_be_bytes());
        });
        protocol::put_message(&mut self.out, b'B', |out| {
            protocol::put_cstr(out, b"");
            protocol::put_cstr(out, b"");
            out.extend_from_slice(&[0; 6]);
        });
        protocol::put_message(&mut self.out, b'E', |out| {
            protocol::put_cstr(out, b"");
            out.extend_from_slice(&0_u32.to_be_bytes());
        });
        self.forward(sync);
        let action = Pending::FailBatch {
            parses: self.batch_parses,
            binds: self.batch_binds,
        };
        self.push_sync(action);
    }
}
