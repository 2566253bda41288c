//! What a region isolated from its peers does to a session's statements
//! when it cannot commit ([`IsolatedCommits::Fail`](crate::IsolatedCommits::Fail)):
//!
//! - a write in autocommit is replaced by [`refuse_write_sql`], which makes
//!   PostgreSQL raise the error itself, so that nothing of it is applied and
//!   the session goes on (as for [`Faults::fail_statement`](crate::Faults::fail_statement));
//! - a `COMMIT` sent alone is preceded by [`check_commit_sql`], which raises
//!   the error only if the transaction took a transaction id (it wrote):
//!   the transaction is then aborted, so the client's own `COMMIT` rolls it
//!   back, and the upstream side answers the error instead of `ROLLBACK`; a
//!   read-only transaction commits;
//! - a `COMMIT` sent with other statements in one simple query, after a
//!   write or in a transaction opened before, is replaced by `ROLLBACK` and
//!   the error, as an injected conflict is.
//!
//! Whether a statement runs in autocommit is followed from the client's
//! own statements ([`ClientTransaction`]), since a pipelining client sends
//! them before the backend reports its status.

use super::client::ClientSide;
use super::commit::{Prepared, is_commit};
use crate::catalog;
use crate::dialect::{Dialect, Kind};
use crate::protocol::{self, Frame};

/// The `DETAIL` of the errors raised for an isolated region, to recognize
/// them.
pub(super) const ISOLATION_MARKER: &[u8] = b"dsql-local: region isolated";

/// The `DETAIL` the client gets with a refused `COMMIT`.
pub(super) const COMMIT_DETAIL: &str = "The transaction was rolled back.";
/// The `DETAIL` the client gets with a refused write in autocommit.
pub(super) const WRITE_DETAIL: &str = "The statement was not applied.";

fn raise() -> String {
    let error = &catalog::REGION_ISOLATED_COMMIT;
    format!(
        "RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = '{}', DETAIL = '{}';",
        error.code,
        error.message.replace('\'', "''"),
        String::from_utf8_lossy(ISOLATION_MARKER),
    )
}

/// The statement that replaces a write in autocommit.
pub(super) fn refuse_write_sql() -> String {
    format!("DO $dsql_local$BEGIN {} END$dsql_local$", raise())
}

/// The statement sent before a `COMMIT`: raises if the transaction wrote.
/// `txid_current_if_assigned()` (PostgreSQL 10 and later) takes no id
/// itself.
pub(super) fn check_commit_sql() -> String {
    format!(
        "DO $dsql_local$BEGIN IF txid_current_if_assigned() IS NOT NULL THEN {} END IF; \
         END$dsql_local$",
        raise()
    )
}

/// What the isolation does to a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing: the region is not isolated, or the statement needs no
    /// commit.
    Serve,
    /// A write in autocommit: fail it, unapplied.
    RefuseWrite,
    /// A `COMMIT` alone: check upstream whether the transaction wrote.
    CheckCommit,
    /// A `COMMIT` among other statements that may commit a write: roll back.
    FailCommit,
}

/// Whether the client's transaction is open, as far as its statements went.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ClientTransaction {
    open: bool,
}

impl ClientTransaction {
    /// The verdict on statements sent together (a simple query's, in order),
    /// following the transaction through them. A `COMMIT` alone is always
    /// checked: that costs a round trip, and is right whatever the state.
    fn verdict(&mut self, statements: &[(Kind, bool)]) -> Verdict {
        if let [(Kind::Commit, _)] = statements {
            self.open = false;
            return Verdict::CheckCommit;
        }
        // A transaction open before may have written.
        let mut wrote = self.open;
        let mut verdict = Verdict::Serve;
        for &(kind, writes) in statements {
            match kind {
                Kind::Begin if !self.open => {
                    self.open = true;
                    wrote = false;
                }
                Kind::Commit | Kind::Chain if self.open && wrote => verdict = Verdict::FailCommit,
                Kind::Commit | Kind::Rollback => {
                    self.open = false;
                    wrote = false;
                }
                _ if writes && !self.open => return Verdict::RefuseWrite,
                _ => wrote |= writes,
            }
            if verdict == Verdict::FailCommit {
                return verdict;
            }
        }
        verdict
    }
}

