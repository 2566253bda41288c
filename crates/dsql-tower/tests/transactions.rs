//! Conflicts, lost commits and abandoned operations, through `dsql-local`
//! over the real PostgreSQL, checked directly in PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Harness, direct, drop_table, ledger, table};
use dsql_local::CommitDrop;
use dsql_tower::{ClassifyLayer, ErrorClass, Operation, OperationExt, Phase};
use tower::ServiceBuilder;

/// Read-modify-write of one counter: without conflict detection and whole
/// replays, concurrent runs would lose increments.
fn increment(counter: &str, attempts: Arc<AtomicU64>) -> Operation<()> {
    let select = format!("SELECT v FROM {counter} WHERE id = 1");
    let update = format!("UPDATE {counter} SET v = $1 WHERE id = 1");
    Operation::transaction(move |tx| {
        let (select, update) = (select.clone(), update.clone());
        attempts.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let v: i64 = tx.query_one(&select, &[]).await?.get(0);
            tx.execute(&update, &[&(v + 1)]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
    .named("increment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_increments_land_exactly_once() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let counter = table("counter");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {counter} (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO {counter} VALUES (1, 0)"
        ))
        .await
        .unwrap();

    let attempts = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (mut stack, _session) = harness.stack();
            let (counter, attempts) = (counter.clone(), Arc::clone(&attempts));
            tokio::spawn(async move {
                let mut succeeded = 0_i64;
                for _ in 0..25 {
                    match stack.run(increment(&counter, Arc::clone(&attempts))).await {
                        Ok(()) => succeeded += 1,
                        Err(error) => panic!("increment failed: {error}"),
                    }
                }
                succeeded
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap();
    }

    let value: i64 = direct()
        .await
        .query_one(&format!("SELECT v FROM {counter} WHERE id = 1"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(succeeded, 200);
    assert_eq!(value, succeeded, "no lost and no doubled increment");
    let conflicts = harness.local.stats().snapshot().conflicts_rewritten;
    let attempts = attempts.load(Ordering::Relaxed);
    assert!(conflicts > 0, "the increments never conflicted");
    assert!(
        attempts > 200,
        "{attempts} attempts for 200 increments: nothing was replayed"
    );

    direct()
        .await
        .batch_execute(&format!("DROP TABLE {counter}"))
        .await
        .unwrap();
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_commit_is_an_unknown_outcome() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let ledger = ledger::create("tower_commit_ledger").await;
    let (mut stack, _session) = harness.stack();

    // Committed, but the answer never arrives.
    harness
        .local
        .faults()
        .drop_at_next_commit(CommitDrop::AfterForwarding);
    let error = stack.run(ledger::insert(&ledger, 1)).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::OutcomeUnknown, "{error}");
    assert_eq!(error.phase(), Phase::Commit);
    assert_eq!(error.attempts(), 1, "a non-idempotent commit is not replayed");
    assert!(
        error.to_string().contains("may or may not have taken effect"),
        "{error}"
    );
    assert_eq!(ledger::rows(&ledger, 1).await, 1, "it did commit");

    // Never committed, and the client cannot tell either.
    harness
        .local
        .faults()
        .drop_at_next_commit(CommitDrop::BeforeForwarding);
    let error = stack.run(ledger::insert(&ledger, 2)).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(ledger::rows(&ledger, 2).await, 0, "it did not commit");

    // The same operation marked idempotent is replayed and lands once.
    harness
        .local
        .faults()
        .drop_at_next_commit(CommitDrop::AfterForwarding);
    stack.run(ledger::insert(&ledger, 3).idempotent()).await.unwrap();
    assert_eq!(ledger::rows(&ledger, 3).await, 1);

    drop_table(&ledger).await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_operation_is_cancelled_and_its_connection_discarded() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let session = harness.session();
    let mut stack = ServiceBuilder::new()
        .layer(ClassifyLayer::new())
        .timeout(Duration::from_millis(300))
        .service(session.clone());

    let marker = format!("abandoned_{}", std::process::id());
    let sql = format!("SELECT pg_sleep(30), '{marker}'");
    let slow = Operation::autocommit(move |client| {
        let sql = sql.clone();
        Box::pin(async move {
            client.simple_query(&sql).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    });
    let error = stack.run(slow).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::OutcomeUnknown, "{error}");

    // The cancel request reached the server: the sleep is gone.
    let pg = direct().await;
    let mut running = 1;
    for _ in 0..50 {
        running = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&marker],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(running, 0, "the abandoned query is still running");
    assert!(harness.local.stats().snapshot().cancels_relayed >= 1);

    // The next operation runs on a fresh connection, not the abandoned one.
    let one = Operation::autocommit(|client| {
        Box::pin(
            async move { Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0)) },
        )
    });
    assert_eq!(stack.run(one).await.unwrap(), 1);
    assert_eq!(session.stats().connects, 2, "{:?}", session.stats());
    harness.local.shutdown().await;
}
