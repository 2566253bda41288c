//! `dsql-bench`: the pools users pick today against `dsql-bb8`, every client
//! through a `dsql-local` front end (TLS, IAM tokens) running in its own
//! process, in the same run; the chaos soak; a region cut off under three
//! clients; and dsql-local's peak memory under a flood of hostile input.
//!
//! ```text
//! cargo run --release -p dsql-bench -- pools                  # every scenario, 1/8/32/128 tasks
//! cargo run --release -p dsql-bench -- pools --runs 3 --json results.json
//! cargo run --release -p dsql-bench -- pools --quick          # under two minutes
//! cargo run --release -p dsql-bench -- pools --json docs/benchmarks/pools.json --charts docs/benchmarks
//! cargo run --release -p dsql-bench -- charts --json docs/benchmarks/pools.json --out docs/benchmarks
//! cargo run --release -p dsql-bench -- soak --minutes 5       # faults under load, then invariants
//! cargo run --release -p dsql-bench -- dialect-cost           # DSQL's dialect vs pass-through, CPU per op
//! cargo run --release -p dsql-bench -- failover               # a region cut off: three clients compared
//! cargo run --release -p dsql-bench -- failover --quick       # the same, one short run
//! cargo run --release -p dsql-bench -- occ                    # OCC on hot rows: three replay policies
//! cargo run --release -p dsql-bench -- network                # a 1 ms round trip: throughput, round trips, connects
//! cargo run --release -p dsql-bench -- flood                  # dsql-local's peak memory under hostile input
//! cargo run --release -p dsql-bench -- flood --max-buffered-bytes 134217728 --json flood.json
//! ```
#![forbid(unsafe_code)]

mod charts;
mod child;
mod clients;
mod dialect_cost;
mod failover;
mod flood;
mod measure;
mod network;
mod occ;
mod report;
mod scenario;
mod server;
mod soak;
mod xorshift;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dsql_tower::BoxError;

use crate::scenario::{Scenario, Timing};

/// The PostgreSQL behind every dsql-local front end, and the one the direct
/// clients reach: Debian's, over its Unix-domain socket. That costs
/// PostgreSQL about half what loopback TCP does (pgbench, `SELECT 1`, 16
/// clients: 75,000-81,000 against 38,000-40,000 per second here), so more
/// of the machine's two cores go to what is measured.
const DEFAULT_UPSTREAM: &str = "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres";

/// Benchmarks of dsql-rs against bb8-postgres, deadpool-postgres and the
/// official sqlx connector, a chaos soak, and dsql-local's memory under a
/// flood of hostile input.
#[derive(Debug, Parser)]
#[command(name = "dsql-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every client through every scenario at several concurrencies.
    Pools(PoolsArgs),
    /// Draws the SVG charts of a `pools --json` file again (throughput and
    /// latency per scenario), without running anything.
    Charts(charts::ChartsArgs),
    /// Faults under load for a while, then checks in PostgreSQL that
    /// nothing was lost or applied twice.
    Soak(soak::SoakArgs),
    /// The peak resident memory of a dsql-local child, idle and under a
    /// flood of oversized frames, large partial messages and half-open
    /// handshakes, against the bound its configuration implies.
    Flood(flood::FloodArgs),
    /// What DSQL's dialect (statements read with PostgreSQL's parser)
    /// costs dsql-local, against the PostgreSQL dialect, in one run.
    DialectCost(dialect_cost::DialectCostArgs),
    /// Region A of a two-region cluster cut off under load, then healed:
    /// the cluster pool, a single-endpoint pool and a naive "other host on
    /// error" client, in one run.
    Failover(failover::FailoverArgs),
    /// Every client over a modelled region's network (1 ms round trip):
    /// throughput against pool size ÷ round trip, round trips per
    /// operation, connect time with SSLRequest and direct TLS, and the time
    /// to refill a pool after its sessions are cut.
    Network(network::NetworkArgs),
    /// Transactions on a few hot rows: this pool's replay policy, the
    /// official sqlx connector's retry defaults and a no-backoff loop, in
    /// one run; commits per second, wasted attempts per commit, p99,
    /// errors surfaced.
    Occ(occ::OccArgs),
    /// Runs a dsql-local front end and prints how to reach it (used by the
    /// other commands, which start it in a child process).
    #[command(hide = true)]
    ServeLocal(server::ServeArgs),
    /// Runs two regional dsql-local endpoints of one cluster (used by
    /// `failover`).
    #[command(hide = true)]
    ServeRegions(failover::ServeRegionsArgs),
}

