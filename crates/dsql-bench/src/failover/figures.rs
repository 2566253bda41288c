//! From one client's trace to its figures; across runs, the table.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{ClientKind, Side};
use super::load::{Event, Outcome, SAMPLE_EVERY, Trace};
use crate::measure::median_of;

/// Recovery is a window of this length at 90 % of the rate before the cut.
const WINDOW: Duration = Duration::from_millis(250);
const RECOVERED: f64 = 0.9;

/// The ledger as PostgreSQL holds it, against what the callers were told.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(super) struct AtRest {
    /// Rows in the ledger.
    pub(super) rows: u64,
    /// Acknowledged writes not in the ledger.
    pub(super) lost: u64,
    /// Ids in the ledger more than once (rows beyond the first).
    pub(super) doubled: u64,
    /// Writes whose caller got an error, in the ledger once (allowed: the
    /// error may have been an unknown outcome).
    pub(super) failed_but_applied: u64,
    /// Ledger rows of no write the tasks made.
    pub(super) strays: u64,
}

impl AtRest {
    /// Compares the ledger's rows (`id`, count) with the callers' view.
    pub(super) fn check(rows: &[(i64, i64)], acknowledged: &[i64], failed: &[i64]) -> Self {
        let mut ledger: HashMap<i64, i64> = rows.iter().copied().collect();
        let mut at_rest = Self {
            rows: rows.iter().map(|r| r.1.max(0) as u64).sum(),
            doubled: rows.iter().map(|r| (r.1 - 1).max(0) as u64).sum(),
            ..Self::default()
        };
        for id in acknowledged {
            if ledger.remove(id).is_none() {
                at_rest.lost += 1;
            }
        }
        for id in failed {
            if ledger.remove(id).is_some() {
                at_rest.failed_but_applied += 1;
            }
        }
        at_rest.strays = ledger.len() as u64;
        at_rest
    }

    /// No write lost, none applied twice, nothing unaccounted for.
    pub(super) fn holds(&self) -> bool {
        self.lost == 0 && self.doubled == 0 && self.strays == 0
    }
}

/// One client in one run.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Figures {
    pub(super) client: ClientKind,
    pub(super) run: usize,
    /// Acknowledged writes per second before the cut, after the warm-up.
    pub(super) writes_per_sec_before: f64,
    /// From the cut to the first acknowledged write submitted after it, or
    /// acknowledged at B.
    pub(super) first_write_ms: Option<f64>,
    /// From the cut to the end of the first 250 ms window (wholly after the
    /// cut, ending on the 10 ms grid) with 90 % of the rate before, at or
    /// after the first write.
    pub(super) full_rate_ms: Option<f64>,
    /// From the heal until the client is back at A.
    pub(super) back_at_a_ms: Option<f64>,
    /// Errors returned to callers between the cut and the heal.
    pub(super) errors_in_outage: u64,
    /// Errors returned to callers in the whole run.
    pub(super) errors: u64,
    pub(super) writes_acknowledged: u64,
    /// Writes acknowledged at B (the naive client; the cluster pool cannot
    /// tell and reports 0).
    pub(super) writes_at_b: u64,
    /// The slowest acknowledged write, ms.
    pub(super) slowest_write_ms: f64,
    pub(super) at_rest: AtRest,
    /// This process's CPU per operation finished (writes and reads,
    /// failed ones included), µs.
    pub(super) cpu_us_per_op: Option<f64>,
    pub(super) first_errors: Vec<String>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

