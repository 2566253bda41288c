//! The chaos soak: a `dsql-bb8` pool writing a ledger through dsql-local
//! while faults strike at random (session drops, authentication refused,
//! latency spikes, injected conflicts, drops at `COMMIT`, a paused listener)
//! and PostgreSQL restarts once; then the invariants, checked in PostgreSQL.
//!
//! Two kinds of operation alternate:
//! - *plain*: insert the operation's id into the ledger and bump a hot
//!   counter (so that conflicts also happen naturally), in a transaction not
//!   marked idempotent. A connection lost during its `COMMIT` must surface
//!   as `OutcomeUnknown`, never be replayed.
//! - *guarded*: claim the id in `soak_done` (primary key, `ON CONFLICT DO
//!   NOTHING`) and insert it into the ledger only if the claim was new,
//!   marked idempotent, so the pool may replay it whatever happened.
//!
//! The ledger itself has no unique constraint, so a double apply is a
//! duplicate row, not a `23505`. (A first version guarded with `WHERE NOT
//! EXISTS` on the ledger. The soak caught it applying twice: a replay's
//! snapshot need not see the lost attempt's `COMMIT`. Only a unique key
//! makes a replay safe.)

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use clap::Args;
use dsql_auth::{CachingProvider, SharedTokenProvider, SigningProvider};
use dsql_bb8::DsqlPool;
use dsql_tower::{ErrorClass, Operation};

use crate::BoxError;
use crate::server::upstream_client;
use crate::server::{LocalProcess, ServerFaults};
use crate::xorshift::Xorshift;

const APPLICATION_NAME: &str = "dsql-bench-soak";
const HOT_ROWS: i32 = 16;

/// Options of `dsql-bench soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long the load runs, in minutes.
    #[arg(long, default_value_t = 5.0, value_parser = crate::positive_number)]
    minutes: f64,
    /// Concurrent workers.
    #[arg(long, default_value_t = 32)]
    tasks: u32,
    /// Connections in the pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Server session lifetime in seconds (DSQL: 3,600), so that sessions
    /// also expire during the soak.
    #[arg(long, default_value_t = 20.0, value_parser = crate::positive_number)]
    session_lifetime: f64,
    /// Token validity in seconds, so that tokens are re-signed during it.
    #[arg(long, default_value_t = 30)]
    token_seconds: u64,
    /// Seed of the fault schedule (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Shell command restarting PostgreSQL once, mid-soak (default: Debian's
    /// `pg_ctlcluster --skip-systemctl-redirect <version> main restart`).
    #[arg(long)]
    restart_command: Option<String>,
    /// Do not restart PostgreSQL.
    #[arg(long)]
    no_restart: bool,
    /// Upstream PostgreSQL of the dsql-local front end.
    #[arg(long, default_value = crate::DEFAULT_UPSTREAM)]
    upstream: String,
}

/// What one worker did: its operations were numbered 1..=attempted, and all
/// but `failed` were acknowledged.
#[derive(Debug, Default)]
struct WorkerLog {
    attempted: u32,
    failed: Vec<Failure>,
}

#[derive(Debug)]
struct Failure {
    seq: u32,
    guarded: bool,
    class: ErrorClass,
    attempts: u32,
    message: String,
}

fn op_id(worker: u32, seq: u32) -> i64 {
    (i64::from(worker) << 32) | i64::from(seq)
}

