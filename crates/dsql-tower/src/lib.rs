//! Tower middleware for Amazon Aurora DSQL.
//!
//! DSQL fails in ways a plain PostgreSQL client does not expect: tokens
//! expire, sessions end after 60 minutes, conflicting transactions fail at
//! commit, connects are rate limited. Each concern is a piece here, usable
//! alone or stacked with tower's own layers:
//!
//! - [`Connector`]: `Service<tokio_postgres::Config>` → [`PgConnection`] over
//!   TLS it enforces for any config (required, verified, SNI, ALPN on direct
//!   TLS), watching the connection's transaction status on the wire;
//! - [`TokenLayer`]: sets a token from any
//!   [`TokenProvider`](dsql_auth::TokenProvider) as the password of each
//!   connect, and invalidates refused ones; [`SetPassword`] lets it serve
//!   other drivers too;
//! - [`classify`]: [`ErrorClass`] for every DSQL error, a swappable
//!   [`Classify`] trait and [`ClassifyLayer`];
//! - [`Operation`]: statements in autocommit or a whole transaction,
//!   replayable, recording what each attempt did ([`Effects`]);
//! - [`lifecycle`]: the one connection lifecycle (open, check out, run,
//!   retire) that [`Session`] and the pool (`dsql-bb8`) are built on;
//! - [`Session`]: a reconnecting single-connection
//!   `Service<Operation<T>>` with lifetimes below DSQL's session limit;
//! - [`retry::RetryPolicy`]: tower retries by class, full-jitter backoff, a
//!   budget, and the replay rule that no classifier can bypass;
//! - [`connect::stack`]: retries, connect pacing, tokens and TLS assembled
//!   for connecting;
//! - [`failover`]: one connect service over a multi-region cluster's
//!   endpoints, with health per endpoint, failover and gradual failback;
//! - [`semconv`]: the names of every span, metric and attribute, by
//!   OpenTelemetry's semantic conventions for database clients.
//!
//! # Metrics and traces
//!
//! Operations and connects are `tracing` spans in OpenTelemetry's terms:
//! `dsql.operation`, one per operation over all its attempts, and
//! `dsql.connect`, one per connect attempt, each with `otel.kind =
//! "client"`, `db.system.name = "postgresql"`, `server.address`,
//! `server.port` and, on failure, `error.type`, `db.response.status_code`
//! and `otel.status_code`, so that an OpenTelemetry layer
//! (`tracing-opentelemetry`) exports them as database client spans
//! ([`semconv::span`] lists their fields). No span carries a token, a query
//! or a parameter value.
//!
//! With the `metrics` feature (off by default), the same events are
//! recorded through the `metrics` facade: `db.client.operation.duration`
//! and DSQL's own counters (retries by class, connects, retirements by
//! reason, connect pacing, failover), and a pool's
//! `db.client.connection.*`; the `metrics` module (with the feature) lists
//! the series and their Prometheus names.
//!
//! ```no_run
//! use std::time::Duration;
//! use dsql_auth::{CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider};
//! use dsql_tower::{retry::RetryPolicy, ClassifyLayer, Operation, OperationExt, Session};
//! use tower::ServiceBuilder;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let config = DsqlConfig::from_env()?;
//! let tokens = SharedTokenProvider::new(CachingProvider::new(SigningProvider::load(&config).await));
//! let mut service = ServiceBuilder::new()
//!     .layer(RetryPolicy::for_operations().layer())
//!     .layer(ClassifyLayer::new())
//!     .timeout(Duration::from_secs(5))
//!     .service(Session::from_config(&config, tokens)?);
//!
//! let one: i32 = service
//!     .run(Operation::autocommit(|client| Box::pin(async move {
//!         Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0))
//!     })).idempotent())
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod classify;
pub mod connect;
mod error;
pub mod failover;
pub mod lifecycle;
#[cfg(feature = "metrics")]
pub mod metrics;
mod operation;
pub mod retry;
mod session;
mod telemetry;
mod token;

pub use classify::{Classify, ClassifyLayer, ClassifyService, DsqlClassifier, ErrorClass, SharedClassifier};
pub use connect::{ConnectError, Connector, PgConnection};
pub use dsql_auth::{limits, semconv};
pub use error::{BoxError, Error, Phase};
pub use lifecycle::{DSQL_SESSION_LIMIT, DsqlConnection, InvalidLifetime, Lifetime, Retirement, Retirements};
pub use operation::{BoxFuture, Effects, Operation, OperationExt};
pub use session::{Session, SessionBuilder, SessionFuture, SessionStats};
pub use token::{SetPassword, TokenFuture, TokenLayer, TokenService};
