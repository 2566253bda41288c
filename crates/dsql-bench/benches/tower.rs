//! Per-operation overhead of the full tower stack (retry, classification,
//! session) against a bare `tokio_postgres::Client`, both through the same
//! `dsql-local` front end with TLS, in the same run.
//!
//! `cargo bench -p dsql-bench --bench tower` (needs PostgreSQL on 127.0.0.1:5432)
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dsql_auth::{CachingProvider, SharedTokenProvider, SigningProvider};
use dsql_local::DsqlLocal;
use dsql_tower::connect::{Connector, pg_config};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, Operation, OperationExt, Session, TokenLayer};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

fn select_one() -> Operation<i32> {
    Operation::autocommit(|client| {
        Box::pin(
            async move { Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0)) },
        )
    })
    .idempotent()
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (local, config, tokens) = runtime.block_on(async {
        let local = DsqlLocal::builder().start().await.unwrap();
        let config = local.client_config("admin").unwrap();
        let signer = SigningProvider::builder(&config)
            .credentials_provider(local.credentials())
            .build();
        let tokens = SharedTokenProvider::new(CachingProvider::new(signer));
        (local, config, tokens)
    });

    let bare = runtime.block_on(async {
        let mut connect = TokenLayer::new(tokens.clone()).layer(Connector::new(&config).unwrap());
        connect
            .ready()
            .await
            .unwrap()
            .call(pg_config(&config))
            .await
            .unwrap()
    });
    let mut stack = ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .layer(ClassifyLayer::new())
        .service(Session::from_config(&config, tokens.clone()).unwrap());
    runtime.block_on(stack.run(select_one())).unwrap();

    let mut group = c.benchmark_group("select_1_through_dsql_local");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("bare_tokio_postgres_client", |b| {
        b.to_async(&runtime).iter(|| async {
            let row = bare.query_one("SELECT 1", &[]).await.unwrap();
            row.get::<_, i32>(0)
        })
    });
    group.bench_function("full_stack_retry_classify_session", |b| {
        b.to_async(&runtime).iter(|| {
            let mut stack = stack.clone();
            async move { stack.run(select_one()).await.unwrap() }
        })
    });
    group.finish();

    runtime.block_on(async {
        bare.close().await;
        local.shutdown().await;
    });
}

/// The layers alone: retry policy and classification over a service that
/// answers at once, against calling that service directly.
fn layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let noop = tower::service_fn(|_op: Operation<i32>| async { Ok::<i32, dsql_tower::Error>(1) });
    let stacked = ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .layer(ClassifyLayer::new())
        .service(noop);
    let op = select_one();

    let mut group = c.benchmark_group("layers_over_a_noop_service");
    group.bench_function("noop_service", |b| {
        b.to_async(&runtime).iter(|| {
            let (mut bare, op) = (noop, op.clone());
            async move { bare.run(op).await.unwrap() }
        })
    });
    group.bench_function("retry_and_classify_layers", |b| {
        b.to_async(&runtime).iter(|| {
            let (mut stacked, op) = (stacked.clone(), op.clone());
            async move { stacked.run(op).await.unwrap() }
        })
    });
    group.finish();
}

criterion_group!(benches, overhead, layers);
criterion_main!(benches);
