//! One client through the phases: steady load, region A cut off, A healed;
//! every operation's submission and end recorded, and the cluster pool's
//! endpoints sampled every 10 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::client::{self, Client, Side};
use super::regions::RegionsProcess;
use crate::BoxError;
use crate::measure;

/// How long each phase lasts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Phases {
    pub(super) before: Duration,
    pub(super) outage: Duration,
    pub(super) after: Duration,
}

/// How often the sampler looks at the pool.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What became of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Written(Side),
    WriteFailed,
    Read,
    ReadFailed,
}

/// One operation, as its caller saw it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Event {
    pub(super) submitted: Instant,
    pub(super) done: Instant,
    pub(super) outcome: Outcome,
}

/// Everything one client's run recorded.
#[derive(Debug)]
pub(super) struct Trace {
    pub(super) start: Instant,
    /// When A's isolation was in force (the child's answer came back).
    pub(super) cut: Instant,
    /// When A was healed.
    pub(super) healed: Instant,
    /// When the load was told to stop.
    pub(super) end: Instant,
    /// Every operation, in no particular order.
    pub(super) events: Vec<Event>,
    /// Ids whose write was acknowledged, and those whose write failed.
    pub(super) acknowledged: Vec<i64>,
    pub(super) failed: Vec<i64>,
    /// The first few errors that reached callers.
    pub(super) errors: Vec<String>,
    /// The cluster pool: (time, all at A) every `SAMPLE_EVERY`.
    pub(super) samples: Vec<(Instant, bool)>,
    /// This process's CPU from the start of the load to its last task's end.
    pub(super) cpu: Option<Duration>,
    /// Sessions A's isolation cut.
    pub(super) sessions_cut: String,
}

/// What one task did.
#[derive(Default)]
struct TaskLog {
    events: Vec<Event>,
    acknowledged: Vec<i64>,
    failed: Vec<i64>,
    errors: Vec<String>,
}

/// The id of task `task`'s `seq`th write.
fn op_id(task: u32, seq: u32) -> i64 {
    (i64::from(task) << 32) | i64::from(seq)
}

/// Runs `tasks` tasks of writes (each followed by a read when `reads`)
/// through `client`; cuts A off after `phases.before`, heals it after
/// `phases.outage`, stops after `phases.after`.
pub(super) async fn run(
    client: &Client,
    regions: &mut RegionsProcess,
    ledger: &str,
    tasks: u32,
    reads: bool,
    phases: Phases,
) -> Result<Trace, BoxError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (write_sql, read_sql) = (client::write_sql(ledger), client::read_sql(ledger));
    let cpu_before = measure::process_cpu();
    let start = Instant::now();
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let (client, stop) = (client.clone(), Arc::clone(&stop));
            let (write_sql, read_sql) = (Arc::clone(&write_sql), Arc::clone(&read_sql));
            tokio::spawn(async move {
                let mut log = TaskLog::default();
                let mut seq = 0_u32;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let id = op_id(task, seq);
                    let submitted = Instant::now();
                    let result = client.run(client::write(&write_sql, id)).await;
                    let done = Instant::now();
                    let outcome = match result {
                        Ok(side) => {
                            log.acknowledged.push(id);
                            Outcome::Written(side)
                        }
                        Err(error) => {
                            log.failed.push(id);
                            if log.errors.len() < 3 {
                                log.errors.push(format!("write: {}", error.report()));
                            }
                            Outcome::WriteFailed
                        }
                    };
                    log.events.push(Event {
                        submitted,
                        done,
                        outcome,
                    });
                    if reads {
                        let submitted = Instant::now();
                        let result = client.run(client::read(&read_sql, id)).await;
                        let outcome = match result {
                            Ok(_) => Outcome::Read,
                            Err(error) => {
                                if log.errors.len() < 3 {
                                    log.errors.push(format!("read: {}", error.report()));
                                }
                                Outcome::ReadFailed
                            }
                        };
                        log.events.push(Event {
                            submitted,
                            done: Instant::now(),
                            outcome,
                        });
                    }
                }
                log
            })
        })
        .collect();

    let sampler = {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                match client.all_at_a() {
                    Some(at_a) => samples.push((Instant::now(), at_a)),
                    None => break,
                }
            }
            samples
        })
    };

    tokio::time::sleep_until((start + phases.before).into()).await;
    let sessions_cut = regions.command("isolate").await?;
    let cut = Instant::now();
    tokio::time::sleep_until((cut + phases.outage).into()).await;
    regions.command("heal").await?;
    let healed = Instant::now();
    tokio::time::sleep_until((healed + phases.after).into()).await;
    stop.store(true, Ordering::Relaxed);
    let end = Instant::now();

    let mut trace = Trace {
        start,
        cut,
        healed,
        end,
        events: Vec::new(),
        acknowledged: Vec::new(),
        failed: Vec::new(),
        errors: Vec::new(),
        samples: Vec::new(),
        cpu: None,
        sessions_cut: sessions_cut.trim_start_matches("ok ").to_owned(),
    };
    for worker in workers {
        let log = worker.await?;
        trace.events.extend(log.events);
        trace.acknowledged.extend(log.acknowledged);
        trace.failed.extend(log.failed);
        for error in log.errors {
            if trace.errors.len() < 5 {
                trace.errors.push(error);
            }
        }
    }
    trace.cpu = measure::process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    trace.samples = sampler.await?;
    Ok(trace)
}
