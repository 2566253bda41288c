//! `dsql-bench network`: the clients over a modelled region's network
//! (dsql-local's delay line, `--round-trip-ms` each way halved, from accept
//! on), where round trips rather than the pool set the pace.
//!
//! In one run, against one dsql-local child:
//!
//! 1. **the round trip**, measured: `SELECT 1` alone on one connection
//!    (dsql-bb8 `get`, one task) for a second: the line's delay, the front
//!    end and PostgreSQL. Tokio's timer is millisecond-grained, so the
//!    configured figure is not taken on trust. One connection alone does
//!    1 ÷ (mean time per operation) operations a second, so the limit of a
//!    pool of N connections is N ÷ that mean (Little's law); the median is
//!    reported beside it, and the line's own lateness per delivery.
//! 2. **unqueued**: `--pool-size` tasks on as many connections (dsql-bb8
//!    `get`, so no task ever waits for one), `SELECT 1`: what that many busy
//!    connections do on this machine in this run with no queue for them,
//!    the client, the front end and PostgreSQL sharing its cores. A
//!    reference, not a bound: with more tasks than connections a caller is
//!    ready the moment a connection comes back, which can do a little more.
//! 3. **steady throughput**: every client of `pools` that goes through
//!    dsql-local, `--tasks` tasks on `--pool-size` connections, `SELECT 1`,
//!    against that limit, with this process's CPU per operation; and each
//!    client's round trips per operation, counted by the delay line (turns
//!    of the conversation) over a run of one task.
//! 4. **connect time**: `--connects` connects with `SSLRequest` and as many
//!    with direct TLS, interleaved, through dsql-tower's connector; median
//!    time and round trips per connect.
//! 5. **refill**: all sessions cut at once, then `--pool-size` tasks each
//!    run one `SELECT 1` until it succeeds: the time until all have, and
//!    the failures the callers saw.

mod connect;
mod refill;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::BoxError;
use crate::clients::{Client, ClientKind, Setup};
use crate::measure::{self, Plan, Sample};
use crate::scenario::{Scenario, Timing};
use crate::server::{LocalProcess, ServerFaults, ServerLimits};

