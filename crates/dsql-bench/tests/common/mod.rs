//! What the harness tests share: running the benchmark binary.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::process::Command;

/// Runs `dsql-bench` with `args`: whether it succeeded, its stdout and
/// stderr.
pub(crate) fn dsql_bench(args: &[&str]) -> (bool, String, String) {
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

/// Runs `dsql-bench` with `args` and `--json` to a temporary file; fails
/// the test with the output if the command fails. Its stdout and report.
pub(crate) fn dsql_bench_json(args: &[&str]) -> (String, serde_json::Value) {
    let json = std::env::temp_dir().join(format!(
        "dsql-bench-{}-{}.json",
        args.first().copied().unwrap_or("run"),
        std::process::id()
    ));
    let mut with_json = args.to_vec();
    with_json.extend(["--json", json.to_str().expect("a UTF-8 temporary path")]);
    let (ok, stdout, stderr) = dsql_bench(&with_json);
    assert!(ok, "dsql-bench {args:?} failed:\n{stdout}\n{stderr}");
    let report =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    (stdout, report)
}
