//! The pool's guarantees under compositions a user makes: an exhausted
//! pool, nested checkouts, a connection handed back inside a transaction,
//! a classifier of one's own, operations that run more than one autocommit
//! statement.
#![allow(clippy::unwrap_used)]

mod common;

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, direct, unique};
use dsql_bb8::{CheckoutTimeout, DsqlPool};
use dsql_local::CommitDrop;
use dsql_tower::{DsqlClassifier, Effects, ErrorClass, Operation, Phase, classify::Classify};

async fn count(sql: &str) -> i64 {
    direct().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_times_out_at_its_deadline_and_counts_waiters_exactly() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let pool = DsqlPool::builder(&harness.config)
        .max_size(2)
        .connection_timeout(Duration::from_secs(2))
        .build(harness.tokens.clone())
        .unwrap();
    let held = (pool.get().await.unwrap(), pool.get().await.unwrap());

    let started = Instant::now();
    let error = pool.get().await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(error.phase(), Phase::Connect);
    let timeout = error.find::<CheckoutTimeout>().expect("a typed checkout timeout");
    assert_eq!(timeout.max_size, 2);
    assert!(
        error.report().to_string().contains("at most 2 connections"),
        "{}",
        error.report()
    );

    // A caller that gives up stops counting as waiting.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), pool.get()).await;
    assert!(gave_up.is_err());
    assert_eq!(pool.state().waiting, 0, "{:?}", pool.state());
    assert_eq!(pool.state().timeouts, 1);

    // Nested checkouts that would wait forever end at the deadline too.
    drop(held.1);
    let inner = pool.get().await.unwrap();
    let started = Instant::now();
    assert!(pool.get().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    drop((held.0, inner));
    pool.close().await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_handed_back_inside_a_transaction_is_rolled_back() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = unique("bb8_left_open");
    direct()
        .await
        .batch_execute(&format!("CREATE TABLE {name} (id bigint NOT NULL)"))
        .await
        .unwrap();
    let pool = DsqlPool::builder(&harness.config)
        .max_size(1)
        .build(harness.tokens.clone())
        .unwrap();

    let connection = pool.get().await.unwrap();
    connection
        .batch_execute(&format!("BEGIN; INSERT INTO {name} (id) VALUES (1)"))
        .await
        .unwrap();
    drop(connection);
    let connection = pool.get().await.unwrap();
    let rows = connection
        .simple_query("SELECT now() <> statement_timestamp()")
        .await
        .unwrap();
    let in_transaction = rows.iter().any(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    });
    assert!(!in_transaction, "handed out inside the transaction");
    // A failed transaction (25P02 for anything after) is rolled back too.
    let _ = connection.batch_execute("BEGIN; SELECT 1/0").await;
    drop(connection);
    let connection = pool.get().await.unwrap();
    connection.batch_execute("SELECT 1").await.unwrap();
    drop(connection);

    assert_eq!(
        count(&format!("SELECT count(*) FROM {name}")).await,
        0,
        "never committed"
    );
    assert_eq!(
        pool.state().connects,
        1,
        "rolled back, not reconnected: {:?}",
        pool.state()
    );
    pool.close().await;
    direct()
        .await
        .batch_execute(&format!("DROP TABLE {name}"))
        .await
        .unwrap();
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_run_never_replays_an_autocommit_statement_that_landed() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = unique("bb8_two_statements");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {name} (id bigint NOT NULL); CREATE TABLE {name}_n (id int PRIMARY KEY, n bigint); \
             INSERT INTO {name}_n VALUES (1, 0)"
        ))
        .await
        .unwrap();
    let pool = DsqlPool::builder(&harness.config)
        .build(harness.tokens.clone())
        .unwrap();
    let (insert, update) = (
        format!("INSERT INTO {name} (id) VALUES (1)"),
        format!("UPDATE {name}_n SET n = n + 1 WHERE id = 1"),
    );
    let op = Operation::autocommit(move |client| {
        let (insert, update) = (insert.clone(), update.clone());
        Box::pin(async move {
            client.execute(&insert, &[]).await?;
            client.execute(&update, &[]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    });
    harness.local.faults().fail_statement(2);
    let error = pool.run(op).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Conflict, "{error}");
    assert_eq!(error.effects(), Effects::StatementCompleted);
    assert_eq!(error.attempts(), 1);
    assert_eq!(count(&format!("SELECT count(*) FROM {name}")).await, 1);
    pool.close().await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pools_classifier_decides_what_run_replays_but_not_what_is_safe() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    // The application fails with 22012 (division by zero, which the default
    // classifier calls fatal) when it wants its transaction replayed: DSQL
    // has no plpgsql to `RAISE` an error of its own.
    let replay_22012 = |error: &(dyn StdError + 'static)| {
        let mut next = Some(error);
        while let Some(error) = next {
            if let Some(db) = error.downcast_ref::<tokio_postgres::error::DbError>()
                && db.code().code() == "22012"
            {
                return ErrorClass::Conflict;
            }
            next = error.source();
        }
        DsqlClassifier.classify(error)
    };
    let raising = |attempts: Arc<AtomicUsize>| {
        Operation::transaction(move |tx| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if attempt == 0 {
                    tx.batch_execute("SELECT 1/0").await?;
                }
                Ok::<_, tokio_postgres::Error>(attempt)
            })
        })
    };

    let plain = DsqlPool::builder(&harness.config)
        .build(harness.tokens.clone())
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let error = plain.run(raising(Arc::clone(&attempts))).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    plain.close().await;

    let custom = DsqlPool::builder(&harness.config)
        .classifier(replay_22012)
        .build(harness.tokens.clone())
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    assert_eq!(custom.run(raising(Arc::clone(&attempts))).await.unwrap(), 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "replayed once");

    // Hostile: every error a conflict. A COMMIT whose answer was lost is
    // still not replayed.
    let hostile = DsqlPool::builder(&harness.config)
        .classifier(|_: &(dyn StdError + 'static)| ErrorClass::Conflict)
        .build(harness.tokens.clone())
        .unwrap();
    let name = unique("bb8_hostile");
    direct()
        .await
        .batch_execute(&format!("CREATE TABLE {name} (id bigint NOT NULL)"))
        .await
        .unwrap();
    let insert = format!("INSERT INTO {name} (id) VALUES (1)");
    harness
        .local
        .faults()
        .drop_at_next_commit(CommitDrop::AfterForwarding);
    let error = hostile
        .run(Operation::transaction(move |tx| {
            let insert = insert.clone();
            Box::pin(async move { tx.batch_execute(&insert).await })
        }))
        .await
        .unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(error.attempts(), 1);
    assert_eq!(count(&format!("SELECT count(*) FROM {name}")).await, 1);
    custom.close().await;
    hostile.close().await;
    harness.local.shutdown().await;
}

/// tokio-postgres closes a dropped statement with `Close` + `Sync` and does
/// not wait for the answer: a connection returned right after still has
/// that reply due, which cannot change its transaction status. Its next
/// checkout must not pay a round trip for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_at_rest_is_handed_out_without_a_round_trip() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let pool = DsqlPool::builder(&harness.config)
        .max_size(1)
        .build(harness.tokens.clone())
        .unwrap();
    for _ in 0..20 {
        let connection = pool.get().await.unwrap();
        connection.execute("SELECT 1", &[]).await.unwrap();
        drop(connection);
        // If the checkout sent anything, it would be statement 1 and take
        // the fault; the caller's own statement must be the first.
        harness.local.faults().fail_statement(1);
        let connection = pool.get().await.unwrap();
        let error = connection.execute("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(error.code().map(|code| code.code()), Some("40001"), "{error}");
        harness.local.faults().clear();
    }
    assert_eq!(pool.state().connects, 1);
    pool.close().await;
    harness.local.shutdown().await;
}