/// Options of `dsql-bench network`.
#[derive(Debug, Args)]
pub(crate) struct NetworkArgs {
    /// The modelled network's round trip, milliseconds.
    #[arg(long, default_value_t = 1.0, value_parser = crate::positive_number)]
    round_trip_ms: f64,
    /// Concurrent tasks in the throughput runs.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    tasks: u32,
    /// Connections per pool.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pool_size: u32,
    /// Measured seconds per throughput run.
    #[arg(long, default_value_t = 4.0, value_parser = crate::positive_number)]
    seconds: f64,
    /// Warm-up seconds per throughput run, not measured.
    #[arg(long, default_value_t = 0.5, value_parser = crate::non_negative_number)]
    warmup: f64,
    /// Runs per client, interleaved; the median run by throughput is
    /// reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Connects per TLS negotiation.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connects: u32,
    /// Clients, comma-separated (default: every client through dsql-local).
    #[arg(long, value_delimiter = ',', value_enum)]
    clients: Vec<ClientKind>,
    /// One short run of each part.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

/// One client's figures (its median run).
#[derive(Debug, Serialize)]
struct ClientFigures {
    client: &'static str,
    ops_per_sec: f64,
    /// Throughput ÷ (pool size ÷ measured round trip).
    of_limit: f64,
    /// Throughput ÷ the unqueued run's of the same round, the median over
    /// rounds.
    of_unqueued: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    cpu_us_per_op: Option<f64>,
    /// The dsql-local child's CPU (front end and delay line) per operation.
    front_end_cpu_us_per_op: Option<f64>,
    /// Mean lateness of the delay line's deliveries in the run: what the
    /// machine's load added to the modelled network.
    line_late_us: f64,
    round_trips_per_op: f64,
    refill: refill::Refill,
}

/// One client's run.
#[derive(Clone)]
struct RunFigures {
    sample: Sample,
    front_end_us: Option<f64>,
    line_late_us: f64,
    /// Throughput ÷ the unqueued run's of the same round.
    of_unqueued: f64,
    round_trips_per_op: f64,
    refill: refill::Refill,
}

/// `SELECT 1` alone on one connection.
#[derive(Clone, Copy, Debug, Serialize)]
struct RoundTrip {
    /// Time per operation: the measured window ÷ operations.
    mean_ms: f64,
    median_ms: f64,
    /// Mean lateness of the delay line's deliveries meanwhile.
    line_late_us: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    round_trip_configured_ms: f64,
    /// The median run's, by mean; the limit is pool size ÷ its mean.
    round_trip_measured: RoundTrip,
    tasks: u32,
    pool_size: u32,
    limit_ops_per_sec: f64,
    /// One task per connection, the median run.
    unqueued_ops_per_sec: f64,
    clients: Vec<ClientFigures>,
    connects: Vec<connect::ConnectFigures>,
}

pub(crate) async fn run(args: NetworkArgs) -> Result<(), BoxError> {
    let (seconds, runs, connects) = if args.quick {
        (1.0, 1, 5)
    } else {
        (args.seconds, args.runs, args.connects)
    };
    let round_trip = Duration::from_secs_f64(args.round_trip_ms / 1000.0);
    let limits = ServerLimits {
        round_trip: Some(round_trip),
        // Refills and connect runs open connections in bursts.
        no_connection_rate_limit: true,
        ..ServerLimits::default()
    };
    let mut local = LocalProcess::spawn_with_limits(&args.upstream, ServerFaults::default(), &limits).await?;
    eprintln!(
        "network: dsql-local (pid {}) at {}, round trip {:.3} ms",
        local.pid(),
        local.addr(),
        args.round_trip_ms
    );
    let timing = Timing {
        steady: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64(if args.quick { 0.2 } else { args.warmup }),
        session_lifetime: Duration::from_secs(3600),
        drop_every: Duration::from_secs(3600),
    };
    let kinds: Vec<ClientKind> = ClientKind::ALL
        .into_iter()
        .filter(|&kind| kind != ClientKind::DirectDeadpool)
        .filter(|kind| args.clients.is_empty() || args.clients.contains(kind))
        .collect();

    // Goodbyes and handshakes on the line take a round trip or more.
    let settle = round_trip.max(Duration::from_millis(10));
    let mut round_trips_measured = Vec::new();
    let mut unqueued_runs = Vec::new();
    let mut samples: Vec<Vec<RunFigures>> = vec![Vec::new(); kinds.len()];
    for run in 0..runs {
        let round_trip = measure_round_trip(&mut local, &args.upstream, timing, settle).await?;
        eprintln!(
            "  run {}/{runs} round trip: mean {:.3} ms, median {:.3} ms, line late {:.0} µs",
            run + 1,
            round_trip.mean_ms,
            round_trip.median_ms,
            round_trip.line_late_us
        );
        round_trips_measured.push(round_trip);
        let unqueued = measure_unqueued(&mut local, &args.upstream, args.pool_size, timing, settle).await?;
        eprintln!("  run {}/{runs} unqueued: {unqueued:.0} ops/s", run + 1);
        unqueued_runs.push(unqueued);
        for (k, &kind) in kinds.iter().enumerate() {
            let client = connect_client(&local, &args.upstream, kind, args.pool_size, timing).await?;
            let per_op = round_trips_per_op(&client, &mut local).await?;
            let plan = Plan {
                duration: timing.steady,
                warmup: timing.warmup,
            };
            let line_before = LineLateness::read(&mut local).await?;
            let (sample, front_end_cpu) = measure::run_watching(
                &client,
                Scenario::SelectOne,
                args.tasks as usize,
                plan,
                local.pid(),
            )
            .await;
            let line_late_us = LineLateness::read(&mut local).await?.mean_us_since(line_before);
            let front_end_us = front_end_cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / sample.ops.max(1) as f64);
            let refill = refill::measure(&client, &mut local, args.pool_size).await?;
            client.close().await;
            quiet(&mut local, settle).await?;
            eprintln!(
                "  run {}/{runs} {:<28} {}  front end {:.1} µs/op  line late {line_late_us:.0} µs  {per_op:.2} round trips/op  refill {:.1} ms ({} failures)",
                run + 1,
                kind.name(),
                sample.summary(),
                front_end_us.unwrap_or(f64::NAN),
                refill.ms,
                refill.failures,
            );
            samples[k].push(RunFigures {
                of_unqueued: sample.ops_per_sec() / unqueued,
                sample,
                front_end_us,
                line_late_us,
                round_trips_per_op: per_op,
                refill,
            });
        }
    }
    round_trips_measured.sort_by(|a, b| a.mean_ms.total_cmp(&b.mean_ms));
    let round_trip = round_trips_measured[round_trips_measured.len() / 2];
    let limit = f64::from(args.pool_size) / (round_trip.mean_ms / 1000.0);
    let unqueued = measure::median_of(unqueued_runs);
    let clients = kinds
        .iter()
        .zip(samples)
        .map(|(kind, mut runs)| {
            let of_unqueued = measure::median_of(runs.iter().map(|run| run.of_unqueued));
            runs.sort_by(|a, b| a.sample.ops_per_sec().total_cmp(&b.sample.ops_per_sec()));
            let RunFigures {
                sample,
                front_end_us: front_end_cpu_us_per_op,
                line_late_us,
                of_unqueued: _,
                round_trips_per_op,
                refill,
            } = runs.swap_remove(runs.len() / 2);
            ClientFigures {
                client: kind.name(),
                ops_per_sec: sample.ops_per_sec(),
                of_limit: sample.ops_per_sec() / limit,
                of_unqueued,
                p50_ms: sample.quantile_ms(0.5),
                p99_ms: sample.quantile_ms(0.99),
                errors: sample.errors,
                cpu_us_per_op: sample.cpu_us_per_op(),
                front_end_cpu_us_per_op,
                line_late_us,
                round_trips_per_op,
                refill,
            }
        })
        .collect();
    let connects = connect::measure(&mut local, connects, settle).await?;
    local.stop().await;

