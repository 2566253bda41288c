//! `dsqlctl`: Amazon Aurora DSQL from the command line.
//!
//! The binary is not called `dsql` because the crates.io `dsql-cli` crate
//! already installs a `dsql` binary; two tools with one name on a `PATH`
//! would shadow each other.
#![forbid(unsafe_code)]

mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Amazon Aurora DSQL from the command line.
#[derive(Debug, Parser)]
#[command(name = "dsqlctl", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print an IAM authentication token (the password for a DSQL connection).
    Token(token::TokenArgs),
}

/// How a command failed: bad input (exit 2) or a failure to do the work (exit 1).
#[derive(Debug)]
enum Failure {
    Usage(String),
    Runtime(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DSQL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(args) => token::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("dsqlctl: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("dsqlctl: {message}");
            ExitCode::from(1)
        }
    }
}
