//! The three ways of running the contended transaction, and what each
//! counts as an attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aurora_dsql_sqlx_connector::{DsqlError, OCCRetryConfig, retry_on_occ};
use dsql_bb8::DsqlPool;
use dsql_tower::Operation;
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::BoxError;
use crate::clients::{self, Setup};
use crate::scenario::{Scenario, Timing};
use crate::server::LocalProcess;

/// Attempts after which the no-backoff loop gives up on a transaction (and
/// surfaces an error): high enough never to be reached unless a row is
/// starved.
pub(super) const NO_BACKOFF_MAX_ATTEMPTS: u64 = 1_000;

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(super) enum OccKind {
    /// `dsql-bb8`'s `pool.run(Operation::transaction(..))`, the pool's
    /// default replay policy (conflicts: full jitter from 2 ms to 250 ms,
    /// 100 attempts, 10 s; the connection kept through the backoff).
    #[serde(rename = "dsql-bb8-run")]
    Bb8Run,
    /// The official connector's `retry_on_occ` with its defaults (3
    /// attempts, 1 ms doubling to 100 ms, plus up to 25 % jitter).
    #[serde(rename = "sqlx-retry-on-occ")]
    SqlxRetryOnOcc,
    /// `dsql-bb8`'s plain `pool.get()`, and a loop that starts the
    /// transaction again at once on every conflict.
    #[serde(rename = "no-backoff")]
    NoBackoff,
}

impl OccKind {
    pub(super) const ALL: [Self; 3] = [Self::Bb8Run, Self::SqlxRetryOnOcc, Self::NoBackoff];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Bb8Run => "dsql-bb8 run",
            Self::SqlxRetryOnOcc => "sqlx connector retry_on_occ",
            Self::NoBackoff => "no backoff",
        }
    }

    /// The `pools` client whose connection setup this one uses.
    fn pools_kind(self) -> clients::ClientKind {
        match self {
            Self::Bb8Run => clients::ClientKind::DsqlBb8Run,
            Self::SqlxRetryOnOcc => clients::ClientKind::SqlxConnector,
            Self::NoBackoff => clients::ClientKind::DsqlBb8Get,
        }
    }
}

/// The two statements of one hot row's transaction (simple query protocol,
/// built once: every client sends the same text).
#[derive(Clone, Debug)]
pub(super) struct Key {
    select: Arc<str>,
    update: Arc<str>,
}

impl Key {
    /// Row `k` of `table`.
    pub(super) fn new(table: &str, k: u32) -> Self {
        Self {
            select: format!("SELECT v FROM {table} WHERE k = {k}").into(),
            update: format!("UPDATE {table} SET v = v + 1 WHERE k = {k}").into(),
        }
    }
}

/// A transaction that reached its caller as an error.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) message: String,
    /// `COMMIT` was sent and not answered: the increment may have landed.
    pub(super) outcome_unknown: bool,
}

/// How the client runs a transaction.
#[derive(Clone)]
enum Driver {
    Bb8Run(DsqlPool),
    Sqlx(sqlx::PgPool, Arc<OCCRetryConfig>),
    NoBackoff(DsqlPool),
}

/// A connected client, shared by the load's tasks.
#[derive(Clone)]
pub(super) struct OccClient {
    driver: Driver,
    /// The pool as `pools` built it, kept to close it.
    pool: clients::Client,
}

impl OccClient {
    /// A fresh pool of `pool_size` connections to `local`, built and warmed
    /// up as `pools` builds its clients for hot writes (each the way its
    /// documentation advises; the connector with `OCCRetryConfig::default()`).
    pub(super) async fn connect(
        kind: OccKind,
        local: &LocalProcess,
        upstream: &str,
        pool_size: u32,
    ) -> Result<Self, BoxError> {
        let setup = Setup {
            local,
            upstream,
            pool_size,
            scenario: Scenario::Write,
            // Only the recycle storm reads the timing (its connection
            // lifetime): the pools keep their defaults.
            timing: Timing {
                steady: Duration::ZERO,
                warmup: Duration::ZERO,
                session_lifetime: Duration::ZERO,
                drop_every: Duration::ZERO,
            },
        };
        let pool = clients::Client::connect(kind.pools_kind(), &setup).await?;
        let driver = match (kind, &pool) {
            (OccKind::Bb8Run, clients::Client::DsqlBb8Run(p)) => Driver::Bb8Run(p.clone()),
            (OccKind::SqlxRetryOnOcc, clients::Client::Sqlx(p, occ)) => {
                Driver::Sqlx(p.clone(), Arc::clone(occ))
            }
            (OccKind::NoBackoff, clients::Client::DsqlBb8Get(p)) => Driver::NoBackoff(p.clone()),
            _ => {
                pool.close().await;
                return Err(format!("{}: `pools` built another client", kind.name()).into());
            }
        };
        Ok(Self { driver, pool })
    }

