//! `dsql-bench occ`: optimistic concurrency under contention. Three ways
//! of replaying a conflicting transaction, in one run, through one
//! dsql-local child:
//!
//! 1. **dsql-bb8 run**: `pool.run(Operation::transaction(..))` with the
//!    pool's default replay policy (conflicts: full jitter from 2 ms
//!    doubling to 250 ms, 100 attempts, 10 s; the conflicted attempt's
//!    connection kept through the backoff and reused by the replay);
//! 2. **sqlx connector retry_on_occ**: the official
//!    `aurora-dsql-sqlx-connector` pool and its `retry_on_occ` with
//!    `OCCRetryConfig::default()` (3 attempts, 1 ms doubling to 100 ms plus
//!    up to 25 %; a checkout per attempt);
//! 3. **no backoff**: the same `dsql-bb8` pool's plain `get()`, and a loop
//!    that begins again at once on every `40001`, on the same connection
//!    (giving up after 1,000 attempts, an error surfaced).
//!
//! Each operation is one transaction on a random row of `--hot-rows` (4):
//! `BEGIN; SELECT v …; UPDATE … SET v = v + 1 …; COMMIT`, simple query
//! protocol, each attempt counted where it starts (inside the closure or
//! the loop). Every client gets a fresh pool of `--pool-size` (16)
//! connections per run, built by `pools`' own setup; the clients run one
//! after another at each concurrency (`--tasks`, 8, 32 and 128), then the
//! next run (`--runs`; the median by commits per second is reported).
//!
//! Per client and concurrency, over `--seconds` after `--warmup`: commits
//! per second; wasted attempts per commit ((attempts − commits) ÷ commits)
//! and the most attempts one transaction made; p50 and p99 of a committed
//! transaction's latency (from its first attempt to the acknowledged
//! `COMMIT`: backoff and checkout waits included); errors surfaced to the
//! caller and the first one's text; this process's CPU per commit. After each run, PostgreSQL's `sum(v)` must
//! have grown by exactly the commits acknowledged over the run (or by at
//! most as many more as errors left the outcome unknown); the command fails
//! otherwise. dsql-local's count of the conflicts it sent is reported next
//! to the wasted attempts.
//!
//! DSQL never makes a writer wait: the loser of a conflict fails at
//! `COMMIT`. PostgreSQL's writers queue on row locks, so dsql-local is run
//! with `never_wait` (`--lock-wait-ms`, 1 ms): a writer that would wait for
//! a row lock fails at once with DSQL's conflict (`40001 … (OC000)`). There
//! the first locker wins, not the first committer, and the conflict comes
//! at the `UPDATE` rather than at `COMMIT`; either way the attempt is
//! wasted. `--postgres-locking` keeps PostgreSQL's waiting instead.

mod client;
mod load;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use self::client::{Key, OccClient, OccKind};
use self::load::OccSample;
use self::report::{Check, Json, JsonRow, Row};
use crate::BoxError;
use crate::measure::Plan;
use crate::server::{LocalProcess, ServerFaults, ServerLimits, upstream_client};

/// The hot rows' table in the upstream database.
const TABLE: &str = "bench_occ";

