//! DSQL's limits, with compressed time: session lifetime, connection rate,
//! connection count and transaction timeout. Timing assertions are lower
//! bounds.

use std::time::Duration;

use dsql_local::{DsqlLocal, RateLimit, RefusalReason, catalog};
use dsql_testkit::local::{connect, db_error, start};
use dsql_testkit::{direct, eventually, unique};
use tokio::time::Instant;

fn assert_refused(error: &tokio_postgres::Error, expected: &catalog::DsqlError) {
    let db = db_error(error);
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.code().code(), expected.code);
    assert_eq!(db.message(), expected.message);
}

fn assert_timeout(error: &tokio_postgres::Error) {
    let db = db_error(error);
    assert_eq!(db.code().code(), catalog::TRANSACTION_TIMEOUT.code, "{db:?}");
    assert_eq!(db.message(), catalog::TRANSACTION_TIMEOUT.message, "{db:?}");
}

#[tokio::test]
async fn sessions_are_closed_at_the_end_of_their_lifetime() {
    let lifetime = Duration::from_secs(1);
    let local = start(DsqlLocal::builder().session_lifetime(lifetime)).await;
    let opened = Instant::now();
    let client = connect(&local, "admin").await.expect("connects");
    client
        .simple_query("SELECT 1")
        .await
        .expect("query before the cut");
    assert!(
        eventually(Duration::from_secs(10), || client.is_closed()).await,
        "the session was never closed"
    );
    assert!(
        opened.elapsed() >= lifetime,
        "closed after {:?}",
        opened.elapsed()
    );
    assert!(client.simple_query("SELECT 1").await.is_err());
    assert_eq!(local.stats().snapshot().sessions_expired, 1);

    // A new session works.
    let client = connect(&local, "admin").await.expect("reconnects");
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn the_connection_rate_is_a_token_bucket() {
    let local = start(DsqlLocal::builder().connection_rate(RateLimit::new(0.25, 3))).await;
    let started = Instant::now();
    for _ in 0..3 {
        connect(&local, "admin").await.expect("within the burst");
    }
    let error = match connect(&local, "admin").await {
        Ok(_) => panic!("the burst was exceeded without error"),
        Err(e) => e,
    };
    if started.elapsed() < Duration::from_secs(3) {
        // Fewer than one token refilled: the fourth must have been refused.
        assert_refused(&error, &catalog::RATE_EXCEEDED);
    }
    assert!(local.stats().snapshot().refused.get(RefusalReason::RateExceeded) >= 1);
    // Refilled at one token every 4 s.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    connect(&local, "admin").await.expect("a token was refilled");
    local.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_maximum_are_refused() {
    let local = start(DsqlLocal::builder().max_connections(2)).await;
    let first = connect(&local, "admin").await.expect("first");
    let _second = connect(&local, "admin").await.expect("second");
    let error = match connect(&local, "admin").await {
        Ok(_) => panic!("a third connection was accepted"),
        Err(e) => e,
    };
    assert_refused(&error, &catalog::TOO_MANY_CONNECTIONS);
    assert_eq!(
        local
            .stats()
            .snapshot()
            .refused
            .get(RefusalReason::TooManyConnections),
        1
    );

    drop(first);
    let stats = local.stats();
    assert!(
        eventually(Duration::from_secs(5), || stats.snapshot().current_connections
            == 1)
        .await
    );
    connect(&local, "admin").await.expect("a slot was freed");
    local.shutdown().await;
}

#[tokio::test]
async fn transactions_older_than_the_timeout_are_rolled_back() {
    let timeout = Duration::from_secs(1);
    let local = start(DsqlLocal::builder().transaction_timeout(timeout)).await;
    let table = unique("txn_timeout");
    let setup = direct().await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v int); INSERT INTO {table} VALUES (1, 0)"
        ))
        .await
        .expect("setup");
    let client = connect(&local, "admin").await.expect("connects");

    // A short transaction is not affected.
    client.batch_execute("BEGIN").await.expect("begin");
    tokio::time::sleep(timeout / 3).await;
    client
        .batch_execute(&format!("UPDATE {table} SET v = 1 WHERE id = 1; COMMIT"))
        .await
        .expect("a short transaction commits");

    // A long one is rolled back at the timeout, releasing its locks.
    let began = Instant::now();
    client
        .batch_execute(&format!("BEGIN; UPDATE {table} SET v = 2 WHERE id = 1"))
        .await
        .expect("update");
    tokio::time::sleep(timeout + Duration::from_millis(500)).await;
    setup
        .batch_execute(&format!(
            "SET lock_timeout = '2s'; UPDATE {table} SET v = 3 WHERE id = 1; RESET lock_timeout"
        ))
        .await
        .expect("the timed-out transaction released its row lock");
    let error = client
        .batch_execute("SELECT 1")
        .await
        .expect_err("the transaction is over");
    assert_timeout(&error);
    assert!(began.elapsed() >= timeout);
    let error = client.batch_execute("COMMIT").await.expect_err("COMMIT fails");
    assert_timeout(&error);
    let v: i32 = setup
        .query_one(&format!("SELECT v FROM {table} WHERE id = 1"), &[])
        .await
        .expect("select")
        .get(0);
    assert_eq!(v, 3, "the timed-out update was rolled back");

    // The session goes on; an extended-protocol COMMIT also fails.
    client
        .batch_execute(&format!("BEGIN; UPDATE {table} SET v = 4 WHERE id = 1"))
        .await
        .expect("update");
    tokio::time::sleep(timeout + Duration::from_millis(300)).await;
    let error = client.query("COMMIT", &[]).await.expect_err("COMMIT fails");
    assert_timeout(&error);
    let one: i32 = client.query_one("SELECT 1", &[]).await.expect("usable").get(0);
    assert_eq!(one, 1);

    // ROLLBACK after the timeout is accepted.
    client.batch_execute("BEGIN").await.expect("begin");
    tokio::time::sleep(timeout + Duration::from_millis(300)).await;
    client.batch_execute("ROLLBACK").await.expect("rollback");

    assert!(local.stats().snapshot().transactions_timed_out >= 3);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn a_statement_running_past_the_timeout_completes_then_the_transaction_fails() {
    let timeout = Duration::from_secs(1);
    let local = start(DsqlLocal::builder().transaction_timeout(timeout)).await;
    let client = connect(&local, "admin").await.expect("connects");
    client.batch_execute("BEGIN").await.expect("begin");
    let started = Instant::now();
    client
        .batch_execute("SELECT pg_sleep(1.3)")
        .await
        .expect("a running statement is not interrupted");
    assert!(started.elapsed() >= timeout);
    let error = client
        .batch_execute("SELECT 1")
        .await
        .expect_err("the transaction is over");
    assert_timeout(&error);
    client.batch_execute("ROLLBACK").await.expect("rollback");
    client
        .batch_execute("SELECT 1")
        .await
        .expect("the session goes on");
    local.shutdown().await;
}
