//! The clients compared, each through the same dsql-local with TLS.

use std::sync::Arc;
use std::time::Duration;

use dsql_auth::{CachingProvider, SharedTokenProvider, SigningProvider, TokenProvider};
use dsql_bb8::DsqlPool;
use dsql_tower::Operation;
use dsql_tower::connect::{client_config, pg_config};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::BoxError;
use crate::server::LocalProcess;

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// `dsql-bb8`: `pool.get()` then the query.
    DsqlBb8,
    /// `dsql-bb8` through its full stack: `pool.run(operation)` (retry
    /// policy, classification, fair queue).
    DsqlBb8Run,
    /// bb8-postgres 0.9 with its defaults, one long-lived token as password.
    Bb8Postgres,
    /// deadpool-postgres 0.14 with its defaults, a token per connection from
    /// its `Connect` hook.
    DeadpoolPostgres,
}

impl ClientKind {
    pub(crate) const ALL: [ClientKind; 4] = [
        Self::Bb8Postgres,
        Self::DeadpoolPostgres,
        Self::DsqlBb8,
        Self::DsqlBb8Run,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::DsqlBb8 => "dsql-bb8",
            Self::DsqlBb8Run => "dsql-bb8 run (full stack)",
            Self::Bb8Postgres => "bb8-postgres",
            Self::DeadpoolPostgres => "deadpool-postgres",
        }
    }
}

type Bb8PgPool = bb8::Pool<bb8_postgres::PostgresConnectionManager<MakeRustlsConnect>>;

/// A connected client, shared by the benchmark's tasks.
#[derive(Clone)]
pub(crate) enum Client {
    DsqlBb8(DsqlPool),
    DsqlBb8Run(DsqlPool, Operation<()>),
    Bb8Postgres(Bb8PgPool),
    DeadpoolPostgres(deadpool_postgres::Pool),
}

impl Client {
    pub(crate) async fn connect(
        kind: ClientKind,
        local: &LocalProcess,
        pool_size: u32,
    ) -> Result<Self, BoxError> {
        let config = local.config("admin", "dsql-bench")?;
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        let tokens = SharedTokenProvider::new(CachingProvider::new(signer));
        let tls = || -> Result<MakeRustlsConnect, BoxError> {
            Ok(MakeRustlsConnect::new(client_config(config.ssl_root_cert())?))
        };
        let client = match kind {
            ClientKind::DsqlBb8 | ClientKind::DsqlBb8Run => {
                let pool = DsqlPool::builder(&config).max_size(pool_size).build(tokens)?;
                if kind == ClientKind::DsqlBb8 {
                    Self::DsqlBb8(pool)
                } else {
                    let select = Operation::new(|client| {
                        Box::pin(async move { client.simple_query("SELECT 1").await.map(drop) })
                    })
                    .idempotent();
                    Self::DsqlBb8Run(pool, select)
                }
            }
            ClientKind::Bb8Postgres => {
                // bb8-postgres cannot change the password per connection: one
                // token, signed for an hour, for the whole run.
                let long = config
                    .to_builder()
                    .token_duration(Duration::from_secs(3600))
                    .build()?;
                let token = SigningProvider::builder(&long)
                    .credentials_provider(local.credentials())
                    .build()
                    .token()
                    .await?;
                let mut pg = pg_config(&config);
                pg.password(token.expose_secret());
                let manager = bb8_postgres::PostgresConnectionManager::new(pg, tls()?);
                Self::Bb8Postgres(bb8::Pool::builder().max_size(pool_size).build(manager).await?)
            }
            ClientKind::DeadpoolPostgres => {
                let manager = deadpool_postgres::Manager::from_connect(
                    pg_config(&config),
                    TokenConnect { tls: tls()?, tokens },
                    deadpool_postgres::ManagerConfig::default(),
                );
                Self::DeadpoolPostgres(
                    deadpool_postgres::Pool::builder(manager)
                        .max_size(pool_size as usize)
                        .build()?,
                )
            }
        };
        // Open every connection before measuring.
        let warm: Vec<_> = (0..pool_size * 2)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.select_one().await })
            })
            .collect();
        for task in warm {
            task.await?.map_err(|e| format!("warm-up failed: {e}"))?;
        }
        Ok(client)
    }

    /// Checkout, `SELECT 1` (simple query), return.
    pub(crate) async fn select_one(&self) -> Result<(), String> {
        match self {
            Self::DsqlBb8(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                select_one_on(&connection).await
            }
            Self::DsqlBb8Run(pool, select) => pool.run(select.clone()).await.map_err(|e| e.to_string()),
            Self::Bb8Postgres(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                select_one_on(&connection).await
            }
            Self::DeadpoolPostgres(pool) => {
                let connection = pool.get().await.map_err(|e| e.to_string())?;
                select_one_on(&connection).await
            }
        }
    }

    pub(crate) async fn close(self) {
        match self {
            Self::DsqlBb8(pool) | Self::DsqlBb8Run(pool, _) => pool.close().await,
            Self::Bb8Postgres(pool) => drop(pool),
            Self::DeadpoolPostgres(pool) => pool.close(),
        }
    }
}

/// The query every client runs, on whichever pooled client it checked out.
async fn select_one_on(client: &tokio_postgres::Client) -> Result<(), String> {
    client
        .simple_query("SELECT 1")
        .await
        .map(drop)
        .map_err(|e| e.to_string())
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
        let tokens = Arc::new(self.tokens.clone());
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
