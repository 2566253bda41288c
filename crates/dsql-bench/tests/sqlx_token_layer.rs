//! `TokenLayer` in front of another driver's connector: sqlx.
//!
//! `dsql_tower::TokenLayer` is generic over the connect target through
//! [`SetPassword`]; here it serves `sqlx::postgres::PgConnectOptions`
//! (through a newtype: the trait and the type are both foreign to this
//! crate), connecting with `sslmode=verify-full` to a `dsql-local` started
//! over the PostgreSQL on 127.0.0.1:5432.
//!
//! sqlx has no `hostaddr` separate from the host (its `hostaddr` parameter
//! just replaces the host), so the TLS server name, the SNI and the token's
//! host are the address it connects to. `dsql-local` therefore runs with the
//! custom endpoint host `localhost` (with an explicit region), which resolves
//! to loopback and is in its certificate.
//!
//! `cargo test -p dsql-bench --test sqlx_token_layer` (needs PostgreSQL on
//! 127.0.0.1:5432, trust, user and database `postgres`)
#![allow(missing_docs, clippy::unwrap_used)]

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dsql_auth::{CachingProvider, SigningProvider, TokenError};
use dsql_local::{DsqlLocal, RefusalReason};
use dsql_testkit::{CountingProvider, UPSTREAM, counting_signer};
use dsql_tower::classify::{Classify, DsqlClassifier, ErrorClass};
use dsql_tower::{SetPassword, TokenLayer};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use tower::{Layer, Service, ServiceExt, service_fn};

const REGION: &str = "us-east-1";
const APPLICATION_NAME: &str = "dsql-bench-sqlx-token-layer";

/// sqlx's connect options, as a target for `TokenLayer`.
#[derive(Clone, Debug)]
struct SqlxOptions(PgConnectOptions);

impl SetPassword for SqlxOptions {
    fn set_password(&mut self, password: &str) {
        // sqlx's setters take and return the options by value.
        self.0 = self.0.clone().password(password);
    }
}

/// The connect service's error: a token that could not be had (required by
/// `TokenLayer`: `From<TokenError>`) or what sqlx reported.
#[derive(Debug)]
enum SqlxConnectError {
    Token(TokenError),
    Sqlx(sqlx::Error),
}

impl fmt::Display for SqlxConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("could not get a DSQL token"),
            Self::Sqlx(_) => f.write_str("sqlx could not connect"),
        }
    }
}

impl StdError for SqlxConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            Self::Sqlx(e) => Some(e),
        }
    }
}

impl From<TokenError> for SqlxConnectError {
    fn from(error: TokenError) -> Self {
        Self::Token(error)
    }
}

impl SqlxConnectError {
    /// The SQLSTATE of the server's refusal, if the server refused.
    fn sqlstate(&self) -> Option<String> {
        match self {
            Self::Sqlx(sqlx::Error::Database(db)) => db.code().map(|code| code.into_owned()),
            _ => None,
        }
    }
}

/// The connector: sqlx's own connect, as a tower service.
fn sqlx_connector() -> impl Service<
    SqlxOptions,
    Response = PgConnection,
    Error = SqlxConnectError,
    Future = impl Future<Output = Result<PgConnection, SqlxConnectError>> + Send,
> + Clone
+ Send
+ 'static {
    service_fn(|options: SqlxOptions| async move {
        PgConnection::connect_with(&options.0)
            .await
            .map_err(SqlxConnectError::Sqlx)
    })
}

/// A `dsql-local` whose endpoint host is `localhost`, the sqlx options for
/// it (without password), and a caching provider over a signer that counts
/// its calls.
async fn setup() -> (
    DsqlLocal,
    SqlxOptions,
    CachingProvider<CountingProvider<SigningProvider>>,
    Arc<AtomicUsize>,
) {
    let local = DsqlLocal::builder()
        .endpoint_host("localhost")
        .region(REGION)
        .upstream(UPSTREAM)
        .start()
        .await
        .unwrap();
    let config = local.client_config("admin").unwrap();
    assert_eq!(config.endpoint().host(), "localhost");

    let (tokens, signs) = counting_signer(&config, local.credentials());

    // `new_without_pgpass` still reads PG* variables: set everything that
    // matters explicitly.
    let options = PgConnectOptions::new_without_pgpass()
        .host(config.endpoint().host())
        .port(local.port())
        .username(config.user())
        .database(config.database())
        .application_name(APPLICATION_NAME)
        .ssl_mode(PgSslMode::VerifyFull)
        .ssl_root_cert(local.ca_path());
    (local, SqlxOptions(options), tokens, signs)
}

async fn select_1(connection: &mut PgConnection) -> i32 {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(connection)
        .await
        .unwrap()
}

