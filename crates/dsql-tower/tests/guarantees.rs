//! The guarantees that belong to a mechanism, tried through compositions a
//! user makes: their own `tokio_postgres::Config`, a hostile classifier, a
//! connection handed back inside a transaction, operations that run more
//! than one autocommit statement. Checked against what PostgreSQL holds.
#![allow(clippy::unwrap_used)]

mod common;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use common::{Harness, direct, table};
use dsql_local::{CommitDrop, StatementDrop};
use dsql_tower::connect::Connector;
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{Effects, ErrorClass, Operation, OperationExt, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Service, ServiceBuilder, ServiceExt};

async fn create(name: &str) {
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {name} (id bigint NOT NULL); CREATE TABLE {name}_n (id int PRIMARY KEY, n bigint NOT NULL); \
             INSERT INTO {name}_n VALUES (1, 0)"
        ))
        .await
        .unwrap();
}

/// Whether the client's session is inside a transaction block: a
/// transaction's start time differs from its statement's (over the simple
/// protocol, where both are the receipt of the query).
async fn in_transaction(client: &tokio_postgres::Client) -> Result<bool, tokio_postgres::Error> {
    let rows = client
        .simple_query("SELECT now() <> statement_timestamp()")
        .await?;
    Ok(rows.iter().any(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    }))
}

async fn count(sql: &str) -> i64 {
    direct().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Autocommit: an INSERT, then an UPDATE.
fn insert_then_update(name: &str, id: i64) -> Operation<()> {
    let (insert, update) = (
        format!("INSERT INTO {name} (id) VALUES ($1)"),
        format!("UPDATE {name}_n SET n = n + 1 WHERE id = 1"),
    );
    Operation::autocommit(move |client| {
        let (insert, update) = (insert.clone(), update.clone());
        Box::pin(async move {
            client.execute(&insert, &[&id]).await?;
            client.execute(&update, &[]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
}

fn stack_with(
    session: Session<dsql_tower::connect::ConnectStack<dsql_auth::SharedTokenProvider>>,
) -> impl Service<Operation<()>, Response = (), Error = dsql_tower::Error> {
    ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .service(session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_after_an_autocommit_statement_is_not_replayed() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = table("two_statements");
    create(&name).await;
    let mut stack = stack_with(harness.session());

    // The UPDATE (statement 2) conflicts: the INSERT is already committed.
    harness.local.faults().fail_statement(2);
    let error = stack
        .ready()
        .await
        .unwrap()
        .call(insert_then_update(&name, 1))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::Conflict, "{error}");
    assert_eq!(error.attempts(), 1, "{error}");
    assert_eq!(error.effects(), Effects::StatementCompleted);
    assert!(error.to_string().contains("not replayed"), "{error}");
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name}")).await,
        1,
        "the INSERT landed once"
    );
    assert_eq!(count(&format!("SELECT n FROM {name}_n")).await, 0);

    // A conflict on the first statement changed nothing: replayed.
    harness.local.faults().fail_statement(1);
    stack
        .ready()
        .await
        .unwrap()
        .call(insert_then_update(&name, 2))
        .await
        .unwrap();
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name} WHERE id = 2")).await,
        1
    );
    assert_eq!(count(&format!("SELECT n FROM {name}_n")).await, 1);

    // Marked idempotent, the caller takes responsibility: replayed.
    harness.local.faults().fail_statement(2);
    stack
        .ready()
        .await
        .unwrap()
        .call(insert_then_update(&name, 3).idempotent())
        .await
        .unwrap();
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name} WHERE id = 3")).await,
        2,
        "the caller's choice"
    );
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autocommit_statement_whose_answer_was_lost_is_an_unknown_outcome() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = table("lost_statement");
    create(&name).await;
    let mut stack = stack_with(harness.session());

    harness
        .local
        .faults()
        .drop_at_statement(1, StatementDrop::AfterCompletion);
    let error = stack
        .ready()
        .await
        .unwrap()
        .call(insert_then_update(&name, 1))
        .await
        .unwrap_err();
    assert_eq!(error.class(), ErrorClass::OutcomeUnknown, "{error}");
    assert_eq!(error.effects(), Effects::StatementUnanswered);
    assert_eq!(error.attempts(), 1);
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name}")).await,
        1,
        "it did commit"
    );

    // Cut before it reached the server: nothing was sent that landed, and
    // the replay on a new connection lands once.
    harness
        .local
        .faults()
        .drop_at_statement(1, StatementDrop::BeforeForwarding);
    let result = stack
        .ready()
        .await
        .unwrap()
        .call(insert_then_update(&name, 2))
        .await;
    // The client cannot tell "before" from "after": it must not replay.
    let error = result.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name} WHERE id = 2")).await,
        0
    );
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_classifier_cannot_replay_a_commit_that_was_sent() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = table("hostile");
    create(&name).await;
    let everything_conflicts = |_: &(dyn StdError + 'static)| ErrorClass::Conflict;
    let session = Session::builder(
        dsql_tower::connect::stack(&harness.config, harness.tokens.clone()).unwrap(),
        dsql_tower::connect::pg_config(&harness.config),
    )
    .classifier(everything_conflicts)
    .build();
    let mut stack = ServiceBuilder::new()
        .layer(
            RetryPolicy::for_operations()
                .classifier(everything_conflicts)
                .layer(),
        )
        .service(session);
    let insert = format!("INSERT INTO {name} (id) VALUES (1)");
    let op = Operation::transaction(move |tx| {
        let insert = insert.clone();
        Box::pin(async move { tx.batch_execute(&insert).await })
    });

    harness
        .local
        .faults()
        .drop_at_next_commit(CommitDrop::AfterForwarding);
    let error = stack.run(op).await.unwrap_err();
    assert_eq!(error.effects(), Effects::CommitUnanswered, "{error}");
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(error.attempts(), 1, "{error}");
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name}")).await,
        1,
        "committed once, not twice"
    );
    harness.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_in_a_transaction_is_rolled_back_before_reuse() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let name = table("left_open");
    create(&name).await;
    let mut session = harness.session();

    // An autocommit closure that opens a transaction and walks away.
    let insert = format!("BEGIN; INSERT INTO {name} (id) VALUES (1)");
    session
        .run(Operation::autocommit(move |client| {
            let insert = insert.clone();
            Box::pin(async move { client.batch_execute(&insert).await })
        }))
        .await
        .unwrap();
    // One that leaves a failed transaction (25P02 for anything after).
    session
        .run(Operation::autocommit(|client| {
            Box::pin(async move {
                let _ = client.batch_execute("BEGIN; SELECT 1/0").await;
                Ok::<_, tokio_postgres::Error>(())
            })
        }))
        .await
        .unwrap();
    // The next operation runs outside any transaction, on the same
    // connection, rolled back rather than discarded.
    let in_transaction = session
        .run(Operation::autocommit(|client| {
            Box::pin(async move { in_transaction(client).await })
        }))
        .await
        .unwrap();
    assert!(!in_transaction);
    assert_eq!(
        count(&format!("SELECT count(*) FROM {name}")).await,
        0,
        "never committed"
    );
    let stats = session.stats();
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.retired.total(), 0, "{stats:?}");
    harness.local.shutdown().await;
}

