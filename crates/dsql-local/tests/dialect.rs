//! DSQL's dialect in the relay: what happens around a refusal, checked
//! against what PostgreSQL really committed. (What is refused, and with
//! which words, is the conformance suite's: `tests/conformance.rs`.)

use dsql_local::{Dialect, DsqlLocal};
use dsql_testkit::local::{connect, db_error, start};
use dsql_testkit::{direct, drop_table, unique};
use tokio_postgres::{Client, SimpleQueryMessage};

async fn rows_in(table: &str) -> i64 {
    direct()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// Column `n` of the one row of `table`, as PostgreSQL committed it.
async fn n_of(table: &str) -> i32 {
    direct()
        .await
        .query_one(&format!("SELECT n FROM {table}"), &[])
        .await
        .expect("n")
        .get(0)
}

async fn table_with_one_row(client: &Client) -> String {
    let table = unique("dialect");
    client
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
        .await
        .expect("create");
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (1, 0)"))
        .await
        .expect("insert");
    table
}

fn code(result: Result<impl Sized, tokio_postgres::Error>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{} {}", db_error(&e).code().code(), db_error(&e).message()),
    }
}

/// The last command tag of a simple query (tokio-postgres keeps only the
/// row count, so a `COMMIT` answered `ROLLBACK` shows as 0 rows either way:
/// the tag itself is read from the raw reply in `conformance.rs`).
fn completed(messages: &[SimpleQueryMessage]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .count()
}

#[tokio::test]
async fn a_refusal_aborts_the_explicit_transaction_upstream_too() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&client).await;

    client.batch_execute("BEGIN").await.expect("begin");
    client
        .batch_execute(&format!("UPDATE {table} SET n = 1"))
        .await
        .expect("update");
    let refused = code(client.batch_execute(&format!("TRUNCATE {table}")).await);
    let after = code(client.batch_execute("SELECT 1").await);
    let commit = client.simple_query("COMMIT").await.expect("commit answers");
    let again = code(client.batch_execute("SELECT 1").await);

    assert_eq!(refused, "0A000 unsupported statement: Truncate");
    assert_eq!(
        after,
        "25P02 current transaction is aborted, commands ignored until end of transaction block"
    );
    assert_eq!(completed(&commit), 1);
    assert_eq!(again, "ok", "ROLLBACK (or COMMIT) gives a usable session");
    let n = n_of(&table).await;
    assert_eq!(n, 0, "the UPDATE before the refusal was not committed");
    drop_table(&table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn a_refusal_in_autocommit_leaves_the_session_alone() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&client).await;
    assert_eq!(
        code(client.batch_execute(&format!("TRUNCATE {table}")).await),
        "0A000 unsupported statement: Truncate"
    );
    client
        .batch_execute(&format!("INSERT INTO {table} VALUES (2, 0)"))
        .await
        .expect("the next statement runs");
    assert_eq!(rows_in(&table).await, 2);
    drop_table(&table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn a_multi_statement_query_is_one_transaction_for_the_rules() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = unique("dialect");
    // DDL and DML in one implicit transaction: refused, nothing created.
    let refused = code(
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} VALUES (1)"
            ))
            .await,
    );
    assert_eq!(
        refused,
        "0A000 ddl and dml are not supported in the same transaction"
    );
    let exists: bool = direct()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .expect("regclass")
        .get(0);
    assert!(!exists, "the CREATE TABLE before the refusal was rolled back");
    // One DDL per transaction, each statement its own: fine.
    client
        .batch_execute(&format!(
            "BEGIN; CREATE TABLE {table} (id int PRIMARY KEY); COMMIT; \
             BEGIN; INSERT INTO {table} VALUES (1); INSERT INTO {table} VALUES (2); COMMIT"
        ))
        .await
        .expect("one DDL, then DML, in two transactions");
    assert_eq!(rows_in(&table).await, 2);
    drop_table(&table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn the_extended_protocol_refuses_at_parse_and_at_execute() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&client).await;

    // Refused at Parse: never prepared.
    let prepared = code(client.prepare(&format!("SELECT * FROM {table} FOR SHARE")).await);
    assert_eq!(
        prepared,
        "0A000 locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported"
    );
    // The session goes on.
    assert_eq!(code(client.query("SELECT 1", &[]).await), "ok");

    // Refused at Execute by the transaction rules: DDL after DML.
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .execute(&format!("UPDATE {table} SET n = $1"), &[&5_i32])
        .await
        .expect("update");
    let ddl = code(
        client
            .execute(&format!("CREATE VIEW {table}_v AS SELECT 1"), &[])
            .await,
    );
    assert_eq!(ddl, "0A000 ddl and dml are not supported in the same transaction");
    let after = code(client.query("SELECT 1", &[]).await);
    assert!(after.starts_with("25P02"), "{after}");
    client.batch_execute("COMMIT").await.expect("commit answers");
    let n = n_of(&table).await;
    assert_eq!(n, 0, "the transaction was rolled back");
    drop_table(&table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn the_postgres_dialect_passes_everything_through() {
    let local = start(DsqlLocal::builder().dialect(Dialect::Postgres)).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&client).await;
    client
        .batch_execute(&format!(
            "BEGIN; SAVEPOINT a; TRUNCATE {table}; ROLLBACK TO a; CREATE INDEX ON {table} (n); COMMIT"
        ))
        .await
        .expect("PostgreSQL's SQL");
    assert_eq!(rows_in(&table).await, 1);
    drop_table(&table).await;
    local.shutdown().await;
}