/// Options of `dsql-bench occ`.
#[derive(Debug, Args)]
pub(crate) struct OccArgs {
    /// Rows the transactions contend on.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    hot_rows: u32,
    /// Concurrent tasks, comma-separated (default: 8,32,128; 32 with --quick).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=10_000))]
    tasks: Vec<u32>,
    /// Connections per pool.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pool_size: u32,
    /// Measured seconds per client and concurrency.
    #[arg(long, default_value_t = 5.0, value_parser = crate::positive_number)]
    seconds: f64,
    /// Warm-up seconds before each measured window.
    #[arg(long, default_value_t = 0.5, value_parser = crate::non_negative_number)]
    warmup: f64,
    /// Runs, each every client at every concurrency; the median run (by
    /// commits per second) is reported.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    runs: u32,
    /// One short run at 32 tasks (unless --tasks says otherwise): 1 s
    /// measured after 0.2 s, for a smoke test.
    #[arg(long)]
    quick: bool,
    /// dsql-local's lock wait bound, milliseconds: a writer waiting longer
    /// for a row lock fails at once with DSQL's conflict.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    lock_wait_ms: u64,
    /// Keep PostgreSQL's row-lock waiting (writers queue, the loser fails
    /// when the winner commits) instead of failing fast like DSQL.
    #[arg(long)]
    postgres_locking: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

/// Creates the hot rows, starts dsql-local, runs every client at every
/// concurrency `--runs` times, prints the median runs; fails if a run's
/// `sum(v)` does not match its acknowledged commits.
pub(crate) async fn run(args: OccArgs) -> Result<(), BoxError> {
    let (plan, runs) = if args.quick {
        let plan = Plan {
            duration: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
        };
        (plan, 1)
    } else {
        let plan = Plan {
            duration: Duration::from_secs_f64(args.seconds),
            warmup: Duration::from_secs_f64(args.warmup),
        };
        (plan, args.runs)
    };
    let tasks = match (&args.tasks[..], args.quick) {
        ([], true) => vec![32],
        ([], false) => vec![8, 32, 128],
        (tasks, _) => tasks.to_vec(),
    };
    let never_wait = (!args.postgres_locking).then_some(args.lock_wait_ms);

    let upstream = upstream_client(&args.upstream).await?;
    upstream
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TABLE};
             CREATE TABLE {TABLE} (k bigint PRIMARY KEY, v bigint NOT NULL);
             INSERT INTO {TABLE} SELECT k, 0 FROM generate_series(0, {}) AS k;
             ANALYZE {TABLE};",
            args.hot_rows - 1
        ))
        .await?;
    let keys: Arc<[Key]> = (0..args.hot_rows).map(|k| Key::new(TABLE, k)).collect();
    let limits = ServerLimits {
        never_wait: never_wait.map(Duration::from_millis),
        ..ServerLimits::default()
    };
    let mut local = LocalProcess::spawn_with_limits(&args.upstream, ServerFaults::default(), &limits).await?;
    eprintln!(
        "occ: dsql-local (pid {}) at {} over {}; {} hot rows, pools of {}, {}",
        local.pid(),
        local.addr(),
        args.upstream,
        args.hot_rows,
        args.pool_size,
        never_wait.map_or_else(
            || "PostgreSQL's lock waits".to_owned(),
            |ms| format!("writers never wait (lock wait bound {ms} ms)")
        )
    );

    // samples[concurrency][client]: one (sample, check) per run.
    let mut samples: Vec<Vec<Vec<(OccSample, Check)>>> =
        vec![vec![Vec::new(); OccKind::ALL.len()]; tasks.len()];
    let result = async {
        for run in 0..runs as usize {
            for (t, &concurrency) in tasks.iter().enumerate() {
                // Every client once at this concurrency, one after the
                // other, so that a slow spell of the machine falls on all
                // of them alike; the order rotates from run to run.
                for i in 0..OccKind::ALL.len() {
                    let k = (run + i) % OccKind::ALL.len();
                    let kind = OccKind::ALL[k];
                    let (sample, check) = one(kind, concurrency, &mut local, &upstream, &keys, &args, plan)
                        .await
                        .map_err(|e| format!("{}: {e}", kind.name()))?;
                    eprintln!(
                        "  run {}/{runs} {:<28} {concurrency:>4} tasks: {}",
                        run + 1,
                        kind.name(),
                        summary(&sample, &check)
                    );
                    samples[t][k].push((sample, check));
                }
            }
        }
        Ok::<(), BoxError>(())
    }
    .await;
    local.stop().await;
    result?;

    let mut rows = Vec::new();
    for (&concurrency, by_client) in tasks.iter().zip(samples) {
        for (kind, runs) in OccKind::ALL.into_iter().zip(by_client) {
            let failed_checks = runs.iter().filter(|(_, check)| !check.holds).count();
            if let Some((sample, check)) = median(runs) {
                rows.push(Row {
                    kind,
                    tasks: concurrency,
                    sample,
                    check,
                    failed_checks,
                });
            }
        }
    }
    println!(
        "# OCC under contention: {} hot rows, pools of {} connections, {:?} measured after {:?}, {}\n",
        args.hot_rows,
        args.pool_size,
        plan.duration,
        plan.warmup,
        if runs == 1 {
            "1 run".to_owned()
        } else {
            format!("median of {runs} runs by commits/s")
        }
    );
    print!("{}", report::markdown(&rows));
    if let Some(path) = &args.json {
        let json = Json {
            hot_rows: args.hot_rows,
            pool_size: args.pool_size,
            seconds: plan.duration.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            runs,
            never_wait_ms: never_wait,
            rows: rows.iter().map(JsonRow::new).collect(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        eprintln!("wrote {}", path.display());
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed_checks > 0)
        .map(|r| format!("{} at {} tasks", r.kind.name(), r.tasks))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "sum(v) does not match the commits acknowledged: {}",
            failed.join(", ")
        )
        .into())
    }
}

