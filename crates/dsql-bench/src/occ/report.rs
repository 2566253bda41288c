//! The markdown tables and the JSON of `dsql-bench occ`.

use std::fmt::Write as _;

use serde::Serialize;

use super::client::OccKind;
use super::load::OccSample;

/// What PostgreSQL says of one run, against what its client acknowledged.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Check {
    /// Transactions acknowledged as committed over the whole run.
    pub(super) commits_acknowledged: u64,
    /// Transactions that surfaced an error, over the whole run.
    pub(super) errors: u64,
    /// Errors after which the transaction may have committed (`COMMIT`
    /// sent, no answer): each allows one more increment than acknowledged.
    pub(super) outcome_unknown: u64,
    /// How much `sum(v)` of the hot rows grew over the run.
    pub(super) sum_increase: i64,
    /// Attempts that did not commit, over the whole run.
    pub(super) wasted_attempts: u64,
    /// Conflicts (`40001`) dsql-local sent over the run, from its stats.
    pub(super) conflicts_at_server: Option<u64>,
    /// `sum_increase` is the acknowledged commits exactly, or within the
    /// outcome-unknown errors above them.
    pub(super) holds: bool,
}

impl Check {
    pub(super) fn new(sample: &OccSample, sum_increase: i64, conflicts_at_server: Option<u64>) -> Self {
        let totals = sample.totals;
        let low = i128::from(totals.commits);
        let high = low + i128::from(totals.outcome_unknown);
        Self {
            commits_acknowledged: totals.commits,
            errors: totals.errors,
            outcome_unknown: totals.outcome_unknown,
            sum_increase,
            wasted_attempts: totals.attempts.saturating_sub(totals.commits),
            conflicts_at_server,
            holds: (low..=high).contains(&i128::from(sum_increase)),
        }
    }

    fn verdict(&self) -> &'static str {
        match (self.holds, self.outcome_unknown) {
            (true, 0) => "= commits",
            (true, _) => "within commits + unknown",
            (false, _) => "**MISMATCH**",
        }
    }
}

/// One client at one concurrency: its median run (by commits per second).
#[derive(Debug)]
pub(super) struct Row {
    pub(super) kind: OccKind,
    pub(super) tasks: u32,
    pub(super) sample: OccSample,
    pub(super) check: Check,
    /// Runs of this client and concurrency whose check failed.
    pub(super) failed_checks: usize,
}

fn dash_or(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The figures table, the checks table, then the first error of each row
/// that surfaced any.
pub(super) fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| tasks | client | commits/s | wasted attempts per commit | most attempts | p50 ms | p99 ms | errors surfaced | client CPU µs/commit |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let s = &row.sample;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {:.2} | {:.2} | {} | {} |",
            row.tasks,
            row.kind.name(),
            s.commits_per_sec(),
            dash_or(s.wasted_per_commit(), 2),
            s.most_attempts,
            s.sample.quantile_ms(0.5),
            s.sample.quantile_ms(0.99),
            s.sample.errors,
            dash_or(s.cpu_us_per_commit(), 0),
        );
    }
    let _ = writeln!(
        out,
        "\nChecked in PostgreSQL after each run (the whole run, warm-up included): \
         the growth of `sum(v)` against the commits acknowledged.\n"
    );
    let _ = writeln!(
        out,
        "| tasks | client | commits acknowledged | sum(v) grew by | outcome unknown | wasted attempts | 40001s from dsql-local | check |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for row in rows {
        let c = &row.check;
        let failed = if row.failed_checks > 0 {
            format!(" ({} runs failed)", row.failed_checks)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {}{failed} |",
            row.tasks,
            row.kind.name(),
            c.commits_acknowledged,
            c.sum_increase,
            c.outcome_unknown,
            c.wasted_attempts,
            c.conflicts_at_server
                .map_or_else(|| "—".to_owned(), |n| n.to_string()),
            c.verdict(),
        );
    }
    let errors: Vec<&Row> = rows.iter().filter(|r| r.sample.sample.errors > 0).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nFirst error surfaced:\n");
        let _ = writeln!(out, "| tasks | client | errors | first error |");
        let _ = writeln!(out, "|---|---|---|---|");
        for row in errors {
            let first: String = row
                .sample
                .sample
                .first_error
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(160)
                .map(|c| if c == '|' || c == '\n' { ' ' } else { c })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {first} |",
                row.tasks,
                row.kind.name(),
                row.sample.sample.errors
            );
        }
    }
    out
}

/// The whole run's settings and rows.
#[derive(Serialize)]
pub(super) struct Json<'a> {
    pub(super) hot_rows: u32,
    pub(super) pool_size: u32,
    pub(super) seconds: f64,
    pub(super) warmup_s: f64,
    pub(super) runs: u32,
    /// dsql-local's lock wait bound, if writers never wait.
    pub(super) never_wait_ms: Option<u64>,
    pub(super) rows: Vec<JsonRow<'a>>,
}

#[derive(Serialize)]
pub(super) struct JsonRow<'a> {
    client: OccKind,
    name: &'static str,
    tasks: u32,
    commits_per_sec: f64,
    commits: u64,
    attempts: u64,
    wasted_per_commit: Option<f64>,
    /// The most attempts one transaction made.
    most_attempts: u64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    first_error: Option<&'a str>,
    cpu_us_per_commit: Option<f64>,
    check: Check,
    failed_checks: usize,
}

impl<'a> JsonRow<'a> {
    pub(super) fn new(row: &'a Row) -> Self {
        let s = &row.sample;
        Self {
            client: row.kind,
            name: row.kind.name(),
            tasks: row.tasks,
            commits_per_sec: s.commits_per_sec(),
            commits: s.sample.ops,
            attempts: s.attempts,
            wasted_per_commit: s.wasted_per_commit(),
            most_attempts: s.most_attempts,
            p50_ms: s.sample.quantile_ms(0.5),
            p99_ms: s.sample.quantile_ms(0.99),
            errors: s.sample.errors,
            first_error: s.sample.first_error.as_deref(),
            cpu_us_per_commit: s.cpu_us_per_commit(),
            check: row.check,
            failed_checks: row.failed_checks,
        }
    }
}
