//! `dsql-bench dialect-cost`: what reading every statement with
//! PostgreSQL's parser costs dsql-local. The same client (dsql-bb8 `get`,
//! simple query protocol) against a dsql-local child under the DSQL dialect
//! and one under the PostgreSQL dialect (statements passed through), in one
//! run, interleaved; reported as throughput and as the child's CPU per
//! operation (read from `/proc/<pid>/stat`), the figure that does not depend
//! on what else the machine is doing. Target: the DSQL dialect costs at most
//! 10% more CPU per operation.
//!
//! The point reads carry their key as a literal (10,000 distinct texts), the
//! worst case for the decision cache; a driver's prepared statements send
//! one text per statement.

use std::time::Duration;

use clap::Args;
use dsql_local::Dialect;

use crate::BoxError;
use crate::clients::{Client, ClientKind, Setup};
use crate::measure::{self, Plan};
use crate::scenario::{self, Scenario, Timing};
use crate::server::{LocalProcess, ServerFaults, ServerLimits};

#[derive(Debug, Args)]
pub(crate) struct DialectCostArgs {
    /// Concurrent tasks.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Connections in the pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Measured seconds per scenario and dialect.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds, each running both dialects (in alternating order); the
    /// median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Upstream PostgreSQL of the dsql-local children.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

/// One scenario under one dialect.
#[derive(Clone, Copy, Debug)]
struct Figure {
    ops_per_sec: f64,
    /// dsql-local's CPU per operation, microseconds.
    server_us_per_op: f64,
}

pub(crate) async fn run(args: DialectCostArgs) -> Result<(), BoxError> {
    scenario::prepare(&args.upstream).await?;
    let timing = Timing {
        steady: Duration::from_secs_f64(args.seconds),
        warmup: Duration::from_millis(500),
        session_lifetime: Duration::from_secs(3600),
        drop_every: Duration::from_secs(3600),
    };
    let scenarios = [Scenario::SelectOne, Scenario::PointRead];
    let mut figures: Vec<Vec<(Dialect, Scenario, Figure)>> = Vec::new();
    for round in 0..args.runs.max(1) {
        let order = if round % 2 == 0 {
            [Dialect::Postgres, Dialect::Dsql]
        } else {
            [Dialect::Dsql, Dialect::Postgres]
        };
        let mut this_round = Vec::new();
        for dialect in order {
            for (scenario, figure) in measure_dialect(&args, &timing, dialect, &scenarios).await? {
                eprintln!(
                    "round {round}: {dialect:<8} {scenario}: {:.0} ops/s, dsql-local {:.1} µs CPU/op",
                    figure.ops_per_sec, figure.server_us_per_op
                );
                this_round.push((dialect, scenario, figure));
            }
        }
        figures.push(this_round);
    }
    println!(
        "# dsql-local: the DSQL dialect's cost, {} rounds, {} tasks, pool of {}",
        args.runs, args.tasks, args.pool_size
    );
    println!();
    println!(
        "| scenario | postgres ops/s | dsql ops/s | throughput ratio | postgres µs CPU/op | dsql µs CPU/op | CPU ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for scenario in scenarios {
        let median = |dialect: Dialect, pick: fn(&Figure) -> f64| {
            crate::measure::median_of(
                figures
                    .iter()
                    .flatten()
                    .filter(|(d, s, _)| *d == dialect && *s == scenario)
                    .map(|(_, _, f)| pick(f)),
            )
        };
        let (pg_ops, dsql_ops) = (
            median(Dialect::Postgres, |f| f.ops_per_sec),
            median(Dialect::Dsql, |f| f.ops_per_sec),
        );
        let (pg_cpu, dsql_cpu) = (
            median(Dialect::Postgres, |f| f.server_us_per_op),
            median(Dialect::Dsql, |f| f.server_us_per_op),
        );
        let cpu_ratio = dsql_cpu / pg_cpu;
        worst = worst.max(cpu_ratio);
        println!(
            "| {scenario} | {pg_ops:.0} | {dsql_ops:.0} | {:.3} | {pg_cpu:.1} | {dsql_cpu:.1} | {cpu_ratio:.3} |",
            dsql_ops / pg_ops
        );
    }
    println!();
    let verdict = if worst <= 1.10 { "within" } else { "over" };
    println!("worst CPU ratio {worst:.3}: {verdict} the 1.10 target");
    Ok(())
}

/// Starts a child under `dialect` and measures each scenario against it.
async fn measure_dialect(
    args: &DialectCostArgs,
    timing: &Timing,
    dialect: Dialect,
    scenarios: &[Scenario],
) -> Result<Vec<(Scenario, Figure)>, BoxError> {
    let limits = ServerLimits {
        dialect: Some(dialect),
        ..ServerLimits::default()
    };
    let local = LocalProcess::spawn_with_limits(&args.upstream, ServerFaults::default(), &limits).await?;
    let pid = local.pid();
    let mut out = Vec::new();
    for &scenario in scenarios {
        let setup = Setup {
            local: &local,
            upstream: &args.upstream,
            pool_size: args.pool_size,
            scenario,
            timing: *timing,
        };
        let client = Client::connect(ClientKind::DsqlBb8Get, &setup).await?;
        let plan = Plan {
            duration: timing.steady,
            warmup: timing.warmup,
        };
        let (sample, cpu) = measure::run_watching(&client, scenario, args.tasks, plan, pid).await;
        client.close().await;
        if let Some(error) = &sample.first_error {
            return Err(format!("{dialect} {scenario}: {error}").into());
        }
        let cpu = cpu.unwrap_or_default();
        out.push((
            scenario,
            Figure {
                ops_per_sec: sample.ops_per_sec(),
                server_us_per_op: cpu.as_secs_f64() * 1e6 / sample.ops.max(1) as f64,
            },
        ));
    }
    local.stop().await;
    Ok(out)
}
