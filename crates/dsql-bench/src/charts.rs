//! SVG charts of a `pools` run, from its JSON: for each scenario, the
//! throughput of every client at every concurrency, and every client's
//! latency percentiles at the highest concurrency.
//!
//! `pools --charts DIR` draws them after the run; `charts --json FILE --out
//! DIR` draws them again from a saved `pools --json` file. The files are
//! `DIR/pools-<scenario>-throughput.svg` and `DIR/pools-<scenario>-latency.svg`,
//! `<scenario>` as `--scenarios` names it (`select-one`, `point-read`, …).

mod axis;
mod latency;
mod layout;
mod svg;
mod throughput;

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::BoxError;
use crate::scenario::Scenario;

use self::layout::Series;

/// The percentiles the latency chart shows, in the order of
/// [`Row::percentiles`].
pub(crate) const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

/// Arguments of `dsql-bench charts`.
#[derive(Debug, Args)]
pub(crate) struct ChartsArgs {
    /// A file written by `pools --json`.
    #[arg(long)]
    json: PathBuf,
    /// The folder for the SVG files (created if missing; files of the same
    /// name are replaced).
    #[arg(long)]
    out: PathBuf,
}

/// One row of `pools --json`, read back. Fields a chart does not need are
/// ignored; those an older file may lack, or that are `null` (a quantile of
/// no operation), default to nothing.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) client: String,
    pub(crate) tasks: usize,
    #[serde(default)]
    pub(crate) pool_size: u32,
    #[serde(default)]
    pub(crate) ops_per_sec: Option<f64>,
    #[serde(default)]
    p50_ms: Option<f64>,
    #[serde(default)]
    p90_ms: Option<f64>,
    #[serde(default)]
    p99_ms: Option<f64>,
    #[serde(default)]
    p999_ms: Option<f64>,
    #[serde(default)]
    max_ms: Option<f64>,
}

impl Row {
    /// The latencies of [`PERCENTILES`], in milliseconds.
    pub(crate) fn percentiles(&self) -> [Option<f64>; 5] {
        [self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms]
    }
}

/// `dsql-bench charts`: the charts of a saved run, drawn again.
pub(crate) fn run(args: &ChartsArgs) -> Result<(), BoxError> {
    let json = std::fs::read_to_string(&args.json).map_err(|e| format!("{}: {e}", args.json.display()))?;
    let written = write(&json, &args.out)?;
    if written.is_empty() {
        return Err(format!("{}: no results to chart", args.json.display()).into());
    }
    Ok(())
}

/// Draws the charts of `json` (what `pools --json` writes) into `dir`,
/// and returns the files written.
pub(crate) fn write(json: &str, dir: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let rows: Vec<Row> = serde_json::from_str(json).map_err(|e| format!("not a pools JSON file: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, svg) in render(&rows) {
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
        written.push(path);
    }
    Ok(written)
}

/// Every chart of `rows`: file name and SVG, two per scenario (in the
/// order the scenarios first appear), none without rows.
pub(crate) fn render(rows: &[Row]) -> Vec<(String, String)> {
    // Every client of the run, in the order it ran, so that each keeps its
    // colour in every chart.
    let clients = first_appearances(rows.iter().map(|r| r.client.as_str()));
    let mut charts = Vec::new();
    for scenario in first_appearances(rows.iter().map(|r| r.scenario.as_str())) {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.scenario == scenario).collect();
        let series: Vec<Series<'_>> = clients
            .iter()
            .enumerate()
            .filter(|(_, client)| rows.iter().any(|r| r.client == **client))
            .map(|(index, client)| Series::new(client, index))
            .collect();
        let (title, pool, stem) = (title(scenario), pool(&rows), file_stem(scenario));
        charts.push((
            format!("pools-{stem}-throughput.svg"),
            throughput::chart(&title, &pool, &rows, &series),
        ));
        let highest = rows.iter().map(|r| r.tasks).max().unwrap_or(0);
        charts.push((
            format!("pools-{stem}-latency.svg"),
            latency::chart(&title, &pool, highest, &rows, &series),
        ));
    }
    charts
}

/// Each distinct item of `items`, in the order it first appears.
fn first_appearances<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

/// A scenario as the markdown tables name it (`steady: point read`), or
/// as the JSON has it if this build does not know it.
fn title(scenario: &str) -> String {
    Scenario::from_str(scenario, false).map_or_else(|_| scenario.to_owned(), |s| s.to_string())
}

