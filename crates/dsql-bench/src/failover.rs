//! `dsql-bench failover`: a region cut off under load, three clients in one
//! run (issue 14).
//!
//! Two regional dsql-local endpoints of one cluster (A, us-east-1, the
//! local one; B, us-east-2) over the one upstream PostgreSQL, in a child
//! process, so that this process's CPU is the client's alone. N tasks
//! (default 32) loop keyed idempotent writes, each
//! `pool.run(Operation::transaction(..).idempotent())` claiming its id in
//! `{ledger}_done` (`INSERT … ON CONFLICT DO NOTHING`) and inserting it
//! into the ledger (no unique key, so a double apply shows) if the claim is
//! new; `--reads` adds a read of the row after each write. Each client in
//! turn, on fresh regions (a new child, new cluster ids, a new ledger):
//!
//! 1. **`build_cluster`**: one `dsql-bb8` pool over the cluster, a heartbeat
//!    [`Probe`](dsql_tower::failover::Probe), a short
//!    [`HealthPolicy`](dsql_tower::failover::HealthPolicy) (probe every
//!    `--probe-interval`, failback over `--failback-ramp`);
//! 2. **`build`**: a single-endpoint pool at A;
//! 3. **naive**: a pool per region; each operation goes to A, and on any
//!    error once to B (no health, no breaker).
//!
//! Phases: `--before` of steady load, A isolated (dsql-local's default
//! isolation: connects refused, sessions cut, commits failed) for
//! `--outage`, A healed, `--after`. Every pool has `--pool-size`
//! connections and a `--connection-timeout` (dsql-bb8's 30 s default would
//! keep the naive client waiting on A for 30 s), dsql-bb8's defaults
//! otherwise. The clients' order rotates from run to run.
//!
//! Per client and run: acknowledged writes per second before the cut
//! (after a warm-up of a third of `--before`, at most 1 s); from the cut,
//! the first acknowledged write submitted after it (or acknowledged at B:
//! not an answer already on its way from A) and the end of the first
//! 250 ms window (on a 10 ms grid) at 90 % of that rate; errors returned to
//! callers in the outage and in all; the ledger in PostgreSQL against the
//! acknowledged writes; from the heal, the time until the client is back
//! at A (the cluster pool: A healthy and no connection at B in
//! `pool.state().endpoints`, sampled every 10 ms; the others: the first
//! write submitted after the heal acknowledged at A); this process's CPU
//! per operation. The times are reported as p50 and p99 over `--runs`
//! (nearest rank: the maximum under 100 runs). The command fails when a
//! write is lost or applied twice.

mod client;
mod figures;
mod load;
mod regions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use self::client::{Client, ClientKind, Settings};
use self::figures::{AtRest, Figures};
use self::load::Phases;
use self::regions::RegionsProcess;
pub(crate) use self::regions::{ServeRegionsArgs, serve};
use crate::BoxError;
use crate::server::upstream_client;

const LEDGER: &str = "dsql_bench_failover";
const HEARTBEAT: &str = "dsql_bench_failover_heartbeat";

/// Options of `dsql-bench failover`.
#[derive(Debug, Args)]
pub(crate) struct FailoverArgs {
    /// Concurrent tasks writing.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    tasks: u32,
    /// Rounds, each running every client once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    runs: u32,
    /// Seconds of steady load before region A is cut off.
    #[arg(long, default_value_t = 3.0, value_parser = crate::positive_number)]
    before: f64,
    /// Seconds region A stays cut off.
    #[arg(long, default_value_t = 5.0, value_parser = crate::positive_number)]
    outage: f64,
    /// Seconds of load after A is healed.
    #[arg(long, default_value_t = 6.0, value_parser = crate::positive_number)]
    after: f64,
    /// Short phases (1 s, 2.5 s, 3 s), a 200 ms probe interval and a 1 s
    /// failback ramp, one run: a smoke run in about 20 s.
    #[arg(long)]
    quick: bool,
    /// Connections per pool (the naive client has two pools).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pool_size: u32,
    /// Every pool's checkout timeout, seconds.
    #[arg(long, default_value_t = 2.0, value_parser = crate::positive_number)]
    connection_timeout: f64,
    /// The cluster pool's probe interval, seconds.
    #[arg(long, default_value_t = 0.5, value_parser = crate::positive_number)]
    probe_interval: f64,
    /// The cluster pool's failback ramp, seconds.
    #[arg(long, default_value_t = 3.0, value_parser = crate::non_negative_number)]
    failback_ramp: f64,
    /// A read of the row after each write.
    #[arg(long)]
    reads: bool,
    /// Also write each client's figures of each run as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Upstream PostgreSQL of the regions.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

/// Two cluster ids (26 lowercase letters and digits) no other child of
/// this process had.
fn cluster_ids() -> Vec<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (1..=2)
        .map(|region| {
            format!(
                "dsqlbench{:09}{:06}{region:02}",
                std::process::id() % 1_000_000_000,
                n % 1_000_000
            )
        })
        .collect()
}

#[derive(Serialize)]
struct Json<'a> {
    tasks: u32,
    runs: u32,
    before_s: f64,
    outage_s: f64,
    after_s: f64,
    figures: &'a [Figures],
}