/// DSQL's 3,000-row cap: the statement that crosses it fails and none of
/// its rows survive; in an explicit transaction nothing survives.
#[tokio::test]
async fn the_row_cap_discards_the_statement_that_crosses_it() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = unique("row_cap");
    client
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
        .await
        .expect("create");
    let insert = |from: i32, to: i32| format!("INSERT INTO {table} SELECT generate_series({from}, {to})");

    // Autocommit: 3,001 rows refused, exactly 3,000 accepted.
    let over = code(client.batch_execute(&insert(1, 3001)).await);
    assert_eq!(over, "54000 transaction row limit exceeded");
    assert_eq!(
        rows_in(&table).await,
        0,
        "no row of the refused statement survives"
    );
    client
        .batch_execute(&insert(1, 3000))
        .await
        .expect("exactly 3,000");
    assert_eq!(rows_in(&table).await, 3000);
    // Extended protocol, autocommit: one more UPDATE of 3,000 rows is fine
    // (its own transaction).
    client
        .execute(&format!("UPDATE {table} SET id = id + 10000"), &[])
        .await
        .expect("3,000 updates in one transaction");

    // Explicit transaction: the cap counts across statements.
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .batch_execute(&format!("DELETE FROM {table} WHERE id <= 12000"))
        .await
        .expect("2,000 deletes");
    let crossing = code(client.execute(&insert(1, 1001), &[]).await);
    assert_eq!(crossing, "54000 transaction row limit exceeded");
    let after = code(client.batch_execute("SELECT 1").await);
    assert!(after.starts_with("25P02"), "{after}");
    client.batch_execute("COMMIT").await.expect("commit answers");
    assert_eq!(
        rows_in(&table).await,
        3000,
        "the whole transaction was rolled back"
    );

    // Under the postgres dialect the same session settings are absent: no cap.
    let plain = start(DsqlLocal::builder().dialect(Dialect::Postgres)).await;
    let unlimited = connect(&plain, "admin").await.expect("connects");
    unlimited
        .batch_execute(&format!("DELETE FROM {table}"))
        .await
        .expect("no cap under the postgres dialect");
    drop_table(&table).await;
    plain.shutdown().await;
    local.shutdown().await;
}

