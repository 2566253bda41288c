//! `dsql-bench flood`: the peak resident memory (`VmHWM`) of a dsql-local
//! front end in its own process, idle and then under a flood of hostile
//! input, against the bound its configuration implies.
//!
//! - **A, oversized frames**: authenticated sessions each send a `Query`
//!   header declaring 1 GiB, then bytes; each must end with `FATAL 54000`
//!   without anything reserved for the declared length.
//! - **B, large partial messages**: sessions each declare a `Query` of
//!   `max_message_size` and send just under 16 MiB of it, never finishing,
//!   all at once: `max_buffered_bytes` is what stops them (`FATAL 53200`).
//!   The held ones stay open through phase C.
//! - **C, half-open handshakes**: connections that send nothing, that stall
//!   mid-TLS (`SSLRequest`, then a `ClientHello` and silence), that send
//!   half a startup packet; those over `max_pending_handshakes` must be
//!   closed at once.
//! - **D, complete large messages** and **E, large results** (off unless
//!   `--complete` or `--large-results` asks for them): sessions that each
//!   have one large message relayed, one at a time so that each fits in the
//!   budget, then stay open. They check what a session keeps once its
//!   message is relayed, outside the budget.
//!
//! The peak is read from `/proc/<pid>/status` of the child, reset (through
//! `/proc/<pid>/clear_refs`) before each phase, and compared with
//! `max_buffered_bytes` plus what each connection may hold outside the
//! budget (see [`report::Bound`]). The command fails when the increase
//! exceeds the bound or the child no longer serves a query afterwards.

mod phases;
mod report;
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use dsql_tower::connect::client_config;
use tokio_postgres_rustls::MakeRustlsConnect;

use self::report::{Bound, Memory, Phase, Report, Settings, mib};
use self::wire::Target;
use crate::BoxError;
use crate::server::{LocalProcess, ServerFaults, ServerLimits};

const APPLICATION_NAME: &str = "dsql-bench-flood";

