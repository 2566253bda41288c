//! Load loops and latency statistics.

use std::time::{Duration, Instant};

use crate::clients::Client;
use crate::scenario::Scenario;
use crate::xorshift::Xorshift;

/// How long to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
}

/// One run's results.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) elapsed: Duration,
    /// Per-operation latencies in microseconds, sorted.
    pub(crate) latencies: Vec<u32>,
    pub(crate) first_error: Option<String>,
    /// This process's CPU time (user + system) over the measured window:
    /// the clients run here, dsql-local and PostgreSQL in other processes.
    /// `None` without `/proc`.
    pub(crate) cpu: Option<Duration>,
}

impl Sample {
    /// No operation yet, over a window of `elapsed`.
    pub(crate) fn empty(elapsed: Duration, cpu: Option<Duration>) -> Self {
        Self {
            ops: 0,
            errors: 0,
            elapsed,
            latencies: Vec::new(),
            first_error: None,
            cpu,
        }
    }

    pub(crate) fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies[index]) / 1000.0
    }

    pub(crate) fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    }

    /// Client CPU per operation finished in the window (failed ones
    /// included), in microseconds.
    pub(crate) fn cpu_us_per_op(&self) -> Option<f64> {
        let finished = self.ops + self.errors;
        (finished > 0).then_some(self.cpu?.as_secs_f64() * 1e6 / finished as f64)
    }

    pub(crate) fn summary(&self) -> String {
        format!(
            "{:>8.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.1} ms  errors {}  cpu {:.1} µs/op",
            self.ops_per_sec(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.max_ms(),
            self.errors,
            self.cpu_us_per_op().unwrap_or(f64::NAN)
        )
    }
}

/// Waits until `end`; this process's CPU time from `from` (still to come)
/// to `end`.
pub(crate) async fn cpu_over(from: Instant, end: Instant) -> Option<Duration> {
    tokio::time::sleep_until(from.into()).await;
    let before = process_cpu();
    tokio::time::sleep_until(end.into()).await;
    process_cpu()
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before))
}

/// `tasks` tasks loop checkout → statement → return; latencies count from
/// the end of the warm-up. Each task draws its keys from its own sequence.
pub(crate) async fn run(client: &Client, scenario: Scenario, tasks: usize, plan: Plan) -> Sample {
    let start = Instant::now() + Duration::from_millis(50);
    let measured_from = start + plan.warmup;
    let end = measured_from + plan.duration;
    let workers: Vec<_> = (0..tasks)
        .map(|task| {
            let client = client.clone();
            // Seeds spread over the whole range, so tasks draw different keys.
            let mut keys = Xorshift::new((task as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0_u64, None);
                loop {
                    let began = Instant::now();
                    if began >= end {
                        break;
                    }
                    let statement = scenario.statement((keys.next_u64() >> 1) as i64);
                    let result = client.execute(scenario, &statement).await;
                    if began >= measured_from {
                        match result {
                            Ok(()) => {
                                let micros = began.elapsed().as_micros().min(u128::from(u32::MAX));
                                latencies.push(micros as u32);
                            }
                            Err(error) => {
                                errors += 1;
                                first_error.get_or_insert(error);
                            }
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut sample = Sample::empty(plan.duration, cpu_over(measured_from, end).await);
    for worker in workers {
        if let Ok((latencies, errors, first_error)) = worker.await {
            sample.latencies.extend(latencies);
            sample.errors += errors;
            if sample.first_error.is_none() {
                sample.first_error = first_error;
            }
        } else {
            sample.errors += 1;
        }
    }
    sample.ops = sample.latencies.len() as u64;
    sample.latencies.sort_unstable();
    sample
}

/// [`run`], and the CPU time process `pid` (the dsql-local child) used over
/// the measured window.
pub(crate) async fn run_watching(
    client: &Client,
    scenario: Scenario,
    tasks: usize,
    plan: Plan,
    pid: u32,
) -> (Sample, Option<Duration>) {
    // The warm-up runs first, inside `run`, which starts 50 ms from now.
    let before_window = async {
        tokio::time::sleep(plan.warmup + Duration::from_millis(50)).await;
        cpu_of(pid)
    };
    let (sample, before) = tokio::join!(run(client, scenario, tasks, plan), before_window);
    let used = cpu_of(pid)
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before));
    (sample, used)
}

/// CPU time this process has used (user + system), from fields 14 and 15
/// of `/proc/self/stat`, in clock ticks taken as 100 a second (`USER_HZ`,
/// what `getconf CLK_TCK` prints on Linux): a 10 ms resolution, 1 % or
/// less of a measured window's CPU.
pub(crate) fn process_cpu() -> Option<Duration> {
    cpu_from("/proc/self/stat")
}

/// CPU time process `pid` has used (user + system).
pub(crate) fn cpu_of(pid: u32) -> Option<Duration> {
    cpu_from(&format!("/proc/{pid}/stat"))
}

fn cpu_from(path: &str) -> Option<Duration> {
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(path).ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces:
    // count from the last `)`, which ends it, where field 3 begins.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND))
}

/// The median of `values` (the upper one of an even count); NaN when there
/// are none.
pub(crate) fn median_of(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The run with the median throughput.
pub(crate) fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
    let middle = samples.len() / 2;
    samples.swap_remove(middle)
}
