//! The clients compared, each through the same dsql-local with TLS (except
//! the direct baseline), each configured the way its documentation advises.

use std::sync::Arc;
use std::time::Duration;

use aurora_dsql_sqlx_connector::{
    DsqlConnectOptionsBuilder, OCCRetryConfig, Region, SharedCredentialsProvider, retry_on_occ,
};
use dsql_auth::{CachingProvider, SharedTokenProvider, SigningProvider, TokenProvider};
use dsql_bb8::DsqlPool;
use dsql_bb8::PoolService;
use dsql_tower::connect::{ConnectStack, client_config, pg_config};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, ClassifyService, Lifetime, Operation, OperationExt};
use tokio_postgres_rustls::MakeRustlsConnect;
use tower::ServiceBuilder;

use crate::BoxError;
use crate::scenario::{Scenario, Timing};
use crate::server::LocalProcess;

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientKind {
    /// deadpool-postgres straight to PostgreSQL: no dsql-local, no TLS, no
    /// token. What the front end itself costs.
    DirectDeadpool,
    /// bb8-postgres 0.9 with its defaults, one long-lived token as password.
    Bb8Postgres,
    /// deadpool-postgres 0.14 with its defaults, a token per connection from
    /// its `Connect` hook.
    DeadpoolPostgres,
    /// The official `aurora-dsql-sqlx-connector` pool, with `retry_on_occ`
    /// for writes.
    SqlxConnector,
    /// `dsql-bb8`: `pool.get()`, then the query. Nothing can be replayed,
    /// so only the steady scenarios use it.
    DsqlBb8Get,
    /// `dsql-bb8`: `pool.run(operation)` (replays by error class).
    DsqlBb8Run,
    /// `dsql-bb8`'s service under a `ServiceBuilder`: retry by class,
    /// classification, timeout, as a user composes it.
    DsqlBb8Stack,
}

impl ClientKind {
    pub(crate) const ALL: [ClientKind; 7] = [
        Self::DirectDeadpool,
        Self::Bb8Postgres,
        Self::DeadpoolPostgres,
        Self::SqlxConnector,
        Self::DsqlBb8Get,
        Self::DsqlBb8Run,
        Self::DsqlBb8Stack,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::DirectDeadpool => "deadpool-postgres, direct to PostgreSQL",
            Self::Bb8Postgres => "bb8-postgres",
            Self::DeadpoolPostgres => "deadpool-postgres",
            Self::SqlxConnector => "aurora-dsql-sqlx-connector",
            Self::DsqlBb8Get => "dsql-bb8 get",
            Self::DsqlBb8Run => "dsql-bb8 run",
            Self::DsqlBb8Stack => "dsql-bb8 + tower stack",
        }
    }

    /// Whether this client takes part in `scenario`.
    pub(crate) fn runs(self, scenario: Scenario) -> bool {
        match self {
            Self::DirectDeadpool | Self::DsqlBb8Get => scenario.is_steady(),
            _ => true,
        }
    }
}

/// What one benchmark run needs to build a client.
pub(crate) struct Setup<'a> {
    pub(crate) local: &'a LocalProcess,
    pub(crate) upstream: &'a str,
    pub(crate) pool_size: u32,
    pub(crate) scenario: Scenario,
    pub(crate) timing: Timing,
}

impl Setup<'_> {
    /// The lifetime a client is told to retire connections at, in the
    /// recycle storm; elsewhere each pool's default.
    fn lifetime(&self) -> Option<Duration> {
        (self.scenario == Scenario::Recycle).then(|| self.timing.client_lifetime())
    }
}

type Bb8PgPool = bb8::Pool<bb8_postgres::PostgresConnectionManager<MakeRustlsConnect>>;
type BenchPool = DsqlPool<ConnectStack<SharedTokenProvider>>;
type Stack = tower::retry::Retry<
    RetryPolicy,
    ClassifyService<tower::timeout::Timeout<PoolService<ConnectStack<SharedTokenProvider>>>>,
>;