impl Figures {
    pub(super) fn new(
        client: ClientKind,
        run: usize,
        trace: &Trace,
        warmup: Duration,
        at_rest: AtRest,
    ) -> Self {
        let mut writes: Vec<(Instant, Instant, Side)> = trace
            .events
            .iter()
            .filter_map(|e| match e.outcome {
                Outcome::Written(side) => Some((e.submitted, e.done, side)),
                _ => None,
            })
            .collect();
        writes.sort_by_key(|w| w.1);
        // Acknowledged writes that ended in [from, to).
        let acked_between = |from: Instant, to: Instant| {
            writes.partition_point(|w| w.1 < to) - writes.partition_point(|w| w.1 < from)
        };

        let measured_from = (trace.start + warmup).min(trace.cut);
        let before = trace.cut.saturating_duration_since(measured_from);
        let writes_per_sec_before = if before.is_zero() {
            0.0
        } else {
            acked_between(measured_from, trace.cut) as f64 / before.as_secs_f64()
        };

        // Not an answer that was already on its way from A when it was cut
        // (those reach the client up to a few tens of ms late on a busy
        // machine): a write submitted after the cut, or one acknowledged at
        // B (the naive client knows where; the cluster pool does not, and
        // its replays of writes in flight at the cut are not counted).
        let first_write = writes
            .iter()
            .filter(|w| w.0 >= trace.cut || w.2 == Side::B)
            .map(|w| w.1 - trace.cut)
            .min();
        let full_rate = first_write.and_then(|first| {
            let needed = RECOVERED * writes_per_sec_before * WINDOW.as_secs_f64();
            let mut t = trace.cut + WINDOW;
            while t <= trace.end {
                if t >= trace.cut + first && acked_between(t - WINDOW, t) as f64 >= needed && needed > 0.0 {
                    return Some(t - trace.cut);
                }
                t += SAMPLE_EVERY;
            }
            None
        });

        let back_at_a = match client {
            ClientKind::Cluster => trace
                .samples
                .iter()
                .find(|(at, all_at_a)| *at >= trace.healed && *all_at_a)
                .map(|(at, _)| *at - trace.healed),
            // Every operation goes to A first: back when one submitted after
            // the heal is acknowledged there.
            ClientKind::Single | ClientKind::Naive => writes
                .iter()
                .filter(|w| w.0 >= trace.healed && w.2 == Side::A)
                .map(|w| w.1 - trace.healed)
                .min(),
        };

        let failed = |e: &&Event| matches!(e.outcome, Outcome::WriteFailed | Outcome::ReadFailed);
        let errors_in_outage = trace
            .events
            .iter()
            .filter(failed)
            .filter(|e| e.done >= trace.cut && e.done < trace.healed)
            .count() as u64;
        let errors = trace.events.iter().filter(failed).count() as u64;
        let finished = trace.events.len() as f64;
        Self {
            client,
            run,
            writes_per_sec_before,
            first_write_ms: first_write.map(ms),
            full_rate_ms: full_rate.map(ms),
            back_at_a_ms: back_at_a.map(ms),
            errors_in_outage,
            errors,
            writes_acknowledged: writes.len() as u64,
            writes_at_b: writes.iter().filter(|w| w.2 == Side::B).count() as u64,
            slowest_write_ms: writes.iter().map(|w| ms(w.1 - w.0)).fold(0.0, f64::max),
            at_rest,
            cpu_us_per_op: trace
                .cpu
                .filter(|_| finished > 0.0)
                .map(|cpu| cpu.as_secs_f64() * 1e6 / finished),
            first_errors: trace.errors.clone(),
        }
    }

    /// One line for stderr.
    pub(super) fn summary(&self) -> String {
        format!(
            "{:>6.0} writes/s before; first write {} after the cut, 90 % after {}; back at A {} after the heal; \
             errors {} in the outage, {} in all; {} acknowledged ({} at B); {}; cpu {:.1} µs/op",
            self.writes_per_sec_before,
            show(self.first_write_ms),
            show(self.full_rate_ms),
            show(self.back_at_a_ms),
            self.errors_in_outage,
            self.errors,
            self.writes_acknowledged,
            self.writes_at_b,
            at_rest(std::slice::from_ref(&self.at_rest)),
            self.cpu_us_per_op.unwrap_or(f64::NAN)
        )
    }
}

/// A time in ms, or "never" (within the run).
fn show(ms: Option<f64>) -> String {
    ms.map_or_else(|| "never".to_owned(), |ms| format!("{ms:.0} ms"))
}

/// `values`' nearest-rank quantile `q`; `None` (never) ranks last.
fn quantile(values: &[Option<f64>], q: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
    });
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().flatten()
}

