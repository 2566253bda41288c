//! `dsql-bench failover --quick`, end to end: the three clients through a
//! region cut off and healed, every write checked in PostgreSQL. (Needs
//! the PostgreSQL `scripts/ensure-postgres` sets up; `scripts/test` runs it.)
//!
//! A test binary of its own, not in `harness.rs`: cargo runs test binaries
//! one after another, and the tests of one binary at once. Run alongside
//! the harness's runs on two cores, this one slowed the quick fault run's
//! warm-up into its session drops.

mod common;

use common::dsql_bench_json;

#[test]
fn a_quick_failover_run_compares_the_three_clients_and_loses_no_write() {
    let (stdout, report) = dsql_bench_json(&["failover", "--quick"]);
    let figures = report["figures"].as_array().expect("figures");
    let clients: Vec<&str> = figures.iter().filter_map(|f| f["client"].as_str()).collect();
    assert_eq!(clients.len(), 3, "{clients:?}");
    for expected in ["cluster", "single", "naive"] {
        assert!(clients.contains(&expected), "{expected} missing from {clients:?}");
    }
    for f in figures {
        assert_eq!(f["at_rest"]["lost"], 0, "{f}");
        assert_eq!(f["at_rest"]["doubled"], 0, "{f}");
        assert!(
            f["writes_per_sec_before"].as_f64().is_some_and(|w| w > 0.0),
            "{f}"
        );
    }
    let cluster = figures
        .iter()
        .find(|f| f["client"] == "cluster")
        .expect("the cluster pool's figures");
    assert_eq!(
        cluster["errors"], 0,
        "no error reaches the cluster pool's callers: {cluster}"
    );
    assert!(cluster["first_write_ms"].is_number(), "{cluster}");
    assert!(cluster["back_at_a_ms"].is_number(), "{cluster}");
    assert!(stdout.contains("| dsql-bb8 build_cluster (A, B) |"), "{stdout}");
}
