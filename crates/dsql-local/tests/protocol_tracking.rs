//! The relay follows the protocol from what the backend says: copy modes
//! (where PostgreSQL ignores `Sync`), errors in the extended protocol,
//! pipelines and `COMMIT AND CHAIN`. After each, an injected fault at
//! `COMMIT` must still hit that `COMMIT`: what the client is told is checked
//! against what PostgreSQL committed (over a direct connection), and the
//! transaction timeout must still fire on the session.

use std::time::Duration;

use dsql_local::{CommitDrop, DsqlLocal, catalog};
use dsql_testkit::local::{connect, db_error, start, token};
use dsql_testkit::{direct, tls, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// Short, so that the tests can see it fire; every transaction of these
/// tests is much shorter.
const TXN_TIMEOUT: Duration = Duration::from_secs(2);

async fn start_local() -> DsqlLocal {
    start(DsqlLocal::builder().transaction_timeout(TXN_TIMEOUT)).await
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

/// The ids PostgreSQL holds.
async fn ids(setup: &Client, table: &str) -> Vec<i32> {
    setup
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .expect("select")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn drop_table(setup: &Client, table: &str) {
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
}

fn assert_code(error: &tokio_postgres::Error, expected: &catalog::DsqlError) {
    let db = db_error(error);
    assert_eq!(db.code().code(), expected.code, "{db:?}");
    assert_eq!(db.message(), expected.message, "{db:?}");
}

/// An injected conflict hits the next `COMMIT` of `client`: it fails and
/// PostgreSQL does not hold `id`.
async fn injected_conflict_is_reported(
    local: &DsqlLocal,
    client: &mut Client,
    setup: &Client,
    table: &str,
    id: i32,
) {
    local.faults().inject_commit_conflicts(1.0);
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&id])
        .await
        .expect("insert");
    let result = tx.commit().await;
    local.faults().inject_commit_conflicts(0.0);
    let committed = ids(setup, table).await.contains(&id);
    match result {
        Ok(()) => panic!("COMMIT reported as committed; PostgreSQL holds the row: {committed}"),
        Err(error) => assert_code(&error, &catalog::CHANGE_CONFLICT),
    }
    assert!(
        !committed,
        "the injected conflict rolled back, yet the row is there"
    );
}

/// The transaction timeout still fires on `client`'s session.
async fn transaction_timeout_fires(client: &Client, setup: &Client, table: &str, id: i32) {
    client
        .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES ({id})"))
        .await
        .expect("an open transaction");
    tokio::time::sleep(TXN_TIMEOUT + Duration::from_millis(700)).await;
    let error = client
        .batch_execute("SELECT 1")
        .await
        .expect_err("the transaction timed out");
    assert_code(&error, &catalog::TRANSACTION_TIMEOUT);
    client.batch_execute("ROLLBACK").await.expect("rollback");
    assert!(!ids(setup, table).await.contains(&id), "the timed-out row");
}

/// `COPY ... FROM STDIN` over tokio-postgres (extended protocol: `Bind`,
/// `Execute`, `Sync`, then `CopyData`, `CopyDone`, `Sync`: two `Sync`s for
/// one `ReadyForQuery`).
async fn copy_in(client: &Client, table: &str, ids: &[i32]) -> Result<u64, tokio_postgres::Error> {
    let sink = client
        .copy_in(&format!("COPY {table} (id) FROM STDIN BINARY"))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4]);
    let mut writer = std::pin::pin!(writer);
    for id in ids {
        writer.as_mut().write(&[id]).await?;
    }
    writer.finish().await
}

