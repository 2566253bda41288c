//! The SQL dialect `dsql-local` speaks: DSQL's (the default), or plain
//! PostgreSQL's.
//!
//! Under [`Dialect::Dsql`] statements are checked against DSQL's rules
//! before they reach PostgreSQL: what DSQL refuses is refused with DSQL's
//! SQLSTATE and message, and DSQL's transaction rules (one DDL per
//! transaction, no DDL with DML, no savepoints) hold.

// Without the parser, only `Dialect::Postgres` runs: the rules are unused.
#![cfg_attr(not(feature = "dialect"), allow(dead_code))]

use std::fmt;
use std::str::FromStr;

/// Which SQL `dsql-local` accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// DSQL's: refusals, transaction rules and limits as a real cluster
    /// applies them (the default).
    #[default]
    Dsql,
    /// PostgreSQL's: statements pass through unchecked, as with a plain
    /// PostgreSQL behind TLS and IAM authentication.
    Postgres,
}

impl Dialect {
    /// The name used by `dsqlctl local --dialect`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dsql => "dsql",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown dialect name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown dialect `{0}`: expected `dsql` or `postgres`")]
pub struct UnknownDialect(String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "dsql" => Ok(Self::Dsql),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(UnknownDialect(other.to_owned())),
        }
    }
}

#[cfg(feature = "dialect")]
mod analyze;
#[cfg(feature = "dialect")]
mod checks;
pub(crate) mod rules;
mod shape;
pub(crate) mod surface;
mod transaction;
#[cfg(feature = "dialect")]
mod types;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use self::rules::Refusal;
pub(crate) use self::transaction::TransactionRules;
pub(crate) use self::writes::by_keyword;

/// The `DETAIL` of the errors dsql-local makes PostgreSQL raise for DSQL
/// (refusals, the row cap): the relay recognizes them by it and strips it.
pub(crate) const REFUSAL_MARKER: &str = "dsql-local: refusal";

/// What a statement is, for DSQL's transaction rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Changes the schema (or roles, grants…).
    Ddl,
    /// Reads or writes tables.
    Dml,
    /// Neither (a constant `SELECT`, `SET`, `SHOW`…).
    #[default]
    Neutral,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK`, `ABORT`.
    Rollback,
    /// `COMMIT AND CHAIN`, `ROLLBACK AND CHAIN`: one transaction ends, the
    /// next begins.
    Chain,
}

/// One statement of a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    /// Where it starts in the text (bytes).
    pub(crate) start: usize,
    pub(crate) kind: Kind,
    /// What DSQL answers instead of running it.
    pub(crate) refusal: Option<Refusal>,
    /// Where it ends (bytes, exclusive).
    pub(crate) end: usize,
    /// What to send upstream instead, so that DSQL's answer comes back
    /// (asynchronous DDL, DSQL's version and settings).
    pub(crate) rewrite: Option<String>,
    /// The command tag DSQL answers it with, when it is not the
    /// rewrite's.
    pub(crate) tag: Option<&'static str>,
    /// It writes (or may): a region that cannot commit fails it in
    /// autocommit ([`writes`]).
    pub(crate) writes: bool,
}

/// DSQL's asynchronous DDL: answered with a `job_id` row, tracked in
/// `sys.jobs`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "dialect"), allow(dead_code))]
pub(crate) struct AsyncDdl {
    /// The command tag DSQL answers with.
    pub(crate) tag: &'static str,
    /// The job type `sys.jobs` shows.
    pub(crate) job_type: &'static str,
    /// The table the job works on, as written (for `sys.jobs.class_id`).
    pub(crate) table: String,
}

/// What a SQL text holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Analysis {
    /// It parsed; if not, it goes upstream untouched, for PostgreSQL's own
    /// error.
    pub(crate) parsed: bool,
    /// The text to send upstream, when it differs (DSQL's `ASYNC` removed).
    pub(crate) upstream_text: Option<String>,
    pub(crate) statements: Vec<Statement>,
    /// One query or write statement, neither refused nor rewritten: its
    /// decision holds for every text of the same [shape](shape::shape).
    pub(crate) reusable: bool,
}

impl Analysis {
    fn unparsed() -> Self {
        Self {
            parsed: false,
            upstream_text: None,
            statements: Vec::new(),
            reusable: false,
        }
    }

    /// Whether the text holds a `COMMIT`.
    pub(crate) fn commits(&self) -> bool {
        self.statements.iter().any(|s| s.kind == Kind::Commit)
    }
}

/// Decisions are cached by statement text: drivers and pools send the same
/// texts again and again, and parsing costs far more than a lookup.
const CACHE_ENTRIES: usize = 4096;
/// Longer texts are not cached (a bulk `INSERT … VALUES` is rarely sent
/// twice).
const CACHE_MAX_TEXT: usize = 4096;

/// DSQL's rules over SQL text, shared by every session.
#[derive(Debug, Default)]
pub(crate) struct SqlRules {
    /// Decisions by exact text.
    cache: Mutex<HashMap<Box<str>, Arc<Analysis>>>,
    /// Reusable decisions by shape (literals replaced).
    shapes: Mutex<HashMap<Box<str>, Arc<Analysis>>>,
}

impl SqlRules {
    /// Reads `sql` (from the cache when it, or a text of the same shape
    /// whose decision does not depend on its literals, was read before).
    pub(crate) fn analyze(&self, sql: &str) -> Arc<Analysis> {
        if let Some(hit) = lock(&self.cache).get(sql) {
            return Arc::clone(hit);
        }
        let shape = (sql.len() <= CACHE_MAX_TEXT).then(|| shape::shape(sql)).flatten();
        if let Some(shape) = &shape
            && let Some(same) = lock(&self.shapes).get(shape.as_str())
        {
            // Only the statement's end differs, which nothing reads for a
            // statement that is not rewritten.
            return Arc::clone(same);
        }
        let analysis = Arc::new(read(sql));
        if sql.len() <= CACHE_MAX_TEXT {
            insert(&self.cache, sql, &analysis);
        }
        if let Some(shape) = shape
            && analysis.reusable
        {
            insert(&self.shapes, &shape, &analysis);
        }
        analysis
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn insert(cache: &Mutex<HashMap<Box<str>, Arc<Analysis>>>, key: &str, analysis: &Arc<Analysis>) {
    let mut cache = lock(cache);
    if cache.len() >= CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(key.into(), Arc::clone(analysis));
}

#[cfg(feature = "dialect")]
fn read(sql: &str) -> Analysis {
    analyze::analyze(sql)
}

/// Without the `dialect` feature nothing is parsed; the configuration
/// refuses [`Dialect::Dsql`], so this is never asked.
#[cfg(not(feature = "dialect"))]
fn read(_sql: &str) -> Analysis {
    Analysis::unparsed()
}
