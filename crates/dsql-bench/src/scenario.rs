//! What each scenario asks of the server and of the clients.

use std::fmt;
use std::time::Duration;

use crate::BoxError;
use crate::server::{ServerFaults, upstream_client};

/// Rows of the point-read table.
pub(crate) const READ_KEYS: i64 = 10_000;
/// Rows of the write table: few, so that concurrent upserts conflict.
pub(crate) const HOT_KEYS: i64 = 32;

/// A workload and the faults it runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// `SELECT 1`.
    SelectOne,
    /// `SELECT v FROM bench_kv WHERE k = …`, a random key.
    PointRead,
    /// Single-row upserts on a few hot keys: concurrent writers conflict.
    Write,
    /// Point reads while every session ends after its lifetime, all opened
    /// together (the 60-minute limit, scaled down).
    Recycle,
    /// Point reads while every session is dropped periodically.
    Fault,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 5] = [
        Self::SelectOne,
        Self::PointRead,
        Self::Write,
        Self::Recycle,
        Self::Fault,
    ];

    /// The statement one operation sends (simple query protocol, so that
    /// every client pays the same one round trip and the pool is measured).
    pub(crate) fn statement(self, key: i64) -> String {
        match self {
            Self::SelectOne => "SELECT 1".to_owned(),
            Self::PointRead | Self::Recycle | Self::Fault => {
                format!("SELECT v FROM bench_kv WHERE k = {}", key.rem_euclid(READ_KEYS))
            }
            Self::Write => format!(
                "INSERT INTO bench_hot (k, v) VALUES ({}, {key}) \
                 ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                key.rem_euclid(HOT_KEYS)
            ),
        }
    }

    /// The steady scenarios: reads with no conflicts and no faults.
    pub(crate) fn is_steady(self) -> bool {
        matches!(self, Self::SelectOne | Self::PointRead)
    }

    /// The dsql-local child this scenario runs against.
    pub(crate) fn server_faults(self, timing: &Timing) -> ServerFaults {
        match self {
            Self::Recycle => ServerFaults {
                session_lifetime: Some(timing.session_lifetime),
                drop_all_every: None,
            },
            Self::Fault => ServerFaults {
                session_lifetime: None,
                drop_all_every: Some(timing.drop_every),
            },
            _ => ServerFaults::default(),
        }
    }

    /// Measured time of one run: long enough for the scenario's fault to
    /// strike inside the window.
    pub(crate) fn duration(self, timing: &Timing) -> Duration {
        match self {
            Self::Recycle => timing.session_lifetime + timing.session_lifetime / 5,
            Self::Fault => timing.drop_every * 2 + timing.drop_every / 5,
            _ => timing.steady,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SelectOne => "steady: SELECT 1",
            Self::PointRead => "steady: point read",
            Self::Write => "write: hot upserts",
            Self::Recycle => "recycle storm",
            Self::Fault => "fault: all sessions dropped",
        })
    }
}

/// The scenario clock: full runs, or `--quick` ones scaled down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) steady: Duration,
    pub(crate) warmup: Duration,
    /// The server's session lifetime in the recycle storm (issue: 10 s).
    pub(crate) session_lifetime: Duration,
    /// How often the fault scenario drops every session (issue: 5 s).
    pub(crate) drop_every: Duration,
}

impl Timing {
    /// What clients are told about the session lifetime: retire connections
    /// a little before the server ends them, as each pool's docs advise.
    pub(crate) fn client_lifetime(&self) -> Duration {
        self.session_lifetime.mul_f64(0.9)
    }
}

/// Creates and fills the benchmark's tables in the upstream database.
pub(crate) async fn prepare(upstream: &str) -> Result<(), BoxError> {
    let client = upstream_client(upstream).await?;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS bench_kv, bench_hot;
             CREATE TABLE bench_kv (k bigint PRIMARY KEY, v bigint NOT NULL);
             INSERT INTO bench_kv SELECT k, k * 7 FROM generate_series(0, {}) AS k;
             CREATE TABLE bench_hot (k bigint PRIMARY KEY, v bigint NOT NULL);
             INSERT INTO bench_hot SELECT k, 0 FROM generate_series(0, {}) AS k;
             ANALYZE bench_kv, bench_hot;",
            READ_KEYS - 1,
            HOT_KEYS - 1
        ))
        .await?;
    Ok(())
}
