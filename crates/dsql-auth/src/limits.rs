//! DSQL's service limits, in one place: every crate of the workspace (the
//! pool, the session, `dsql-local`) takes its numbers from here.
//!
//! The values are AWS's documented quotas for a cluster (see the project's
//! `dsql-facts.md`). A change on AWS's side is an edit of this file.

use std::time::Duration;

/// The server ends every session (connection) after this long.
pub const SESSION_LIMIT: Duration = Duration::from_secs(60 * 60);

/// New connections per second a cluster accepts on average (`53400` beyond).
pub const CONNECTION_RATE: f64 = 100.0;

/// New connections a cluster accepts at once before [`CONNECTION_RATE`]
/// applies.
pub const CONNECTION_BURST: u32 = 1_000;

/// Open connections per cluster (`53300` beyond).
pub const MAX_CONNECTIONS: usize = 10_000;

/// A transaction older than this at `COMMIT` is refused (`54000`).
pub const TRANSACTION_AGE: Duration = Duration::from_secs(5 * 60);

/// Rows one transaction may write; the statement that crosses it fails
/// (`54000`).
pub const TRANSACTION_ROWS: u64 = 3_000;

/// Bytes one transaction may write, checked at `COMMIT` (`54000`).
pub const TRANSACTION_BYTES: u64 = 10 * 1024 * 1024;