    /// Runs `key`'s transaction (`BEGIN`, read, increment, `COMMIT`) until
    /// it commits or the client gives up; adds each attempt to `attempts`
    /// as it starts.
    pub(super) async fn transact(&self, key: &Key, attempts: &Arc<AtomicU64>) -> Result<(), Failure> {
        match &self.driver {
            Driver::Bb8Run(pool) => pool.run(increment(key, attempts)).await.map_err(|error| Failure {
                message: error.report().to_string(),
                outcome_unknown: error.is_outcome_unknown(),
            }),
            Driver::Sqlx(pool, occ) => sqlx_transact(pool, occ, key, attempts).await,
            Driver::NoBackoff(pool) => no_backoff(pool, key, attempts).await,
        }
    }

    /// Closes the pool and waits for its connections to close.
    pub(super) async fn close(self) {
        drop(self.driver);
        self.pool.close().await;
    }
}

/// The transaction as a `dsql-bb8` operation: replayed whole on conflicts.
/// Not idempotent (an increment), so a `COMMIT` left unanswered surfaces
/// rather than being replayed.
fn increment(key: &Key, attempts: &Arc<AtomicU64>) -> Operation<()> {
    let (key, attempts) = (key.clone(), Arc::clone(attempts));
    Operation::transaction(move |tx| {
        // The closure runs once per attempt, after `BEGIN`.
        attempts.fetch_add(1, Ordering::Relaxed);
        let key = key.clone();
        Box::pin(async move {
            tx.simple_query(&key.select).await?;
            tx.simple_query(&key.update).await?;
            Ok::<(), tokio_postgres::Error>(())
        })
    })
    .named("occ increment")
}

/// The transaction through the connector's `retry_on_occ`, a fresh
/// checkout per attempt; a failed statement is rolled back before the
/// retry, as the connector's own `transaction_with_retry` does.
async fn sqlx_transact(
    pool: &sqlx::PgPool,
    occ: &OCCRetryConfig,
    key: &Key,
    attempts: &AtomicU64,
) -> Result<(), Failure> {
    let commit_sent = AtomicBool::new(false);
    let attempt = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        commit_sent.store(false, Ordering::Relaxed);
        let mut tx = pool.begin().await?;
        let statements = async {
            sqlx::raw_sql(sqlx::AssertSqlSafe(Arc::clone(&key.select)))
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(Arc::clone(&key.update)))
                .execute(&mut *tx)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        match statements {
            Ok(()) => {
                commit_sent.store(true, Ordering::Relaxed);
                tx.commit().await
            }
            Err(error) => {
                let _ = tx.rollback().await;
                Err(error)
            }
        }
    };
    retry_on_occ(occ, attempt).await.map_err(|error| {
        // The server answered the COMMIT when it sent an error back.
        let answered = matches!(
            &error,
            DsqlError::OCCRetryExhausted { .. } | DsqlError::DatabaseError(sqlx::Error::Database(_))
        );
        Failure {
            message: error.to_string(),
            outcome_unknown: commit_sent.load(Ordering::Relaxed) && !answered,
        }
    })
}

/// One checkout, then the transaction again at once after every conflict
/// (`40001`, at any statement), up to [`NO_BACKOFF_MAX_ATTEMPTS`].
async fn no_backoff(pool: &DsqlPool, key: &Key, attempts: &AtomicU64) -> Result<(), Failure> {
    let mut connection = pool.get().await.map_err(|error| Failure {
        message: error.report().to_string(),
        outcome_unknown: false,
    })?;
    for _ in 0..NO_BACKOFF_MAX_ATTEMPTS {
        attempts.fetch_add(1, Ordering::Relaxed);
        match once(&mut connection, key).await {
            Ok(()) => return Ok(()),
            Err((error, _)) if error.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {}
            Err((error, at_commit)) => {
                return Err(Failure {
                    outcome_unknown: at_commit && error.as_db_error().is_none(),
                    message: postgres_error(&error),
                });
            }
        }
    }
    Err(Failure {
        message: format!("gave up after {NO_BACKOFF_MAX_ATTEMPTS} attempts, each a conflict"),
        outcome_unknown: false,
    })
}

/// One attempt on `client`; the error says whether it came from `COMMIT`.
async fn once(client: &mut tokio_postgres::Client, key: &Key) -> Result<(), (tokio_postgres::Error, bool)> {
    let tx = client.transaction().await.map_err(|e| (e, false))?;
    let statements = async {
        tx.simple_query(&key.select).await?;
        tx.simple_query(&key.update).await?;
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    match statements {
        Ok(()) => tx.commit().await.map_err(|e| (e, true)),
        Err(error) => {
            let _ = tx.rollback().await;
            Err((error, false))
        }
    }
}

/// tokio-postgres' error with the server's code and message, which its
/// `Display` leaves out.
fn postgres_error(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}
