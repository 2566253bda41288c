//! Recognizing `COMMIT` (and, under DSQL's dialect, DDL and DML): in a simple
//! query's text, and in the extended protocol through the prepared
//! statements and portals that stand for one.

use std::collections::HashMap;

use crate::dialect::Kind;
use crate::protocol;

/// Whether `sql` is a `COMMIT` (or `END`): not `COMMIT PREPARED`, and not
/// `COMMIT AND CHAIN`, which starts a new transaction at once (the relay's
/// commit faults would end it).
pub(super) fn is_commit(sql: &[u8]) -> bool {
    let mut words = sql
        .split(|b| b.is_ascii_whitespace() || *b == b';')
        .filter(|w| !w.is_empty())
        .peekable();
    let is = |word: Option<&&[u8]>, expected: &[u8]| word.is_some_and(|w| w.eq_ignore_ascii_case(expected));
    if !(is(words.peek(), b"commit") || is(words.peek(), b"end")) {
        return false;
    }
    words.next();
    if is(words.peek(), b"work") || is(words.peek(), b"transaction") {
        words.next();
    }
    if is(words.peek(), b"and") {
        words.next();
        // Only `AND NO CHAIN`.
        if !is(words.next().as_ref(), b"no") || !is(words.next().as_ref(), b"chain") {
            return false;
        }
    }
    words.next().is_none()
}

/// What a prepared statement (or a portal) runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Prepared {
    pub(super) kind: Kind,
    /// The command tag DSQL answers it with, when it differs from
    /// PostgreSQL's (asynchronous DDL).
    pub(super) tag: Option<&'static str>,
    /// It writes (or may): an isolated region fails it in autocommit.
    pub(super) writes: bool,
}

/// What each name (of a prepared statement or a portal) stands for; the
/// unnamed one (`""`) is replaced at every use.
#[derive(Default)]
struct Names {
    unnamed: Prepared,
    named: HashMap<Vec<u8>, Prepared>,
}

impl Names {
    fn set(&mut self, name: &[u8], prepared: Prepared) {
        if name.is_empty() {
            self.unnamed = prepared;
        } else if prepared != Prepared::default() {
            self.named.insert(name.to_vec(), prepared);
        } else if !self.named.is_empty() {
            self.named.remove(name);
        }
    }

    fn get(&self, name: &[u8]) -> Prepared {
        if name.is_empty() {
            self.unnamed
        } else {
            self.named.get(name).copied().unwrap_or_default()
        }
    }
}

/// Follows `Parse`, `Bind` and `Close` to know what an `Execute` runs: a
/// `COMMIT` (for the commit faults), DDL or DML (for DSQL's transaction
/// rules).
#[derive(Default)]
pub(super) struct StatementTracker {
    statements: Names,
    portals: Names,
}

impl StatementTracker {
    /// A `Parse` of statement `name`.
    pub(super) fn parse(&mut self, name: &[u8], prepared: Prepared) {
        self.statements.set(name, prepared);
    }

    /// A `Bind` message's body.
    pub(super) fn bind(&mut self, body: &[u8]) {
        let Some((portal, rest)) = protocol::cstr(body) else {
            return;
        };
        let Some((statement, _)) = protocol::cstr(rest) else {
            return;
        };
        let kind = self.statements.get(statement);
        self.portals.set(portal, kind);
    }

    /// A `Close` message's body.
    pub(super) fn close(&mut self, body: &[u8]) {
        let Some((&kind, rest)) = body.split_first() else {
            return;
        };
        let Some((name, _)) = protocol::cstr(rest) else {
            return;
        };
        match kind {
            b'S' => self.statements.set(name, Prepared::default()),
            b'P' => self.portals.set(name, Prepared::default()),
            _ => {}
        }
    }

    /// What the `Execute` with this body runs.
    pub(super) fn executes(&self, body: &[u8]) -> Prepared {
        protocol::cstr(body).map_or(Prepared::default(), |(portal, _)| self.portals.get(portal))
    }
}