/// The 10 MiB cap on what one transaction writes is checked at `COMMIT`
/// (in autocommit, at the statement): each statement of an explicit
/// transaction is accepted, its `COMMIT` fails with `54000`, and nothing of
/// it survives.
#[tokio::test]
async fn the_size_cap_fails_the_commit_and_keeps_nothing() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = unique("size_cap");
    client
        .batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, body text)"))
        .await
        .expect("create");
    const MIB: usize = 1024 * 1024;
    let insert = |id: i32, mib: usize| format!("INSERT INTO {table} SELECT {id}, repeat('x', {})", mib * MIB);

    client.batch_execute("BEGIN").await.expect("begin");
    for id in 1..=3 {
        client
            .batch_execute(&insert(id, 4))
            .await
            .expect("each statement is accepted: the size is checked at COMMIT");
    }
    let commit = code(client.batch_execute("COMMIT").await);
    assert_eq!(commit, "54000 transaction size limit exceeded");
    assert_eq!(rows_in(&table).await, 0, "nothing of it survives");

    // 8 MiB in one transaction commits; the extended protocol counts too.
    client.batch_execute("BEGIN").await.expect("begin");
    client.execute(&insert(1, 4), &[]).await.expect("4 MiB");
    client.execute(&insert(2, 4), &[]).await.expect("4 MiB");
    client.batch_execute("COMMIT").await.expect("8 MiB commit");
    assert_eq!(rows_in(&table).await, 2);

    // Autocommit: the statement's own commit fails.
    let over = code(client.execute(&insert(3, 11), &[]).await);
    assert_eq!(over, "54000 transaction size limit exceeded");
    // Updates count: rewriting both rows (8 MiB) and a third one crosses it.
    client.batch_execute("BEGIN").await.expect("begin");
    client
        .batch_execute(&format!("UPDATE {table} SET body = body || 'y'"))
        .await
        .expect("8 MiB of updates");
    client.batch_execute(&insert(3, 3)).await.expect("3 MiB more");
    let commit = code(client.batch_execute("COMMIT").await);
    assert_eq!(commit, "54000 transaction size limit exceeded");
    assert_eq!(rows_in(&table).await, 2);
    client
        .batch_execute("SELECT 1")
        .await
        .expect("the session goes on");

    // No cap under the postgres dialect.
    let plain = start(DsqlLocal::builder().dialect(Dialect::Postgres)).await;
    let unlimited = connect(&plain, "admin").await.expect("connects");
    unlimited
        .execute(&insert(3, 11), &[])
        .await
        .expect("no cap under the postgres dialect");
    drop_table(&table).await;
    plain.shutdown().await;
    local.shutdown().await;
}

/// `CREATE INDEX ASYNC`: DSQL's reply (a `job_id` row, tag `CREATE
/// INDEX`), the index really built, the job in `sys.jobs`, and
/// `sys.wait_for_job`.
#[tokio::test]
async fn asynchronous_ddl_answers_with_a_job() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&client).await;

    let reply = client
        .simple_query(&format!("CREATE INDEX ASYNC {table}_n ON {table} (n)"))
        .await
        .expect("async index");
    let job_id = reply
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get("job_id").expect("job_id").to_owned()),
            _ => None,
        })
        .expect("a job_id row");
    assert_eq!(job_id.len(), 26);
    assert!(
        job_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{job_id}"
    );
    client
        .batch_execute(&format!("CALL sys.wait_for_job('{job_id}')"))
        .await
        .expect("wait");
    let status: String = client
        .query_one("SELECT status FROM sys.jobs WHERE job_id = $1", &[&job_id])
        .await
        .expect("sys.jobs")
        .get(0);
    assert_eq!(status, "completed");
    let built: bool = direct()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{table}_n")])
        .await
        .expect("regclass")
        .get(0);
    assert!(built, "the index exists");

    // Extended protocol, unnamed: the row rides on the statement's own result.
    let rows = client
        .query(&format!("CREATE UNIQUE INDEX ASYNC ON {table} (id, n)"), &[])
        .await
        .expect("async index, extended");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].columns()[0].name(), "job_id");

    assert_eq!(
        code(client.batch_execute("CALL sys.wait_for_job('nope')").await),
        "22P02 Unable to convert text to UUID"
    );
    assert_eq!(
        code(
            client
                .batch_execute(&format!("CREATE INDEX ON {table} (n)"))
                .await
        ),
        "0A000 unsupported mode. please use CREATE INDEX ASYNC."
    );
    drop_table(&table).await;
    local.shutdown().await;
}

