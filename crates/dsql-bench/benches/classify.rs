//! Error classification: what deciding "retry, reconnect, re-sign or give
//! up" costs per error, against the check applications write by hand (a
//! SQLSTATE comparison that knows only conflicts), in the same run.
//!
//! `cargo bench -p dsql-bench --bench classify`
#![allow(missing_docs)]

use std::hint::black_box;
use std::io;

use criterion::{Criterion, criterion_group, criterion_main};
use dsql_tower::classify::classify_server_error;
use dsql_tower::{Classify, DsqlClassifier, Error, ErrorClass, Phase};

/// DSQL's errors as the server sends them: code, message, hint.
const SERVER_ERRORS: [(&str, &str, Option<&str>); 4] = [
    (
        "40001",
        "change conflicts with another transaction, please retry: (OC000)",
        None,
    ),
    (
        "08006",
        "unable to accept connection, access denied",
        Some("Signature expired: 20240827T001500Z is now earlier than 20240827T002000Z"),
    ),
    ("53400", "Unable to accept connection, rate exceeded.", None),
    ("42601", "syntax error at or near \"SELEC\"", None),
];

/// The hand-written check: conflicts only, by code.
fn by_hand(code: &str) -> bool {
    code == "40001" || code == "40P01"
}

fn classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify_four_server_errors");
    group.bench_function("hand_written_sqlstate_check", |b| {
        b.iter(|| {
            for (code, _, _) in SERVER_ERRORS {
                black_box(by_hand(black_box(code)));
            }
        })
    });
    group.bench_function("dsql_rules_table", |b| {
        b.iter(|| {
            for (code, message, hint) in SERVER_ERRORS {
                black_box(classify_server_error(black_box(code), black_box(message), hint));
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("classify_error_chains");
    let reset = io::Error::from(io::ErrorKind::ConnectionReset);
    group.bench_function("io_connection_reset", |b| {
        b.iter(|| black_box(DsqlClassifier.classify(black_box(&reset))))
    });
    let classified = Error::new(
        ErrorClass::Reconnect,
        Phase::Execute,
        io::Error::from(io::ErrorKind::ConnectionReset),
    );
    group.bench_function("already_classified_error", |b| {
        b.iter(|| black_box(DsqlClassifier.classify(black_box(&classified))))
    });
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