/// One connect through `connect`; a connector that is not ready is a bug
/// of the test, the connect's own outcome is returned.
async fn connect_once<S>(connect: &mut S, options: &SqlxOptions) -> Result<S::Response, S::Error>
where
    S: Service<SqlxOptions>,
{
    match connect.ready().await {
        Ok(ready) => ready.call(options.clone()).await,
        Err(_) => panic!("the connector is not ready"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_connects_through_token_layer_and_reuses_the_cached_token() {
    let (local, options, tokens, signs) = setup().await;
    let mut connect = TokenLayer::new(tokens.clone()).layer(sqlx_connector());

    let mut first = connect_once(&mut connect, &options).await.unwrap();
    assert_eq!(select_1(&mut first).await, 1);
    assert_eq!(signs.load(Ordering::SeqCst), 1, "the first connect signs a token");
    let cached = tokens
        .cached()
        .expect("the token is cached after the first connect");

    let mut second = connect_once(&mut connect, &options).await.unwrap();
    assert_eq!(select_1(&mut second).await, 1);
    assert_eq!(
        signs.load(Ordering::SeqCst),
        1,
        "the second connect reuses the cached token"
    );
    assert_eq!(tokens.cached(), Some(cached));

    let stats = local.stats().snapshot();
    assert_eq!(stats.accepted, 2, "{stats:?}");
    assert_eq!(stats.sessions_opened, 2, "{stats:?}");
    assert_eq!(stats.refused.total(), 0, "{stats:?}");

    first.close().await.unwrap();
    second.close().await.unwrap();
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_invalidated_and_a_fresh_one_signed() {
    let (local, options, tokens, signs) = setup().await;
    // `DsqlClassifier` knows tokio-postgres' errors, not sqlx's: DSQL's
    // refusal (`08006`, "unable to accept connection, access denied") as
    // reported by sqlx is recognized here, anything else is left to it.
    let classifier = |error: &(dyn StdError + 'static)| match error.downcast_ref::<SqlxConnectError>() {
        Some(error) if error.sqlstate().as_deref() == Some("08006") => ErrorClass::Reauthenticate,
        _ => DsqlClassifier.classify(error),
    };
    let mut connect = TokenLayer::new(tokens.clone())
        .classifier(classifier)
        .layer(sqlx_connector());

    // A token is signed and cached.
    let mut connection = connect_once(&mut connect, &options).await.unwrap();
    assert_eq!(select_1(&mut connection).await, 1);
    connection.close().await.unwrap();
    assert_eq!(signs.load(Ordering::SeqCst), 1);
    assert!(tokens.cached().is_some());

    // The server refuses it: DSQL's access denied, recognized as
    // Reauthenticate, so the layer drops it from the cache.
    local.faults().refuse_auth_for(Duration::from_secs(60));
    let refused = connect_once(&mut connect, &options)
        .await
        .expect_err("the server refuses every token");
    assert_eq!(refused.sqlstate().as_deref(), Some("08006"), "{refused:?}");
    assert_eq!(classifier.classify(&refused), ErrorClass::Reauthenticate);
    assert_eq!(
        signs.load(Ordering::SeqCst),
        1,
        "the refused connect used the cached token"
    );
    assert!(tokens.cached().is_none(), "the refused token was invalidated");
    local.faults().stop_refusing_auth();

    // The next connect signs a fresh token, and is accepted.
    let mut connection = connect_once(&mut connect, &options).await.unwrap();
    assert_eq!(select_1(&mut connection).await, 1);
    assert_eq!(
        signs.load(Ordering::SeqCst),
        2,
        "a fresh token is signed after the refusal"
    );
    assert!(tokens.cached().is_some());
    connection.close().await.unwrap();

    let stats = local.stats().snapshot();
    assert_eq!(stats.refused.get(RefusalReason::FaultInjected), 1, "{stats:?}");
    assert_eq!(stats.refused.total(), 1, "{stats:?}");
    assert_eq!(stats.sessions_opened, 2, "{stats:?}");
    local.shutdown().await;
}

/// A second driver sees DSQL's refusals as tokio-postgres does: sqlx's
/// extended protocol (a statement refused at `Parse`) and its simple one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_gets_dsqls_refusals() {
    let (local, options, tokens, _) = setup().await;
    let mut connect = TokenLayer::new(tokens).layer(sqlx_connector());
    let mut connection = connect_once(&mut connect, &options).await.unwrap();
    let refused = sqlx::query("TRUNCATE sqlx_no_such_table")
        .execute(&mut connection)
        .await
        .expect_err("refused");
    let sqlx::Error::Database(db) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(db.code().as_deref(), Some("0A000"));
    assert_eq!(db.message(), "unsupported statement: Truncate");
    // The session goes on, in both protocols.
    assert_eq!(select_1(&mut connection).await, 1);
    let refused = sqlx::raw_sql("BEGIN; SAVEPOINT a")
        .execute(&mut connection)
        .await
        .expect_err("refused");
    let sqlx::Error::Database(db) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(db.message(), "unsupported transaction statement: SAVEPOINT");
    sqlx::raw_sql("ROLLBACK").execute(&mut connection).await.unwrap();
    assert_eq!(select_1(&mut connection).await, 1);
    connection.close().await.unwrap();
    local.shutdown().await;
}
