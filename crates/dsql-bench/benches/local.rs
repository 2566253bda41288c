//! Round-trip latency of `SELECT 1` through `dsql-local` (TLS, IAM token)
//! versus directly to the PostgreSQL behind it (plain TCP), in the same run.
//!
//! The ratio is `through_dsql_local_tls / direct_postgres` of the two
//! estimates criterion reports for the group `select_1_round_trip` (also in
//! `target/criterion/select_1_round_trip/*/new/estimates.json`).
//!
//! Both clients are tokio-postgres connections on the same client runtime,
//! with one query in flight. `dsql-local` runs on its own multi-thread
//! runtime in a dedicated thread, so the server and the client do not share a
//! scheduler; its connection to PostgreSQL is the same plain TCP as the
//! direct client's. Measure on a quiet machine.
//!
//! `cargo bench -p dsql-bench --bench local` (needs PostgreSQL on
//! 127.0.0.1:5432, trust, user and database `postgres`)
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use aws_credential_types::Credentials;
use criterion::{Criterion, criterion_group, criterion_main};
use dsql_auth::{CachingProvider, DsqlConfig, SigningProvider};
use dsql_local::DsqlLocal;
use dsql_tower::TokenLayer;
use dsql_tower::connect::{Connector, pg_config};
use tower::{Layer, Service, ServiceExt};

const UPSTREAM: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DIRECT: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable";

/// `dsql-local` running on its own runtime in its own thread.
struct LocalServer {
    config: DsqlConfig,
    credentials: Credentials,
    stop: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl LocalServer {
    fn start() -> Self {
        let (started_tx, started_rx) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("dsql-local".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("dsql-local-worker")
                    .enable_all()
                    .build()
                    .unwrap();
                let local = runtime
                    .block_on(DsqlLocal::builder().upstream(UPSTREAM).start())
                    .unwrap();
                started_tx
                    .send((local.client_config("admin").unwrap(), local.credentials()))
                    .unwrap();
                // The runtime's workers serve connections meanwhile.
                let _ = stop_rx.recv();
                runtime.block_on(local.shutdown());
            })
            .unwrap();
        let (config, credentials) = started_rx.recv().expect("dsql-local did not start");
        Self {
            config,
            credentials,
            stop,
            thread,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().unwrap();
    }
}

fn round_trip(c: &mut Criterion) {
    let server = LocalServer::start();

    // The client side: one runtime for both clients.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let direct = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(DIRECT, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        (client, task)
    });

    let through_local = runtime.block_on(async {
        let signer = SigningProvider::builder(&server.config)
            .credentials_provider(server.credentials.clone())
            .build();
        let mut connect =
            TokenLayer::new(CachingProvider::new(signer)).layer(Connector::new(&server.config).unwrap());
        connect
            .ready()
            .await
            .unwrap()
            .call(pg_config(&server.config))
            .await
            .unwrap()
    });

    // Both work before anything is measured.
    runtime.block_on(async {
        let one: i32 = direct.0.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        let one: i32 = through_local.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    });

    let mut group = c.benchmark_group("select_1_round_trip");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("direct_postgres", |b| {
        b.to_async(&runtime).iter(|| async {
            let row = direct.0.query_one("SELECT 1", &[]).await.unwrap();
            row.get::<_, i32>(0)
        })
    });
    group.bench_function("through_dsql_local_tls", |b| {
        b.to_async(&runtime).iter(|| async {
            let row = through_local.query_one("SELECT 1", &[]).await.unwrap();
            row.get::<_, i32>(0)
        })
    });
    group.finish();

    runtime.block_on(async {
        let (client, task) = direct;
        drop(client);
        let _ = task.await;
        through_local.close().await;
    });
    server.stop();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
