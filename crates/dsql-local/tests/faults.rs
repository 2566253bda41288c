//! Every fault knob, against the real PostgreSQL.

mod common;

use std::time::Duration;

use common::{connect, db_error, direct, eventually, start, unique};
use dsql_local::{CommitDrop, DsqlLocal, Latency, RefusalReason, catalog};
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
    let a = common::connect_app(&local, "admin", &app).await;
    let b = common::connect_app(&local, "reader", &app).await;
    assert_eq!(local.faults().drop_all_sessions(), 2);
    assert!(eventually(Duration::from_secs(5), || a.is_closed() && b.is_closed()).await);
    assert!(
        common::no_upstream_sessions(&app).await,
        "upstream sessions leaked"
    );
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
    let token = common::sign(&config, local.credentials(), None).await;
    let pg = common::pg_config(&config, &token);
    let tls = common::Tls::verify_full(local.ca_pem());
    let pending = tokio::spawn(async move { common::connect_with(&pg, tls).await });
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
