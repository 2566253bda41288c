//! A bb8 pool for Amazon Aurora DSQL.
//!
//! Pools are where DSQL hurts: a pool started at once ages at once and
//! reconnects at once, into DSQL's 100-connections-per-second limit; a pool
//! that checks connections only when they come back hands out connections
//! the server is about to close, or still inside a transaction; bb8 alone
//! lets a task that returns a connection overtake tasks already waiting; a
//! fatal connect error waits out the checkout timeout. [`DsqlPool`] fixes
//! each, on `dsql-tower`'s connection [lifecycle](dsql_tower::lifecycle):
//!
//! - connections come from `dsql-tower`'s connect stack (a token per
//!   connect, verified TLS, classified connect retries, each attempt paced by
//!   a connect rate limit shared per endpoint);
//! - each connection has its own jittered deadline (default 55 minutes less
//!   up to 5) and is checked at checkout without a round trip when it is at
//!   rest ([`CheckOnCheckout`]); one left mid-transaction is rolled back;
//! - checkouts queue fairly (FIFO), under one deadline;
//! - fatal connect errors come back at once, typed;
//! - one classifier ([`DsqlPoolBuilder::classifier`]) serves connects,
//!   operations and replays;
//! - [`DsqlPool::transaction`] replays a whole transaction on conflicts, and
//!   [`DsqlPool::service`] is the pool as a `tower::Service<Operation<T>>`;
//! - [`DsqlPoolBuilder::build_cluster`] makes one pool over a multi-region
//!   cluster's endpoints (`dsql_tower::failover`): it leaves a region that
//!   cannot serve, refills at the next, and moves back gradually when the
//!   region recovers; [`PoolState::endpoints`] reports each endpoint.
//!
//! | file | what |
//! |---|---|
//! | `pool/` | [`DsqlPool`], its builder, checkout, state and errors |
//! | `manager.rs` | bb8's `ManageConnection` over the lifecycle |
//! | `service.rs` | [`PoolService`] |
//!
//! ```no_run
//! use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
//! use dsql_bb8::DsqlPool;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let config = DsqlConfig::from_env()?;
//! let tokens = SharedTokenProvider::new(CachingProvider::new(SigningProvider::load(&config).await));
//! let pool = DsqlPool::builder(&config).max_size(16).build(tokens)?;
//!
//! pool.transaction(|tx| Box::pin(async move {
//!     tx.execute("UPDATE counters SET hits = hits + 1 WHERE id = 1", &[]).await
//! }))
//! .await?;
//!
//! let connection = pool.get().await?; // a plain checkout, when you need one
//! connection.simple_query("SELECT 1").await?;
//! drop(connection);
//! pool.close().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod events;
mod manager;
mod pool;
mod service;

pub use dsql_tower::DsqlConnection;
pub use dsql_tower::connect::ConnectRateLimit;
pub use manager::{CheckOnCheckout, DsqlConnectionManager};
pub use pool::{
    CheckoutTimeout, DsqlPool, DsqlPoolBuilder, PoolClosed, PoolConfigError, PoolState, PooledConnection,
    defaults,
};
pub use service::{PoolFuture, PoolService};