pub(crate) async fn run(args: SoakArgs) -> Result<(), BoxError> {
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let warmup = (duration / 5).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let restart = if args.no_restart {
        None
    } else {
        Some(match args.restart_command.clone() {
            Some(command) => command,
            None => default_restart_command()?,
        })
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!(
        "soak: {:.1} min, {} workers on {} connections, seed {seed}, PostgreSQL restart: {}",
        args.minutes,
        args.tasks,
        args.pool_size,
        restart.as_deref().unwrap_or("none")
    );

    prepare(&args.upstream).await?;
    let baseline = own_sessions(&upstream_client(&args.upstream).await?).await?;

    let mut local = LocalProcess::spawn(
        &args.upstream,
        ServerFaults {
            session_lifetime: Some(Duration::from_secs_f64(args.session_lifetime)),
            drop_all_every: None,
        },
    )
    .await?;
    let config = local
        .config("admin", APPLICATION_NAME)?
        .to_builder()
        .token_duration(Duration::from_secs(args.token_seconds))
        .build()?;
    let signer = SigningProvider::builder(&config)
        .credentials_provider(local.credentials())
        .build();
    let pool = DsqlPool::builder(&config)
        .max_size(args.pool_size)
        .build(SharedTokenProvider::new(CachingProvider::new(signer)))?;

    let started = Instant::now();
    let end = started + duration;
    let rss = tokio::spawn(sample_rss(end));
    let workers: Vec<_> = (0..args.tasks)
        .map(|worker| tokio::spawn(work(pool.clone(), worker, end)))
        .collect();

    let chaos = chaos(&mut local, seed, started, end, restart.as_deref()).await;
    let mut logs = Vec::new();
    for worker in workers {
        logs.push(worker.await?);
    }
    let _ = local.command("clear").await;
    let stats = local.command("stats").await.unwrap_or_default();
    pool.close().await;
    local.stop().await;
    let rss = rss.await?;
    let chaos = chaos?;

    let report = check(&args.upstream, &logs, baseline, &rss, warmup).await?;
    println!("{}", report.render(&chaos, &stats, started.elapsed()));
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{} invariant(s) violated", report.violations.len()).into())
    }
}

async fn prepare(upstream: &str) -> Result<(), BoxError> {
    upstream_client(upstream)
        .await?
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS soak_ledger, soak_done, soak_hot;
             CREATE TABLE soak_ledger (op_id bigint NOT NULL, kind text NOT NULL);
             CREATE TABLE soak_done (op_id bigint PRIMARY KEY);
             CREATE TABLE soak_hot (k int PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO soak_hot SELECT k, 0 FROM generate_series(0, {}) AS k;",
            HOT_ROWS - 1
        ))
        .await?;
    Ok(())
}

/// Sessions PostgreSQL shows under the soak's `application_name`.
async fn own_sessions(client: &tokio_postgres::Client) -> Result<i64, BoxError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&APPLICATION_NAME],
        )
        .await?;
    Ok(row.get(0))
}

