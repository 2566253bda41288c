//! Relaying sessions to the real PostgreSQL: queries, conflicts, cancel,
//! stats and shutdown.

use std::time::Duration;

use dsql_local::{DsqlLocal, catalog};
use dsql_testkit::local::{connect, connect_app, connect_with, db_error, pg_config, sign, start};
use dsql_testkit::{direct, eventually, no_upstream_sessions, tls, unique, upstream_sessions};

/// Waits until an upstream session named `app` matches `condition` (a
/// predicate on `pg_stat_activity`); `never` says what did not happen.
async fn wait_for_session(app: &str, condition: &str, never: &str) {
    let check = direct().await;
    let query = format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let matching: i64 = check
            .query_one(&query, &[&app])
            .await
            .expect("pg_stat_activity")
            .get(0);
        if matching > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{app} {never}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the upstream session named `app` waits for a lock.
async fn wait_for_lock_wait(app: &str) {
    wait_for_session(app, "wait_event_type = 'Lock'", "never waited for the lock").await;
}

fn assert_conflict(error: &tokio_postgres::Error) {
    let db = db_error(error);
    assert_eq!(db.code().code(), "40001", "{db:?}");
    assert_eq!(db.message(), catalog::CHANGE_CONFLICT.message);
    assert!(db.message().contains("OC000"));
    assert_eq!(db.severity(), "ERROR");
}

#[tokio::test]
async fn simple_and_extended_queries_work() {
    let local = start(DsqlLocal::builder()).await;
    let table = unique("queries");
    let mut client = connect(&local, "admin").await.expect("connects");
    client
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, name text)"))
        .await
        .expect("create");
    let insert = client
        .prepare(&format!("INSERT INTO {table} VALUES ($1, $2)"))
        .await
        .expect("prepare");
    for id in 0..10_i32 {
        client
            .execute(&insert, &[&id, &format!("row {id}")])
            .await
            .expect("insert");
    }
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        &format!("UPDATE {table} SET name = 'changed' WHERE id = $1"),
        &[&3_i32],
    )
    .await
    .expect("update");
    tx.commit().await.expect("commit");

    let rows = client
        .query(&format!("SELECT id, name FROM {table} ORDER BY id"), &[])
        .await
        .expect("select");
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[3].get::<_, String>(1), "changed");

    // Large results and large messages cross many reads.
    let count: i64 = client
        .query_one("SELECT count(*) FROM (SELECT generate_series(1, 200000)) s", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 200_000);
    let rows = client
        .query("SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g", &[])
        .await
        .expect("many rows");
    assert_eq!(rows.len(), 20_000);
    let big = "y".repeat(3_000_000);
    let echoed: String = client
        .query_one("SELECT $1::text", &[&big])
        .await
        .expect("echo")
        .get(0);
    assert_eq!(echoed.len(), big.len());

    // Errors other than conflicts pass through unchanged.
    let error = client
        .batch_execute("SELECT * FROM no_such_table_anywhere")
        .await
        .expect_err("fails");
    assert_eq!(db_error(&error).code().code(), "42P01");
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");

    let stats = local.stats().snapshot();
    assert!(stats.bytes_from_clients > 3_000_000, "{stats:?}");
    assert!(stats.bytes_to_clients > 3_000_000, "{stats:?}");
    assert_eq!(stats.current_sessions, 1);
    drop(client);
    assert!(
        eventually(Duration::from_secs(5), || local
            .stats()
            .snapshot()
            .current_sessions
            == 0)
        .await,
        "the session was not closed"
    );
    local.shutdown().await;
}

