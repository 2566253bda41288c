//! `ClusterSet` from the builder, the environment and URLs, with the error
//! each rejection names.

mod builder;
mod env;
mod url;

use crate::{ConfigError, DsqlConfig};

/// The local endpoint, in us-east-1.
const A: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";
/// A peer in us-east-2.
const B: &str = "zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws";
/// Another peer, in eu-west-1.
const C: &str = "0123456789abcdefghijklmnop.dsql.eu-west-1.on.aws";
/// B's cluster id alone.
const B_ID: &str = "zyxwvutsrqponmlkjihgfedcba";

type Check = fn(&ConfigError) -> bool;

fn local() -> DsqlConfig {
    DsqlConfig::builder().host(A).build().unwrap()
}

/// The hosts of `set`'s members, in order.
fn hosts(set: &super::ClusterSet) -> Vec<&str> {
    set.members().iter().map(|m| m.endpoint().host()).collect()
}

/// Fails unless `err` passes `check`, names `needle`, and shows no
/// `hunter2` (the password of the URL cases) in `Display` or `Debug`.
fn assert_error(what: &str, err: &ConfigError, check: Check, needle: &str) {
    assert!(check(err), "{what}: unexpected {err:?}");
    let message = err.to_string();
    assert!(
        message.contains(needle),
        "{what}: {message} does not name {needle:?}"
    );
    assert!(
        !message.contains("hunter2"),
        "{what}: password leaked into {message}"
    );
    assert!(
        !format!("{err:?}").contains("hunter2"),
        "{what}: password leaked into {err:?}"
    );
}
