//! `dsql-bench`: the pools users pick today against `dsql-bb8`, every client
//! through a `dsql-local` front end (TLS, IAM tokens) running in its own
//! process, in the same run.
//!
//! ```text
//! cargo run --release -p dsql-bench -- pools                 # 8, 32, 128 tasks on 16 connections
//! cargo run --release -p dsql-bench -- pools --runs 3 --json results.json
//! cargo run --release -p dsql-bench -- pools --quick         # a short smoke run
//! ```
#![forbid(unsafe_code)]

mod clients;
mod measure;
mod report;
mod server;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Benchmarks of dsql-rs against bb8-postgres and deadpool-postgres.
#[derive(Debug, Parser)]
#[command(name = "dsql-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checkout → `SELECT 1` → return, at several concurrencies, per client.
    Pools(PoolsArgs),
    /// Runs a dsql-local front end and prints how to reach it (used by the
    /// other commands, which start it in a child process).
    #[command(hide = true)]
    ServeLocal(server::ServeArgs),
}

#[derive(Debug, Args)]
struct PoolsArgs {
    /// Concurrent tasks, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,32,128")]
    tasks: Vec<usize>,
    /// Connections per pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds per run, not measured.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Runs per client and concurrency; the median run (by throughput) is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// One second per run, one run: a smoke test of the whole harness.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    upstream: String,
}

fn main() -> ExitCode {
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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn pools(args: PoolsArgs) -> Result<(), BoxError> {
    let (seconds, warmup, runs) = if args.quick {
        (1.0, 0.2, 1)
    } else {
        (args.seconds, args.warmup, args.runs.max(1))
    };
    let plan = measure::Plan {
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64(warmup),
    };
    let local = server::LocalProcess::spawn(&args.upstream).await?;
    eprintln!(
        "dsql-local (pid {}) at {} over {}",
        local.pid(),
        local.addr(),
        args.upstream
    );

    let mut results = Vec::new();
    for kind in clients::ClientKind::ALL {
        let client = clients::Client::connect(kind, &local, args.pool_size).await?;
        for &tasks in &args.tasks {
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(measure::run(&client, tasks, plan).await);
            }
            let sample = measure::median(samples);
            eprintln!("{:<28} {tasks:>4} tasks: {}", kind.name(), sample.summary());
            results.push(report::Row {
                client: kind.name(),
                tasks,
                pool_size: args.pool_size,
                sample,
            });
        }
        client.close().await;
    }
    local.stop().await;

    print!("{}", report::markdown(&results, "bb8-postgres"));
    if let Some(path) = args.json {
        std::fs::write(&path, report::json(&results)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