#[tokio::test]
async fn concurrent_updates_of_a_row_conflict_with_oc000() {
    let local = start(DsqlLocal::builder()).await;
    let table = unique("occ");
    let setup = direct().await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v int); INSERT INTO {table} VALUES (1, 0)"
        ))
        .await
        .expect("setup");
    let app = format!("{table}_t2");
    let mut c1 = connect(&local, "admin").await.expect("connects");
    let c2 = connect_app(&local, "admin", &app).await;

    let t1 = c1.transaction().await.expect("T1 begins");
    t1.execute(&format!("UPDATE {table} SET v = v + 1 WHERE id = 1"), &[])
        .await
        .expect("T1 updates");

    // T2's UPDATE runs concurrently: it waits for T1's row lock.
    c2.batch_execute("BEGIN").await.expect("T2 begins");
    let update = format!("UPDATE {table} SET v = v + 10 WHERE id = 1");
    let t2 = tokio::spawn(async move {
        let result = c2.batch_execute(&update).await;
        (c2, result)
    });
    wait_for_lock_wait(&app).await;
    t1.commit().await.expect("T1 commits");

    let (c2, result) = t2.await.expect("T2 task");
    let error = result.expect_err("T2 conflicts");
    assert_conflict(&error);
    c2.batch_execute("ROLLBACK").await.expect("T2 rolls back");

    let v: i32 = setup
        .query_one(&format!("SELECT v FROM {table} WHERE id = 1"), &[])
        .await
        .expect("select")
        .get(0);
    assert_eq!(v, 1, "only T1 committed");
    assert_eq!(local.stats().snapshot().conflicts_rewritten, 1);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn deadlocks_are_rewritten_to_oc000() {
    let local = start(DsqlLocal::builder()).await;
    let table = unique("deadlock");
    let setup = direct().await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, v int); INSERT INTO {table} VALUES (1, 0), (2, 0)"
        ))
        .await
        .expect("setup");
    let app = format!("{table}_t1");
    let c1 = connect_app(&local, "admin", &app).await;
    let c2 = connect(&local, "admin").await.expect("connects");
    c1.batch_execute(&format!("BEGIN; UPDATE {table} SET v = 1 WHERE id = 1"))
        .await
        .expect("T1");
    c2.batch_execute(&format!("BEGIN; UPDATE {table} SET v = 2 WHERE id = 2"))
        .await
        .expect("T2");
    let update = format!("UPDATE {table} SET v = 1 WHERE id = 2");
    let t1 = tokio::spawn(async move {
        let result = c1.batch_execute(&update).await;
        (c1, result)
    });
    wait_for_lock_wait(&app).await;
    let second = c2
        .batch_execute(&format!("UPDATE {table} SET v = 2 WHERE id = 1"))
        .await;
    let (c1, first) = t1.await.expect("T1 task");
    // PostgreSQL picks one victim (40P01); the other may then fail to
    // serialize (40001). Both come back as OC000.
    let errors: Vec<_> = [first, second].into_iter().filter_map(Result::err).collect();
    assert!(!errors.is_empty(), "no deadlock was reported");
    for error in &errors {
        assert_conflict(error);
    }
    let _ = c1.batch_execute("ROLLBACK").await;
    let _ = c2.batch_execute("ROLLBACK").await;
    assert!(local.stats().snapshot().conflicts_rewritten >= 1);
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    local.shutdown().await;
}

#[tokio::test]
async fn cancel_requests_are_relayed() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let cancel = client.cancel_token();
    let tls = tls::verify_full(local.ca_pem());
    let started = tokio::time::Instant::now();
    let sleeper = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(20)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel_query(tls).await.expect("cancel sent");
    let error = sleeper.await.expect("task").expect_err("canceled");
    assert_eq!(db_error(&error).code().code(), "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(local.stats().snapshot().cancels_relayed, 1);
    local.shutdown().await;
}

