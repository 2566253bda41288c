//! Connecting to DSQL: a `tower::Service` from a `tokio_postgres::Config` to
//! a live connection, over verified TLS, with tokens and a paced, retried
//! connect.
//!
//! | file | what |
//! |---|---|
//! | [`Connector`] | TLS enforced (required, verified, SNI, ALPN on direct TLS) |
//! | [`PgConnection`] | the live connection and what its traffic says |
//! | [`stack`] / [`StackBuilder`] | retries ∘ rate limit ∘ token ∘ connector |
//! | [`ConnectRateLimit`] | the per-endpoint connect pacing |
//! | [`pg_config`] | the driver config for a [`DsqlConfig`](dsql_auth::DsqlConfig) |
//! | [`ConnectService`] | what sessions and pools connect with |

mod config;
mod connection;
mod connector;
mod error;
mod rate;
mod service;
mod stack;
mod tls;
mod tls_connect;
mod wire;

pub use self::config::{DEFAULT_APPLICATION_NAME, DEFAULT_CONNECT_TIMEOUT, pg_config};
pub use self::connection::PgConnection;
pub use self::connector::{ConnectFuture, Connector};
pub use self::error::ConnectError;
pub use self::rate::{
    ConnectRateLimit, ConnectRateLimitLayer, InvalidConnectRate, RateLimitConflict, RateLimitedConnect,
};
pub use self::service::ConnectService;
pub(crate) use self::stack::check_scope;
pub use self::stack::{ConnectStack, DEFAULT_CONNECT_BURST, DEFAULT_CONNECT_RATE, StackBuilder, stack};
pub use self::tls::{ALPN_POSTGRESQL, client_config};
pub use self::wire::TransactionStatus;
