//! The quickstart: a DSQL pool, a table, conflicting transactions that all
//! land, and the pool's state.
//!
//! `cargo run --example bb8_pool` runs against the cluster in
//! `CLUSTER_ENDPOINT` (AWS credentials from the default chain) or, when it is
//! unset, against `dsql-local` over the local PostgreSQL: same code, same
//! IAM authentication flow.

use std::time::Instant;

use dsql_bb8::DsqlPool;
use dsql_rs::{BoxError, Target};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    dsql_rs::init_tracing();
    let target = Target::from_env_or_local().await?;
    println!("connecting to {}", target.describe());

    let pool = DsqlPool::builder(&target.config)
        .max_size(8)
        .build(target.tokens.clone())?;

    let table = format!("quickstart_{}", std::process::id());
    let create = format!("CREATE TABLE {table} (id int PRIMARY KEY, hits bigint NOT NULL)");
    let seed = format!("INSERT INTO {table} VALUES (1, 0)");
    pool.get().await?.batch_execute(&create).await?;
    pool.get().await?.execute(&seed, &[]).await?;

    // 16 tasks × 25 read-modify-write transactions on one row: they
    // conflict (40001 / OC000) and are replayed until each lands once.
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, table) = (pool.clone(), table.clone());
            tokio::spawn(async move {
                for _ in 0..25 {
                    let (select, update) = (
                        format!("SELECT hits FROM {table} WHERE id = 1"),
                        format!("UPDATE {table} SET hits = $1 WHERE id = 1"),
                    );
                    pool.transaction(move |tx| {
                        let (select, update) = (select.clone(), update.clone());
                        Box::pin(async move {
                            let hits: i64 = tx.query_one(&select, &[]).await?.get(0);
                            tx.execute(&update, &[&(hits + 1)]).await
                        })
                    })
                    .await?;
                }
                Ok::<_, dsql_tower::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let hits: i64 = pool
        .get()
        .await?
        .query_one(&format!("SELECT hits FROM {table} WHERE id = 1"), &[])
        .await?
        .get(0);
    println!(
        "400 conflicting transactions in {:?}: counter = {hits}",
        started.elapsed()
    );
    println!("pool: {:?}", pool.state());
    pool.get()
        .await?
        .batch_execute(&format!("DROP TABLE {table}"))
        .await?;
    assert_eq!(hits, 400, "every transaction landed exactly once");

    pool.close().await;
    target.shutdown().await;
    Ok(())
}
