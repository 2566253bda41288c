//! `dsql-local` over the real PostgreSQL, and pools on it, for the tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
use dsql_local::{DsqlLocal, LocalConfigBuilder};
use dsql_tower::Operation;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name no other test or test binary uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Harness {
    pub local: DsqlLocal,
    pub config: DsqlConfig,
    pub tokens: SharedTokenProvider,
    pub application_name: String,
}

impl Harness {
    /// A `dsql-local` with an endpoint of its own (so that no other test
    /// shares its connect rate limiter), tokens valid for `token_duration`.
    pub async fn start(
        configure: impl FnOnce(LocalConfigBuilder) -> LocalConfigBuilder,
        token_duration: Duration,
    ) -> Self {
        let id = format!(
            "{:0>26}",
            format!("{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
        );
        let local = configure(DsqlLocal::builder().endpoint_host(format!("{id}.dsql.us-east-1.on.aws")))
            .start()
            .await
            .unwrap();
        let application_name = unique("dsql_bb8_test");
        let config = local
            .client_config("admin")
            .unwrap()
            .to_builder()
            .token_duration(token_duration)
            .application_name(&application_name)
            .build()
            .unwrap();
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        Self {
            local,
            config,
            tokens: SharedTokenProvider::new(CachingProvider::new(signer)),
            application_name,
        }
    }
}

/// A plain connection to the PostgreSQL behind `dsql-local`.
pub async fn direct() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

/// Upstream sessions opened by `application_name`, polled until it is
/// `expected` or `within` has passed.
pub async fn sessions_of(application_name: &str, expected: i64, within: Duration) -> i64 {
    let pg = direct().await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let count: i64 = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&application_name],
            )
            .await
            .unwrap()
            .get(0);
        if count == expected || tokio::time::Instant::now() >= deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Inserts `id` into `ledger` once: the id is claimed in `{ledger}_done`
/// (primary key), so a replay that overtakes a lost attempt's `COMMIT` gets a
/// conflict instead of applying twice. The ledger itself has no unique
/// constraint, so a double apply would show as a duplicate row.
pub fn record(ledger: &str, id: i64) -> Operation<()> {
    let sql = format!(
        "WITH claim AS (INSERT INTO {ledger}_done (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id) \
         INSERT INTO {ledger} (id) SELECT id FROM claim"
    );
    Operation::transaction(move |tx| {
        let sql = sql.clone();
        Box::pin(async move {
            tx.execute(&sql, &[&id]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
    .idempotent()
}

pub async fn create_ledger() -> String {
    let ledger = unique("bb8_ledger");
    direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {ledger} (id bigint NOT NULL); CREATE TABLE {ledger}_done (id bigint PRIMARY KEY)"
        ))
        .await
        .unwrap();
    ledger
}

pub async fn ledger_counts(ledger: &str) -> (i64, i64) {
    let row = direct()
        .await
        .query_one(&format!("SELECT count(*), count(DISTINCT id) FROM {ledger}"), &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

pub async fn drop_table(name: &str) {
    direct()
        .await
        .batch_execute(&format!("DROP TABLE IF EXISTS {name}_done; DROP TABLE {name}"))
        .await
        .unwrap();
}
