//! An HTTP service (axum) on a DSQL pool that keeps answering through token
//! expiry and session cuts.
//!
//! `cargo run --example http_service` starts `dsql-local` (when
//! `CLUSTER_ENDPOINT` is unset) with 5-second sessions and 10-second tokens,
//! serves `GET /visit/{request-id}` on 127.0.0.1, and has 8 clients call it
//! for 20 seconds (`-- --seconds N`); then it checks that no request failed
//! and that every answered request was recorded exactly once. `-- --serve`
//! keeps serving until Ctrl-C.
//!
//! Each visit is written under its request id, so running it twice changes
//! nothing: the operation is marked idempotent, and even a session cut while
//! `COMMIT` is in flight (an unknown outcome) is replayed safely. A plain
//! `UPDATE … SET visits = visits + 1` could not be: its unknown outcomes
//! would have to be reported to the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use dsql_bb8::DsqlPool;
use dsql_rs::{BoxError, Target};
use dsql_tower::Operation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct App {
    pool: DsqlPool,
    table: String,
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
    .named("visit");
    app.pool
        .run(operation)
        .await
        .map(|visits| format!("{visits} visits\n"))
        .map_err(|error| (StatusCode::SERVICE_UNAVAILABLE, error.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let serve = args.iter().any(|a| a == "--serve");
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.parse::<u64>())
        .transpose()?
        .unwrap_or(20);

    let target = Target::from_env_or_local_with(
        |local| local.session_lifetime(Duration::from_secs(5)),
        Some(Duration::from_secs(10)),
    )
    .await?;
    println!("connecting to {}", target.describe());
    let pool = DsqlPool::builder(&target.config)
        .max_size(8)
        .build(target.tokens.clone())?;
    let table = format!("http_example_{}", std::process::id());
    pool.get()
        .await?
        .batch_execute(&format!(
            // No unique constraint: a double apply would show as a duplicate row.
            "CREATE TABLE {table} (request bigint PRIMARY KEY)"
        ))
        .await?;

    let app = Arc::new(App {
        pool: pool.clone(),
        table: table.clone(),
    });
    let router = Router::new()
        .route("/visit/{request}", get(visit))
        .with_state(app);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("serving http://{addr}/visit/{{request-id}}");
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    if serve {
        tokio::signal::ctrl_c().await?;
    } else {
        let until = Instant::now() + Duration::from_secs(seconds);
        let clients: Vec<_> = (0..8_i64)
            .map(|client| {
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0_i64, 0_i64);
                    while Instant::now() < until {
                        let request = client * 1_000_000_000 + ok + failed;
                        match http_get(addr, request).await {
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
        for client in clients {
            let (o, f) = client.await?;
            ok += o;
            failed += f;
        }
        let counts = pool
            .get()
            .await?
            .query_one(
                &format!("SELECT count(*), count(DISTINCT request) FROM {table}"),
                &[],
            )
            .await?;
        let (rows, distinct): (i64, i64) = (counts.get(0), counts.get(1));
        println!("{seconds} s through 5 s sessions and 10 s tokens: {ok} requests answered, {failed} failed");
        println!("recorded: {rows} rows, {distinct} distinct requests");
        println!("pool: {:?}", pool.state());
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

/// A minimal HTTP/1.1 GET, to keep the example free of an HTTP client crate.
async fn http_get(addr: std::net::SocketAddr, request: i64) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!("GET /visit/{request} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
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
