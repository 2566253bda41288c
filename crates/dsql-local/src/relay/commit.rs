//! Recognizing `COMMIT`: in a simple query's text, and in the extended
//! protocol through the prepared statements and portals that stand for one.

use std::collections::HashSet;

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

/// Which names (of prepared statements or portals) stand for a `COMMIT`;
/// the unnamed one (`""`) is a flag, since it is replaced at every use.
#[derive(Default)]
pub(super) struct CommitNames {
    unnamed: bool,
    named: HashSet<Vec<u8>>,
}

impl CommitNames {
    pub(super) fn set(&mut self, name: &[u8], commit: bool) {
        if name.is_empty() {
            self.unnamed = commit;
        } else if commit {
            self.named.insert(name.to_vec());
        } else if !self.named.is_empty() {
            self.named.remove(name);
        }
    }

    pub(super) fn contains(&self, name: &[u8]) -> bool {
        if name.is_empty() {
            self.unnamed
        } else {
            self.named.contains(name)
        }
    }
}

/// Follows `Parse`, `Bind` and `Close` to know whether an `Execute` runs a
/// `COMMIT`.
#[derive(Default)]
pub(super) struct CommitTracker {
    /// Prepared statements whose SQL is a `COMMIT`.
    statements: CommitNames,
    /// Portals bound to such a statement.
    portals: CommitNames,
}

impl CommitTracker {
    /// A `Parse` message's body.
    pub(super) fn parse(&mut self, body: &[u8]) {
        let Some((name, rest)) = protocol::cstr(body) else {
            return;
        };
        let commit = protocol::cstr(rest).is_some_and(|(sql, _)| is_commit(sql));
        self.statements.set(name, commit);
    }

    /// A `Bind` message's body.
    pub(super) fn bind(&mut self, body: &[u8]) {
        let Some((portal, rest)) = protocol::cstr(body) else {
            return;
        };
        let Some((statement, _)) = protocol::cstr(rest) else {
            return;
        };
        let commit = self.statements.contains(statement);
        self.portals.set(portal, commit);
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
            b'S' => self.statements.set(name, false),
            b'P' => self.portals.set(name, false),
            _ => {}
        }
    }

    /// Whether the `Execute` with this body runs a `COMMIT`.
    pub(super) fn executes_commit(&self, body: &[u8]) -> bool {
        protocol::cstr(body).is_some_and(|(portal, _)| self.portals.contains(portal))
    }
}
