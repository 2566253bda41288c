//! The benchmark and soak harnesses, run briefly: they must keep working,
//! and their own checks must pass, or the figures in BENCHMARKS.md cannot be
//! reproduced. (Needs PostgreSQL on 127.0.0.1:5432; `scripts/test` starts it.)

use std::process::Command;

fn dsql_bench(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dsql-bench"))
        .args(args)
        .output()
        .expect("dsql-bench runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The number after `name=` in the soak's dsql-local line.
fn stat(report: &str, name: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in the report:\n{report}"))
}

#[test]
fn a_short_soak_holds_every_invariant_under_faults() {
    // Seed 3's schedule drops a session at COMMIT, injects conflicts, adds
    // latency and refuses authentication within 20 s.
    let (ok, stdout, stderr) = dsql_bench(&[
        "soak",
        "--minutes",
        "0.34",
        "--tasks",
        "8",
        "--pool-size",
        "4",
        "--no-restart",
        "--seed",
        "3",
    ]);
    assert!(ok, "the soak failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("Every invariant holds."), "{stdout}");
    assert!(stat(&stdout, "dropped_by_faults") >= 1, "{stdout}");
    assert!(stat(&stdout, "conflicts_injected") >= 1, "{stdout}");
    assert!(stat(&stdout, "sessions_expired") >= 1, "{stdout}");
}

#[test]
fn a_quick_fault_run_reports_every_client_and_dsql_bb8_surfaces_no_error() {
    let json = std::env::temp_dir().join(format!("dsql-bench-harness-{}.json", std::process::id()));
    let (ok, stdout, stderr) = dsql_bench(&[
        "pools",
        "--quick",
        "--scenarios",
        "fault",
        "--tasks",
        "8",
        "--json",
        json.to_str().expect("a UTF-8 temporary path"),
    ]);
    assert!(ok, "the benchmark failed:\n{stdout}\n{stderr}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    let clients: Vec<&str> = rows.iter().filter_map(|r| r["client"].as_str()).collect();
    for expected in [
        "bb8-postgres",
        "deadpool-postgres",
        "aurora-dsql-sqlx-connector",
        "dsql-bb8 run",
        "dsql-bb8 + tower stack",
    ] {
        assert!(clients.contains(&expected), "{expected} missing from {clients:?}");
    }
    for row in rows
        .iter()
        .filter(|r| r["client"].as_str().is_some_and(|c| c.starts_with("dsql-bb8")))
    {
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["ops_per_sec"].as_f64().is_some_and(|ops| ops > 0.0), "{row}");
    }
    assert!(stdout.contains("| dsql-bb8 run |"), "{stdout}");
}