/// The ledger check over several runs.
fn at_rest(runs: &[AtRest]) -> String {
    let sum = |f: fn(&AtRest) -> u64| runs.iter().map(f).sum::<u64>();
    let (lost, doubled, strays) = (sum(|r| r.lost), sum(|r| r.doubled), sum(|r| r.strays));
    let failed_applied = sum(|r| r.failed_but_applied);
    if lost + doubled + strays > 0 {
        return format!("**{lost} lost, {doubled} doubled, {strays} stray**");
    }
    if failed_applied > 0 {
        format!("= acknowledged, + {failed_applied} failed but applied")
    } else {
        "= acknowledged".to_owned()
    }
}

/// The table: per client, p50 and p99 over the runs (the maximum under 100
/// runs) of the times, medians of the rest, and the ledger check summed.
pub(super) fn markdown(figures: &[Figures], runs: usize) -> String {
    let high = if runs <= 100 { "max" } else { "p99" };
    let plural = if runs == 1 { "" } else { "s" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| client | writes/s before the cut | first write after the cut, ms (p50 / {high}) | 90 % of the rate after the cut, ms (p50 / {high}) | errors in the outage (p50 / {high}) | errors in all (p50 / {high}) | writes acknowledged (p50) | at rest in PostgreSQL ({runs} run{plural}) | back at A after the heal, ms (p50 / {high}) | slowest write, ms (p50) | client CPU µs/op (p50) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
    for kind in ClientKind::ALL {
        let rows: Vec<&Figures> = figures.iter().filter(|f| f.client == kind).collect();
        if rows.is_empty() {
            continue;
        }
        let times = |pick: fn(&Figures) -> Option<f64>| {
            let values: Vec<Option<f64>> = rows.iter().map(|f| pick(f)).collect();
            let cell = |v: Option<f64>| v.map_or_else(|| "never".to_owned(), |v| format!("{v:.0}"));
            format!(
                "{} / {}",
                cell(quantile(&values, 0.5)),
                cell(quantile(&values, 0.99))
            )
        };
        let counts = |pick: fn(&Figures) -> u64| {
            let values: Vec<Option<f64>> = rows.iter().map(|f| Some(pick(f) as f64)).collect();
            format!(
                "{:.0} / {:.0}",
                quantile(&values, 0.5).unwrap_or(f64::NAN),
                quantile(&values, 0.99).unwrap_or(f64::NAN)
            )
        };
        let rests: Vec<AtRest> = rows.iter().map(|f| f.at_rest).collect();
        let cpu = median_of(rows.iter().filter_map(|f| f.cpu_us_per_op));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.1} |",
            kind.name(),
            median_of(rows.iter().map(|f| f.writes_per_sec_before)),
            times(|f| f.first_write_ms),
            times(|f| f.full_rate_ms),
            counts(|f| f.errors_in_outage),
            counts(|f| f.errors),
            median_of(rows.iter().map(|f| f.writes_acknowledged as f64)),
            at_rest(&rests),
            times(|f| f.back_at_a_ms),
            median_of(rows.iter().map(|f| f.slowest_write_ms)),
            cpu
        );
    }
    let errors: Vec<&Figures> = figures.iter().filter(|f| !f.first_errors.is_empty()).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\n### First error surfaced\n");
        let _ = writeln!(out, "| client | run | errors | first error |");
        let _ = writeln!(out, "|---|---|---|---|");
        for f in errors {
            let first: String = f.first_errors[0]
                .chars()
                .take(160)
                .map(|c| if c == '|' || c == '\n' { ' ' } else { c })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {first} |",
                f.client.name(),
                f.run,
                f.errors
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_rank_never_last() {
        let values = [Some(3.0), None, Some(1.0)];
        assert_eq!(quantile(&values, 0.5), Some(3.0));
        assert_eq!(quantile(&values, 0.99), None);
        assert_eq!(quantile(&[Some(2.0)], 0.99), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_ledger_check_counts_lost_doubled_and_stray_rows() {
        let rows = [(1, 1), (2, 2), (4, 1), (9, 1)];
        let check = AtRest::check(&rows, &[1, 2, 3], &[4, 5]);
        assert_eq!(check.rows, 5);
        assert_eq!((check.lost, check.doubled, check.strays), (1, 1, 1));
        assert_eq!(check.failed_but_applied, 1);
        assert!(!check.holds());
        assert!(AtRest::check(&[(1, 1)], &[1], &[2]).holds());
    }
}
