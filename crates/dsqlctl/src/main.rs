//! `dsqlctl`: Amazon Aurora DSQL from the command line.
//!
//! The binary is not called `dsql` because the crates.io `dsql-cli` crate
//! already installs a `dsql` binary; two tools with one name on a `PATH`
//! would shadow each other.
#![forbid(unsafe_code)]

mod duration;
mod local;
mod token;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::error::ErrorKind;
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
    /// Run a local DSQL-compatible endpoint over a PostgreSQL until Ctrl-C.
    Local(Box<local::LocalArgs>),
}

/// How a command failed: bad input (exit 2) or a failure to do the work (exit 1).
#[derive(Debug)]
enum Failure {
    Usage(String),
    Runtime(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, or no subcommand: clap prints the help.
        Err(e) if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => return fail(Failure::Usage(one_line(&e))),
    };
    // `local` is a server: its start, stop and periodic stats are info.
    let default_filter = match cli.command {
        Command::Local(_) => "info",
        Command::Token(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DSQL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();

    let result = match cli.command {
        Command::Token(args) => token::run(args).await,
        Command::Local(args) => local::run(*args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(failure),
    }
}

fn fail(failure: Failure) -> ExitCode {
    let (message, code) = match failure {
        Failure::Usage(message) => (message, 2),
        Failure::Runtime(message) => (message, 1),
    };
    eprintln!("dsqlctl: {message}");
    ExitCode::from(code)
}

/// clap's error as one line: its text up to the usage, without `error: `.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let text = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}
