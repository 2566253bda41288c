//! Examples, workspace integration tests and shared test support for the
//! `dsql-rs` crates. Nothing here is published; the libraries live in `crates/`.
#![forbid(unsafe_code)]