#[tokio::test]
async fn copy_in_over_the_extended_protocol_keeps_commit_faults_aligned() {
    let local = start_local().await;
    let (setup, table) = create_table("copy_ext").await;
    let mut client = connect(&local, "admin").await.expect("connects");

    assert_eq!(copy_in(&client, &table, &[1, 2]).await.expect("copy"), 2);
    assert_eq!(ids(&setup, &table).await, [1, 2]);
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 10).await;

    // Inside a transaction too; then the commit drop must hit the COMMIT.
    let tx = client.transaction().await.expect("begin");
    let sink = tx
        .copy_in(&format!("COPY {table} (id) FROM STDIN BINARY"))
        .await
        .expect("copy");
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4]);
    let mut writer = std::pin::pin!(writer);
    writer.as_mut().write(&[&3_i32]).await.expect("row");
    assert_eq!(writer.finish().await.expect("copy done"), 1);
    local.faults().drop_at_next_commit(CommitDrop::AfterForwarding);
    let error = tx
        .commit()
        .await
        .expect_err("the session is dropped after COMMIT");
    assert!(
        error.is_closed() || error.as_db_error().is_none(),
        "not a lost connection: {error:?}"
    );
    assert_eq!(
        ids(&setup, &table).await,
        [1, 2, 3],
        "the forwarded COMMIT committed"
    );

    let mut client = connect(&local, "admin").await.expect("reconnects");
    assert_eq!(copy_in(&client, &table, &[4]).await.expect("copy"), 1);
    transaction_timeout_fires(&client, &setup, &table, 11).await;
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 12).await;
    assert_eq!(ids(&setup, &table).await, [1, 2, 3, 4]);
    drop_table(&setup, &table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn failed_copies_and_pipeline_errors_keep_commit_faults_aligned() {
    let local = start_local().await;
    let (setup, table) = create_table("copy_err").await;
    let mut client = connect(&local, "admin").await.expect("connects");

    // The COPY fails before copy-in mode: the client ends the copy anyway
    // (tokio-postgres sends `CopyFail` and `Sync`), and PostgreSQL ignores
    // the `CopyFail` and answers both `Sync`s.
    let mut raw = Raw::connect(&local).await;
    let mut batch = Vec::new();
    extended(
        &mut batch,
        &format!("COPY {} FROM STDIN", unique("no_such_table")),
    );
    message(&mut batch, b'S', &[]);
    message(&mut batch, b'f', &cstr("no copy"));
    message(&mut batch, b'S', &[]);
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    assert_eq!(error_code(&reply).as_deref(), Some("42P01"), "{reply:?}");
    let reply = raw.until_ready().await;
    assert_eq!(reply, [(b'Z', vec![b'I'])]);
    raw.commit_conflict_is_reported(&local, &setup, &table, 10).await;

    // The copy fails in copy-in mode (a duplicate key): PostgreSQL skips to
    // the `Sync` after `CopyDone`.
    let error = copy_in(&client, &table, &[1, 1]).await.expect_err("duplicate");
    assert_eq!(db_error(&error).code().code(), "23505");
    assert_eq!(ids(&setup, &table).await, Vec::<i32>::new());
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 11).await;
    transaction_timeout_fires(&client, &setup, &table, 12).await;

    // An error in the middle of an extended-protocol pipeline: PostgreSQL
    // skips to the `Sync`, answered once.
    let mut batch = Vec::new();
    extended(&mut batch, "SELECT 1/0");
    extended(&mut batch, &format!("INSERT INTO {table} VALUES (20)"));
    message(&mut batch, b'H', &[]);
    extended(&mut batch, &format!("INSERT INTO {table} VALUES (21)"));
    message(&mut batch, b'S', &[]);
    extended(&mut batch, &format!("INSERT INTO {table} VALUES (22)"));
    message(&mut batch, b'S', &[]);
    raw.send(&batch).await;
    let first = raw.until_ready().await;
    assert_eq!(error_code(&first).as_deref(), Some("22012"), "{first:?}");
    assert_eq!(raw.until_ready().await.last().map(|(tag, _)| *tag), Some(b'Z'));
    assert_eq!(ids(&setup, &table).await, [22], "only the second batch ran");
    raw.commit_conflict_is_reported(&local, &setup, &table, 23).await;
    raw.transaction_timeout_fires(&setup, &table, 24).await;
    raw.commit_conflict_is_reported(&local, &setup, &table, 25).await;
    drop_table(&setup, &table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn simple_protocol_copies_keep_commit_faults_aligned() {
    let local = start_local().await;
    let (setup, table) = create_table("copy_simple").await;
    let mut raw = Raw::connect(&local).await;

    // COPY FROM STDIN by a simple query; the client also sends `Flush` and
    // `Sync` during the copy, which PostgreSQL ignores in copy-in mode.
    let mut batch = Vec::new();
    message(&mut batch, b'Q', &cstr(&format!("COPY {table} FROM STDIN")));
    raw.send(&batch).await;
    assert_eq!(raw.read().await.0, b'G', "CopyInResponse");
    let mut batch = Vec::new();
    message(&mut batch, b'd', b"1\n");
    message(&mut batch, b'H', &[]);
    message(&mut batch, b'S', &[]);
    message(&mut batch, b'd', b"2\n");
    message(&mut batch, b'c', &[]);
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    assert!(
        reply
            .iter()
            .any(|(tag, body)| *tag == b'C' && body.starts_with(b"COPY 2")),
        "{reply:?}"
    );
    assert_eq!(ids(&setup, &table).await, [1, 2]);
    raw.commit_conflict_is_reported(&local, &setup, &table, 10).await;

    // The same, pipelined: the copy data and the next requests are sent
    // before any reply.
    let mut batch = Vec::new();
    message(&mut batch, b'Q', &cstr(&format!("COPY {table} FROM STDIN")));
    message(&mut batch, b'd', b"3\n");
    message(&mut batch, b'S', &[]);
    message(&mut batch, b'c', &[]);
    message(&mut batch, b'Q', &cstr("SELECT 1"));
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    assert!(
        reply
            .iter()
            .any(|(tag, body)| *tag == b'C' && body.starts_with(b"COPY 1")),
        "{reply:?}"
    );
    let reply = raw.until_ready().await;
    assert!(
        reply
            .iter()
            .any(|(tag, body)| *tag == b'C' && body.starts_with(b"SELECT 1")),
        "{reply:?}"
    );
    raw.commit_conflict_is_reported(&local, &setup, &table, 11).await;

    // The extended protocol, pipelined: PostgreSQL ignores the first `Sync`.
    let mut batch = Vec::new();
    extended(&mut batch, &format!("COPY {table} FROM STDIN"));
    message(&mut batch, b'S', &[]);
    message(&mut batch, b'd', b"4\n");
    message(&mut batch, b'c', &[]);
    message(&mut batch, b'S', &[]);
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    assert!(
        reply
            .iter()
            .any(|(tag, body)| *tag == b'C' && body.starts_with(b"COPY 1")),
        "{reply:?}"
    );
    raw.commit_conflict_is_reported(&local, &setup, &table, 12).await;

    // COPY TO STDOUT, simple and extended.
    let mut batch = Vec::new();
    message(&mut batch, b'Q', &cstr(&format!("COPY {table} TO STDOUT")));
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    let data: Vec<u8> = reply
        .iter()
        .filter(|(tag, _)| *tag == b'd')
        .flat_map(|(_, body)| body.clone())
        .collect();
    assert_eq!(data, b"1\n2\n3\n4\n");
    raw.commit_conflict_is_reported(&local, &setup, &table, 13).await;
    let mut batch = Vec::new();
    extended(&mut batch, &format!("COPY {table} TO STDOUT"));
    message(&mut batch, b'S', &[]);
    raw.send(&batch).await;
    let reply = raw.until_ready().await;
    assert_eq!(
        reply.iter().filter(|(tag, _)| *tag == b'd').count(),
        4,
        "{reply:?}"
    );
    raw.commit_conflict_is_reported(&local, &setup, &table, 14).await;
    raw.transaction_timeout_fires(&setup, &table, 15).await;

    let mut client = connect(&local, "admin").await.expect("connects");
    let stream = client
        .copy_out(&format!("COPY {table} TO STDOUT"))
        .await
        .expect("copy out");
    drop(stream);
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 16).await;
    assert_eq!(ids(&setup, &table).await, [1, 2, 3, 4]);
    drop_table(&setup, &table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn commit_and_chain_is_forwarded_and_told_truthfully() {
    let local = start_local().await;
    let (setup, table) = create_table("chain").await;
    let mut client = connect(&local, "admin").await.expect("connects");
    local.faults().inject_commit_conflicts(1.0);

    // `COMMIT AND CHAIN` is not a plain commit: it commits for real.
    client
        .batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
        .await
        .expect("insert");
    client
        .batch_execute("COMMIT AND CHAIN")
        .await
        .expect("COMMIT AND CHAIN commits");
    assert_eq!(ids(&setup, &table).await, [1], "told committed: it is");
    // The chained transaction is open; its plain COMMIT gets the conflict.
    client
        .execute(&format!("INSERT INTO {table} VALUES (2)"), &[])
        .await
        .expect("insert in the chained transaction");
    client
        .execute("COMMIT AND CHAIN", &[])
        .await
        .expect("extended COMMIT AND CHAIN");
    assert_eq!(ids(&setup, &table).await, [1, 2]);
    client
        .execute(&format!("INSERT INTO {table} VALUES (3)"), &[])
        .await
        .expect("insert in the second chained transaction");
    let error = client.batch_execute("COMMIT").await.expect_err("conflict");
    assert_code(&error, &catalog::CHANGE_CONFLICT);
    assert_eq!(ids(&setup, &table).await, [1, 2], "told rolled back: it is");
    local.faults().inject_commit_conflicts(0.0);
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 4).await;
    transaction_timeout_fires(&client, &setup, &table, 5).await;
    drop_table(&setup, &table).await;
    local.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_keep_commit_faults_aligned() {
    let local = start_local().await;
    let (setup, table) = create_table("pipeline").await;
    let mut client = connect(&local, "admin").await.expect("connects");

    // tokio-postgres pipelines concurrent requests on one client.
    let insert = format!("INSERT INTO {table} VALUES ($1)");
    let (a, b, c, d) = tokio::join!(
        client.execute(&insert, &[&1_i32]),
        client.execute(&insert, &[&2_i32]),
        client.batch_execute("SELECT 1; SELECT 2"),
        client.query_one("SELECT 3", &[]),
    );
    a.expect("1");
    b.expect("2");
    c.expect("batch");
    d.expect("select");
    assert_eq!(ids(&setup, &table).await, [1, 2]);
    injected_conflict_is_reported(&local, &mut client, &setup, &table, 10).await;

    // A whole transaction pipelined, its COMMIT conflicting.
    local.faults().inject_commit_conflicts(1.0);
    let tx = client.transaction().await.expect("begin");
    let (a, b) = tokio::join!(tx.execute(&insert, &[&11_i32]), tx.execute(&insert, &[&12_i32]),);
    a.expect("11");
    b.expect("12");
    let error = tx.commit().await.expect_err("conflict");
    assert_code(&error, &catalog::CHANGE_CONFLICT);
    local.faults().inject_commit_conflicts(0.0);
    assert_eq!(ids(&setup, &table).await, [1, 2]);

    // Raw: a transaction sent in one write, simple and extended mixed.
    let mut raw = Raw::connect(&local).await;
    local.faults().inject_commit_conflicts(1.0);
    let mut batch = Vec::new();
    message(&mut batch, b'Q', &cstr("BEGIN"));
    extended(&mut batch, &format!("INSERT INTO {table} VALUES (13)"));
    message(&mut batch, b'S', &[]);
    message(
        &mut batch,
        b'Q',
        &cstr(&format!("INSERT INTO {table} VALUES (14)")),
    );
    message(&mut batch, b'Q', &cstr("COMMIT"));
    message(&mut batch, b'Q', &cstr("SELECT 1"));
    raw.send(&batch).await;
    for _ in 0..3 {
        let reply = raw.until_ready().await;
        assert_eq!(error_code(&reply), None, "{reply:?}");
    }
    let commit = raw.until_ready().await;
    assert_eq!(error_code(&commit).as_deref(), Some("40001"), "{commit:?}");
    assert!(!commit.iter().any(|(tag, _)| *tag == b'C'), "{commit:?}");
    let select = raw.until_ready().await;
    assert_eq!(error_code(&select), None, "{select:?}");
    local.faults().inject_commit_conflicts(0.0);
    assert_eq!(ids(&setup, &table).await, [1, 2]);

    transaction_timeout_fires(&client, &setup, &table, 15).await;
    drop_table(&setup, &table).await;
    local.shutdown().await;
}

// ---------------------------------------------------------------------------
// A raw protocol client, to send what drivers do not (simple-protocol COPY,
// `Sync` in copy-in mode, hand-made pipelines).

/// Appends a message.
fn message(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&u32::try_from(body.len() + 4).expect("small").to_be_bytes());
    out.extend_from_slice(body);
}

fn cstr(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.push(0);
    out
}

/// Appends `Parse`, `Bind` and `Execute` of `sql` (unnamed, no
/// parameters), without `Sync`.
fn extended(out: &mut Vec<u8>, sql: &str) {
    let mut parse = cstr("");
    parse.extend_from_slice(&cstr(sql));
    parse.extend_from_slice(&0_u16.to_be_bytes());
    message(out, b'P', &parse);
    // Portal, statement, no formats, no parameters, no result formats.
    message(out, b'B', &[0, 0, 0, 0, 0, 0, 0, 0]);
    // Portal, no row limit.
    message(out, b'E', &[0, 0, 0, 0, 0]);
}

/// The SQLSTATE of the first `ErrorResponse` in `reply`.
fn error_code(reply: &[(u8, Vec<u8>)]) -> Option<String> {
    let (_, body) = reply.iter().find(|(tag, _)| *tag == b'E')?;
    let mut fields = body.as_slice();
    while let Some((&kind, rest)) = fields.split_first() {
        let end = rest.iter().position(|&b| b == 0)?;
        if kind == b'C' {
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        fields = &rest[end + 1..];
    }
    None
}

struct Raw {
    tls: tokio_rustls::client::TlsStream<TcpStream>,
}

impl Raw {
    /// Connects and authenticates as `admin`, up to the first
    /// `ReadyForQuery`.
    async fn connect(local: &DsqlLocal) -> Self {
        let token = token(local, "admin").await;
        let tls = tls::raw_stream(local).await;
        let mut raw = Self { tls };
        let mut body = (3_u32 << 16).to_be_bytes().to_vec();
        for field in ["user", "admin", "database", "postgres", ""] {
            body.extend_from_slice(&cstr(field));
        }
        let mut startup = u32::try_from(body.len() + 4)
            .expect("small")
            .to_be_bytes()
            .to_vec();
        startup.extend_from_slice(&body);
        raw.send(&startup).await;
        let (tag, body) = raw.read().await;
        assert_eq!(
            (tag, body.as_slice()),
            (b'R', &[0, 0, 0, 3][..]),
            "cleartext password"
        );
        let mut password = Vec::new();
        message(&mut password, b'p', &cstr(&token));
        raw.send(&password).await;
        let reply = raw.until_ready().await;
        assert_eq!(error_code(&reply), None, "{reply:?}");
        raw
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).await.expect("write");
        self.tls.flush().await.expect("flush");
    }

    async fn read(&mut self) -> (u8, Vec<u8>) {
        let read = async {
            let tag = self.tls.read_u8().await?;
            let len = self.tls.read_u32().await?;
            let mut body = vec![0; len as usize - 4];
            self.tls.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>((tag, body))
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a reply within 10 s")
            .expect("read")
    }

    /// The messages up to and including the next `ReadyForQuery`.
    async fn until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut messages = Vec::new();
        loop {
            let message = self.read().await;
            let ready = message.0 == b'Z';
            messages.push(message);
            if ready {
                return messages;
            }
        }
    }

    /// A simple query, its reply.
    async fn query(&mut self, sql: &str) -> Vec<(u8, Vec<u8>)> {
        let mut batch = Vec::new();
        message(&mut batch, b'Q', &cstr(sql));
        self.send(&batch).await;
        self.until_ready().await
    }

    async fn commit_conflict_is_reported(&mut self, local: &DsqlLocal, setup: &Client, table: &str, id: i32) {
        local.faults().inject_commit_conflicts(1.0);
        let reply = self
            .query(&format!("BEGIN; INSERT INTO {table} VALUES ({id})"))
            .await;
        assert_eq!(error_code(&reply), None, "{reply:?}");
        let commit = self.query("COMMIT").await;
        local.faults().inject_commit_conflicts(0.0);
        let committed = ids(setup, table).await.contains(&id);
        assert_eq!(
            error_code(&commit).as_deref(),
            Some("40001"),
            "the COMMIT's reply {commit:?}; PostgreSQL holds the row: {committed}"
        );
        assert!(!commit.iter().any(|(tag, _)| *tag == b'C'), "{commit:?}");
        assert_eq!(commit.last(), Some(&(b'Z', vec![b'I'])));
        assert!(
            !committed,
            "the injected conflict rolled back, yet the row is there"
        );
    }

    async fn transaction_timeout_fires(&mut self, setup: &Client, table: &str, id: i32) {
        let reply = self
            .query(&format!("BEGIN; INSERT INTO {table} VALUES ({id})"))
            .await;
        assert_eq!(reply.last(), Some(&(b'Z', vec![b'T'])), "{reply:?}");
        tokio::time::sleep(TXN_TIMEOUT + Duration::from_millis(700)).await;
        let reply = self.query("SELECT 1").await;
        assert_eq!(
            error_code(&reply).as_deref(),
            Some(catalog::TRANSACTION_TIMEOUT.code),
            "{reply:?}"
        );
        self.query("ROLLBACK").await;
        assert!(!ids(setup, table).await.contains(&id), "the timed-out row");
    }
}
