//! Examples, workspace integration tests and shared example support for the
//! `dsql-rs` crates. Nothing here is published; the libraries live in
//! `crates/`.
//!
//! [`Target::from_env_or_local`] is what every example starts with: the DSQL
//! cluster named by `CLUSTER_ENDPOINT` (with AWS credentials from the default
//! chain) when it is set, otherwise a `dsql-local` front end over the local
//! PostgreSQL, so the same code runs the real authentication flow either way.
//! Each first calls [`init_tracing`], so `RUST_LOG` shows the libraries'
//! spans and events.
#![forbid(unsafe_code)]

/// Where the examples connect: `dsql-local`'s [`Target`]
/// (feature `target`), which your own programs and tests can use too.
pub use dsql_local::Target;
/// A boxed error for examples.
pub use dsql_tower::BoxError;

/// Prints the events `RUST_LOG` asks for to stderr (`warn` and above when
/// it is unset), each with the spans it happened in: `RUST_LOG=dsql_tower=debug`
/// shows every retry inside its `dsql.operation` span, with the span's
/// OpenTelemetry attributes (`db.system.name`, `server.address`, …), never a
/// token or a query parameter.
///
/// To export the spans to an OpenTelemetry backend instead, add
/// `tracing-opentelemetry`'s layer to a `tracing_subscriber::registry()`:
/// `dsql.operation` and `dsql.connect` carry `otel.kind = "client"`, so they
/// show as database client spans.
///
/// Calling it again, or after another subscriber was installed, does
/// nothing.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;

    // Invalid directives are reported on stderr and skipped, not fatal.
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
