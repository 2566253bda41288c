//! Benchmarks of the `dsql-rs` crates. Run them with
//! `cargo bench -p dsql-bench`; see `BENCHMARKS.md` at the workspace root.
#![forbid(unsafe_code)]