/// What a session says about itself, on every path a client reads it.
#[tokio::test]
async fn the_session_reports_dsqls_version_and_settings() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    let row = client
        .query_one(
            "SELECT version(), current_setting('server_version'), current_setting('server_version_num'), \
             current_setting('TimeZone')",
            &[],
        )
        .await
        .expect("settings");
    assert_eq!(row.columns()[0].name(), "version");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3)
        ),
        (
            "PostgreSQL 16".to_owned(),
            "16.15".to_owned(),
            "160015".to_owned(),
            "UTC".to_owned()
        )
    );
    let show = client.simple_query("SHOW server_version").await.expect("show");
    let value = show.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get("server_version").map(str::to_owned),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("16.15"));
    assert_eq!(
        code(client.batch_execute("SHOW lc_collate").await),
        "42704 unrecognized configuration parameter \"lc_collate\""
    );
    local.shutdown().await;
}

/// The never-wait mode: a writer that would wait for another's row lock
/// fails at once with DSQL's conflict; without it, it waits.
#[tokio::test]
async fn never_wait_turns_a_lock_wait_into_a_conflict() {
    let local = start(DsqlLocal::builder().never_wait(std::time::Duration::from_millis(50))).await;
    let first = connect(&local, "admin").await.expect("connects");
    let second = connect(&local, "admin").await.expect("connects");
    let table = table_with_one_row(&first).await;
    first.batch_execute("BEGIN").await.expect("begin");
    first
        .batch_execute(&format!("UPDATE {table} SET n = 1 WHERE id = 1"))
        .await
        .expect("first writer");
    second.batch_execute("BEGIN").await.expect("begin");
    let started = std::time::Instant::now();
    let loser = code(
        second
            .batch_execute(&format!("UPDATE {table} SET n = 2 WHERE id = 1"))
            .await,
    );
    assert_eq!(loser, "40001 change conflicts with another transaction (OC000)");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    second.batch_execute("ROLLBACK").await.expect("rollback");
    first
        .batch_execute("COMMIT")
        .await
        .expect("the first locker wins");
    let n = n_of(&table).await;
    assert_eq!(n, 1);
    drop_table(&table).await;
    local.shutdown().await;
}

/// A statement refused at `Parse` in a transaction that is already aborted
/// gets `25P02`, as PostgreSQL answers anything there, and the session's
/// replies stay in step (one `ReadyForQuery` per `Sync`).
#[tokio::test]
async fn a_refusal_in_an_aborted_transaction_keeps_the_replies_in_step() {
    let local = start(DsqlLocal::builder()).await;
    let client = connect(&local, "admin").await.expect("connects");
    client.batch_execute("BEGIN").await.expect("begin");
    assert!(code(client.batch_execute("SELECT 1/0").await).starts_with("22012"));
    let refused = code(client.prepare("CREATE EXTENSION no_such_extension").await);
    assert!(refused.starts_with("25P02"), "{refused}");
    let again = code(client.query("SELECT 1", &[]).await);
    assert!(again.starts_with("25P02"), "{again}");
    client.batch_execute("ROLLBACK").await.expect("rollback");
    let one: i32 = client.query_one("SELECT 1", &[]).await.expect("in step").get(0);
    assert_eq!(one, 1);
    local.shutdown().await;
}
