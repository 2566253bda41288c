//! One client at one concurrency: tasks loop transactions on random hot
//! rows; what they did in the measured window, and in all (for the check in
//! PostgreSQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::client::{Key, OccClient};
use crate::measure::{self, Plan, Sample};
use crate::xorshift::Xorshift;

/// One run's figures.
#[derive(Clone, Debug)]
pub(super) struct OccSample {
    /// Transactions begun in the measured window: committed ones are
    /// `ops`, with their latencies (every attempt, backoff and checkout
    /// waits included); those that surfaced an error are `errors`.
    pub(super) sample: Sample,
    /// Attempts of the transactions begun in the window.
    pub(super) attempts: u64,
    /// The most attempts one transaction begun in the window made.
    pub(super) most_attempts: u64,
    /// Everything the run did, warm-up and the window's tail included.
    pub(super) totals: Totals,
}

/// Counts over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) commits: u64,
    pub(super) attempts: u64,
    pub(super) errors: u64,
    /// Errors after which the transaction may have committed.
    pub(super) outcome_unknown: u64,
}

impl OccSample {
    pub(super) fn commits_per_sec(&self) -> f64 {
        self.sample.ops_per_sec()
    }

    /// (attempts − commits) ÷ commits in the window: attempts that did not
    /// commit, the last attempts of failed transactions included.
    pub(super) fn wasted_per_commit(&self) -> Option<f64> {
        let commits = self.sample.ops;
        (commits > 0).then(|| self.attempts.saturating_sub(commits) as f64 / commits as f64)
    }

    /// This process's CPU per commit in the window, in microseconds.
    pub(super) fn cpu_us_per_commit(&self) -> Option<f64> {
        let commits = self.sample.ops;
        (commits > 0).then_some(self.sample.cpu?.as_secs_f64() * 1e6 / commits as f64)
    }
}

/// What one task did.
#[derive(Default)]
struct TaskLog {
    latencies: Vec<u32>,
    errors: u64,
    attempts: u64,
    most_attempts: u64,
    first_error: Option<String>,
    totals: Totals,
}

/// `tasks` tasks loop transactions on rows drawn from `keys` through
/// `client`; the window starts after `plan.warmup` and lasts
/// `plan.duration`. Returns once every task's last transaction has ended.
pub(super) async fn run(client: &OccClient, keys: &Arc<[Key]>, tasks: u32, plan: Plan) -> OccSample {
    let start = Instant::now() + Duration::from_millis(50);
    let measured_from = start + plan.warmup;
    let end = measured_from + plan.duration;
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let (client, keys) = (client.clone(), Arc::clone(keys));
            // Seeds spread over the whole range, so tasks draw different rows.
            let mut dice = Xorshift::new(u64::from(task).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move {
                // This task's attempts: one transaction at a time, so the
                // difference around a transaction is its attempts.
                let counter = Arc::new(AtomicU64::new(0));
                let mut log = TaskLog::default();
                tokio::time::sleep_until(start.into()).await;
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let index = dice.below(keys.len() as u64) as usize;
                    let Some(key) = keys.get(index) else { break };
                    let before = counter.load(Ordering::Relaxed);
                    let result = client.transact(key, &counter).await;
                    let attempts = counter.load(Ordering::Relaxed).saturating_sub(before);
                    log.totals.attempts += attempts;
                    let in_window = began >= measured_from;
                    if in_window {
                        log.attempts += attempts;
                        log.most_attempts = log.most_attempts.max(attempts);
                    }
                    match result {
                        Ok(()) => {
                            log.totals.commits += 1;
                            if in_window {
                                let micros = began.elapsed().as_micros().min(u128::from(u32::MAX));
                                log.latencies.push(micros as u32);
                            }
                        }
                        Err(failure) => {
                            log.totals.errors += 1;
                            log.totals.outcome_unknown += u64::from(failure.outcome_unknown);
                            if in_window {
                                log.errors += 1;
                                log.first_error.get_or_insert(failure.message);
                            }
                        }
                    }
                }
                log
            })
        })
        .collect();
    let mut out = OccSample {
        sample: Sample::empty(plan.duration, measure::cpu_over(measured_from, end).await),
        attempts: 0,
        most_attempts: 0,
        totals: Totals::default(),
    };
    for worker in workers {
        match worker.await {
            Ok(log) => {
                out.sample.latencies.extend(log.latencies);
                out.sample.errors += log.errors;
                out.attempts += log.attempts;
                out.most_attempts = out.most_attempts.max(log.most_attempts);
                if out.sample.first_error.is_none() {
                    out.sample.first_error = log.first_error;
                }
                out.totals.commits += log.totals.commits;
                out.totals.attempts += log.totals.attempts;
                out.totals.errors += log.totals.errors;
                out.totals.outcome_unknown += log.totals.outcome_unknown;
            }
            Err(error) => {
                // A task that panicked: its transactions are unaccounted
                // for, which the check in PostgreSQL then reports.
                out.sample.errors += 1;
                out.sample
                    .first_error
                    .get_or_insert_with(|| format!("a task failed: {error}"));
            }
        }
    }
    out.sample.ops = out.sample.latencies.len() as u64;
    out.sample.latencies.sort_unstable();
    out
}