/// One client at one concurrency on a fresh pool, then the check in
/// PostgreSQL.
async fn one(
    kind: OccKind,
    tasks: u32,
    local: &mut LocalProcess,
    upstream: &tokio_postgres::Client,
    keys: &Arc<[Key]>,
    args: &OccArgs,
    plan: Plan,
) -> Result<(OccSample, Check), BoxError> {
    let sum_before = sum(upstream).await?;
    let conflicts_before = conflicts_sent(local).await;
    let client = OccClient::connect(kind, local, &args.upstream, args.pool_size).await?;
    let sample = load::run(&client, keys, tasks, plan).await;
    // Every transaction has returned; closing waits for the sockets too.
    client.close().await;
    let sum_increase = sum(upstream).await? - sum_before;
    let conflicts = conflicts_sent(local)
        .await
        .zip(conflicts_before)
        .map(|(after, before)| after.saturating_sub(before));
    let check = Check::new(&sample, sum_increase, conflicts);
    Ok((sample, check))
}

/// `sum(v)` over the hot rows.
async fn sum(upstream: &tokio_postgres::Client) -> Result<i64, BoxError> {
    let row = upstream
        .query_one(&format!("SELECT coalesce(sum(v), 0)::bigint FROM {TABLE}"), &[])
        .await?;
    Ok(row.try_get(0)?)
}

/// Conflicts dsql-local has sent so far (its `conflicts_rewritten`:
/// PostgreSQL's serialization failures, deadlocks and, with `never_wait`,
/// lock timeouts, each sent as `40001 … (OC000)`).
async fn conflicts_sent(local: &mut LocalProcess) -> Option<u64> {
    local.stat("conflicts_rewritten").await.ok()
}

/// The run with the median commits per second.
fn median(mut runs: Vec<(OccSample, Check)>) -> Option<(OccSample, Check)> {
    runs.sort_by(|a, b| a.0.commits_per_sec().total_cmp(&b.0.commits_per_sec()));
    let middle = runs.len() / 2;
    (middle < runs.len()).then(|| runs.swap_remove(middle))
}

/// One line of progress.
fn summary(sample: &OccSample, check: &Check) -> String {
    let nan = f64::NAN;
    format!(
        "{:>7.0} commits/s  wasted {:.2}/commit  p50 {:.2} ms  p99 {:.2} ms  errors {}  cpu {:.0} µs/commit  \
         sum(v) +{} for {} commits{}  40001s {}",
        sample.commits_per_sec(),
        sample.wasted_per_commit().unwrap_or(nan),
        sample.sample.quantile_ms(0.5),
        sample.sample.quantile_ms(0.99),
        sample.sample.errors,
        sample.cpu_us_per_commit().unwrap_or(nan),
        check.sum_increase,
        check.commits_acknowledged,
        if check.holds { "" } else { " MISMATCH" },
        check
            .conflicts_at_server
            .map_or_else(|| "?".to_owned(), |n| n.to_string()),
    )
}
