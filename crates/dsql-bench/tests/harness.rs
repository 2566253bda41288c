//! The benchmark and soak harnesses, run briefly: they must keep working,
//! and their own checks must pass, or the figures in BENCHMARKS.md cannot be
//! reproduced. (Needs the PostgreSQL `scripts/ensure-postgres` sets up; `scripts/test` runs it.)

mod common;

use common::dsql_bench;

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

#[test]
fn a_small_flood_is_refused_as_configured_and_stays_within_the_bound() {
    // dsql-local's own bounds test, through a child process: 2 MiB messages,
    // a 5 MiB budget; 1.5 MiB of a 1.9 MiB message grows a buffer to 2 MiB,
    // so two sessions fit and the others are told 53200.
    let json = std::env::temp_dir().join(format!("dsql-bench-flood-{}.json", std::process::id()));
    let (ok, stdout, stderr) = dsql_bench(&[
        "flood",
        "--max-message-size",
        "2097152",
        "--max-buffered-bytes",
        "5242880",
        "--max-pending-handshakes",
        "16",
        "--idle-sessions",
        "2",
        "--oversized",
        "10",
        "--partial",
        "6",
        "--partial-bytes",
        "1572864",
        "--silent",
        "40",
        "--tls-stalled",
        "10",
        "--partial-startup",
        "10",
        "--hold",
        "1",
        "--json",
        json.to_str().expect("a UTF-8 temporary path"),
    ]);
    assert!(ok, "the flood failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    let endings = |phase: usize, key: &str| report["phases"][phase]["endings"][key].as_u64().unwrap_or(0);
    assert_eq!(endings(0, "FATAL 54000"), 10, "{stdout}");
    assert_eq!(endings(1, "held"), 2, "{stdout}");
    assert_eq!(endings(1, "FATAL 53200"), 4, "{stdout}");
    let held: u64 = ["silent: held", "stalled TLS: held", "half a startup packet: held"]
        .iter()
        .map(|key| endings(2, key))
        .sum();
    assert_eq!(held, 16, "one per handshake slot: {stdout}");
    assert!(endings(2, "silent: closed at once") >= 1, "{stdout}");
    assert_eq!(report["served_after"], true, "{stdout}");
    assert_eq!(report["pass"], true, "{stdout}");
}
