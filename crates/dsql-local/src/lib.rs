//! A local Amazon Aurora DSQL-compatible front end over a real PostgreSQL.
//!
//! There is no local Aurora DSQL. `dsql-local` speaks the PostgreSQL protocol
//! the way DSQL does at its door and relays each session to a PostgreSQL
//! server behind it:
//!
//! - **TLS is mandatory**, with PostgreSQL's `SSLRequest` negotiation or
//!   direct TLS (ALPN `postgresql`); SNI must name the endpoint. A CA and a
//!   server certificate for the endpoint host, `localhost` and `127.0.0.1` are
//!   generated at start, and the CA is written to a PEM file that clients use
//!   with `sslmode=verify-full` ([`DsqlLocal::ca_path`]).
//! - **IAM authentication**: the password must be a SigV4-presigned DSQL token
//!   (as signed by `dsql-auth` or any AWS SDK) for the endpoint host, the right
//!   action for the user (`admin` ↔ `DbConnectAdmin`), the configured region,
//!   not expired, and signed with a key from a configured table. Refusals carry
//!   DSQL's SQLSTATE, message and hint ([`catalog`]). Tokens are never logged.
//! - **DSQL's limits**: session lifetime, transaction timeout, maximum
//!   connections and a connection-rate token bucket, each configurable so that
//!   tests can compress time ([`LocalConfigBuilder`]).
//! - **Optimistic concurrency errors**: upstream sessions run at repeatable
//!   read and PostgreSQL's serialization failures and deadlocks come back in
//!   DSQL's form (`40001`, `change conflicts with another transaction (OC000)`).
//! - **Faults on demand** ([`Faults`]), including deterministic ones that
//!   fire at the n-th statement, authentication or connection attempt, and
//!   **counters** ([`Stats`]).
//! - **Sessions without superuser powers**: the upstream URL's user (usually
//!   a superuser) only creates and checks, at start and on first use, the
//!   role each DSQL role's sessions run as: a role of the same name (or a
//!   [mapped one](LocalConfigBuilder::map_role)) with `LOGIN` and no
//!   `SUPERUSER`, `CREATEDB`, `CREATEROLE`, `REPLICATION` or `BYPASSRLS`, so
//!   `SELECT current_user` as `admin` answers `admin`. `admin` may create
//!   schemas, tables, indexes and views in the database, and read and write
//!   the tables the upstream URL's user creates in `public`; no role reaches
//!   the server's programs or files (`COPY … PROGRAM`, `pg_read_file`),
//!   `ALTER SYSTEM`, or another role. A role that is (or belongs to) a
//!   privileged one, `postgres` included, is refused.
//! - **One database**: sessions always use the configured database (the
//!   upstream URL's, or [`upstream_database`](LocalConfigBuilder::upstream_database));
//!   a client naming another database than `postgres` or that one is refused
//!   with `3D000`. Only harmless startup parameters are forwarded
//!   (`application_name`, `client_encoding`, `DateStyle`, `TimeZone`,
//!   `IntervalStyle`, `extra_float_digits`, `search_path`); `options`,
//!   `replication` and the rest are dropped.
//! - **The public test key stays on loopback**: the built-in key (and
//!   [unknown keys](LocalConfigBuilder::allow_unknown_access_keys)) is
//!   refused on a non-loopback listen address
//!   ([`ConfigError::PublicKeyOffLoopback`]) unless
//!   [allowed explicitly](LocalConfigBuilder::allow_public_key_off_loopback).
//! - **Any PostgreSQL behind it**: the upstream URL's user logs in with
//!   trust, SCRAM-SHA-256 (without channel binding: the upstream connection
//!   is plain TCP), md5 or cleartext password authentication, the password
//!   taken from the upstream URL. Sessions log in as their own role without a
//!   password (trust from `dsql-local`'s address, as `scripts/ensure-postgres`
//!   sets up on loopback). **Limitation**: when the upstream asks a password
//!   for that role, `dsql-local` has none, and the sessions fall back to the
//!   upstream URL's user with a warning; when that user is not a superuser,
//!   roles cannot be created and sessions run as it.
//!
//! ```no_run
//! use dsql_local::DsqlLocal;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let local = DsqlLocal::builder()
//!     .upstream("postgres://postgres@127.0.0.1:5432/postgres")
//!     .start()
//!     .await?;
//! // Host = the endpoint name, hostaddr = 127.0.0.1, port = the bound port,
//! // sslrootcert = the generated CA.
//! let config = local.client_config("admin")?;
//! // Sign tokens with these credentials (e.g. dsql_auth::SigningProvider).
//! let credentials = local.credentials();
//! let (faults, stats) = (local.faults(), local.stats());
//! # let _ = (config, credentials, faults, stats);
//! local.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`DsqlLocal::connection_url`] gives the same settings as a URL for
//! `dsql_auth::DsqlConfig::from_url`, for a process that only reads the
//! environment, and [`DsqlLocal::libpq_conninfo`] and [`DsqlLocal::token`]
//! serve `psql`.
//!
//! # Command line
//! `dsqlctl local` (crate `dsqlctl`) runs this front end until Ctrl-C, with
//! a flag for every limit and fault, and prints how to connect to it.
//!
//! # Differences from DSQL
//! - PostgreSQL detects a write conflict at the second writer's statement
//!   (which waits for the first writer's row lock and then fails with
//!   `40001`), and lock cycles as deadlocks (`40P01`, also rewritten to
//!   `OC000`); DSQL detects conflicts at `COMMIT`. Treat `40001` at any
//!   statement as a conflict.
//! - Only the errors listed in [`catalog`] with `confirmed: true` are known to
//!   be DSQL's exact texts; the others are best guesses kept in that one table.
//! - DSQL's other restrictions (no foreign keys, no `SERIAL`, DDL rules,
//!   transaction size limits) are not emulated: the upstream PostgreSQL
//!   accepts what it accepts.
#![forbid(unsafe_code)]

pub mod catalog;
mod config;
mod dialect;
mod error;
mod faults;
mod handshake;
mod limits;
mod protocol;
mod registry;
mod relay;
mod server;
mod stats;
mod tls;
mod token;
mod upstream;

pub use config::{
    AccessKey, Bounds, DEFAULT_ACCESS_KEY_ID, DEFAULT_CLUSTER_ID, DEFAULT_CONNECTION_BURST,
    DEFAULT_CONNECTION_RATE, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_STARTUP_PACKET,
    DEFAULT_REFUSED_HANDSHAKE_TIMEOUT, DEFAULT_REGION, DEFAULT_SECRET_ACCESS_KEY, DEFAULT_SESSION_LIFETIME,
    DEFAULT_TRANSACTION_TIMEOUT, DEFAULT_UPSTREAM, DEFAULT_UPSTREAM_CONNECT_TIMEOUT, LocalConfig,
    LocalConfigBuilder, MAX_MESSAGE_SIZE_LIMIT, RateLimit,
};
pub use dialect::{Dialect, UnknownDialect};
pub use error::{ConfigError, StartError};
pub use faults::{CommitDrop, Faults, Latency, StatementDrop};
pub use server::DsqlLocal;
pub use stats::{RefusalCounts, RefusalReason, Stats, StatsSnapshot};
pub use token::{SignError, TokenRequest, sign_token};