/// Options of `dsql-bench flood`.
#[derive(Debug, Args)]
pub(crate) struct FloodArgs {
    /// dsql-local's largest startup packet, bytes (default: its own, 10,000).
    #[arg(long)]
    max_startup_packet: Option<usize>,
    /// dsql-local's largest client message, bytes (default: its own, 64 MiB).
    #[arg(long)]
    max_message_size: Option<usize>,
    /// dsql-local's budget for all message buffers, bytes (default: its own,
    /// 512 MiB).
    #[arg(long)]
    max_buffered_bytes: Option<usize>,
    /// dsql-local's handshakes in progress at once (default: its own, 256).
    #[arg(long)]
    max_pending_handshakes: Option<usize>,
    /// dsql-local's open connections (default: its own, 10,000).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Keep dsql-local's connection-rate limit (100/s, burst 1,000). Off by
    /// default: it would refuse part of the flood before the bounds under
    /// test see it.
    #[arg(long)]
    rate_limit: bool,
    /// Sessions opened and closed before the idle reading.
    #[arg(long, default_value_t = 8)]
    idle_sessions: usize,
    /// Phase A: sessions sending an oversized frame.
    #[arg(long, default_value_t = 200)]
    oversized: usize,
    /// Phase A: the length the frames declare (default 1 GiB).
    #[arg(long, default_value_t = 1 << 30)]
    oversized_length: u32,
    /// Phase A: bytes sent after each header.
    #[arg(long, default_value_t = 64 * 1024)]
    oversized_bytes: usize,
    /// Sessions opened at once (phases A and B); each is also an upstream
    /// PostgreSQL connection.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Phase B: sessions each holding a large partial message.
    #[arg(long, default_value_t = 64)]
    partial: usize,
    /// Phase B: bytes of its message each session sends (less than the
    /// declared `max_message_size`, so that none completes). The default,
    /// just under 16 MiB, fills the buffer dsql-local grows (by doubling, one
    /// 16 KiB read ahead) to 16 MiB: the budget charges capacity, so a full
    /// buffer makes resident memory reach what the budget allows.
    #[arg(long, default_value_t = 16_760_000)]
    partial_bytes: usize,
    /// Phase C: connections that send nothing.
    #[arg(long, default_value_t = 1000)]
    silent: usize,
    /// Phase C: connections that stall mid-TLS-handshake.
    #[arg(long, default_value_t = 200)]
    tls_stalled: usize,
    /// Phase C: connections that send half a startup packet.
    #[arg(long, default_value_t = 200)]
    partial_startup: usize,
    /// Phase C: seconds the half-open connections are held before they are
    /// closed.
    #[arg(long, default_value_t = 3.0, value_parser = crate::non_negative_number)]
    hold: f64,
    /// Phase D (off by default): sessions that each send one complete
    /// message of `--complete-bytes`, one at a time, and stay open.
    #[arg(long, default_value_t = 0)]
    complete: usize,
    /// Phase D: the size of each complete message (at most
    /// `max_message_size`).
    #[arg(long, default_value_t = 32 << 20)]
    complete_bytes: usize,
    /// Phase E (off by default): sessions that each read a result of one
    /// `--result-bytes` value, one at a time, and stay open.
    #[arg(long, default_value_t = 0)]
    large_results: usize,
    /// Phase E: the size of each result's value.
    #[arg(long, default_value_t = 32 << 20)]
    result_bytes: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

pub(crate) async fn run(args: FloodArgs) -> Result<(), BoxError> {
    let half_open = args.silent + args.tls_stalled + args.partial_startup;
    check_descriptors(2 * (args.partial + args.concurrency) + half_open)?;
    let limits = ServerLimits {
        max_startup_packet: args.max_startup_packet,
        max_message_size: args.max_message_size,
        max_buffered_bytes: args.max_buffered_bytes,
        max_pending_handshakes: args.max_pending_handshakes,
        max_connections: args.max_connections,
        handshake_timeout: None,
        no_connection_rate_limit: !args.rate_limit,
        ..ServerLimits::default()
    };
    let mut local = LocalProcess::spawn_with_limits(&args.upstream, ServerFaults::default(), &limits).await?;
    let pid = local.pid();
    let settings = settings(&local)?;
    eprintln!(
        "flood: dsql-local (pid {pid}) at {} over {}",
        local.addr(),
        args.upstream
    );
    let target = Arc::new(target(&local).await?);

    // Idle, steady state included: sessions opened, used and closed.
    for _ in 0..args.idle_sessions {
        let mut session = target
            .session()
            .await
            .map_err(|e| format!("an idle session: {e}"))?;
        wire::select_one(&mut session).await?;
        wire::terminate(session).await;
    }
    normal_query(&local).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = Memory::of(pid)?;
    let peak_reset = report::reset_peak(pid);
    let baseline = if peak_reset {
        Memory::of(pid)?.hwm
    } else {
        idle.hwm
    };
    eprintln!("  idle: VmHWM {}, VmRSS {}", mib(idle.hwm), mib(idle.rss));

    let mut readings = Vec::new();
    let started = Instant::now();
    let endings = phases::oversized(&target, &args).await?;
    let what = format!(
        "{} frames declaring {} bytes",
        args.oversized, args.oversized_length
    );
    readings.push(end_phase(pid, peak_reset, "A", what, started, endings)?);

    let started = Instant::now();
    let (endings, held) = phases::partial_messages(&target, &args, &settings).await?;
    let what = format!(
        "{} partial messages of {} at once",
        args.partial,
        mib(args.partial_bytes as u64)
    );
    readings.push(end_phase(pid, peak_reset, "B", what, started, endings)?);

    let started = Instant::now();
    let (mut endings, connections) = phases::half_open_handshakes(&target, &args, &settings).await?;
    let (ended, held) = phases::recheck(held).await;
    for ending in ended {
        *endings.entry(format!("B's sessions: {ending}")).or_insert(0) += 1;
    }
    endings.insert("B's sessions: still held".to_owned(), held.len() as u64);
    let what = format!(
        "{half_open} half-open handshakes (silent {}, stalled TLS {}, half a startup packet {})",
        args.silent, args.tls_stalled, args.partial_startup
    );
    readings.push(end_phase(pid, peak_reset, "C", what, started, endings)?);
    drop(held);
    drop(connections);

    if args.complete > 0 {
        let started = Instant::now();
        let (endings, held) = phases::complete_messages(&target, &args, &settings).await?;
        let what = format!(
            "{} complete messages of {}, one at a time, sessions kept",
            args.complete,
            mib(args.complete_bytes as u64)
        );
        readings.push(end_phase(pid, peak_reset, "D", what, started, endings)?);
        drop(held);
    }
    if args.large_results > 0 {
        let started = Instant::now();
        let (endings, held) = phases::large_results(&target, &args).await?;
        let what = format!(
            "{} results of {}, one at a time, sessions kept",
            args.large_results,
            mib(args.result_bytes as u64)
        );
        readings.push(end_phase(pid, peak_reset, "E", what, started, endings)?);
        drop(held);
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let served_after = served_after(&local).await;
    let after = Memory::of(pid)?;
    let child_stats = local.command("stats").await.unwrap_or_default();
    local.stop().await;

    let peak = readings.iter().map(|p| p.peak).max().unwrap_or(baseline);
    let increase = peak.saturating_sub(baseline);
    let sessions = [
        args.concurrency.min(args.oversized),
        args.partial,
        args.complete,
        args.large_results,
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as u64;
    let bound = Bound::new(&settings, sessions, half_open as u64);
    let pass = increase <= bound.total && served_after;
    let report = Report {
        pid,
        settings,
        idle,
        baseline,
        peak_reset,
        phases: readings,
        peak,
        increase,
        bound,
        after,
        served_after,
        child_stats,
        pass,
    };
    println!("{}", report.render());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {}", path.display());
    }
    if pass {
        Ok(())
    } else if !served_after {
        Err("dsql-local no longer serves a query after the flood".into())
    } else {
        Err(format!(
            "the peak increase {} exceeds the bound {}",
            mib(report.increase),
            mib(report.bound.total)
        )
        .into())
    }
}

/// Reads the child's memory at the end of a phase, then resets its peak for
/// the next one.
fn end_phase(
    pid: u32,
    peak_reset: bool,
    name: &'static str,
    what: String,
    started: Instant,
    endings: BTreeMap<String, u64>,
) -> Result<Phase, BoxError> {
    let memory = Memory::of(pid)?;
    if peak_reset {
        report::reset_peak(pid);
    }
    eprintln!(
        "  {name}: {what}: VmHWM {}, VmRSS {}, {endings:?}",
        mib(memory.hwm),
        mib(memory.rss)
    );
    Ok(Phase {
        name,
        what,
        seconds: started.elapsed().as_secs_f64(),
        peak: memory.hwm,
        rss: memory.rss,
        endings,
    })
}

/// The limits the child reported.
fn settings(local: &LocalProcess) -> Result<Settings, BoxError> {
    let text = |name: &str| {
        local
            .setting(name)
            .ok_or_else(|| format!("the dsql-local child did not report {name}"))
    };
    let number = |name: &str| -> Result<u64, BoxError> { Ok(text(name)?.parse()?) };
    Ok(Settings {
        max_startup_packet: number("max_startup_packet")?,
        max_message_size: number("max_message_size")?,
        max_buffered_bytes: number("max_buffered_bytes")?,
        max_pending_handshakes: number("max_pending_handshakes")?,
        max_connections: number("max_connections")?,
        handshake_timeout_ms: number("handshake_timeout_ms")?,
        connection_rate: text("connection_rate")?.to_owned(),
    })
}

/// The address, TLS configuration and a token (valid an hour) for raw
/// sessions as `admin`.
async fn target(local: &LocalProcess) -> Result<Target, BoxError> {
    let config = local
        .config("admin", APPLICATION_NAME)?
        .to_builder()
        .token_duration(Duration::from_secs(3600))
        .build()?;
    let token = local.sign(&config).await?;
    Ok(Target {
        addr: local.addr(),
        host: local.host().to_owned(),
        tls: Arc::new(client_config(config.ssl_root_cert())?),
        token: token.expose_secret().to_owned(),
    })
}

/// `SELECT 1` through tokio-postgres, as an application connects.
async fn normal_query(local: &LocalProcess) -> Result<(), BoxError> {
    let config = local.config("admin", APPLICATION_NAME)?;
    let pg = local.signed_pg_config(&config).await?;
    let tls = MakeRustlsConnect::new(client_config(config.ssl_root_cert())?);
    let (client, connection) = pg.connect(tls).await?;
    let task = tokio::spawn(connection);
    client.simple_query("SELECT 1").await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

/// Whether the child serves a query once the flood is gone (retried for
/// ten seconds: the server notices the closed handshakes as it reads them).
async fn served_after(local: &LocalProcess) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match normal_query(local).await {
            Ok(()) => return true,
            Err(error) if Instant::now() >= deadline => {
                eprintln!("  no query served after the flood: {error}");
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Fails early when the flood would need more file descriptors than the
/// soft `RLIMIT_NOFILE` (the child inherits it, and holds about as many).
fn check_descriptors(needed: usize) -> Result<(), BoxError> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    match soft {
        Some(soft) if needed + 64 > soft => Err(format!(
            "the flood needs about {needed} file descriptors, the limit is {soft}: \
             raise it (ulimit -n) or lower the counts"
        )
        .into()),
        _ => Ok(()),
    }
}