#[tokio::test]
async fn a_manual_token_config_never_sends_the_token_in_cleartext() {
    // A server (or a machine in the path) that declines TLS and would ask
    // for a cleartext password.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0_u8; 8];
        socket.read_exact(&mut request).await.unwrap();
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest");
        socket.write_all(b"N").await.unwrap();
        let mut received = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.read_to_end(&mut received)).await;
        received
    });

    // The AWS sample's flow: a config built by hand (sslmode defaults to
    // `prefer`), the token set as the password, our connector.
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .port(port)
        .user("admin")
        .dbname("postgres")
        .password("SECRET-TOKEN");
    let roots = dsql_tower::connect::client_config(None);
    let Ok(roots) = roots else { return };
    let mut connector = Connector::with_tls(roots);
    let error = connector.ready().await.unwrap().call(config).await.unwrap_err();
    let received = server.await.unwrap();
    assert!(
        received.is_empty(),
        "the server received {} bytes after declining TLS",
        received.len()
    );
    assert!(!format!("{error:?}").contains("SECRET-TOKEN"));
}

#[tokio::test]
async fn direct_tls_requires_the_server_to_select_alpn_postgresql() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certified.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap(),
        )
        .unwrap();
    // No ALPN on the server: it selects none.
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(socket).await.ok()?;
        let mut received = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut received)).await;
        Some(received)
    });

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = tokio_postgres::Config::new();
    config
        .host("localhost")
        .hostaddr("127.0.0.1".parse().unwrap())
        .port(port)
        .user("admin")
        .password("SECRET-TOKEN")
        .ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    let mut connector = Connector::with_tls(client);
    let error = connector.ready().await.unwrap().call(config).await.unwrap_err();
    let report = format!(
        "{}",
        dsql_tower::Error::new(ErrorClass::Fatal, dsql_tower::Phase::Connect, error).report()
    );
    assert!(report.contains("ALPN"), "{report}");
    let received = server.await.unwrap().expect("the handshake itself succeeded");
    assert!(received.is_empty(), "the client sent {} bytes", received.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_rate_limit_paces_every_attempt_retries_included() {
    // An endpoint of its own: the limiter is shared per endpoint.
    let host = format!("{:0>26}", format!("{}rate", std::process::id()));
    let harness = Harness::start(
        |b| b.endpoint_host(format!("{host}.dsql.us-east-1.on.aws")),
        Duration::from_secs(900),
    )
    .await;
    let stack = dsql_tower::connect::StackBuilder::new(&harness.config, harness.tokens.clone())
        .connect_rate(2.0, 1)
        .build()
        .unwrap();
    let limit = std::sync::Arc::clone(stack.get_ref().limit().unwrap());
    let mut session = Session::new(stack, dsql_tower::connect::pg_config(&harness.config));
    // Three refusals, then success: four attempts at 2/s after a burst of 1.
    harness.local.faults().throttle_next_connects(3);
    let started = std::time::Instant::now();
    session
        .run(Operation::autocommit(|client| {
            Box::pin(async move { client.execute("SELECT 1", &[]).await })
        }))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1450),
        "{took:?}: the retries went around the limit"
    );
    assert!(limit.waits() >= 3, "{}", limit.waits());
    harness.local.shutdown().await;
}
