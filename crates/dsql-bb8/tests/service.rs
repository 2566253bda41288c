//! The pool as a `tower::Service` under tower's own layers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dsql_bb8::DsqlPool;
use dsql_testkit::{Harness, sessions_of};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, ErrorClass, Operation, OperationExt};
use tower::ServiceBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_service_under_retry_timeout_and_concurrency_limit() {
    let harness = Harness::start(|b| b, Duration::from_secs(900)).await;
    let pool = DsqlPool::builder(&harness.config)
        .max_size(4)
        .build(harness.tokens.clone())
        .unwrap();
    let stack = ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .layer(ClassifyLayer::new())
        .timeout(Duration::from_millis(500))
        .concurrency_limit(8)
        .service(pool.service());

    // Many concurrent callers, fewer connections: all served.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let mut stack = stack.clone();
            tokio::spawn(async move {
                let op = Operation::autocommit(move |client| {
                    Box::pin(async move {
                        let row = client.query_one("SELECT $1::int + 1", &[&i]).await?;
                        Ok::<i32, tokio_postgres::Error>(row.get(0))
                    })
                })
                .idempotent();
                stack.run(op).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), i as i32 + 1);
    }

    // A timed-out operation: its connection is cancelled and dropped, never
    // returned to the pool mid-query.
    let mut one = stack.clone();
    let slow = Operation::autocommit(|client| {
        Box::pin(async move { client.simple_query("SELECT pg_sleep(30)").await.map(drop) })
    });
    let error = one.run(slow).await.unwrap_err();
    assert_eq!(error.class(), ErrorClass::OutcomeUnknown, "{error}");
    assert_eq!(error.attempts(), 1, "not idempotent: not replayed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while pool.state().retired.abandoned == 0 || harness.local.stats().snapshot().cancels_relayed == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", pool.state());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    pool.close().await;
    assert_eq!(
        sessions_of(&harness.application_name, 0, Duration::from_secs(5)).await,
        0
    );
    harness.local.shutdown().await;
}