/// A connected client, shared by the benchmark's tasks.
#[derive(Clone)]
pub(crate) enum Client {
    Deadpool(deadpool_postgres::Pool),
    Bb8Postgres(Bb8PgPool),
    Sqlx(sqlx::PgPool, Arc<OCCRetryConfig>),
    DsqlBb8Get(BenchPool),
    DsqlBb8Run(BenchPool),
    DsqlBb8Stack(BenchPool, Stack),
}

impl Client {
    pub(crate) async fn connect(kind: ClientKind, setup: &Setup<'_>) -> Result<Self, BoxError> {
        let local = setup.local;
        let pool_size = setup.pool_size;
        let config = local.config("admin", "dsql-bench")?;
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        let tokens = SharedTokenProvider::new(CachingProvider::new(signer));
        let tls = || -> Result<MakeRustlsConnect, BoxError> {
            Ok(MakeRustlsConnect::new(client_config(config.ssl_root_cert())?))
        };
        let client = match kind {
            ClientKind::DirectDeadpool => {
                let pg: tokio_postgres::Config = setup.upstream.parse()?;
                let manager = deadpool_postgres::Manager::new(pg, tokio_postgres::NoTls);
                Self::Deadpool(deadpool_pool(manager, pool_size, setup.lifetime())?)
            }
            ClientKind::Bb8Postgres => {
                // bb8-postgres cannot change the password per connection: one
                // token, signed for an hour, for the whole run.
                let long = config
                    .to_builder()
                    .token_duration(Duration::from_secs(3600))
                    .build()?;
                let pg = local.signed_pg_config(&long).await?;
                let manager = bb8_postgres::PostgresConnectionManager::new(pg, tls()?);
                let mut builder = bb8::Pool::builder().max_size(pool_size);
                if let Some(lifetime) = setup.lifetime() {
                    builder = builder.max_lifetime(lifetime);
                }
                Self::Bb8Postgres(builder.build(manager).await?)
            }
            ClientKind::DeadpoolPostgres => {
                let manager = deadpool_postgres::Manager::from_connect(
                    pg_config(&config),
                    TokenConnect { tls: tls()?, tokens },
                    deadpool_postgres::ManagerConfig::default(),
                );
                Self::Deadpool(deadpool_pool(manager, pool_size, setup.lifetime())?)
            }
            ClientKind::SqlxConnector => {
                let pg = sqlx::postgres::PgConnectOptions::new()
                    .host(local.host())
                    .port(local.addr().port())
                    .username("admin")
                    .database("postgres")
                    .ssl_root_cert(local.ca_path());
                let options = DsqlConnectOptionsBuilder::default()
                    .pg_connect_options(pg)
                    .region(Some(Region::new("us-east-1")))
                    .credentials_provider(Some(SharedCredentialsProvider::new(local.credentials())))
                    .build()?;
                let mut pool_options = sqlx::postgres::PgPoolOptions::new().max_connections(pool_size);
                if let Some(lifetime) = setup.lifetime() {
                    pool_options = pool_options.max_lifetime(lifetime);
                }
                let pool = aurora_dsql_sqlx_connector::pool::connect_with(&options, pool_options).await?;
                Self::Sqlx(pool, Arc::new(OCCRetryConfig::default()))
            }
            ClientKind::DsqlBb8Get | ClientKind::DsqlBb8Run | ClientKind::DsqlBb8Stack => {
                let mut builder = DsqlPool::builder(&config).max_size(pool_size);
                if let Some(lifetime) = setup.lifetime() {
                    builder = builder
                        .lifetime(Lifetime::new(lifetime, lifetime / 5)?)
                        .idle_timeout(None);
                }
                let pool = builder.build(tokens)?;
                match kind {
                    ClientKind::DsqlBb8Get => Self::DsqlBb8Get(pool),
                    ClientKind::DsqlBb8Run => Self::DsqlBb8Run(pool),
                    _ => {
                        let stack = ServiceBuilder::new()
                            .layer(RetryPolicy::for_operations().layer())
                            .layer(ClassifyLayer::new())
                            .timeout(Duration::from_secs(30))
                            .service(pool.service());
                        Self::DsqlBb8Stack(pool, stack)
                    }
                }
            }
        };
        // Open every connection together before measuring (the recycle
        // storm relies on it).
        let warm: Vec<_> = (0..pool_size * 2)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.execute(Scenario::SelectOne, "SELECT 1").await })
            })
            .collect();
        for task in warm {
            task.await?.map_err(|e| format!("warm-up failed: {e}"))?;
        }
        Ok(client)
    }

    /// Checkout, `statement` (simple query), return; writes replayed on
    /// conflicts by the clients that offer it.
    pub(crate) async fn execute(&self, scenario: Scenario, statement: &str) -> Result<(), String> {
        match self {
            Self::Deadpool(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                simple_query(&connection, statement).await
            }
            Self::Bb8Postgres(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                simple_query(&connection, statement).await
            }
            Self::Sqlx(pool, occ) => {
                let run = || async {
                    let sql = sqlx::AssertSqlSafe(statement.to_owned());
                    sqlx::raw_sql(sql).execute(pool).await.map(drop)
                };
                if scenario == Scenario::Write {
                    retry_on_occ(occ, run).await.map_err(|e| e.to_string())
                } else {
                    run().await.map_err(|e| e.to_string())
                }
            }
            Self::DsqlBb8Get(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                simple_query(&connection, statement).await
            }
            Self::DsqlBb8Run(pool) => pool.run(operation(statement)).await.map_err(|e| e.to_string()),
            Self::DsqlBb8Stack(_, stack) => stack
                .clone()
                .run(operation(statement))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Self::DsqlBb8Get(pool) | Self::DsqlBb8Run(pool) | Self::DsqlBb8Stack(pool, _) => {
                pool.close().await;
            }
            Self::Bb8Postgres(pool) => drop(pool),
            Self::Deadpool(pool) => pool.close(),
            Self::Sqlx(pool, _) => pool.close().await,
        }
    }
}