/// The pool size of `rows`: `Pool of 16 connections`.
fn pool(rows: &[&Row]) -> String {
    let sizes: Vec<u32> = rows.iter().map(|r| r.pool_size).filter(|&n| n > 0).collect();
    match (sizes.iter().min(), sizes.iter().max()) {
        (Some(1), Some(1)) => "Pool of 1 connection".to_owned(),
        (Some(low), Some(high)) if low == high => format!("Pool of {low} connections"),
        (Some(low), Some(high)) => format!("Pools of {low} to {high} connections"),
        _ => "Pool size unknown".to_owned(),
    }
}

/// A scenario's name fit for a file name: lower-case letters, digits and
/// dashes.
fn file_stem(scenario: &str) -> String {
    let stem: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-');
    if stem.is_empty() {
        "unnamed".to_owned()
    } else {
        stem.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, client: &str, tasks: usize, ops: f64, p50: f64) -> Row {
        Row {
            scenario: scenario.to_owned(),
            client: client.to_owned(),
            tasks,
            pool_size: 16,
            ops_per_sec: Some(ops),
            p50_ms: Some(p50),
            p90_ms: Some(p50 * 1.5),
            p99_ms: Some(p50 * 3.0),
            p999_ms: Some(p50 * 6.0),
            max_ms: Some(p50 * 40.0),
        }
    }

    fn sample() -> Vec<Row> {
        let mut rows = Vec::new();
        for (i, client) in ["bb8-postgres", "a & b <c>", "dsql-bb8 get"]
            .into_iter()
            .enumerate()
        {
            for tasks in [1, 8, 32, 128] {
                let ops = 2500.0 * (i + 1) as f64 * (tasks as f64).sqrt();
                rows.push(row("select-one", client, tasks, ops, 0.2 * tasks as f64));
            }
        }
        rows.push(row("write", "dsql-bb8 run", 32, 8244.0, 2.9));
        rows
    }

    /// Tags nest and close, attribute quotes pair, and `&` begins one of
    /// the five entities: enough XML for a browser to draw it.
    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        for bad in ["NaN", "inf", "=\"\""] {
            assert!(!svg.contains(bad), "{bad:?} in {svg}");
        }
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(at) = rest.find('<') {
            check_text(&rest[..at]);
            let end = rest[at..].find('>').map(|e| at + e).expect("an unclosed tag");
            let tag = &rest[at + 1..end];
            assert_eq!(tag.matches('"').count() % 2, 0, "quotes in <{tag}>");
            check_text(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "</{name}> closes another element");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().expect("a tag name"));
            }
            rest = &rest[end + 1..];
        }
        assert!(open.is_empty(), "unclosed: {open:?}");
        check_text(rest);
    }

    fn check_text(text: &str) {
        for (at, _) in text.match_indices('&') {
            let entity = &text[at..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "a bare & in {text:?}"
            );
        }
        assert!(!text.contains('<') && !text.contains('>'), "markup in {text:?}");
    }

    #[test]
    fn two_charts_per_scenario_with_stable_names() {
        let names: Vec<String> = render(&sample()).into_iter().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "pools-select-one-throughput.svg",
                "pools-select-one-latency.svg",
                "pools-write-throughput.svg",
                "pools-write-latency.svg",
            ]
        );
    }

    #[test]
    fn charts_are_well_formed_and_name_every_client_escaped() {
        for (name, svg) in render(&sample()) {
            assert_well_formed(&svg);
            if name.starts_with("pools-select-one") {
                for client in ["bb8-postgres", "a &amp; b &lt;c&gt;", "dsql-bb8 get"] {
                    assert!(svg.contains(&format!(">{client}</text>")), "{client} in {name}");
                }
                assert!(!svg.contains("<c>"));
                assert!(svg.contains("steady: SELECT 1"), "{name}");
                assert!(svg.contains("Pool of 16 connections"), "{name}");
            }
        }
    }

    #[test]
    fn throughput_shows_thousands_separated_values_and_task_counts() {
        let charts = render(&sample());
        let svg = &charts[0].1;
        // 3 × 2,500 × √128 = 84,853 ops/s.
        assert!(svg.contains("84,853"), "{svg}");
        assert!(svg.contains(">80,000</text>"), "{svg}");
        for tasks in [1, 8, 32, 128] {
            assert!(svg.contains(&format!(">{tasks}</text>")));
        }
    }

    #[test]
    fn latency_is_drawn_at_the_highest_concurrency_with_every_percentile() {
        let charts = render(&sample());
        let svg = &charts[1].1;
        assert!(svg.contains("128 concurrent tasks"), "{svg}");
        for p in PERCENTILES {
            assert!(svg.contains(&format!(">{p}</text>")), "{p}");
        }
        // p50 at 128 tasks is 25.6 ms; the tooltip says so.
        assert!(svg.contains("dsql-bb8 get, p50: 25.6 ms"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 3);
    }

    #[test]
    fn a_client_keeps_its_colour_in_every_scenario() {
        let rows = vec![
            row("select-one", "one", 8, 1.0, 1.0),
            row("select-one", "two", 8, 1.0, 1.0),
            row("write", "two", 8, 1.0, 1.0),
        ];
        let charts = render(&rows);
        let colour = |svg: &str| {
            let at = svg.find("two, 8 tasks").expect("the bar's tooltip");
            let fill = svg[..at].rfind("fill=\"").expect("the bar's fill");
            svg[fill..fill + 13].to_owned()
        };
        assert_eq!(colour(&charts[0].1), colour(&charts[2].1));
    }

    #[test]
    fn nothing_to_chart_draws_nothing() {
        assert!(render(&[]).is_empty());
        let svg = throughput::chart("t", "p", &[], &[]);
        assert_well_formed(&svg);
        assert!(svg.contains("no results"));
        let svg = latency::chart("t", "p", 0, &[], &[]);
        assert_well_formed(&svg);
        assert!(svg.contains("no latency recorded"));
    }

    #[test]
    fn a_single_row_zero_values_and_gaps_stay_finite() {
        for rows in [
            vec![row("select-one", "x", 1, 0.0, 0.0)],
            vec![row("select-one", "x", 0, f64::NAN, f64::INFINITY)],
            vec![row("select-one", "x", 8, 1234.0, 0.4)],
            vec![Row {
                p90_ms: None,
                p999_ms: Some(-1.0),
                ..row("fault", "x", 32, 1e-9, 1e9)
            }],
        ] {
            let charts = render(&rows);
            assert_eq!(charts.len(), 2);
            for (_, svg) in charts {
                assert_well_formed(&svg);
                assert!(svg.contains(">x</text>"));
            }
        }
    }

    #[test]
    fn reads_json_of_this_build_and_of_older_ones() {
        let old = r#"[{"scenario":"point-read","client":"deadpool-postgres","tasks":8,
            "pool_size":16,"ops_per_sec":19447.2,"p50_ms":0.392,"p99_ms":0.818,
            "p999_ms":2.564,"max_ms":4.5,"errors":0,"first_error":null},
            {"scenario":"write","client":"x","tasks":8,"pool_size":16,"ops_per_sec":0.0,
            "p50_ms":null,"p90_ms":null,"p99_ms":null,"p999_ms":null,"max_ms":null,
            "cpu_us_per_op":null,"cpu_vs_deadpool":null,"errors":3,"first_error":"boom"}]"#;
        let rows: Vec<Row> = serde_json::from_str(old).expect("old JSON");
        assert_eq!(
            rows[0].percentiles(),
            [Some(0.392), None, Some(0.818), Some(2.564), Some(4.5)]
        );
        assert_eq!(rows[1].percentiles(), [None; 5]);
        for (_, svg) in render(&rows) {
            assert_well_formed(&svg);
        }
    }

    #[test]
    fn writes_the_files_into_the_folder() {
        let dir = std::env::temp_dir().join(format!("dsql-bench-charts-{}", std::process::id()));
        let json = r#"[{"scenario":"select-one","client":"c","tasks":8,"pool_size":16,
            "ops_per_sec":10.0,"p50_ms":1.0,"p90_ms":2.0,"p99_ms":3.0,"p999_ms":4.0,"max_ms":5.0}]"#;
        let written = write(json, &dir).expect("written");
        assert_eq!(written.len(), 2);
        for path in &written {
            assert!(
                std::fs::read_to_string(path)
                    .expect("readable")
                    .starts_with("<svg")
            );
        }
        assert!(write("{", &dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_and_titles() {
        assert_eq!(file_stem("point-read"), "point-read");
        assert_eq!(file_stem("../A b/"), "a-b");
        assert_eq!(file_stem("//"), "unnamed");
        assert_eq!(title("fault"), "fault: all sessions dropped");
        assert_eq!(title("new-one"), "new-one");
    }

    /// A name longer than the chart is wide is cut, not spilled.
    #[test]
    fn long_names_are_cut() {
        let long = "n".repeat(300);
        let charts = render(&[row("write", &long, 8, 5.0, 1.0)]);
        for (_, svg) in charts {
            assert!(!svg.contains(&format!(">{long}</text>")));
            assert!(svg.contains("…</text>"));
        }
    }
}