pub(crate) async fn run(args: FailoverArgs) -> Result<(), BoxError> {
    let (phases, runs, probe_interval, failback_ramp) = if args.quick {
        let phases = Phases {
            before: Duration::from_secs(1),
            outage: Duration::from_millis(2500),
            after: Duration::from_secs(3),
        };
        (phases, 1, Duration::from_millis(200), Duration::from_secs(1))
    } else {
        let phases = Phases {
            before: Duration::from_secs_f64(args.before),
            outage: Duration::from_secs_f64(args.outage),
            after: Duration::from_secs_f64(args.after),
        };
        let probe = Duration::from_secs_f64(args.probe_interval);
        (
            phases,
            args.runs,
            probe,
            Duration::from_secs_f64(args.failback_ramp),
        )
    };
    let warmup = (phases.before / 3).min(Duration::from_secs(1));
    let settings = Settings {
        pool_size: args.pool_size,
        connection_timeout: Duration::from_secs_f64(args.connection_timeout),
        probe_interval,
        failback_ramp,
        heartbeat: HEARTBEAT.to_owned(),
    };
    upstream_client(&args.upstream)
        .await?
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {HEARTBEAT};
             CREATE TABLE {HEARTBEAT} (endpoint text PRIMARY KEY, at timestamptz NOT NULL);"
        ))
        .await?;
    eprintln!(
        "failover: {} tasks, {runs} runs; {:?} steady, A cut off {:?}, {:?} after the heal",
        args.tasks, phases.before, phases.outage, phases.after
    );

    let mut figures = Vec::new();
    for run in 0..runs as usize {
        // The order rotates, so that no client always runs first.
        for k in 0..ClientKind::ALL.len() {
            let kind = ClientKind::ALL[(run + k) % ClientKind::ALL.len()];
            let f = one_client(kind, run + 1, &args, &settings, phases, warmup)
                .await
                .map_err(|e| format!("{}: {e}", kind.name()))?;
            eprintln!("  run {}/{runs} {:<32} {}", run + 1, kind.name(), f.summary());
            figures.push(f);
        }
    }
    let _ = upstream_client(&args.upstream)
        .await?
        .batch_execute(&format!("DROP TABLE IF EXISTS {HEARTBEAT}"))
        .await;

    println!(
        "# Failover: region A cut off under {} tasks of keyed idempotent writes{}, {runs} run{}\n",
        args.tasks,
        if args.reads { " and reads" } else { "" },
        if runs == 1 { "" } else { "s" }
    );
    println!(
        "{:?} steady, A isolated for {:?}, {:?} after the heal; pools of {} connections, \
         {:?} checkout timeout; the cluster pool probes every {:?}, fails back over {:?}.\n",
        phases.before,
        phases.outage,
        phases.after,
        args.pool_size,
        settings.connection_timeout,
        probe_interval,
        failback_ramp
    );
    print!("{}", figures::markdown(&figures, runs as usize));
    if let Some(path) = &args.json {
        let json = Json {
            tasks: args.tasks,
            runs,
            before_s: phases.before.as_secs_f64(),
            outage_s: phases.outage.as_secs_f64(),
            after_s: phases.after.as_secs_f64(),
            figures: &figures,
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
        eprintln!("wrote {}", path.display());
    }
    let broken: Vec<String> = figures
        .iter()
        .filter(|f| !f.at_rest.holds())
        .map(|f| format!("{} (run {})", f.client.name(), f.run))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("writes lost or applied twice: {}", broken.join(", ")).into())
    }
}

/// Fresh regions and a fresh ledger; the load through `kind`; the ledger
/// checked in PostgreSQL.
async fn one_client(
    kind: ClientKind,
    run: usize,
    args: &FailoverArgs,
    settings: &Settings,
    phases: Phases,
    warmup: Duration,
) -> Result<Figures, BoxError> {
    let upstream = upstream_client(&args.upstream).await?;
    upstream
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {LEDGER}, {LEDGER}_done;
             CREATE TABLE {LEDGER} (id bigint NOT NULL);
             CREATE TABLE {LEDGER}_done (id bigint PRIMARY KEY);"
        ))
        .await?;
    let mut regions = RegionsProcess::spawn(&args.upstream, &cluster_ids()).await?;
    let client = Client::connect(kind, &regions, settings)?;
    let trace = load::run(&client, &mut regions, LEDGER, args.tasks, args.reads, phases).await;
    client.close().await;
    let stats = regions.command("stats").await.unwrap_or_default();
    regions.stop().await;
    let trace = trace?;
    eprintln!(
        "  {}: A's isolation cut {} sessions; dsql-local {}",
        kind.name(),
        trace.sessions_cut,
        stats.trim_start_matches("stats ")
    );
    let rows: Vec<(i64, i64)> = upstream
        .query(&format!("SELECT id, count(*) FROM {LEDGER} GROUP BY id"), &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let at_rest = AtRest::check(&rows, &trace.acknowledged, &trace.failed);
    let figures = Figures::new(kind, run, &trace, warmup, at_rest);
    if figures.writes_per_sec_before <= 0.0 {
        return Err(format!(
            "no write acknowledged before the cut: {}",
            trace.errors.first().map_or("no error either", String::as_str)
        )
        .into());
    }
    upstream
        .batch_execute(&format!("DROP TABLE IF EXISTS {LEDGER}, {LEDGER}_done"))
        .await?;
    Ok(figures)
}
