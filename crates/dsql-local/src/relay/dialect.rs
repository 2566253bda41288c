//! DSQL's dialect in the relay (client side): statements DSQL refuses, and
//! those its transaction rules refuse, are replaced by [`refusal_sql`],
//! which makes PostgreSQL raise DSQL's error itself. So the transaction
//! state that follows is PostgreSQL's own, as DSQL's is: an explicit
//! transaction is aborted (`25P02` afterwards, `COMMIT` answered
//! `ROLLBACK`), the rest of a multi-statement query is not run, autocommit
//! goes on unharmed. The upstream side strips what PL/pgSQL adds to the
//! error (context, the marker), so the client sees DSQL's words only.
//!
//! - A simple query is checked whole, in order: the statements before the
//!   first refused one are sent, the refused one is replaced, the rest
//!   dropped (PostgreSQL would skip them after the error anyway).
//! - In the extended protocol, the statement is read at `Parse` (a refused
//!   one is never prepared), and the transaction rules apply at `Execute`.
//!   Either way the batch fails up to its `Sync`, as PostgreSQL fails it.

use crate::dialect::{Dialect, Kind, Refusal};
use crate::protocol::{self, Frame};
use crate::server::ServerCtx;

use super::client::ClientSide;
use super::commit::{Prepared, is_commit};
use super::tags::TagEdits;

/// The `DETAIL` of the errors [`refusal_sql`] raises, to recognize them.
pub(super) const REFUSAL_MARKER: &[u8] = crate::dialect::REFUSAL_MARKER.as_bytes();

/// A statement that makes PostgreSQL raise `refusal`.
pub(super) fn refusal_sql(refusal: &Refusal) -> String {
    // The message may carry a name from the client's SQL: quote it so that
    // it can only be a string.
    let message = refusal.message.replace('\'', "''");
    let mut tag = String::from("dsql_local");
    while message.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!(
        "DO ${tag}$BEGIN RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = '{message}', DETAIL = '{}'; \
         END${tag}$",
        refusal.code(),
        crate::dialect::REFUSAL_MARKER,
    )
}

/// A `Parse` body: statement name, text, then the client's parameter types.
fn parse_body(name: &[u8], text: &str, params: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(name.len() + text.len() + params.len() + 2);
    body.extend_from_slice(name);
    body.push(0);
    body.extend_from_slice(text.as_bytes());
    body.push(0);
    body.extend_from_slice(params);
    body
}

fn dsql(ctx: &ServerCtx) -> bool {
    ctx.config.dialect == Dialect::Dsql
}

/// What a prepared statement runs, without DSQL's dialect (nothing is
/// parsed): a `COMMIT` for the commit faults, and its first keyword's
/// transaction control and writes for an isolated region
/// ([`by_keyword`](crate::dialect::by_keyword); one statement, as a
/// `Parse` holds).
fn prepared_by_keyword(sql: &[u8]) -> Prepared {
    let (kind, writes) = match crate::dialect::by_keyword(sql).as_slice() {
        [one] => *one,
        _ => (Kind::Neutral, false),
    };
    Prepared {
        // `is_commit` is the faults' own test: keep it theirs.
        kind: if is_commit(sql) {
            Kind::Commit
        } else if kind == Kind::Commit {
            Kind::Neutral
        } else {
            kind
        },
        tag: None,
        writes,
    }
}

/// What becomes of a simple query.
pub(super) enum QueryPlan {
    /// Send it as is; `commit`: it holds a `COMMIT`.
    Forward { commit: bool },
    /// Send this text instead (DSQL's `ASYNC` removed).
    Replace { sql: String, commit: bool },
    /// Send this text instead: it ends with a refusal.
    Refuse { sql: String },
}

/// What becomes of a `Parse`.
pub(super) enum ParsePlan {
    /// Send it (or this body instead).
    Forward { body: Option<Vec<u8>> },
    /// Do not prepare it: fail the batch with this statement.
    Refuse { sql: String },
}