/// One statement, idempotent (a read, or an upsert of a fixed value), so
/// the pool may replay it after a lost connection.
fn operation(statement: &str) -> Operation<()> {
    let statement: Arc<str> = Arc::from(statement);
    Operation::autocommit(move |client| {
        let statement = Arc::clone(&statement);
        Box::pin(async move { client.simple_query(&statement).await.map(drop) })
    })
    .idempotent()
}

async fn simple_query(client: &tokio_postgres::Client, statement: &str) -> Result<(), String> {
    client
        .simple_query(statement)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// deadpool has no maximum lifetime; its documented way is a `pre_recycle`
/// hook that rejects old connections.
fn deadpool_pool(
    manager: deadpool_postgres::Manager,
    pool_size: u32,
    lifetime: Option<Duration>,
) -> Result<deadpool_postgres::Pool, BoxError> {
    let mut builder = deadpool_postgres::Pool::builder(manager).max_size(pool_size as usize);
    if let Some(lifetime) = lifetime {
        builder = builder.pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
            if metrics.age() > lifetime {
                Err(deadpool_postgres::HookError::Message("past its lifetime".into()))
            } else {
                Ok(())
            }
        }));
    }
    Ok(builder.build()?)
}

/// deadpool-postgres' per-connection hook: a token as the password.
struct TokenConnect {
    tls: MakeRustlsConnect,
    tokens: SharedTokenProvider,
}

impl deadpool_postgres::Connect for TokenConnect {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                        tokio_postgres::Error,
                    >,
                > + Send
                + '_,
        >,
    > {
        let mut pg_config = pg_config.clone();
        let tls = self.tls.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            // The hook's error type is tokio-postgres'; a token failure cannot
            // be expressed in it, and does not happen with a local signer.
            let token = tokens.token().await.expect("signing with dsql-local's key");
            pg_config.password(token.expose_secret());
            let (client, connection) = pg_config.connect(tls).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok((client, task))
        })
    }
}
