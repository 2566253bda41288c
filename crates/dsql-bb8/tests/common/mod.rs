//! The shared test support (`dsql-testkit`).
#![allow(unused_imports, unreachable_pub)]

pub use dsql_testkit::*;
