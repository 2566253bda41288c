//! A `Session` over a `Failover` of two regional `dsql-local` endpoints:
//! the one connection leaves a region that is cut off and comes back when
//! it heals, with every write in PostgreSQL exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{drop_table, ledger};
use dsql_auth::{CachingProvider, ClusterSet, SharedTokenProvider, SigningProvider};
use dsql_local::{DsqlLocal, RegionsBuilder};
use dsql_tower::failover::{EndpointState, FailoverBuilder, HealthPolicy, Probe};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{OperationExt, Session};
use tower::ServiceBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_follows_the_region_that_serves() {
    let regions = RegionsBuilder::new(DsqlLocal::builder().upstream(common::UPSTREAM))
        .peer("us-east-1", "towerfailover0000000000001")
        .peer("us-east-2", "towerfailover0000000000002")
        .start()
        .await
        .unwrap();
    let mut members = regions.client_configs("admin").unwrap().into_iter();
    let mut cluster = ClusterSet::new(members.next().unwrap());
    for peer in members {
        cluster = cluster.peer_config(peer).unwrap();
    }
    let credentials = regions.credentials();
    let failover = FailoverBuilder::for_cluster(&cluster, |member| {
        SharedTokenProvider::new(CachingProvider::new(
            SigningProvider::builder(member)
                .credentials_provider(credentials.clone())
                .build(),
        ))
    })
    .unwrap()
    .policy(
        HealthPolicy::default()
            .probe_interval(Duration::from_millis(100))
            .failback_ramp(Duration::ZERO),
    )
    .probe(Probe::transaction())
    .build()
    .unwrap();
    let session = Session::new(failover.clone(), dsql_tower::connect::pg_config(cluster.local()));
    let mut stack = ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .service(session.clone());
    let ledger = ledger::create("tower_failover").await;
    let connections = || -> Vec<usize> { failover.endpoints().iter().map(|e| e.connections).collect() };

    stack.run(ledger::record(&ledger, 1)).await.unwrap();
    assert_eq!(connections(), [1, 0], "the local region first");

    // Cut off: the session's connection is cut, the replay connects to B.
    regions.local().faults().isolate();
    for id in 2..=5 {
        stack.run(ledger::record(&ledger, id)).await.unwrap();
    }
    assert_eq!(connections(), [0, 1]);
    assert!(!failover.endpoints()[0].state.is_serving());

    // Healed: traffic starts a probe, it passes, and the next checkout
    // moves the session back.
    regions.local().faults().heal();
    let mut id = 6;
    while connections() != [1, 0] && id < 500 {
        stack.run(ledger::record(&ledger, id)).await.unwrap();
        id += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(connections(), [1, 0], "{:?}", failover.endpoints());
    assert_eq!(failover.endpoints()[0].state, EndpointState::Healthy);
    assert!(session.stats().retired.failback >= 1);

    let (rows, distinct) = ledger::counts(&ledger).await;
    assert_eq!((rows, distinct), (id - 1, id - 1), "every write once");
    drop_table(&ledger).await;
    regions.shutdown().await;
}
