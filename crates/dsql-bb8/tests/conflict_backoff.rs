//! A conflicted transaction keeps its connection through its backoff: the
//! replay runs on the same connection (the same upstream backend), under
//! more tasks than connections no conflict surfaces, and a transaction that
//! gives up hands its connection back (no leak).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, direct, drop_table, eventually, unique};
use dsql_bb8::DsqlPool;
use dsql_tower::retry::{Backoff, RetryPolicy, RetryRule};
use dsql_tower::{ErrorClass, Operation};

/// The backends (`pg_backend_pid()`) each attempt of one transaction ran on.
type Backends = Arc<Mutex<Vec<i32>>>;

/// `UPDATE … SET v = v + 1` on row `k`, recording the backend of each
/// attempt in `backends`.
fn increment(table: &str, k: i32, backends: Backends) -> Operation<()> {
    let sql = format!("UPDATE {table} SET v = v + 1 WHERE k = {k}");
    Operation::transaction(move |tx| {
        let (sql, backends) = (sql.clone(), Arc::clone(&backends));
        Box::pin(async move {
            let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
            backends.lock().unwrap().push(pid);
            tx.batch_execute(&sql).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
    .named("increment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicted_transaction_replays_on_the_connection_it_kept() {
    // Writers never wait: a writer that finds the row locked fails at once
    // with DSQL's conflict, as the loser of a DSQL commit would.
    let harness = Harness::start(
        |b| b.never_wait(Duration::from_millis(1)),
        Duration::from_secs(900),
    )
    .await;
    let table = unique("bb8_hot_rows");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {table} (k int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO {table} SELECT k, 0 FROM generate_series(0, 1) k"
        ))
        .await
        .unwrap();
    let pool = DsqlPool::builder(&harness.config)
        .max_size(4)
        .build(harness.tokens.clone())
        .unwrap();

    // 32 tasks on 4 connections and 2 hot rows, 20 transactions each.
    let (tasks, per_task) = (32, 20);
    let replayed = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let (pool, table, replayed) = (pool.clone(), table.clone(), Arc::clone(&replayed));
            tokio::spawn(async move {
                for n in 0..per_task {
                    let backends = Backends::default();
                    pool.run(increment(&table, (task + n) % 2, Arc::clone(&backends)))
                        .await
                        .unwrap_or_else(|error| panic!("a conflict surfaced: {}", error.report()));
                    let backends = backends.lock().unwrap();
                    if backends.len() > 1 {
                        replayed.fetch_add(1, Ordering::Relaxed);
                    }
                    assert!(
                        backends.iter().all(|pid| *pid == backends[0]),
                        "every attempt on the connection the first one kept: {backends:?}"
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }

    let replayed = replayed.load(Ordering::Relaxed);
    assert!(replayed > 0, "the test made no conflict");
    let sum: i64 = direct()
        .await
        .query_one(&format!("SELECT sum(v)::bigint FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        sum,
        i64::from(tasks * per_task),
        "each transaction committed once"
    );
    let state = pool.state();
    assert!(state.connects <= 4, "no connection was replaced: {state:?}");
    assert!(
        eventually(Duration::from_secs(5), || {
            let state = pool.state();
            state.idle == state.connections
        })
        .await,
        "every connection back in the pool: {:?}",
        pool.state()
    );
    pool.close().await;
    drop_table(&table).await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_gives_up_hands_its_kept_connection_back() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let policy = RetryPolicy::for_operations().rule(
        ErrorClass::Conflict,
        Some(RetryRule::new(
            Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
            3,
            Duration::from_secs(10),
        )),
    );
    let pool = DsqlPool::builder(&harness.config)
        .max_size(2)
        .retry_policy(policy)
        .build(harness.tokens.clone())
        .unwrap();
    // Every COMMIT fails with a conflict: every transaction gives up.
    harness.local.faults().inject_commit_conflicts(1.0);

    // More operations than connections, at once: each keeps its connection
    // through its backoffs, then hands it back when it gives up, so the
    // others get it (a leak would make them wait for the checkout timeout).
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let backends = Backends::default();
                let operation = Operation::transaction({
                    let backends = Arc::clone(&backends);
                    move |tx| {
                        let backends = Arc::clone(&backends);
                        Box::pin(async move {
                            let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
                            backends.lock().unwrap().push(pid);
                            Ok::<_, tokio_postgres::Error>(())
                        })
                    }
                });
                let error = pool.run(operation).await.unwrap_err();
                (error, backends.lock().unwrap().clone())
            })
        })
        .collect();
    for run in runs {
        let (error, backends) = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("no operation waits on a leaked connection")
            .unwrap();
        assert_eq!(error.class(), ErrorClass::Conflict, "{}", error.report());
        assert_eq!(error.attempts(), 3);
        assert_eq!(backends.len(), 3);
        assert!(backends.iter().all(|pid| *pid == backends[0]), "{backends:?}");
    }

    // Back to normal: both connections idle, both can be checked out at
    // once (their turns in the fair queue were handed back too), and none
    // was retired for the conflicts.
    assert!(
        eventually(Duration::from_secs(5), || {
            let state = pool.state();
            state.connections == 2 && state.idle == 2
        })
        .await,
        "{:?}",
        pool.state()
    );
    let both = tokio::time::timeout(Duration::from_secs(2), async {
        (pool.get().await.unwrap(), pool.get().await.unwrap())
    })
    .await
    .expect("both connections free");
    drop(both);
    let state = pool.state();
    assert_eq!(state.connects, 2, "{state:?}");
    assert_eq!(state.retired.total(), 0, "{state:?}");

    pool.close().await;
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_the_connection_goes_to_the_next_in_line_during_the_backoff() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    harness.local.faults().inject_commit_conflicts(1.0);
    let policy = RetryPolicy::for_operations().rule(
        ErrorClass::Conflict,
        Some(RetryRule::new(
            Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
            2,
            Duration::from_secs(10),
        )),
    );
    for keep in [true, false] {
        let pool = DsqlPool::builder(&harness.config)
            .max_size(1)
            .connection_timeout(Duration::from_secs(5))
            .keep_connection_through_conflict_backoff(keep)
            .retry_policy(policy.clone())
            .build(harness.tokens.clone())
            .unwrap();
        // One connection. A transaction's first attempt holds it while
        // another task queues for it; the attempt conflicts at COMMIT. At
        // the replay: did the other task get the connection in between?
        let (started, other_served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seen_at_attempt = Arc::new(Mutex::new(Vec::new()));
        let run = tokio::spawn({
            let (pool, started, other_served, seen) = (
                pool.clone(),
                Arc::clone(&started),
                Arc::clone(&other_served),
                Arc::clone(&seen_at_attempt),
            );
            async move {
                pool.run(Operation::transaction(move |_tx| {
                    let (started, other_served, seen) =
                        (Arc::clone(&started), Arc::clone(&other_served), Arc::clone(&seen));
                    Box::pin(async move {
                        seen.lock().unwrap().push(other_served.load(Ordering::SeqCst));
                        if started.fetch_add(1, Ordering::SeqCst) == 0 {
                            // Long enough for the other task to queue.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Ok::<_, tokio_postgres::Error>(())
                    })
                }))
                .await
            }
        });
        assert!(eventually(Duration::from_secs(5), || started.load(Ordering::SeqCst) == 1).await);
        let connection = pool.get().await.unwrap();
        other_served.store(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(connection);
        let error = run.await.unwrap().unwrap_err();
        assert_eq!(error.attempts(), 2, "{}", error.report());
        assert_eq!(
            *seen_at_attempt.lock().unwrap(),
            [0, usize::from(!keep)],
            "keep = {keep}: the other task was served between the attempts only when switched off"
        );
        pool.close().await;
    }
    harness.local.shutdown().await;
}
