//! Token expiry, session cuts, dropped sessions, refused authentication and
//! throttled connects, through `dsql-local` over the real PostgreSQL.
//!
//! "Zero errors" is asserted for operations marked idempotent: a cut while
//! `COMMIT` is in flight leaves a non-idempotent operation's outcome unknown,
//! and that is reported, not hidden (see `transactions.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, drop_table, ledger};
use dsql_local::{RateLimit, RefusalReason};
use dsql_tower::OperationExt;
use dsql_tower::{ErrorClass, Operation, Phase};

/// The ledger's idempotent insert (a double apply would show as a duplicate
/// row), named in traces.
fn record(ledger: &str, id: i64) -> Operation<()> {
    ledger::record(ledger, id).named("record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_operations_through_token_expiry_and_session_cuts() {
    let harness = Harness::start(
        |b| b.session_lifetime(Duration::from_secs(1)),
        Duration::from_secs(2),
    )
    .await;
    let ledger = ledger::create("tower_ledger").await;
    let (mut stack, session) = harness.stack();

    let started = Instant::now();
    let mut errors = Vec::new();
    for id in 0..500_i64 {
        if let Err(error) = stack.run(record(&ledger, id)).await {
            errors.push(error.to_string());
        }
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(
        ledger::counts(&ledger).await,
        (500, 500),
        "every operation exactly once"
    );

    // The run saw several cuts and token expiries, and recovered from each.
    assert!(elapsed >= Duration::from_secs(8), "{elapsed:?}");
    let local = harness.local.stats().snapshot();
    let seconds = elapsed.as_secs();
    assert!(
        local.sessions_expired >= seconds / 2,
        "{} cuts in {seconds} s",
        local.sessions_expired
    );
    assert!(session.stats().connects >= seconds / 2, "{:?}", session.stats());
    assert!(
        harness.signed() >= (seconds / 2) as usize,
        "{} tokens in {seconds} s",
        harness.signed()
    );
    assert_eq!(
        local.refused.get(RefusalReason::Expired),
        0,
        "no expired token was ever sent"
    );

    drop_table(&ledger).await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sessions_dropped_mid_load_and_operations_continue() {
    let harness = Harness::start(|b| b, std::time::Duration::from_secs(900)).await;
    let ledger = ledger::create("tower_ledger").await;
    let deadline = Instant::now() + Duration::from_secs(3);

    let workers: Vec<_> = (0..8_i64)
        .map(|worker| {
            let (mut stack, _session) = harness.stack();
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let (mut done, mut errors) = (0, Vec::new());
                while Instant::now() < deadline {
                    let id = worker * 1_000_000 + done;
                    match stack.run(record(&ledger, id)).await {
                        Ok(()) => done += 1,
                        Err(error) => errors.push(error.to_string()),
                    }
                }
                (done, errors)
            })
        })
        .collect();

    let mut dropped = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        dropped += harness.local.faults().drop_all_sessions();
    }
    let mut total = 0;
    for worker in workers {
        let (done, errors) = worker.await.unwrap();
        assert!(
            errors.is_empty(),
            "{} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        total += done;
    }
    assert!(dropped >= 8, "only {dropped} sessions were dropped");
    assert!(total > 100, "only {total} operations in 3 s");
    assert_eq!(ledger::counts(&ledger).await, (total, total));
    let stats = harness.local.stats().snapshot();
    assert!(stats.sessions_opened >= 16, "{stats:?}");

    drop_table(&ledger).await;
    harness.local.shutdown().await;
}

async fn select_one(stack: &mut common::Stack) -> Result<i32, dsql_tower::Error> {
    let op = Operation::autocommit(|client| {
        Box::pin(
            async move { Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0)) },
        )
    })
    .idempotent();
    stack.run(op).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_authentication_shorter_than_the_retry_window_recovers() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    harness
        .local
        .faults()
        .refuse_auth_for(Duration::from_millis(1500));
    let (mut stack, _session) = harness.stack();
    let started = Instant::now();
    assert_eq!(select_one(&mut stack).await.unwrap(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    let refused = harness
        .local
        .stats()
        .snapshot()
        .refused
        .get(RefusalReason::FaultInjected);
    assert!(refused >= 1, "the refusal window was not hit");
    assert!(harness.signed() >= 2, "a refused token is replaced by a new one");
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_authentication_longer_than_the_window_is_a_clear_error() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    harness.local.faults().refuse_auth_for(Duration::from_secs(60));
    let (mut stack, _session) = harness.stack();
    let started = Instant::now();
    let error = select_one(&mut stack).await.unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(error.class(), ErrorClass::Reauthenticate, "{error}");
    assert_eq!(error.phase(), Phase::Connect);
    let message = error.report().to_string();
    assert!(message.contains("access denied"), "{message}");
    // Not a busy loop: at most the rule's ten attempts, spaced by backoff.
    // (Full jitter may draw short delays: nine retries with ceilings of
    // 0.1 s … 2 s sum to under 1 s with negligible probability.)
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    let refused = harness
        .local
        .stats()
        .snapshot()
        .refused
        .get(RefusalReason::FaultInjected);
    assert!((2..=10).contains(&refused), "{refused} attempts");
    harness.local.faults().stop_refusing_auth();
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_connects_back_off_until_admitted() {
    // Two connects per second, burst of two: eight sessions cannot all get in at once.
    let harness = Harness::start(
        |b| b.connection_rate(RateLimit::new(2.0, 2)),
        Duration::from_secs(900),
    )
    .await;
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (mut stack, _session) = harness.stack();
            tokio::spawn(async move { select_one(&mut stack).await })
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap().unwrap(), 1);
    }
    let elapsed = started.elapsed();
    let refused = harness
        .local
        .stats()
        .snapshot()
        .refused
        .get(RefusalReason::RateExceeded);
    assert!(refused >= 1, "nothing was throttled");
    // Six connects beyond the burst at 2/s need 3 s; spaced retries, not a storm.
    assert!(elapsed >= Duration::from_millis(2500), "{elapsed:?}");
    assert!(
        refused <= 60,
        "{refused} refused attempts in {elapsed:?}: not backing off"
    );
    harness.local.shutdown().await;
}
