//! `dsql-bench network --quick`, end to end: over a modelled 1 ms round
//! trip, the round trips each client spends are counted, not guessed.
//! (Needs the PostgreSQL `scripts/ensure-postgres` sets up; `scripts/test` runs it.)

mod common;

use common::dsql_bench_json;

#[test]
fn a_quick_network_run_counts_each_clients_round_trips() {
    let (_, report) = dsql_bench_json(&[
        "network",
        "--quick",
        "--clients",
        "bb8-postgres,dsql-bb8-get,dsql-bb8-run",
    ]);

    let measured = &report["round_trip_measured"];
    for figure in ["mean_ms", "median_ms"] {
        let ms = measured[figure].as_f64().expect("a measured round trip");
        assert!(ms >= 1.0, "the line delays less than configured: {report}");
    }
    let late_us = measured["line_late_us"].as_f64().expect("the line's lateness");
    // No timer runs to the microsecond, and none is seconds late here.
    assert!(late_us > 0.0 && late_us < 5_000.0, "{report}");
    let client = |name: &str| {
        report["clients"]
            .as_array()
            .and_then(|clients| clients.iter().find(|c| c["client"] == name))
            .unwrap_or_else(|| panic!("{name} missing: {report}"))
            .clone()
    };
    // bb8-postgres tests every checkout with a query of its own.
    for (name, round_trips) in [
        ("bb8-postgres", 2.0),
        ("dsql-bb8 get", 1.0),
        ("dsql-bb8 run", 1.0),
    ] {
        let c = client(name);
        assert_eq!(c["round_trips_per_op"].as_f64(), Some(round_trips), "{c}");
        assert_eq!(c["errors"], 0, "{c}");
        assert!(c["ops_per_sec"].as_f64().is_some_and(|ops| ops > 0.0), "{c}");
    }
    assert_eq!(
        client("dsql-bb8 run")["refill"]["failures"],
        0,
        "run replays what the cut broke"
    );

    let connects = report["connects"].as_array().expect("connect figures");
    let turns = |name: &str| {
        connects
            .iter()
            .find(|c| c["negotiation"] == name)
            .and_then(|c| c["round_trips_per_connect"].as_f64())
            .unwrap_or_else(|| panic!("{name} missing: {report}"))
    };
    assert_eq!(turns("SSLRequest"), 4.0, "{report}");
    assert_eq!(turns("direct TLS"), 3.0, "{report}");
}
