//! AWS's "manual token" flow, built from `TokenLayer` alone: the same
//! environment variables (`CLUSTER_ENDPOINT`, `CLUSTER_USER`, `REGION`,
//! `DB_PORT`, `DB_NAME`, `TOKEN_EXPIRY_SECS`), and the token set as the
//! password in a step before each connect.
//!
//! `cargo run --example manual_token` (without `CLUSTER_ENDPOINT`, against
//! `dsql-local` over the local PostgreSQL).

use dsql_rs::{BoxError, Target};
use dsql_tower::TokenLayer;
use dsql_tower::connect::{Connector, pg_config};
use tower::{Layer, Service, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    dsql_rs::init_tracing();
    let target = Target::from_env_or_local().await?;
    println!("connecting to {}", target.describe());

    // Before each connect, TokenLayer asks the provider for a token (signed,
    // or cached until 80 % of its life) and sets it as the password.
    let mut connect = TokenLayer::new(target.tokens.clone()).layer(Connector::new(&target.config)?);
    let connection = connect.ready().await?.call(pg_config(&target.config)).await?;

    let row = connection
        .query_one("SELECT current_user, version()", &[])
        .await?;
    let (user, version): (String, String) = (row.get(0), row.get(1));
    println!("connected as {user}: {version}");

    connection.close().await;
    target.shutdown().await;
    Ok(())
}