/// In the never-wait mode a `57014` "user request" with no cancel behind it
/// is PostgreSQL's lock-timeout race, rewritten to DSQL's conflict; a
/// client's own cancel still comes back as `57014`.
#[tokio::test]
async fn cancel_requests_are_relayed_in_never_wait_mode() {
    let local = start(DsqlLocal::builder().never_wait(Duration::from_millis(1))).await;
    let client = connect(&local, "admin").await.expect("connects");
    let cancel = client.cancel_token();
    let tls = tls::verify_full(local.ca_pem());
    let started = tokio::time::Instant::now();
    let sleeper = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(5)").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel_query(tls).await.expect("cancel sent");
    let error = sleeper.await.expect("task").expect_err("canceled");
    let db = db_error(&error);
    assert_eq!(db.code().code(), "57014", "{db:?}");
    assert_eq!(db.message(), "canceling statement due to user request");
    assert!(started.elapsed() < Duration::from_secs(4));
    let stats = local.stats().snapshot();
    assert_eq!(stats.cancels_relayed, 1);
    assert_eq!(stats.conflicts_rewritten, 0);
    local.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_and_stops_accepting() {
    let local = start(DsqlLocal::builder()).await;
    let app = unique("shutdown");
    let client = connect_app(&local, "admin", &app).await;
    client.simple_query("BEGIN").await.expect("an open transaction");
    let check = direct().await;
    assert_eq!(upstream_sessions(&check, &app).await, 1);
    let addr = local.addr();
    let ca_path = local.ca_path().to_owned();
    assert!(ca_path.exists());
    local.shutdown().await;
    assert!(client.simple_query("SELECT 1").await.is_err());
    assert!(client.is_closed());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(!ca_path.exists(), "the temporary CA is removed");
    assert!(no_upstream_sessions(&app).await, "the upstream session leaked");
}

#[tokio::test]
async fn upstream_errors_reach_the_client() {
    let local = start(DsqlLocal::builder()).await;
    let config = local
        .client_config("admin")
        .expect("config")
        .to_builder()
        .database("no_such_database_here")
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let error = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect_err("no such database");
    assert_eq!(db_error(&error).code().code(), "3D000");

    local.shutdown().await;

    let dead = DsqlLocal::builder()
        .upstream("postgres://postgres@127.0.0.1:1/postgres")
        .start()
        .await
        .expect("starts");
    let error = match connect(&dead, "admin").await {
        Ok(_) => panic!("connected without an upstream"),
        Err(e) => e,
    };
    let db = db_error(&error);
    assert_eq!(db.code().code(), catalog::UPSTREAM_UNAVAILABLE.code);
    assert_eq!(db.message(), catalog::UPSTREAM_UNAVAILABLE.message);
    assert_eq!(
        dead.stats()
            .snapshot()
            .refused
            .get(dsql_local::RefusalReason::Upstream),
        1
    );
    dead.shutdown().await;
}

#[tokio::test]
async fn roles_and_databases_are_mapped() {
    let role = unique("role");
    let setup = direct().await;
    setup
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .expect("create role");
    let local = start(
        DsqlLocal::builder()
            .map_role("analyst", role.as_str())
            .upstream_database("postgres"),
    )
    .await;
    // The client asks for a database that does not exist upstream.
    let config = local
        .client_config("analyst")
        .expect("config")
        .to_builder()
        .database("clusterdb")
        .build()
        .expect("config");
    let token = sign(&config, local.credentials(), None).await;
    let client = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem()))
        .await
        .expect("connects");
    let row = client
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .await
        .expect("query");
    assert_eq!(row.get::<_, String>(0), role);
    assert_eq!(row.get::<_, String>(1), "postgres");
    // Other roles run as the unprivileged upstream role of their own name.
    let admin = connect(&local, "admin").await.expect("connects");
    let user: String = admin
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(user, "admin");
    drop(client);
    local.shutdown().await;
    setup
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .expect("drop role");
}

/// An upstream named by a socket directory (`?host=/dir`, as libpq names
/// it) is reached over the Unix-domain socket, for sessions and cancels.
#[tokio::test]
async fn a_unix_socket_upstream_serves_sessions_and_cancels() {
    let directories: String = direct()
        .await
        .query_one("SHOW unix_socket_directories", &[])
        .await
        .expect("unix_socket_directories")
        .get(0);
    let dir = directories
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(dir.starts_with('/'), "no socket directory: {directories:?}");
    let local = DsqlLocal::builder()
        .upstream(format!("postgres://postgres@localhost:5432/postgres?host={dir}"))
        .start()
        .await
        .expect("dsql-local starts");
    let app = unique("unix_upstream");
    let client = connect_app(&local, "admin", &app).await;
    let one: i32 = client.query_one("SELECT 1", &[]).await.expect("select").get(0);
    assert_eq!(one, 1);
    // A Unix-domain socket's session has no client address.
    let check = direct().await;
    let over_tcp: i64 = check
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND client_addr IS NOT NULL",
            &[&app],
        )
        .await
        .expect("pg_stat_activity")
        .get(0);
    let sessions = upstream_sessions(&check, &app).await;
    assert_eq!((sessions, over_tcp), (1, 0));

    let cancel = client.cancel_token();
    let sleeper = tokio::spawn(async move { client.batch_execute("SELECT pg_sleep(20)").await });
    // A cancel that arrives before the query would be lost.
    wait_for_session(
        &app,
        "query LIKE 'SELECT pg_sleep%' AND state = 'active'",
        "never started its query",
    )
    .await;
    cancel
        .cancel_query(tls::verify_full(local.ca_pem()))
        .await
        .expect("cancel sent");
    let error = sleeper.await.expect("task").expect_err("canceled");
    assert_eq!(db_error(&error).code().code(), "57014");
    assert_eq!(local.stats().snapshot().cancels_relayed, 1);
    local.shutdown().await;
}
