//! Test support for the dsql-rs test suites (not published).
//!
//! Everything here runs against the real PostgreSQL on 127.0.0.1:5432 (trust
//! authentication, user and database `postgres`; `scripts/ensure-postgres`
//! starts it), usually through a `dsql-local` in front of it:
//!
//! - [`Harness`]: a `dsql-local` with an endpoint of its own, a client
//!   configuration and a caching, counting token provider, and the tower
//!   stack over it;
//! - [`direct`], [`unique`], [`drop_table`], [`upstream_sessions`],
//!   [`sessions_of`] and [`eventually`]: checks of what really landed
//!   upstream;
//! - [`ledger`]: an idempotent insert whose double apply would show;
//! - [`tls`]: tokio-postgres connectors over rustls that verify
//!   `dsql-local`'s certificate;
//! - [`local`]: signing, configuring and connecting by hand, for the tests of
//!   `dsql-local` itself.
//!
//! Helpers panic on anything unexpected: they are test support.
#![allow(clippy::unwrap_used)]

mod harness;
pub mod ledger;
pub mod local;
pub mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

pub use harness::{CountingProvider, Harness, Stack, TestSession, counting_signer};

/// The real PostgreSQL behind `dsql-local` (trust authentication).
pub const UPSTREAM: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// A number no other call in this process got.
fn next() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A name (of a table, role, application, directory...) that no other test
/// or test binary uses: `prefix`, the process id, a counter and the current
/// sub-second nanoseconds (against a reused process id meeting the leftovers
/// of an earlier run).
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), next())
}

/// A plain connection to the PostgreSQL behind `dsql-local`, to check what
/// really landed.
pub async fn direct() -> Client {
    let (client, connection) =
        tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", NoTls)
            .await
            .expect("direct connection to PostgreSQL");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops the table `name` and its `_done` table, if it has one (see
/// [`ledger`]).
pub async fn drop_table(name: &str) {
    direct()
        .await
        .batch_execute(&format!("DROP TABLE IF EXISTS {name}_done; DROP TABLE {name}"))
        .await
        .unwrap();
}

/// Upstream sessions with this `application_name`, now.
pub async fn upstream_sessions(check: &Client, application_name: &str) -> i64 {
    check
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_activity")
        .get(0)
}

/// Upstream sessions with this `application_name`, polled until there are
/// `expected` or `within` has passed (looked at once at least).
pub async fn sessions_of(application_name: &str, expected: i64, within: Duration) -> i64 {
    let check = direct().await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let count = upstream_sessions(&check, application_name).await;
        if count == expected || tokio::time::Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether no upstream session has this `application_name`, waiting up to
/// five seconds for the last ones to go.
pub async fn no_upstream_sessions(application_name: &str) -> bool {
    sessions_of(application_name, 0, Duration::from_secs(5)).await == 0
}

/// Polls `check` until it holds (`true`) or `within` passes (`false`).
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
