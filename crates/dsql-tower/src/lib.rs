//! Tower middleware for Amazon Aurora DSQL.
//!
//! DSQL fails in ways a plain PostgreSQL client does not expect: tokens
//! expire, sessions end after 60 minutes, conflicting transactions fail at
//! commit, connects are rate limited. Each concern is a piece here, usable
//! alone or stacked with tower's own layers:
//!
//! - [`Connector`]: `Service<tokio_postgres::Config>` → [`PgConnection`] over
//!   verified TLS (rustls), direct TLS optional;
//! - [`TokenLayer`]: sets a token from any
//!   [`TokenProvider`](dsql_auth::TokenProvider) as the password of each
//!   connect, and invalidates refused ones; [`SetPassword`] lets it serve
//!   other drivers too;
//! - [`classify`]: [`ErrorClass`] for every DSQL error, a swappable
//!   [`Classify`] trait and [`ClassifyLayer`];
//! - [`Operation`]: a statement or a whole transaction, replayable;
//! - [`Session`]: a reconnecting single-connection
//!   `Service<Operation<T>>` with lifetimes below DSQL's session limit;
//! - [`retry::RetryPolicy`]: tower retries by class, full-jitter backoff, a
//!   budget;
//! - [`connect::stack`]: retries, tokens and TLS assembled for connecting.
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
//!     .run(Operation::new(|client| Box::pin(async move {
//!         Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0))
//!     })).idempotent())
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod classify;
pub mod connect;
mod error;
mod lifetime;
mod operation;
pub mod retry;
mod session;
mod token;

pub use classify::{Classify, ClassifyLayer, ClassifyService, DsqlClassifier, ErrorClass};
pub use connect::{ConnectError, Connector, PgConnection};
pub use error::{BoxError, Error, Phase};
pub use lifetime::{DSQL_SESSION_LIMIT, InvalidLifetime, Lifetime};
pub use operation::{BoxFuture, Operation, OperationExt};
pub use session::{Session, SessionBuilder, SessionFuture, SessionStats};
pub use token::{SetPassword, TokenFuture, TokenLayer, TokenService};