    let report = Report {
        round_trip_configured_ms: args.round_trip_ms,
        round_trip_measured: round_trip,
        tasks: args.tasks,
        pool_size: args.pool_size,
        limit_ops_per_sec: limit,
        unqueued_ops_per_sec: unqueued,
        clients,
        connects,
    };
    print!("{}", markdown(&report));
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn connect_client(
    local: &LocalProcess,
    upstream: &str,
    kind: ClientKind,
    pool_size: u32,
    timing: Timing,
) -> Result<Client, BoxError> {
    let setup = Setup {
        local,
        upstream,
        pool_size,
        scenario: Scenario::SelectOne,
        timing,
    };
    Client::connect(kind, &setup)
        .await
        .map_err(|e| format!("{}: {e}", kind.name()).into())
}

/// `SELECT 1` alone on one connection for a second.
async fn measure_round_trip(
    local: &mut LocalProcess,
    upstream: &str,
    timing: Timing,
    settle: Duration,
) -> Result<RoundTrip, BoxError> {
    let client = connect_client(local, upstream, ClientKind::DsqlBb8Get, 1, timing).await?;
    let plan = Plan {
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(100),
    };
    let line_before = LineLateness::read(local).await?;
    let sample = measure::run(&client, Scenario::SelectOne, 1, plan).await;
    let line_late_us = LineLateness::read(local).await?.mean_us_since(line_before);
    client.close().await;
    if sample.ops == 0 {
        return Err(format!("no round trip measured: {:?}", sample.first_error).into());
    }
    quiet(local, settle).await?;
    Ok(RoundTrip {
        mean_ms: 1000.0 / sample.ops_per_sec(),
        median_ms: sample.quantile_ms(0.5),
        line_late_us,
    })
}

/// `pool_size` tasks on as many connections: what that many busy
/// connections do here and now with no queue for them (dsql-bb8 `get`, so
/// that no task waits for a connection; an uncontended checkout costs a
/// microsecond or two of CPU).
async fn measure_unqueued(
    local: &mut LocalProcess,
    upstream: &str,
    pool_size: u32,
    timing: Timing,
    settle: Duration,
) -> Result<f64, BoxError> {
    let client = connect_client(local, upstream, ClientKind::DsqlBb8Get, pool_size, timing).await?;
    let plan = Plan {
        duration: timing.steady,
        warmup: timing.warmup,
    };
    let sample = measure::run(&client, Scenario::SelectOne, pool_size as usize, plan).await;
    client.close().await;
    if sample.ops == 0 {
        return Err(format!("no operation in the unqueued run: {:?}", sample.first_error).into());
    }
    quiet(local, settle).await?;
    Ok(sample.ops_per_sec())
}

/// Turns of the conversation per `SELECT 1`, over a run of one task (so
/// that no two operations share a turn).
async fn round_trips_per_op(client: &Client, local: &mut LocalProcess) -> Result<f64, BoxError> {
    let before = round_trips(local).await?;
    let plan = Plan {
        duration: Duration::from_millis(300),
        warmup: Duration::ZERO,
    };
    let sample = measure::run(client, Scenario::SelectOne, 1, plan).await;
    let turns = round_trips(local).await? - before;
    if sample.ops == 0 {
        return Err(format!("no operation finished: {:?}", sample.first_error).into());
    }
    Ok(turns as f64 / sample.ops as f64)
}

/// The delay line's deliveries and their summed lateness, so far.
#[derive(Clone, Copy)]
struct LineLateness {
    deliveries: u64,
    late_us: u64,
}

impl LineLateness {
    async fn read(local: &mut LocalProcess) -> Result<Self, BoxError> {
        let [deliveries, late_us] = local.stats(["line_deliveries", "line_late_us"]).await?;
        Ok(Self { deliveries, late_us })
    }

