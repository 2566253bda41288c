//! The three clients compared, and the operations they run.

use std::sync::Arc;
use std::time::Duration;

use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
use dsql_bb8::DsqlPool;
use dsql_tower::connect::ConnectStack;
use dsql_tower::failover::{EndpointState, Failover, HealthPolicy, Probe};
use dsql_tower::{Error, Operation};
use serde::Serialize;

use super::regions::RegionsProcess;
use crate::BoxError;

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum ClientKind {
    /// `build_cluster` over A and B, with a heartbeat probe.
    Cluster,
    /// `build` over A only.
    Single,
    /// A pool per region: A, and B once when A fails.
    Naive,
}

impl ClientKind {
    pub(super) const ALL: [Self; 3] = [Self::Cluster, Self::Single, Self::Naive];

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Cluster => "dsql-bb8 build_cluster (A, B)",
            Self::Single => "dsql-bb8 build (A only)",
            Self::Naive => "naive: pool A, on error pool B",
        }
    }
}

/// What every client is built with.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) pool_size: u32,
    pub(super) connection_timeout: Duration,
    pub(super) probe_interval: Duration,
    pub(super) failback_ramp: Duration,
    pub(super) heartbeat: String,
}

/// Where a write was acknowledged, when the client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    A,
    B,
    /// The cluster pool: its connections are at either.
    Either,
}

type ClusterPool = DsqlPool<Failover<ConnectStack<SharedTokenProvider>>>;

/// A client, shared by the load's tasks.
#[derive(Clone)]
pub(super) enum Client {
    Cluster(ClusterPool),
    Single(DsqlPool),
    Naive { a: DsqlPool, b: DsqlPool },
}

const APPLICATION_NAME: &str = "dsql-bench-failover";

impl Client {
    pub(super) fn connect(
        kind: ClientKind,
        regions: &RegionsProcess,
        settings: &Settings,
    ) -> Result<Self, BoxError> {
        let credentials = regions.credentials();
        let tokens = |member: &DsqlConfig| {
            SharedTokenProvider::new(CachingProvider::new(
                SigningProvider::builder(member)
                    .credentials_provider(credentials.clone())
                    .build(),
            ))
        };
        let builder = |config: &DsqlConfig| {
            DsqlPool::builder(config)
                .max_size(settings.pool_size)
                .connection_timeout(settings.connection_timeout)
        };
        Ok(match kind {
            ClientKind::Cluster => {
                let cluster = regions.cluster(APPLICATION_NAME)?;
                let pool = builder(cluster.local())
                    .health_policy(
                        HealthPolicy::default()
                            .probe_interval(settings.probe_interval)
                            .failback_ramp(settings.failback_ramp),
                    )
                    .probe(Probe::heartbeat(&settings.heartbeat))
                    .build_cluster(&cluster, tokens)?;
                Self::Cluster(pool)
            }
            ClientKind::Single => {
                let a = regions.config(0, APPLICATION_NAME)?;
                Self::Single(builder(&a).build(tokens(&a))?)
            }
            ClientKind::Naive => {
                let (a, b) = (
                    regions.config(0, APPLICATION_NAME)?,
                    regions.config(1, APPLICATION_NAME)?,
                );
                Self::Naive {
                    a: builder(&a).build(tokens(&a))?,
                    b: builder(&b).build(tokens(&b))?,
                }
            }
        })
    }

    /// Runs `operation`; says where it was acknowledged.
    pub(super) async fn run(&self, operation: Operation<()>) -> Result<Side, Error> {
        match self {
            Self::Cluster(pool) => pool.run(operation).await.map(|()| Side::Either),
            Self::Single(pool) => pool.run(operation).await.map(|()| Side::A),
            Self::Naive { a, b } => match a.run(operation.clone()).await {
                Ok(()) => Ok(Side::A),
                Err(_) => b.run(operation).await.map(|()| Side::B),
            },
        }
    }

    /// Whether the client is back at A: for the cluster pool, A healthy and
    /// none of its connections at B; `None` for the others, which say it by
    /// where their writes are acknowledged.
    pub(super) fn all_at_a(&self) -> Option<bool> {
        let Self::Cluster(pool) = self else {
            return None;
        };
        let state = pool.state();
        let (a, b) = (state.endpoints.first()?, state.endpoints.get(1)?);
        Some(a.state == EndpointState::Healthy && b.connections == 0)
    }

    pub(super) async fn close(&self) {
        match self {
            Self::Cluster(pool) => pool.close().await,
            Self::Single(pool) => pool.close().await,
            Self::Naive { a, b } => {
                tokio::join!(a.close(), b.close());
            }
        }
    }
}

/// The keyed write: claims `id` in `{ledger}_done` (primary key, `ON
/// CONFLICT DO NOTHING`) and inserts it into the ledger (no unique key)
/// only if the claim is new, in one transaction, marked idempotent. A write
/// applied twice would be a duplicate row in the ledger.
pub(super) fn write_sql(ledger: &str) -> Arc<str> {
    format!(
        "WITH claim AS (INSERT INTO {ledger}_done (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id) \
         INSERT INTO {ledger} (id) SELECT id FROM claim"
    )
    .into()
}

pub(super) fn write(sql: &Arc<str>, id: i64) -> Operation<()> {
    let sql = Arc::clone(sql);
    Operation::transaction(move |tx| {
        let sql = Arc::clone(&sql);
        Box::pin(async move { tx.execute(&*sql, &[&id]).await.map(drop) })
    })
    .idempotent()
}

/// The optional read: the write's row, in autocommit.
pub(super) fn read_sql(ledger: &str) -> Arc<str> {
    format!("SELECT count(*) FROM {ledger} WHERE id = $1").into()
}

pub(super) fn read(sql: &Arc<str>, id: i64) -> Operation<()> {
    let sql = Arc::clone(sql);
    Operation::autocommit(move |client| {
        let sql = Arc::clone(&sql);
        Box::pin(async move { client.query_one(&*sql, &[&id]).await.map(drop) })
    })
    .idempotent()
}
