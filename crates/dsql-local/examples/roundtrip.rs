//! Round-trip latency of `SELECT 1` through dsql-local (TLS, token check at
//! connect, framed relay) versus directly to PostgreSQL, as a ratio.
//!
//! ```text
//! cargo run -p dsql-local --example roundtrip [-- <queries>]
//! ```
//!
//! Needs PostgreSQL on 127.0.0.1:5432 with trust authentication. Both
//! clients run in this process; build with `--release` for real numbers.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dsql_local::DsqlLocal;
use dsql_testkit::direct;
use dsql_testkit::local::{connect, start};
use tokio_postgres::Client;

async fn measure(client: &Client, queries: usize) -> Duration {
    for _ in 0..queries / 10 {
        client.simple_query("SELECT 1").await.expect("warm-up");
    }
    let mut samples = Vec::with_capacity(queries);
    for _ in 0..queries {
        let started = Instant::now();
        client.simple_query("SELECT 1").await.expect("query");
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() {
    let queries = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000_usize)
        .max(10);
    let local = start(DsqlLocal::builder()).await;
    let through = connect(&local, "admin")
        .await
        .expect("connects through dsql-local");
    let direct = direct().await;

    let mut ratios = Vec::new();
    for run in 1..=3 {
        let d = measure(&direct, queries).await;
        let l = measure(&through, queries).await;
        let ratio = l.as_secs_f64() / d.as_secs_f64();
        println!("run {run}: median SELECT 1 direct {d:?}, through dsql-local {l:?}, ratio {ratio:.2}");
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio over 3 runs: {:.2}", ratios[1]);
    let stats = local.stats().snapshot();
    println!(
        "relayed {} bytes from the client, {} bytes to it",
        stats.bytes_from_clients, stats.bytes_to_clients
    );
    local.shutdown().await;
}
