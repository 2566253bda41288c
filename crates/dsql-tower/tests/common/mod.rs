//! The shared test support (`dsql-testkit`), and this suite's table names.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub use dsql_testkit::*;

/// A table name no other test (or test binary) uses.
pub fn table(name: &str) -> String {
    unique(&format!("tower_{name}"))
}
