//! A `ServiceBuilder` stack: DSQL retries by error class over classification,
//! tower's own timeout and concurrency limit, over a reconnecting `Session`.
//! Sixteen tasks run conflicting transactions through it; every conflict is
//! replayed, so the counter ends exactly at the number of transactions.
//!
//! `cargo run --example tower_stack` (without `CLUSTER_ENDPOINT`, against
//! `dsql-local` over the local PostgreSQL).

use std::time::Duration;

use dsql_rs::{BoxError, Target};
use dsql_tower::retry::RetryPolicy;
use dsql_tower::{ClassifyLayer, Operation, OperationExt, Session};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    dsql_rs::init_tracing();
    let target = Target::from_env_or_local().await?;
    println!("connecting to {}", target.describe());

    let stack = ServiceBuilder::new()
        .layer(RetryPolicy::for_operations().layer())
        .layer(ClassifyLayer::new())
        .timeout(Duration::from_secs(10))
        .concurrency_limit(16)
        .service(Session::from_config(&target.config, target.tokens.clone())?);

    let table = format!("tower_stack_example_{}", std::process::id());
    let mut setup = stack.clone();
    // DSQL runs a DDL statement in a transaction of its own: create, then seed.
    let create = format!("CREATE TABLE {table} (id int PRIMARY KEY, hits bigint NOT NULL)");
    let seed = format!("INSERT INTO {table} VALUES (1, 0)");
    setup
        .run(Operation::autocommit(move |client| {
            let (create, seed) = (create.clone(), seed.clone());
            Box::pin(async move {
                client.batch_execute(&create).await?;
                client.batch_execute(&seed).await
            })
        }))
        .await?;

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let mut stack = stack.clone();
            let table = table.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let update = format!("UPDATE {table} SET hits = hits + 1 WHERE id = 1");
                    let op = Operation::transaction(move |tx| {
                        let update = update.clone();
                        Box::pin(async move { tx.execute(&update, &[]).await })
                    });
                    stack.run(op).await?;
                }
                Ok::<_, dsql_tower::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let select = format!("SELECT hits FROM {table} WHERE id = 1");
    let drop = format!("DROP TABLE {table}");
    let hits: i64 = setup
        .run(Operation::autocommit(move |client| {
            let (select, drop) = (select.clone(), drop.clone());
            Box::pin(async move {
                let hits = client.query_one(&select, &[]).await?.get(0);
                client.batch_execute(&drop).await?;
                Ok::<i64, tokio_postgres::Error>(hits)
            })
        }))
        .await?;
    println!("160 transactions, counter = {hits}");
    assert_eq!(hits, 160);

    target.shutdown().await;
    Ok(())
}