fn default_restart_command() -> Result<String, BoxError> {
    let mut versions: Vec<u32> = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("no /etc/postgresql ({e}): pass --restart-command or --no-restart"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions
        .last()
        .ok_or("no cluster in /etc/postgresql: pass --restart-command or --no-restart")?;
    Ok(format!(
        "pg_ctlcluster --skip-systemctl-redirect {version} main restart"
    ))
}

async fn work(pool: DsqlPool, worker: u32, end: Instant) -> WorkerLog {
    let mut log = WorkerLog::default();
    while Instant::now() < end {
        log.attempted += 1;
        let seq = log.attempted;
        let id = op_id(worker, seq);
        let guarded = seq % 2 == 0;
        let operation = if guarded {
            Operation::transaction(move |tx| {
                Box::pin(async move {
                    let claimed = tx
                        .execute(
                            "INSERT INTO soak_done (op_id) VALUES ($1) ON CONFLICT DO NOTHING",
                            &[&id],
                        )
                        .await?;
                    if claimed == 1 {
                        tx.execute(
                            "INSERT INTO soak_ledger (op_id, kind) VALUES ($1, 'guarded')",
                            &[&id],
                        )
                        .await?;
                    }
                    Ok::<(), tokio_postgres::Error>(())
                })
            })
            .idempotent()
        } else {
            let hot = (seq as i32).rem_euclid(HOT_ROWS);
            Operation::transaction(move |tx| {
                Box::pin(async move {
                    tx.execute(
                        "INSERT INTO soak_ledger (op_id, kind) VALUES ($1, 'plain')",
                        &[&id],
                    )
                    .await?;
                    tx.execute("UPDATE soak_hot SET n = n + 1 WHERE k = $1", &[&hot])
                        .await
                        .map(drop)
                })
            })
        };
        if let Err(error) = pool.run(operation).await {
            log.failed.push(Failure {
                seq,
                guarded,
                class: error.class(),
                attempts: error.attempts(),
                message: error.to_string(),
            });
        }
    }
    log
}

/// Resident memory of this process, once a second until `end`.
async fn sample_rss(end: Instant) -> Vec<(Duration, u64)> {
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < end {
        tick.tick().await;
        if let Some(kib) = resident_kib() {
            samples.push((start.elapsed(), kib));
        }
    }
    samples
}

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the chaos loop did.
#[derive(Debug, Default)]
struct ChaosLog {
    counts: BTreeMap<&'static str, u32>,
    restart: Option<Duration>,
}

/// Strikes a random fault every 1 to 4 s until 5 s before `end` (each
/// window ends before the next fault), and restarts PostgreSQL once, about
/// halfway through.
async fn chaos(
    local: &mut LocalProcess,
    seed: u64,
    started: Instant,
    end: Instant,
    restart: Option<&str>,
) -> Result<ChaosLog, BoxError> {
    let mut dice = Xorshift::new(seed);
    let mut log = ChaosLog::default();
    let restart_at = started + (end - started) / 2;
    let quiet_from = end.checked_sub(Duration::from_secs(5)).unwrap_or(end);
    let mut restarted = restart.is_none();
    loop {
        let pause = Duration::from_millis(dice.between(1_000, 4_000));
        if Instant::now() + pause >= quiet_from {
            break;
        }
        tokio::time::sleep(pause).await;
        if !restarted && Instant::now() >= restart_at {
            restarted = true;
            let command = restart.unwrap_or_default();
            let began = Instant::now();
            let status = tokio::process::Command::new("sh")
                .args(["-c", command])
                .status()
                .await?;
            if !status.success() {
                return Err(format!("`{command}` failed: {status}").into());
            }
            log.restart = Some(began.elapsed());
            eprintln!("soak: PostgreSQL restarted in {:?}", began.elapsed());
            continue;
        }
        let (name, on, off, window) = match dice.below(9) {
            0 => ("drop all sessions", "drop-all".to_owned(), None, 0),
            1 => {
                let fraction = 0.1 + dice.below(50) as f64 / 100.0;
                ("drop some sessions", format!("drop {fraction}"), None, 0)
            }
            2 => {
                let ms = dice.between(300, 2_500);
                ("refuse authentication", format!("refuse-auth {ms}"), None, ms)
            }
            3 => {
                let ms = dice.between(20, 150);
                (
                    "latency spike",
                    format!("latency {ms}"),
                    Some("latency 0"),
                    dice.between(500, 3_000),
                )
            }
            4 => {
                let p = 0.05 + dice.below(25) as f64 / 100.0;
                (
                    "inject conflicts",
                    format!("conflicts {p}"),
                    Some("conflicts 0"),
                    dice.between(1_000, 4_000),
                )
            }
            5 => ("drop before COMMIT", "drop-before-commit".to_owned(), None, 0),
            6 => ("drop after COMMIT", "drop-after-commit".to_owned(), None, 0),
            7 => (
                "pause accepting",
                "pause".to_owned(),
                Some("resume"),
                dice.between(200, 1_500),
            ),
            _ => ("drop all sessions", "drop-all".to_owned(), None, 0),
        };
        local.command(&on).await?;
        *log.counts.entry(name).or_default() += 1;
        if let Some(off) = off {
            tokio::time::sleep(Duration::from_millis(window)).await;
            local.command(off).await?;
        }
    }
    Ok(log)
}

/// The invariants' verdict.
#[derive(Default)]
struct Report {
    operations: u64,
    acknowledged: u64,
    outcome_unknown: u64,
    unacknowledged_applied: u64,
    failures_by_class: BTreeMap<String, u64>,
    rss_warm_kib: u64,
    rss_end_kib: u64,
    sessions_after: i64,
    violations: Vec<String>,
}

async fn check(
    upstream: &str,
    logs: &[WorkerLog],
    baseline: i64,
    rss: &[(Duration, u64)],
    warmup: Duration,
) -> Result<Report, BoxError> {
    let client = upstream_client(upstream).await?;
    let rows = client
        .query("SELECT op_id, count(*) FROM soak_ledger GROUP BY op_id", &[])
        .await?;
    let mut applied: HashMap<i64, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();

    let mut report = Report::default();
    for (worker, log) in logs.iter().enumerate() {
        let worker = worker as u32;
        let failed: HashMap<u32, &Failure> = log.failed.iter().map(|f| (f.seq, f)).collect();
        for seq in 1..=log.attempted {
            report.operations += 1;
            let times = applied.remove(&op_id(worker, seq)).unwrap_or(0);
            match failed.get(&seq) {
                None => {
                    report.acknowledged += 1;
                    if times != 1 {
                        report.violations.push(format!(
                            "acknowledged operation {worker}/{seq} is in the ledger {times} times"
                        ));
                    }
                }
                Some(failure) => {
                    report.unacknowledged_applied += u64::from(times == 1);
                    if times > 1 {
                        report.violations.push(format!(
                            "unacknowledged operation {worker}/{seq} is in the ledger {times} times"
                        ));
                    }
                    let expected = failure.class == ErrorClass::OutcomeUnknown && !failure.guarded;
                    report.outcome_unknown += u64::from(expected);
                    *report
                        .failures_by_class
                        .entry(format!("{:?}", failure.class))
                        .or_default() += 1;
                    if !expected {
                        report.violations.push(format!(
                            "a {:?} error reached the caller ({} operation {worker}/{seq}, \
                             {} attempts): {}",
                            failure.class,
                            if failure.guarded { "guarded" } else { "plain" },
                            failure.attempts,
                            failure.message
                        ));
                    }
                }
            }
        }
    }
    if !applied.is_empty() {
        report.violations.push(format!(
            "{} ledger rows belong to no operation the workers ran",
            applied.len()
        ));
    }

    // Memory: the median of ten samples after the warm-up against the
    // median of the last ten; allocator noise gets 10 % and 8 MiB.
    let median = |samples: &[(Duration, u64)]| {
        let mut kib: Vec<u64> = samples.iter().map(|s| s.1).collect();
        kib.sort_unstable();
        kib.get(kib.len() / 2).copied().unwrap_or(0)
    };
    let after_warmup: Vec<_> = rss.iter().filter(|s| s.0 >= warmup).copied().collect();
    report.rss_warm_kib = median(&after_warmup[..after_warmup.len().min(10)]);
    report.rss_end_kib = median(&after_warmup[after_warmup.len().saturating_sub(10)..]);
    if report.rss_end_kib > report.rss_warm_kib + report.rss_warm_kib / 10 + 8 * 1024 {
        report.violations.push(format!(
            "resident memory grew after the warm-up: {} KiB → {} KiB",
            report.rss_warm_kib, report.rss_end_kib
        ));
    }

    // Sessions: the pool is closed; PostgreSQL sees the sessions end shortly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        report.sessions_after = own_sessions(&client).await?;
        if report.sessions_after <= baseline || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if report.sessions_after > baseline {
        report.violations.push(format!(
            "{} sessions left in pg_stat_activity (baseline {baseline})",
            report.sessions_after
        ));
    }
    Ok(report)
}

impl Report {
    fn render(&self, chaos: &ChaosLog, stats: &str, elapsed: Duration) -> String {
        let mut out = format!(
            "## Chaos soak\n\n\
             - ran {:.0} s: {} operations, {} acknowledged ({:.0}/s)\n\
             - outcome unknown (plain operations, surfaced by design): {}; of those in the ledger once: {}\n\
             - failures by class: {:?}\n\
             - PostgreSQL restart: {}\n\
             - faults: {:?}\n\
             - dsql-local: {}\n\
             - resident memory after warm-up {} KiB, at the end {} KiB\n\
             - own sessions in pg_stat_activity after close: {}\n",
            elapsed.as_secs_f64(),
            self.operations,
            self.acknowledged,
            self.acknowledged as f64 / elapsed.as_secs_f64(),
            self.outcome_unknown,
            self.unacknowledged_applied,
            self.failures_by_class,
            chaos
                .restart
                .map_or("none".to_owned(), |d| format!("took {d:.1?}")),
            chaos.counts,
            stats.trim_start_matches("stats "),
            self.rss_warm_kib,
            self.rss_end_kib,
            self.sessions_after,
        );
        if self.violations.is_empty() {
            out.push_str("\nEvery invariant holds.\n");
        } else {
            out.push_str("\nViolations:\n");
            for violation in self.violations.iter().take(50) {
                out.push_str(&format!("- {violation}\n"));
            }
        }
        out
    }
}
