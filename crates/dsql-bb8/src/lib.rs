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
//! - [`DsqlPool::transaction`] replays a whole transaction on conflicts, on
//!   the connection it kept through the backoff (given back, another
//!   transaction would take it at once and the backoff would thin out
//!   nothing: [`DsqlPoolBuilder::keep_connection_through_conflict_backoff`]),
//!   and [`DsqlPool::service`] is the pool as a `tower::Service<Operation<T>>`;
//! - [`DsqlPoolBuilder::build_cluster`] makes one pool over a multi-region
//!   cluster's endpoints (`dsql_tower::failover`): it leaves a region that
//!   cannot serve, refills at the next, and moves back gradually when the
//!   region recovers; [`PoolState::endpoints`] reports each endpoint.
//!
//! # Metrics and traces
//!
//! Each operation of [`DsqlPool::run`], [`DsqlPool::transaction`] and
//! [`PoolService`] is one `dsql.operation` span over all its attempts and
//! waits, a database client span in OpenTelemetry's terms
//! (`otel.kind = "client"`, `db.system.name`, `server.address`, …; see
//! `dsql_tower::semconv`), never with a token or a parameter value.
//!
//! With the `metrics` feature (off by default; it turns on `dsql-tower`'s
//! and `dsql-auth`'s), the pool records OpenTelemetry's connection pool
//! metrics through the `metrics` facade, each labelled
//! `db.client.connection.pool.name` (the builder's `pool_name`, by
//! default `host:port/database`), next to `db.client.operation.duration`
//! and DSQL's own counters (`dsql_tower::metrics` lists them all). As a
//! Prometheus scrape shows them (`metrics-exporter-prometheus` with
//! recommended naming and buckets, as `examples/http_service.rs` sets it
//! up):
//!
//! | OpenTelemetry (development) | Prometheus | what |
//! |---|---|---|
//! | `db.client.connection.count` | `db_client_connection_count{db_client_connection_state="idle"\|"used"}` | connections open, by state: `used` from checkout to return |
//! | `db.client.connection.max` | `db_client_connection_max` | `max_size` |
//! | `db.client.connection.pending_requests` | `db_client_connection_pending_requests` | callers waiting in the queue |
//! | `db.client.connection.wait_time` | `db_client_connection_wait_time_seconds_{bucket,sum,count}` | each checkout's wait, queue included |
//! | `db.client.connection.create_time` | `db_client_connection_create_time_seconds_{bucket,sum,count}` | each connect: token, TLS, authentication, retries |
//! | `db.client.connection.use_time` | `db_client_connection_use_time_seconds_{bucket,sum,count}` | checkout to return |
//! | `db.client.connection.timeouts` | `db_client_connection_timeouts_total` | checkouts that timed out |
//!
//! Install the recorder before building the pool: the pool tells it the
//! units (`_seconds`) and starts its series at zero.
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