impl ClientSide<'_> {
    fn dsql(&self) -> bool {
        dsql(self.ctx)
    }

    /// At the start of a request: if the backend is idle outside any
    /// transaction with nothing in flight (e.g. after a `BEGIN` that
    /// failed), the rules start afresh.
    pub(super) fn settle_transaction_rules(&mut self) {
        if !self.dsql() {
            return;
        }
        let idle = {
            let shared = self.state.lock();
            shared.idle() && shared.status == b'I'
        };
        if idle {
            self.transaction_rules.reset();
        }
    }

    /// Plans a simple query.
    pub(super) fn plan_query(&mut self, frame: &Frame) -> QueryPlan {
        let body = self.reader.body(frame);
        let sql = protocol::cstr(body).map_or(&b""[..], |(sql, _)| sql);
        let text = match std::str::from_utf8(sql) {
            Ok(text) if dsql(self.ctx) => text,
            _ => {
                return QueryPlan::Forward {
                    commit: is_commit(sql),
                };
            }
        };
        let analysis = self.ctx.sql_rules.analyze(text);
        let sent = analysis.upstream_text.as_deref().unwrap_or(text);
        let mut out = String::new();
        let mut copied = 0;
        let mut tags = TagEdits::default();
        let mut refused = false;
        for (index, statement) in (0_u32..).zip(&analysis.statements) {
            let refusal = match &statement.refusal {
                Some(refusal) => Some(refusal.clone()),
                None => self.transaction_rules.admit(statement.kind),
            };
            let before = sent.get(copied..statement.start).unwrap_or_default();
            if let Some(refusal) = refusal {
                tracing::debug!(rule = refusal.rule.id, "statement refused");
                out.push_str(before);
                out.push_str(&refusal_sql(&refusal));
                refused = true;
                break;
            }
            if let Some(rewrite) = &statement.rewrite {
                out.push_str(before);
                out.push_str(rewrite);
                copied = statement.end;
            }
            if let Some(tag) = statement.tag {
                tags.set(index, tag);
            }
        }
        self.transaction_rules.end_implicit();
        self.query_tags = tags;
        if refused {
            return QueryPlan::Refuse { sql: out };
        }
        let commit = analysis.commits() || (!analysis.parsed && is_commit(sql));
        if copied == 0 && analysis.upstream_text.is_none() {
            return QueryPlan::Forward { commit };
        }
        out.push_str(sent.get(copied..).unwrap_or_default());
        QueryPlan::Replace { sql: out, commit }
    }

    /// Plans a `Parse` and records what its statement is.
    pub(super) fn plan_parse(&mut self, frame: &Frame) -> ParsePlan {
        let body = self.reader.body(frame);
        let Some((name, rest)) = protocol::cstr(body) else {
            return ParsePlan::Forward { body: None };
        };
        let Some((sql, params)) = protocol::cstr(rest) else {
            return ParsePlan::Forward { body: None };
        };
        let commit_kind = || Prepared {
            kind: if is_commit(sql) {
                Kind::Commit
            } else {
                Kind::Neutral
            },
            tag: None,
            writes: false,
        };
        let text = match std::str::from_utf8(sql) {
            Ok(text) if self.dsql() => text,
            _ => {
                self.statements.parse(name, prepared_by_keyword(sql));
                return ParsePlan::Forward { body: None };
            }
        };
        let analysis = self.ctx.sql_rules.analyze(text);
        // Several statements cannot be prepared, and text that does not
        // parse is PostgreSQL's to refuse (without DSQL's `ASYNC`).
        let [statement] = analysis.statements.as_slice() else {
            self.statements.parse(name, commit_kind());
            let body = analysis
                .upstream_text
                .as_deref()
                .map(|text| parse_body(name, text, params));
            return ParsePlan::Forward { body };
        };
        if let Some(refusal) = &statement.refusal {
            tracing::debug!(rule = refusal.rule.id, "statement refused at Parse");
            self.statements.parse(name, Prepared::default());
            return ParsePlan::Refuse {
                sql: refusal_sql(refusal),
            };
        }
        self.statements.parse(
            name,
            Prepared {
                kind: statement.kind,
                tag: statement.tag,
                writes: statement.writes,
            },
        );
        let replaced = statement
            .rewrite
            .clone()
            .or_else(|| analysis.upstream_text.clone());
        let body = replaced.map(|replaced| parse_body(name, &replaced, params));
        ParsePlan::Forward { body }
    }

    /// Checks an `Execute` of a statement of `kind` against the transaction
    /// rules: the statement that fails the batch if refused.
    pub(super) fn check_execute(&mut self, kind: Kind) -> Option<String> {
        if !self.dsql() {
            return None;
        }
        let refusal = self.transaction_rules.admit(kind)?;
        tracing::debug!(rule = refusal.rule.id, "statement refused at Execute");
        Some(refusal_sql(&refusal))
    }

    /// The end of an extended-protocol batch.
    pub(super) fn end_batch_rules(&mut self) {
        if self.dsql() {
            self.transaction_rules.end_implicit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::rules;

    #[test]
    fn refusal_sql_quotes_whatever_the_message_carries() {
        let refusal = rules::IDENTITY_TYPE
            .refuse_naming("x'$dsql_local$; DROP TABLE t; --")
            .expect("refused");
        let sql = refusal_sql(&refusal);
        assert!(sql.starts_with("DO $dsql_local_$BEGIN"), "{sql}");
        assert!(
            sql.contains("MESSAGE = 'datatype x''$dsql_local$; DROP TABLE t; --"),
            "{sql}"
        );
        assert!(sql.ends_with("END$dsql_local_$"), "{sql}");
    }
}