impl ClientSide<'_> {
    /// At the start of a request with nothing in flight, the backend's
    /// status says whether a transaction is open.
    pub(super) fn settle_isolation(&mut self) {
        let shared = self.state.lock();
        if shared.idle() {
            self.client_transaction = ClientTransaction {
                open: shared.status != b'I',
            };
        }
    }

    fn isolated(&self) -> bool {
        self.ctx.faults.commits_fail()
    }

    /// The verdict on a simple query.
    pub(super) fn isolation_of_query(&mut self, frame: &Frame) -> Verdict {
        if !self.isolated() {
            return Verdict::Serve;
        }
        let body = self.reader.body(frame);
        let sql = protocol::cstr(body).map_or(&b""[..], |(sql, _)| sql);
        let statements: Vec<(Kind, bool)> = match std::str::from_utf8(sql) {
            Ok(text) if self.ctx.config.dialect == Dialect::Dsql => {
                // Read already by the dialect: from its cache.
                let analysis = self.ctx.sql_rules.analyze(text);
                if analysis.parsed {
                    analysis.statements.iter().map(|s| (s.kind, s.writes)).collect()
                } else if is_commit(sql) {
                    vec![(Kind::Commit, false)]
                } else {
                    // PostgreSQL refuses it: nothing to commit.
                    Vec::new()
                }
            }
            _ => crate::dialect::by_keyword(sql),
        };
        self.client_transaction.verdict(&statements)
    }

    /// The verdict on an `Execute` of `prepared`.
    pub(super) fn isolation_of_execute(&mut self, prepared: Prepared) -> Verdict {
        if !self.isolated() {
            return Verdict::Serve;
        }
        self.client_transaction
            .verdict(&[(prepared.kind, prepared.writes)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    fn verdict(open: bool, statements: &[(Kind, bool)]) -> (Verdict, bool) {
        let mut txn = ClientTransaction { open };
        let verdict = txn.verdict(statements);
        (verdict, txn.open)
    }

    #[test]
    fn writes_in_autocommit_are_refused_and_commits_of_writes_fail() {
        let write = (Dml, true);
        let read = (Dml, false);
        assert_eq!(verdict(false, &[read]), (Verdict::Serve, false));
        assert_eq!(verdict(false, &[write]).0, Verdict::RefuseWrite);
        assert_eq!(verdict(true, &[write]), (Verdict::Serve, true));
        assert_eq!(verdict(true, &[(Commit, false)]), (Verdict::CheckCommit, false));
        assert_eq!(verdict(false, &[(Commit, false)]).0, Verdict::CheckCommit);
        // One simple query.
        assert_eq!(
            verdict(false, &[(Begin, false), write, (Commit, false)]).0,
            Verdict::FailCommit
        );
        assert_eq!(
            verdict(false, &[(Begin, false), read, (Commit, false)]),
            (Verdict::Serve, false)
        );
        assert_eq!(
            verdict(true, &[read, (Commit, false)]).0,
            Verdict::FailCommit,
            "a transaction opened before may have written"
        );
        assert_eq!(
            verdict(false, &[(Begin, false), write, (Rollback, false), write]).0,
            Verdict::RefuseWrite
        );
        assert_eq!(verdict(false, &[read, write]).0, Verdict::RefuseWrite);
        assert_eq!(
            verdict(false, &[(Begin, false), write, (Chain, false)]).0,
            Verdict::FailCommit
        );
        assert_eq!(verdict(false, &[(Begin, false)]), (Verdict::Serve, true));
    }

    #[test]
    fn the_raised_errors_carry_the_marker() {
        for sql in [refuse_write_sql(), check_commit_sql()] {
            assert!(sql.contains("dsql-local: region isolated"), "{sql}");
            assert!(sql.contains(catalog::REGION_ISOLATED_COMMIT.code), "{sql}");
            assert!(sql.starts_with("DO $dsql_local$") && sql.ends_with("END$dsql_local$"));
        }
    }
}
