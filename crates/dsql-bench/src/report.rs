//! Markdown and JSON reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::Sample;
use crate::scenario::Scenario;

/// One client at one concurrency in one scenario.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) scenario: Scenario,
    pub(crate) client: &'static str,
    pub(crate) tasks: usize,
    pub(crate) pool_size: u32,
    pub(crate) sample: Sample,
}

/// The client whose CPU per operation the others are compared with.
const CPU_BASELINE: &str = "deadpool-postgres";

/// A table per scenario and concurrency, throughput as a ratio to
/// `baseline` measured in the same run, client CPU per operation and its
/// ratio to deadpool-postgres' (each client's reported run), then the
/// first error of each client that surfaced any.
pub(crate) fn markdown(rows: &[Row], baseline: &str) -> String {
    let mut by_tasks: BTreeMap<(Scenario, usize), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        by_tasks.entry((row.scenario, row.tasks)).or_default().push(row);
    }
    let mut out = String::new();
    for ((scenario, tasks), rows) in by_tasks {
        let base = rows
            .iter()
            .find(|r| r.client == baseline)
            .map(|r| r.sample.ops_per_sec());
        let cpu_base = cpu_baseline(&rows);
        let pool_size = rows.first().map_or(0, |r| r.pool_size);
        let _ = writeln!(
            out,
            "\n### {scenario}, {tasks} tasks on {pool_size} connections\n"
        );
        let _ = writeln!(
            out,
            "| client | ops/s | × {baseline} | client CPU µs/op | CPU × {CPU_BASELINE} | p50 ms | p99 ms | p99.9 ms | max ms | errors |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for row in rows {
            let s = &row.sample;
            let ratio = base.map_or(String::from("—"), |b| format!("{:.2}", s.ops_per_sec() / b));
            let dash = || String::from("—");
            let cpu = s.cpu_us_per_op().map_or_else(dash, |us| format!("{us:.1}"));
            let cpu_ratio = cpu_ratio(row, cpu_base).map_or_else(dash, |r| format!("{r:.2}"));
            let _ = writeln!(
                out,
                "| {} | {:.0} | {ratio} | {cpu} | {cpu_ratio} | {:.3} | {:.3} | {:.3} | {:.1} | {} |",
                row.client,
                s.ops_per_sec(),
                s.quantile_ms(0.5),
                s.quantile_ms(0.99),
                s.quantile_ms(0.999),
                s.max_ms(),
                s.errors
            );
        }
    }
    let errors: Vec<_> = rows.iter().filter(|r| r.sample.errors > 0).collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\n### First error surfaced\n");
        let _ = writeln!(out, "| scenario | client | tasks | errors | first error |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for row in errors {
            let first: String = row
                .sample
                .first_error
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(120)
                .map(|c| if c == '|' || c == '\n' { ' ' } else { c })
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {first} |",
                row.scenario, row.client, row.tasks, row.sample.errors
            );
        }
    }
    out
}

/// deadpool-postgres' CPU per operation among `rows` (one scenario and
/// concurrency), if it ran.
fn cpu_baseline(rows: &[&Row]) -> Option<f64> {
    rows.iter()
        .find(|r| r.client == CPU_BASELINE)
        .and_then(|r| r.sample.cpu_us_per_op())
}

fn cpu_ratio(row: &Row, baseline: Option<f64>) -> Option<f64> {
    Some(row.sample.cpu_us_per_op()? / baseline?)
}

#[derive(Serialize)]
struct JsonRow<'a> {
    scenario: Scenario,
    client: &'a str,
    tasks: usize,
    pool_size: u32,
    ops_per_sec: f64,
    p50_ms: f64,
    /// Read back with a default by `charts` (JSON from before it lacks it).
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Client CPU (user + system of this process) per operation.
    cpu_us_per_op: Option<f64>,
    /// `cpu_us_per_op` ÷ deadpool-postgres' in the same scenario and tasks.
    cpu_vs_deadpool: Option<f64>,
    errors: u64,
    first_error: Option<&'a str>,
}

pub(crate) fn json(rows: &[Row]) -> Result<String, serde_json::Error> {
    let cpu_base = |r: &Row| {
        let peers: Vec<&Row> = rows
            .iter()
            .filter(|p| p.scenario == r.scenario && p.tasks == r.tasks)
            .collect();
        cpu_baseline(&peers)
    };
    let rows: Vec<JsonRow<'_>> = rows
        .iter()
        .map(|r| JsonRow {
            scenario: r.scenario,
            client: r.client,
            tasks: r.tasks,
            pool_size: r.pool_size,
            ops_per_sec: r.sample.ops_per_sec(),
            p50_ms: r.sample.quantile_ms(0.5),
            p90_ms: r.sample.quantile_ms(0.9),
            p99_ms: r.sample.quantile_ms(0.99),
            p999_ms: r.sample.quantile_ms(0.999),
            max_ms: r.sample.max_ms(),
            cpu_us_per_op: r.sample.cpu_us_per_op(),
            cpu_vs_deadpool: cpu_ratio(r, cpu_base(r)),
            errors: r.sample.errors,
            first_error: r.sample.first_error.as_deref(),
        })
        .collect();
    serde_json::to_string_pretty(&rows)
}
