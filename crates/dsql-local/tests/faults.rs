//! Every fault knob, against the real PostgreSQL.

use std::time::Duration;

use dsql_local::{CommitDrop, DsqlLocal, Latency, RefusalReason, StatementDrop, catalog};
use dsql_testkit::local::{connect, connect_app, connect_with, db_error, pg_config, sign, start};
use dsql_testkit::{direct, eventually, no_upstream_sessions, tls, unique};
use tokio::time::Instant;
use tokio_postgres::Client;

fn assert_injected_conflict(error: &tokio_postgres::Error) {
    let db = db_error(error);
    assert_eq!(db.code().code(), "40001", "{db:?}");
    assert_eq!(db.message(), catalog::CHANGE_CONFLICT.message);
}

async fn create_table(prefix: &str) -> (Client, String) {
    let table = unique(prefix);
    let setup = direct().await;
    setup
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .await
        .expect("create");
    (setup, table)
}

async fn count(setup: &Client, table: &str) -> i64 {
    setup
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn drop_all_sessions_closes_every_session() {
    let local = start(DsqlLocal::builder()).await;
    let app = unique("drop_all");
    let a = connect_app(&local, "admin", &app).await;
    let b = connect_app(&local, "reader", &app).await;
    assert_eq!(local.faults().drop_all_sessions(), 2);
    assert!(eventually(Duration::from_secs(5), || a.is_closed() && b.is_closed()).await);
    assert!(no_upstream_sessions(&app).await, "upstream sessions leaked");
    let stats = local.stats();
    assert!(
        eventually(Duration::from_secs(5), || stats
            .snapshot()
            .sessions_dropped_by_faults
            == 2)
        .await
    );
    assert!(eventually(Duration::from_secs(5), || stats.snapshot().current_sessions == 0).await);
    connect(&local, "admin")
        .await
        .expect("new sessions are accepted")
        .simple_query("SELECT 1")
        .await
        .expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn drop_sessions_closes_a_fraction() {
    let local = start(DsqlLocal::builder()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(&local, "admin").await.expect("connects"));
    }
    assert_eq!(local.faults().drop_sessions(0.5), 2);
    assert!(
        eventually(Duration::from_secs(5), || clients
            .iter()
            .filter(|c| c.is_closed())
            .count()
            == 2)
        .await,
        "two sessions should be closed"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(clients.iter().filter(|c| c.is_closed()).count(), 2);
    for client in clients.iter().filter(|c| !c.is_closed()) {
        client.simple_query("SELECT 1").await.expect("survivors work");
    }
    assert_eq!(local.faults().drop_sessions(0.0), 0);
    local.shutdown().await;
}

#[tokio::test]
async fn authentication_can_be_refused_for_a_window() {
    let local = start(DsqlLocal::builder()).await;
    let window = Duration::from_secs(1);
    let started = Instant::now();
    local.faults().refuse_auth_for(window);
    let error = match connect(&local, "admin").await {
        Ok(_) => panic!("authentication was not refused"),
        Err(e) => e,
    };
    let db = db_error(&error);
    assert_eq!(db.code().code(), catalog::ACCESS_DENIED.code);
    assert_eq!(db.message(), catalog::ACCESS_DENIED.message);
    assert!(
        db.hint().is_some_and(|h| h.starts_with("User: arn:aws:iam::")
            && h.contains("is not authorized to perform: dsql:DbConnectAdmin")),
        "{db:?}"
    );
    assert_eq!(
        local.stats().snapshot().refused.get(RefusalReason::FaultInjected),
        1
    );

    let remaining = window.saturating_sub(started.elapsed());
    tokio::time::sleep(remaining + Duration::from_millis(50)).await;
    connect(&local, "admin").await.expect("accepted after the window");
    local.shutdown().await;
}

#[tokio::test]
async fn conflicts_can_be_injected_at_commit() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("inject").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    let faults = local.faults();
    faults.inject_commit_conflicts(1.0);

    // Simple protocol: COMMIT becomes ROLLBACK upstream, the client gets OC000.
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect("insert");
    let error = tx.commit().await.expect_err("commit fails");
    assert_injected_conflict(&error);
    assert_eq!(count(&setup, &table).await, 0, "nothing was committed");
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("session usable")
        .get(0);
    assert_eq!(one, 1);

    // Extended protocol: the same.
    client
        .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (2)"))
        .await
        .expect("insert");
    let error = client.query("COMMIT", &[]).await.expect_err("commit fails");
    assert_injected_conflict(&error);
    assert_eq!(count(&setup, &table).await, 0, "nothing was committed");
    client.batch_execute("SELECT 1").await.expect("session usable");

    // A COMMIT outside a transaction is not a conflict.
    client
        .batch_execute("COMMIT")
        .await
        .expect("no transaction, no conflict");
    assert_eq!(local.stats().snapshot().conflicts_injected, 2);

    // With probability one half, some commit and some do not.
    faults.inject_commit_conflicts(0.5);
    let mut committed = 0;
    for id in 10..50 {
        client
            .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES ({id})"))
            .await
            .expect("insert");
        match client.batch_execute("COMMIT").await {
            Ok(()) => committed += 1,
            Err(e) => assert_injected_conflict(&e),
        }
    }
    assert!((5..=35).contains(&committed), "{committed} of 40 committed");
    assert_eq!(count(&setup, &table).await, committed);

    faults.inject_commit_conflicts(0.0);
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES (100)"), &[])
        .await
        .expect("insert");
    tx.commit().await.expect("commits again");
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn latency_can_be_added() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let faults = local.faults();

    faults.set_latency(Latency::PerQuery(Duration::from_millis(300)));
    let started = Instant::now();
    client.simple_query("SELECT 1").await.expect("query");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // Parse, Describe, Sync, then Bind, Execute, Sync: six messages.
    faults.set_latency(Latency::PerMessage(Duration::from_millis(100)));
    let started = Instant::now();
    client
        .query_one("SELECT $1::int", &[&7_i32])
        .await
        .expect("query");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );

    faults.clear_latency();
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn accepting_can_be_paused() {
    let local = start(DsqlLocal::builder()).await;
    let faults = local.faults();
    faults.pause_accepting();
    let accepted = local.stats().snapshot().accepted;
    let config = local.client_config("admin").expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let pg = pg_config(&config, &token);
    let tls = tls::verify_full(local.ca_pem());
    let pending = tokio::spawn(async move { connect_with(&pg, tls).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "connected while paused");
    assert_eq!(local.stats().snapshot().accepted, accepted);

    faults.resume_accepting();
    let client = pending.await.expect("task").expect("connects once resumed");
    client.simple_query("SELECT 1").await.expect("query");
    local.shutdown().await;
}

#[tokio::test]
async fn sessions_can_be_dropped_at_commit_before_forwarding() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("drop_before").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    local.faults().drop_at_next_commit(CommitDrop::BeforeForwarding);
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect("insert");
    let error = tx.commit().await.expect_err("the session is dropped");
    assert!(
        error.as_db_error().is_none(),
        "a closed connection, not a server error: {error:?}"
    );
    assert!(client.is_closed());
    assert_eq!(
        count(&setup, &table).await,
        0,
        "the COMMIT never reached the upstream"
    );
    assert_eq!(local.stats().snapshot().sessions_dropped_by_faults, 1);

    // The knob fires once.
    let mut client = connect(&local, "admin").await.expect("connects");
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
        .await
        .expect("insert");
    tx.commit().await.expect("commits");
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn sessions_can_be_dropped_at_commit_after_forwarding() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("drop_after").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    local.faults().drop_at_next_commit(CommitDrop::AfterForwarding);
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .await
        .expect("insert");
    let error = tx.commit().await.expect_err("the session is dropped");
    assert!(
        error.as_db_error().is_none(),
        "a closed connection, not a server error: {error:?}"
    );
    assert!(client.is_closed());
    assert_eq!(count(&setup, &table).await, 1, "the COMMIT happened upstream");
    assert_eq!(local.stats().snapshot().sessions_dropped_by_faults, 1);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn extended_protocol_commits_can_be_dropped() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("drop_extended").await;
    for (when, expected) in [
        (CommitDrop::BeforeForwarding, 0),
        (CommitDrop::AfterForwarding, 1),
    ] {
        setup
            .batch_execute(&format!("TRUNCATE {table}"))
            .await
            .expect("truncate");
        let client = connect(&local, "admin").await.expect("connects");
        client
            .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
            .await
            .expect("insert");
        local.faults().drop_at_next_commit(when);
        // Parse, Describe, Sync; then Bind, Execute, Sync.
        let error = client
            .query("COMMIT", &[])
            .await
            .expect_err("the session is dropped");
        assert!(error.as_db_error().is_none(), "{when:?}: {error:?}");
        assert!(eventually(Duration::from_secs(5), || client.is_closed()).await);
        assert_eq!(count(&setup, &table).await, expected, "{when:?}");
    }
    assert_eq!(local.stats().snapshot().sessions_dropped_by_faults, 2);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

/// Bounds every step of the statement-fault tests: a relay that loses track
/// of a reply hangs instead of failing.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

fn assert_failed_statement(error: &tokio_postgres::Error) {
    assert_injected_conflict(error);
}

fn assert_aborted(error: &tokio_postgres::Error) {
    assert_eq!(db_error(error).code().code(), "25P02", "{error:?}");
}

fn assert_connection_lost(client: &Client, error: &tokio_postgres::Error) {
    assert!(
        error.as_db_error().is_none(),
        "a closed connection, not a server error: {error:?}"
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn fail_statement_in_autocommit_applies_nothing() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("fail_auto").await;
    let client = connect(&local, "admin").await.expect("connects");
    let faults = local.faults();
    let insert = |id: i32| format!("INSERT INTO {table} VALUES ({id})");

    // Extended protocol: prepare (not counted), then Bind/Execute/Sync.
    faults.fail_statement(1);
    let error = within("execute", client.execute(&insert(1), &[]))
        .await
        .expect_err("the first statement fails");
    assert_failed_statement(&error);
    assert_eq!(count(&setup, &table).await, 0, "nothing was applied");
    within("execute", client.execute(&insert(1), &[]))
        .await
        .expect("the knob fires once");
    assert_eq!(count(&setup, &table).await, 1);

    // Simple protocol, the second statement from now.
    faults.fail_statement(2);
    within("batch", client.batch_execute(&insert(2)))
        .await
        .expect("first statement");
    let error = within("batch", client.batch_execute(&insert(3)))
        .await
        .expect_err("the second statement fails");
    assert_failed_statement(&error);
    assert_eq!(
        count(&setup, &table).await,
        2,
        "the second insert was not applied"
    );
    let one: i32 = within("query", client.query_one("SELECT 1", &[]))
        .await
        .expect("session usable")
        .get(0);
    assert_eq!(one, 1);

    // Counted across sessions.
    faults.fail_statement(2);
    let other = connect(&local, "admin").await.expect("connects");
    within("batch", client.batch_execute("SELECT 1"))
        .await
        .expect("first statement");
    let error = within("batch", other.batch_execute(&insert(4)))
        .await
        .expect_err("the second statement, in another session, fails");
    assert_failed_statement(&error);
    assert_eq!(count(&setup, &table).await, 2);

    let stats = local.stats().snapshot();
    assert_eq!(stats.statements_failed, 3);
    assert_eq!(stats.conflicts_injected, 0);
    assert_eq!(
        stats.conflicts_rewritten, 0,
        "the failure is not a rewritten conflict"
    );
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn fail_statement_aborts_an_explicit_transaction() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("fail_txn").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    let faults = local.faults();
    let prepared = client
        .prepare(&format!("INSERT INTO {table} VALUES ($1)"))
        .await
        .expect("prepare");

    // Extended protocol: BEGIN (1, simple), INSERT (2) fails, the next
    // statement gets 25P02, and COMMIT rolls back.
    faults.fail_statement(2);
    let tx = within("begin", client.transaction()).await.expect("begin");
    let error = within("insert", tx.execute(&prepared, &[&1_i32]))
        .await
        .expect_err("statement 2 fails");
    assert_failed_statement(&error);
    // The transaction is aborted upstream: Bind fails with 25P02 before the
    // Execute runs. With a failure armed for that Execute, the batch still
    // ends (the relay's query is skipped, the Sync answers).
    faults.fail_statement(1);
    let error = within("insert", tx.execute(&prepared, &[&2_i32]))
        .await
        .expect_err("aborted");
    assert_aborted(&error);
    within("commit", tx.commit())
        .await
        .expect("COMMIT of an aborted transaction rolls back");
    assert_eq!(count(&setup, &table).await, 0, "nothing was committed");

    // Simple protocol: the same.
    faults.fail_statement(2);
    within("begin", client.batch_execute("BEGIN"))
        .await
        .expect("begin");
    let error = within(
        "insert",
        client.batch_execute(&format!("INSERT INTO {table} VALUES (3)")),
    )
    .await
    .expect_err("statement 2 fails");
    assert_failed_statement(&error);
    let error = within(
        "insert",
        client.batch_execute(&format!("INSERT INTO {table} VALUES (4)")),
    )
    .await
    .expect_err("aborted");
    assert_aborted(&error);
    within("commit", client.batch_execute("COMMIT"))
        .await
        .expect("rolls back");
    assert_eq!(count(&setup, &table).await, 0, "nothing was committed");

    // The session is back in autocommit.
    within("insert", client.execute(&prepared, &[&5_i32]))
        .await
        .expect("insert");
    assert_eq!(count(&setup, &table).await, 1);
    assert_eq!(local.stats().snapshot().statements_failed, 2);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn fail_statement_at_commit_rolls_back() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("fail_commit").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    let faults = local.faults();

    // BEGIN (1), INSERT (2), COMMIT (3): ROLLBACK upstream, then 40001.
    faults.fail_statement(3);
    let tx = within("begin", client.transaction()).await.expect("begin");
    within(
        "insert",
        tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[]),
    )
    .await
    .expect("insert");
    let error = within("commit", tx.commit()).await.expect_err("COMMIT fails");
    assert_failed_statement(&error);
    assert_eq!(count(&setup, &table).await, 0, "nothing was committed");

    // The transaction is over: the next statement autocommits.
    within(
        "insert",
        client.batch_execute(&format!("INSERT INTO {table} VALUES (2)")),
    )
    .await
    .expect("autocommit");
    assert_eq!(count(&setup, &table).await, 1);

    // Extended-protocol COMMIT: "BEGIN; INSERT" (1), COMMIT (2).
    faults.fail_statement(2);
    within(
        "begin",
        client.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (3)")),
    )
    .await
    .expect("insert");
    let error = within("commit", client.query("COMMIT", &[]))
        .await
        .expect_err("COMMIT fails");
    assert_failed_statement(&error);
    assert_eq!(count(&setup, &table).await, 1, "nothing was committed");
    within(
        "insert",
        client.batch_execute(&format!("INSERT INTO {table} VALUES (4)")),
    )
    .await
    .expect("autocommit");
    assert_eq!(count(&setup, &table).await, 2);

    let stats = local.stats().snapshot();
    assert_eq!(stats.statements_failed, 2);
    assert_eq!(stats.conflicts_injected, 0);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn sessions_can_be_dropped_at_a_statement() {
    let local = start(DsqlLocal::builder()).await;
    let (setup, table) = create_table("drop_statement").await;
    let faults = local.faults();
    let mut expected_rows = 0;
    for (when, applied) in [
        (StatementDrop::BeforeForwarding, false),
        (StatementDrop::AfterCompletion, true),
    ] {
        for extended in [true, false] {
            let client = connect(&local, "admin").await.expect("connects");
            // The second statement from now, in autocommit.
            faults.drop_at_statement(2, when);
            within("select", client.batch_execute("SELECT 1"))
                .await
                .expect("first statement");
            let insert = format!("INSERT INTO {table} VALUES ({})", expected_rows + 1);
            let error = if extended {
                within("execute", client.execute(&insert, &[]))
                    .await
                    .expect_err("the session is dropped")
            } else {
                within("batch", client.batch_execute(&insert))
                    .await
                    .expect_err("the session is dropped")
            };
            assert!(eventually(Duration::from_secs(5), || client.is_closed()).await);
            assert_connection_lost(&client, &error);
            if applied {
                expected_rows += 1;
            }
            assert_eq!(
                count(&setup, &table).await,
                expected_rows,
                "{when:?}, extended: {extended}"
            );
        }
    }
    // The knob fires once.
    let client = connect(&local, "admin").await.expect("connects");
    within(
        "insert",
        client.batch_execute(&format!("INSERT INTO {table} VALUES (100)")),
    )
    .await
    .expect("insert");
    let stats = local.stats();
    assert!(
        eventually(Duration::from_secs(5), || {
            let s = stats.snapshot();
            s.statement_drops == 4 && s.sessions_dropped_by_faults == 4
        })
        .await,
        "{:?}",
        stats.snapshot()
    );
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn the_next_authentications_can_be_refused() {
    let local = start(DsqlLocal::builder()).await;
    local.faults().refuse_next_auths(2);
    for _ in 0..2 {
        let error = match connect(&local, "admin").await {
            Ok(_) => panic!("authentication was not refused"),
            Err(e) => e,
        };
        let db = db_error(&error);
        assert_eq!(db.code().code(), catalog::ACCESS_DENIED.code);
        assert_eq!(db.message(), catalog::ACCESS_DENIED.message);
        assert!(
            db.hint().is_some_and(|h| h.starts_with("User: arn:aws:iam::")
                && h.contains("is not authorized to perform: dsql:DbConnectAdmin")),
            "{db:?}"
        );
    }
    connect(&local, "admin")
        .await
        .expect("the third authentication succeeds");
    let stats = local.stats().snapshot();
    assert_eq!(stats.auths_refused_by_count, 2);
    assert_eq!(stats.refused.get(RefusalReason::FaultInjected), 2);
    local.shutdown().await;
}

#[tokio::test]
async fn the_next_connects_can_be_throttled() {
    let local = start(DsqlLocal::builder()).await;
    local.faults().throttle_next_connects(2);
    for _ in 0..2 {
        let error = match connect(&local, "admin").await {
            Ok(_) => panic!("the connection was not throttled"),
            Err(e) => e,
        };
        let db = db_error(&error);
        assert_eq!(db.code().code(), catalog::RATE_EXCEEDED.code);
        assert_eq!(db.message(), catalog::RATE_EXCEEDED.message);
    }
    connect(&local, "admin")
        .await
        .expect("the third connection is accepted");
    let stats = local.stats().snapshot();
    assert_eq!(stats.connects_throttled_by_count, 2);
    assert_eq!(stats.refused.get(RefusalReason::RateExceeded), 2);
    local.shutdown().await;
}

#[tokio::test]
async fn clear_turns_the_count_based_knobs_off() {
    let local = start(DsqlLocal::builder()).await;
    let faults = local.faults();
    faults.fail_statement(1);
    faults.drop_at_statement(1, StatementDrop::BeforeForwarding);
    faults.refuse_next_auths(1);
    faults.throttle_next_connects(1);
    faults.clear();
    let client = connect(&local, "admin").await.expect("connects");
    within("select", client.batch_execute("SELECT 1"))
        .await
        .expect("statement runs");
    let stats = local.stats().snapshot();
    assert_eq!(
        (
            stats.statements_failed,
            stats.statement_drops,
            stats.auths_refused_by_count,
            stats.connects_throttled_by_count
        ),
        (0, 0, 0, 0)
    );
    local.shutdown().await;
}
