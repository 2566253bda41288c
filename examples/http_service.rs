//! An HTTP service (axum) on a DSQL pool that keeps answering through token
//! expiry and session cuts, and shows its metrics.
//!
//! `cargo run --example http_service` starts `dsql-local` (when
//! `CLUSTER_ENDPOINT` is unset) with 5-second sessions and 10-second tokens,
//! serves `GET /visit/{request-id}` and `GET /metrics` on 127.0.0.1, and has
//! 16 clients call it for 20 seconds (`-- --seconds N`, `-- --clients N`)
//! through a pool of 8 connections; then it checks that no request failed
//! and that every answered request was recorded exactly once, and prints
//! what `/metrics` shows. `-- --serve` keeps serving until Ctrl-C.
//!
//! Each visit is written under its request id, so running it twice changes
//! nothing: the operation is marked idempotent, and even a session cut while
//! `COMMIT` is in flight (an unknown outcome) is replayed safely. A plain
//! `UPDATE … SET visits = visits + 1` could not be: its unknown outcomes
//! would have to be reported to the client.
//!
//! `/metrics` is Prometheus' text format, from `metrics-exporter-prometheus`
//! with recommended naming (`_seconds`, `_total`) and histogram buckets: the
//! libraries' `metrics` feature is on (the README's "Metrics and traces"
//! lists every series). `RUST_LOG=dsql_tower=debug` shows the retries in
//! their operation spans.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::routing::get;
use dsql_bb8::DsqlPool;
use dsql_rs::{BoxError, Target};
use dsql_tower::Operation;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Histogram buckets, in seconds: OpenTelemetry's advice for
/// `db.client.operation.duration`, used for every histogram here.
pub(crate) const BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Installs the Prometheus recorder: before the pool is built, so that the
/// pool describes its metrics (units) to it.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, BoxError> {
    let prometheus = PrometheusBuilder::new()
        // `_seconds` and `_total`, as OpenTelemetry's Prometheus exporter
        // names the same metrics.
        .with_recommended_naming(true)
        // Without buckets, histograms render as summaries, which cannot be
        // aggregated across instances.
        .set_buckets(&BUCKETS)?
        .install_recorder()?;
    // The recorder only drains histograms and expires series when asked.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(prometheus)
}

pub(crate) struct App {
    pub(crate) pool: DsqlPool,
    pub(crate) table: String,
}

/// `GET /visit/{request}` and `GET /metrics`.
pub(crate) fn router(app: Arc<App>, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/visit/{request}", get(visit))
        .with_state(app)
        .route(
            "/metrics",
            get(move || {
                let prometheus = prometheus.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        prometheus.render(),
                    )
                }
            }),
        )
}

/// One visit, recorded under its request id, then counted.
async fn visit(
    State(app): State<Arc<App>>,
    Path(request): Path<i64>,
) -> Result<String, (StatusCode, String)> {
    let insert = format!(
        // Keyed by request id: a replay after a lost COMMIT cannot record
        // the visit twice (a `WHERE NOT EXISTS` guard could).
        "INSERT INTO {0} (request) VALUES ($1) ON CONFLICT (request) DO NOTHING",
        app.table
    );
    let count = format!("SELECT count(*) FROM {}", app.table);
    let operation = Operation::transaction(move |tx| {
        let (insert, count) = (insert.clone(), count.clone());
        Box::pin(async move {
            tx.execute(&insert, &[&request]).await?;
            Ok::<i64, tokio_postgres::Error>(tx.query_one(&count, &[]).await?.get(0))
        })
    })
    .idempotent()
    // `db.operation.name` in its span and in db.client.operation.duration.
    .named("visit");
    app.pool
        .run(operation)
        .await
        .map(|visits| format!("{visits} visits\n"))
        .map_err(|error| (StatusCode::SERVICE_UNAVAILABLE, error.to_string()))
}

/// The table of visits, created through `pool`.
pub(crate) async fn create_table(pool: &DsqlPool) -> Result<String, BoxError> {
    let table = format!("http_example_{}", std::process::id());
    pool.get()
        .await?
        .batch_execute(&format!(
            // No unique constraint: a double apply would show as a duplicate row.
            "CREATE TABLE {table} (request bigint PRIMARY KEY)"
        ))
        .await?;
    Ok(table)
}

/// `clients` clients calling `/visit/{id}` on `addr` until `until`, each
/// with ids of its own; the requests answered and failed.
pub(crate) async fn load(addr: SocketAddr, clients: i64, until: Instant) -> (i64, i64) {
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0_i64, 0_i64);
                while Instant::now() < until {
                    let request = client * 1_000_000_000 + ok + failed;
                    match http_get(addr, &format!("/visit/{request}")).await {
                        Ok((200, _)) => ok += 1,
                        Ok((_, body)) => {
                            if failed == 0 {
                                eprintln!("a request failed: {body}");
                            }
                            failed += 1
                        }
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for task in tasks {
        let (o, f) = task.await.unwrap_or((0, 1));
        ok += o;
        failed += f;
    }
    (ok, failed)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    dsql_rs::init_tracing();
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    let option = |name: &str, default: u64| -> Result<u64, BoxError> {
        let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
        Ok(value.map(|s| s.parse::<u64>()).transpose()?.unwrap_or(default))
    };
    let seconds = option("--seconds", 20)?;
    let clients = i64::try_from(option("--clients", 16)?)?;

    let prometheus = install_metrics()?;
    let target = Target::from_env_or_local_with(
        |local| local.session_lifetime(Duration::from_secs(5)),
        Some(Duration::from_secs(10)),
    )
    .await?;
    println!("connecting to {}", target.describe());
    let pool = DsqlPool::builder(&target.config)
        .max_size(8)
        // `db.client.connection.pool.name` of its metrics.
        .pool_name("http_service")
        .build(target.tokens.clone())?;
    let table = create_table(&pool).await?;

    let app = Arc::new(App {
        pool: pool.clone(),
        table: table.clone(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("serving http://{addr}/visit/{{request-id}} and http://{addr}/metrics");
    let server = tokio::spawn(async move { axum::serve(listener, router(app, prometheus)).await });

    if serve {
        tokio::signal::ctrl_c().await?;
    } else {
        let until = Instant::now() + Duration::from_secs(seconds);
        let (ok, failed) = load(addr, clients, until).await;
        let counts = pool
            .get()
            .await?
            .query_one(
                &format!("SELECT count(*), count(DISTINCT request) FROM {table}"),
                &[],
            )
            .await?;
        let (rows, distinct): (i64, i64) = (counts.get(0), counts.get(1));
        println!(
            "{seconds} s of {clients} clients on 8 connections, through 5 s sessions and 10 s tokens: \
             {ok} requests answered, {failed} failed"
        );
        println!("recorded: {rows} rows, {distinct} distinct requests");
        println!("pool: {:?}", pool.state());
        let (_, metrics) = http_get(addr, "/metrics").await?;
        println!("GET /metrics (buckets left out):");
        for line in metrics.lines() {
            if !line.starts_with('#') && !line.contains("_bucket{") && !line.is_empty() {
                println!("  {line}");
            }
        }
        if failed > 0 || rows != ok || distinct != ok {
            return Err("requests failed, or were lost or recorded twice".into());
        }
    }

    server.abort();
    pool.get()
        .await?
        .batch_execute(&format!("DROP TABLE {table}"))
        .await?;
    pool.close().await;
    target.shutdown().await;
    Ok(())
}

/// A minimal HTTP/1.1 GET of `path`, to keep the example free of an HTTP
/// client crate: the status and the body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|code| code.parse().ok());
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    status
        .map(|status| (status, body))
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))
}