#[derive(Debug, Args)]
struct PoolsArgs {
    /// Scenarios, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    scenarios: Vec<Scenario>,
    /// Clients, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    clients: Vec<clients::ClientKind>,
    /// Concurrent tasks, comma-separated (default: 1,8,32,128; 32 with --quick).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<usize>,
    /// Connections per pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Measured seconds per steady or write run (recycle and fault runs last
    /// long enough for their faults to strike).
    #[arg(long, default_value_t = 5.0, value_parser = positive_number)]
    seconds: f64,
    /// Warm-up seconds per run, not measured.
    #[arg(long, default_value_t = 0.5, value_parser = non_negative_number)]
    warmup: f64,
    /// Session lifetime in the recycle storm, seconds.
    #[arg(long, default_value_t = 10.0, value_parser = positive_number)]
    session_lifetime: f64,
    /// Period of the fault scenario's drops, seconds.
    #[arg(long, default_value_t = 5.0, value_parser = positive_number)]
    drop_every: f64,
    /// Runs per client, scenario and concurrency; the median run (by
    /// throughput) is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Short runs at 32 tasks, lifetimes and drops scaled down: the whole
    /// harness in under two minutes.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Also draw SVG charts into this folder: throughput and latency per
    /// scenario (`pools-<scenario>-throughput.svg`, `…-latency.svg`).
    #[arg(long)]
    charts: Option<std::path::PathBuf>,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

fn main() -> ExitCode {
    // The official connector loads aws-config's default chain, whose region
    // lookup would ask the EC2 metadata service: the benchmark never leaves
    // loopback, so it runs itself again with that lookup off.
    if std::env::var_os("AWS_EC2_METADATA_DISABLED").is_none() {
        return match std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .status()
        }) {
            Ok(status) if status.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("dsql-bench: cannot run itself: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dsql-bench: cannot start a Tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Pools(args) => pools(args).await,
            Command::Charts(args) => charts::run(&args),
            Command::Soak(args) => soak::run(args).await,
            Command::Flood(args) => flood::run(args).await,
            Command::DialectCost(args) => dialect_cost::run(args).await,
            Command::Failover(args) => failover::run(args).await,
            Command::Network(args) => network::run(args).await,
            Command::Occ(args) => occ::run(args).await,
            Command::ServeRegions(args) => failover::serve(args).await,
            Command::ServeLocal(args) => server::serve(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dsql-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A duration's number (seconds, minutes) that is above zero: a zero or
/// negative period would make no run, or panic in a timer.
fn positive_number(text: &str) -> Result<f64, String> {
    let n = non_negative_number(text)?;
    if n > 0.0 {
        Ok(n)
    } else {
        Err("must be above zero".to_owned())
    }
}

/// A duration's number that is zero or more, and small enough for a
/// `Duration` however it is scaled (up to a million).
fn non_negative_number(text: &str) -> Result<f64, String> {
    let n: f64 = text
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number"))?;
    if (0.0..=1e6).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{text} is out of range (0 to 1,000,000)"))
    }
}

async fn pools(args: PoolsArgs) -> Result<(), BoxError> {
    let timing = if args.quick {
        Timing {
            steady: Duration::from_secs(1),
            warmup: Duration::from_millis(200),
            session_lifetime: Duration::from_secs(2),
            drop_every: Duration::from_secs(1),
        }
    } else {
        Timing {
            steady: Duration::from_secs_f64(args.seconds),
            warmup: Duration::from_secs_f64(args.warmup),
            session_lifetime: Duration::from_secs_f64(args.session_lifetime),
            drop_every: Duration::from_secs_f64(args.drop_every),
        }
    };
    let runs = if args.quick { 1 } else { args.runs.max(1) };
    let scenarios = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios.clone()
    };
    let tasks = match (&args.tasks[..], args.quick) {
        ([], true) => vec![32],
        ([], false) => vec![1, 8, 32, 128],
        (tasks, _) => tasks.to_vec(),
    };
    scenario::prepare(&args.upstream).await?;

    let mut results = Vec::new();
    for scenario in scenarios {
        let local = server::LocalProcess::spawn(&args.upstream, scenario.server_faults(&timing)).await?;
        eprintln!(
            "{scenario}: dsql-local (pid {}) at {} over {}",
            local.pid(),
            local.addr(),
            args.upstream
        );
        let plan = measure::Plan {
            duration: scenario.duration(&timing),
            warmup: timing.warmup,
        };
        let setup = clients::Setup {
            local: &local,
            upstream: &args.upstream,
            pool_size: args.pool_size,
            scenario,
            timing,
        };
        let chosen = |kind: &clients::ClientKind| args.clients.is_empty() || args.clients.contains(kind);
        let kinds: Vec<_> = clients::ClientKind::ALL
            .into_iter()
            .filter(|kind| kind.runs(scenario) && chosen(kind))
            .collect();
        // Runs are interleaved (every client once, then again), so that a
        // slow spell of the machine falls on every client alike rather than
        // on whichever one was running.
        // samples[client][concurrency]: one sample per run.
        let mut samples: Vec<Vec<Vec<measure::Sample>>> = vec![vec![Vec::new(); tasks.len()]; kinds.len()];
        for run in 0..runs {
            for (k, &kind) in kinds.iter().enumerate() {
                for (t, &concurrency) in tasks.iter().enumerate() {
                    // A fresh pool per run: its sessions open together, and
                    // no run inherits another's state.
                    let client = clients::Client::connect(kind, &setup)
                        .await
                        .map_err(|e| format!("{}: {e}", kind.name()))?;
                    let sample = measure::run(&client, scenario, concurrency, plan).await;
                    client.close().await;
                    eprintln!(
                        "  run {}/{runs} {:<40} {concurrency:>4} tasks: {}",
                        run + 1,
                        kind.name(),
                        sample.summary()
                    );
                    samples[k][t].push(sample);
                }
            }
        }
        for (kind, by_tasks) in kinds.iter().zip(samples) {
            for (&concurrency, runs) in tasks.iter().zip(by_tasks) {
                let sample = measure::median(runs);
                results.push(report::Row {
                    scenario,
                    client: kind.name(),
                    tasks: concurrency,
                    pool_size: args.pool_size,
                    sample,
                });
            }
        }
        local.stop().await;
    }

    print!("{}", report::markdown(&results, "bb8-postgres"));
    if let Some(path) = args.json {
        std::fs::write(&path, report::json(&results)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = args.charts {
        charts::write(&report::json(&results)?, &dir)?;
    }
    Ok(())
}