    /// Mean lateness per delivery since `before`, microseconds.
    fn mean_us_since(self, before: Self) -> f64 {
        let deliveries = self.deliveries.saturating_sub(before.deliveries);
        self.late_us.saturating_sub(before.late_us) as f64 / deliveries.max(1) as f64
    }
}

/// Waits until the front end has no session open (the last client's
/// goodbyes have passed the line) and the line has counted no turn for
/// `settle` (at least a round trip): bytes still travelling, or a connect
/// not yet a session, would count in the next figure.
async fn quiet(local: &mut LocalProcess, settle: Duration) -> Result<(), BoxError> {
    const PATIENCE: Duration = Duration::from_secs(5);
    let started = tokio::time::Instant::now();
    let mut last_turns = None;
    while started.elapsed() < PATIENCE {
        let [sessions, turns] = local.stats(["current_sessions", "round_trips"]).await?;
        if sessions == 0 && last_turns == Some(turns) {
            return Ok(());
        }
        last_turns = Some(turns);
        tokio::time::sleep(settle).await;
    }
    Err(format!("sessions still open, or turns still counted, at the front end after {PATIENCE:?}").into())
}

/// The delay line's count of round trips so far.
pub(crate) async fn round_trips(local: &mut LocalProcess) -> Result<u64, BoxError> {
    local.stat("round_trips").await
}

fn markdown(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n### {} tasks on {} connections, round trip {:.3} ms configured, {:.3} ms measured: limit {:.0} ops/s\n",
        report.tasks,
        report.pool_size,
        report.round_trip_configured_ms,
        report.round_trip_measured.mean_ms,
        report.limit_ops_per_sec
    );
    let _ = writeln!(
        out,
        "Round trip measured as `SELECT 1` alone on one connection: mean {:.3} ms (the limit is pool size ÷ this), \
         median {:.3} ms; the line's deliveries {:.0} µs late on average meanwhile. \
         Unqueued, {} tasks on as many connections (none waits for one): {:.0} ops/s, {:.3} × limit.\n",
        report.round_trip_measured.mean_ms,
        report.round_trip_measured.median_ms,
        report.round_trip_measured.line_late_us,
        report.pool_size,
        report.unqueued_ops_per_sec,
        report.unqueued_ops_per_sec / report.limit_ops_per_sec
    );
    let _ = writeln!(
        out,
        "| client | ops/s | × limit | × unqueued | round trips/op | client CPU µs/op | front end CPU µs/op | line late µs | p50 ms | p99 ms | errors | refill ms | refill failures |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in &report.clients {
        let micros = |us: Option<f64>| us.map_or_else(|| "—".to_owned(), |us| format!("{us:.1}"));
        let (cpu, front_end) = (micros(c.cpu_us_per_op), micros(c.front_end_cpu_us_per_op));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {:.3} | {:.2} | {cpu} | {front_end} | {:.0} | {:.3} | {:.3} | {} | {:.1} | {} |",
            c.client,
            c.ops_per_sec,
            c.of_limit,
            c.of_unqueued,
            c.round_trips_per_op,
            c.line_late_us,
            c.p50_ms,
            c.p99_ms,
            c.errors,
            c.refill.ms,
            c.refill.failures
        );
    }
    let _ = writeln!(
        out,
        "\n| TLS negotiation | connects | median ms | round trips per connect |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    for c in &report.connects {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.2} |",
            c.negotiation, c.connects, c.median_ms, c.round_trips_per_connect
        );
    }
    out
}
