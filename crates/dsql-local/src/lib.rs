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
//!   a region isolated from its peers ([`Faults::isolate`]), and
//!   **counters** ([`Stats`]).
//! - **Multi-region clusters** ([`Regions`]): one endpoint per region over
//!   one database.
//! - **A region's network**, modelled: with
//!   [`network_round_trip`](LocalConfigBuilder::network_round_trip), each
//!   direction is delayed as on a real link from accept on (TLS and startup
//!   pay their round trips), and [`StatsSnapshot::round_trips`] counts the
//!   turns each client spends.
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
//!   is plain TCP or a Unix-domain socket, `?host=/dir` as in libpq), md5 or
//!   cleartext password authentication, the password taken from the
//!   upstream URL. Sessions log in as their own role without a
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
//! # A real cluster, or this one
//! With the feature `target`, `Target::from_env_or_local` gives a
//! program, a test or an example the cluster in `CLUSTER_ENDPOINT` (AWS
//! credentials from the default chain) when it is set, and otherwise a
//! `DsqlLocal` over the local PostgreSQL: a `DsqlConfig` and a caching token
//! provider for either, so the same code runs the real authentication flow.
//!
//! # Command line
//! `dsqlctl local` (crate `dsqlctl`) runs this front end until Ctrl-C, with
//! a flag for every limit and fault, and prints how to connect to it
//! (`--regions us-east-1,us-east-2`: one endpoint per region).
//!
//! # Regions
//! A multi-region cluster is two peered clusters in two regions, each with
//! its own cluster id and endpoint host (`<cluster-id>.dsql.<region>.on.aws`),
//! both serving strongly consistent reads and writes over one logical
//! database. [`Regions`] starts one endpoint per region over the same
//! PostgreSQL: each has its own port, host, certificate, signing region,
//! [`Faults`] and [`Stats`]; all share one CA, one access key and the
//! upstream database. A token signed for one region's host is refused by
//! the other, and counted ([`StatsSnapshot::tokens_for_other_host`]).
//!
//! ```no_run
//! use dsql_local::{IsolatedConnects, IsolatedSessions, Isolation, Regions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let regions = Regions::builder().regions(["us-east-1", "us-east-2"]).start().await?;
//! let configs = regions.client_configs("admin")?; // the local region first
//! let url = regions.connection_url("admin"); // postgres://admin@host1:port1,host2:port2/postgres?…
//! if let Some(east2) = regions.region("us-east-2") {
//!     // us-east-2 loses its peers: connects refused, sessions cut, no commit.
//!     east2.faults().isolate();
//!     east2.faults().heal();
//!     // Or: it still takes connections and answers reads, but commits no write.
//!     east2.faults().isolate_with(Isolation {
//!         connects: IsolatedConnects::Accept,
//!         open_sessions: IsolatedSessions::Keep,
//!         ..Isolation::default()
//!     });
//! }
//! # let _ = (configs, url);
//! regions.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! **What an isolated region's clients see is an assumption**: AWS
//! documents only that the peer cut off from the other peer and the witness
//! cannot commit. By default ([`Isolation::DEFAULT`]) new connections are
//! refused after their token is checked with `FATAL 08006`
//! ([`catalog::REGION_ISOLATED`]), the sessions open at that moment are cut,
//! and in sessions that remain (when told to keep or accept them) the
//! `COMMIT` of a transaction that wrote is rolled back and a write in
//! autocommit is not applied, both answered `ERROR 08006`
//! ([`catalog::REGION_ISOLATED_COMMIT`]; not `40001`, which clients replay
//! in place), while reads are served. Each behaviour is one field of
//! [`Isolation`], so a wrong guess is a one-line change.
//!
//! # DSQL's SQL
//! Under [`Dialect::Dsql`] (the default; `dsqlctl local --dialect postgres`
//! or [`LocalConfigBuilder::dialect`] turn it off) statements are read with
//! PostgreSQL's own grammar (`pg_query`, the `dialect` feature) and checked
//! against a table of DSQL's rules, each stamped with the date it was
//! observed on a real cluster, before PostgreSQL sees them:
//! - what DSQL refuses is refused with DSQL's SQLSTATE and words, before
//!   name resolution: `TRUNCATE`, temporary tables, `serial`, plain
//!   `CREATE INDEX`, savepoints, `SET TRANSACTION`, isolation levels other
//!   than repeatable read, `FOR SHARE`, unsupported column types, `ALTER
//!   TABLE` forms, sequences without an allowed `CACHE`, and more;
//! - one DDL statement per transaction, and no DDL with DML, over explicit
//!   transactions and implicit ones (a multi-statement simple query, an
//!   extended-protocol batch);
//! - a refusal inside a transaction aborts it, upstream too (`25P02`
//!   afterwards, `COMMIT` answered `ROLLBACK`); in autocommit it does not;
//! - 3,000 rows written per transaction, at the statement that crosses it;
//! - `CREATE INDEX ASYNC` and `ALTER TABLE ASYNC … VALIDATE CONSTRAINT`
//!   answer a `job_id` row, listed in `sys.jobs`; `CALL
//!   sys.wait_for_job(id)`;
//! - `version()`, `server_version`, `server_version_num` and `TimeZone` as
//!   DSQL reports them.
//!
//! Text that does not parse goes upstream untouched, so that PostgreSQL
//! gives its own syntax error. Decisions are cached by statement text.
//!
//! ```text
//! $ psql "…" -c 'CREATE TABLE t (id serial PRIMARY KEY); INSERT INTO t DEFAULT VALUES'
//! ERROR:  type "serial" does not exist
//! $ psql "…" -c 'CREATE TABLE t (id uuid PRIMARY KEY); CREATE INDEX ASYNC ON t (id)'
//! CREATE TABLE
//! ERROR:  multiple ddl statements not supported in a transaction
//! $ psql "…" -c '\d t'
//! Did not find any relation named "t".
//! ```
//!
//! # Differences from DSQL
//! - **Conflicts.** DSQL's writers never wait and the loser fails at
//!   `COMMIT`. PostgreSQL's writers take row locks: the second writer waits
//!   for the first and then fails at its statement with `40001` (lock cycles
//!   with `40P01`), both rewritten to DSQL's `OC000` conflict. A proxy cannot
//!   invent the row counts or `RETURNING` rows of a statement that failed
//!   upstream, so it cannot move that failure to `COMMIT`. With
//!   [`LocalConfigBuilder::never_wait`] nothing waits: a statement that would
//!   wait fails at once with the conflict (the first locker wins, not the
//!   first committer). Treat `40001` at any statement as a conflict.
//! - **Asynchronous DDL runs synchronously**: the index is built inside the
//!   statement and its job is `completed` at once (DSQL's go through
//!   `submitted` first), so `ADD CONSTRAINT … USING INDEX` right after never
//!   fails with `55000 index … is not valid` here.
//! - **Not enforced**: dropping a primary-key column (the statement does not
//!   say which columns are in the key; PostgreSQL drops the key with it),
//!   the 300 s limit at `COMMIT` (the transaction timeout rolls back after
//!   300 s instead), and `SELECT
//!   sys.wait_for_job(…)`'s exact wording (PostgreSQL names the argument
//!   type `unknown`, DSQL `text`).
//! - **PostgreSQL 15 upstream** (Debian 12's): PostgreSQL 16's grammar that
//!   DSQL accepts, such as `ALTER TABLE … ADD COLUMN … STORAGE PLAIN`, is a
//!   syntax error here. DSQL's suspected defect with `LEFT JOIN LATERAL`
//!   (`42804`) is not emulated.
//! - **Where a refusal comes in the extended protocol**: a statement refused
//!   at `Parse` fails its batch at the `Sync`, with the same messages a
//!   client would get had PostgreSQL refused the `Parse` itself.
//! - The row cap and asynchronous DDL need the upstream URL's user to be a
//!   superuser (event triggers, the `sys` schema); without one they are off,
//!   with a warning.
//! - Only the errors listed in [`catalog`] with `confirmed: true`, and the
//!   dialect's rules not marked assumed, are known to be DSQL's exact texts.
//!
//! The conformance suite (`tests/conformance/*.cases`, 257 cases written
//! from recorded DSQL behaviour, run over the simple and the extended
//! protocol) marks each of these differences with its reason; a marked case
//! that starts to match fails the suite, so the list stays exact.
#![forbid(unsafe_code)]

pub mod catalog;
mod config;
mod dialect;
mod error;
mod faults;
mod handshake;
mod limits;
mod network;
mod protocol;
mod regions;
mod registry;
mod relay;
mod server;
mod stats;
#[cfg(feature = "target")]
mod target;
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
pub use faults::{
    CommitDrop, Faults, IsolatedCommits, IsolatedConnects, IsolatedSessions, Isolation, Latency,
    StatementDrop,
};
pub use regions::{Regions, RegionsBuilder};
pub use server::DsqlLocal;
pub use stats::{RefusalCounts, RefusalReason, Stats, StatsSnapshot};
#[cfg(feature = "target")]
pub use target::{Target, TargetError};
pub use token::{SignError, TokenRequest, sign_token};
