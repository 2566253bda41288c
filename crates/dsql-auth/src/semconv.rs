//! The names of every metric, span and attribute the dsql-rs crates emit, in
//! one place (re-exported as `dsql_tower::semconv`).
//!
//! They follow OpenTelemetry's semantic conventions for database clients,
//! version [`VERSION`] (the one the `opentelemetry-semantic-conventions`
//! crate 0.33 carries), so that a dashboard or an OpenTelemetry backend
//! recognises them: [`metric::DB_CLIENT_OPERATION_DURATION`] is *stable*; the
//! pool metrics (`db.client.connection.*`) are still in *development* there
//! and may be renamed by a later version, which is why they are named here
//! only, never spelled out elsewhere. What DSQL adds (retries by class, token
//! signings, connect pacing, retirements by reason, failover) is under the
//! one prefix `dsql.`.
//!
//! The constants cost nothing: recording is behind the `metrics` features of
//! `dsql-auth`, `dsql-tower` and `dsql-bb8`; spans use the same attribute
//! names (as `tracing` fields) with or without them.
//!
//! ```
//! use dsql_auth::semconv::{attribute, metric};
//!
//! assert_eq!(metric::DB_CLIENT_OPERATION_DURATION, "db.client.operation.duration");
//! assert_eq!(attribute::DB_SYSTEM_NAME, "db.system.name");
//! ```

/// The version of OpenTelemetry's semantic conventions these names follow.
pub const VERSION: &str = "1.42.0";

/// The schema URL of [`VERSION`], for an OpenTelemetry meter or tracer.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.42.0";

/// Metric names. Prometheus shows each with dots turned into underscores,
/// `_seconds` after a duration and `_total` after a counter (with
/// `metrics-exporter-prometheus`'s `with_recommended_naming(true)`, as
/// OpenTelemetry's own Prometheus exporter does): see `dsql_tower::metrics`.
pub mod metric {
    /// Duration of one operation as its caller sees it, replays and
    /// checkout included (histogram, seconds). OpenTelemetry: stable.
    pub const DB_CLIENT_OPERATION_DURATION: &str = "db.client.operation.duration";
    /// Connections of a pool, by [`state`](super::attribute::DB_CLIENT_CONNECTION_STATE)
    /// (gauge). OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_COUNT: &str = "db.client.connection.count";
    /// The most connections a pool opens (gauge). OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_MAX: &str = "db.client.connection.max";
    /// Callers waiting for a connection of a pool (gauge). OpenTelemetry:
    /// development.
    pub const DB_CLIENT_CONNECTION_PENDING_REQUESTS: &str = "db.client.connection.pending_requests";
    /// Time a checkout waited for a connection (histogram, seconds).
    /// OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_WAIT_TIME: &str = "db.client.connection.wait_time";
    /// Time to open a connection: token, TCP, TLS, authentication, connect
    /// retries (histogram, seconds). OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_CREATE_TIME: &str = "db.client.connection.create_time";
    /// Time a connection was checked out (histogram, seconds).
    /// OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_USE_TIME: &str = "db.client.connection.use_time";
    /// Checkouts that timed out (counter). OpenTelemetry: development.
    pub const DB_CLIENT_CONNECTION_TIMEOUTS: &str = "db.client.connection.timeouts";

    /// Retries by [`error.type`](super::attribute::ERROR_TYPE) (the error
    /// class) and [`dsql.retry.kind`](super::attribute::DSQL_RETRY_KIND)
    /// (counter): conflicts replayed are `error.type=conflict`,
    /// `dsql.retry.kind=operation`.
    pub const DSQL_CLIENT_RETRIES: &str = "dsql.client.retries";
    /// Connections opened, or not (`error.type`), after the connect
    /// stack's retries (counter).
    pub const DSQL_CLIENT_CONNECTS: &str = "dsql.client.connects";
    /// Connections retired, by [`dsql.retirement.reason`](super::attribute::DSQL_RETIREMENT_REASON)
    /// (counter).
    pub const DSQL_CLIENT_CONNECTION_RETIREMENTS: &str = "dsql.client.connection.retirements";
    /// Time a connect waited for the endpoint's connect rate limit; only
    /// connects that waited are recorded (histogram, seconds).
    pub const DSQL_CLIENT_CONNECT_RATE_LIMIT_WAIT_TIME: &str = "dsql.client.connect.rate_limit.wait_time";
    /// Times an endpoint of a multi-region cluster was declared unhealthy
    /// (counter).
    pub const DSQL_CLIENT_ENDPOINT_TRIPS: &str = "dsql.client.endpoint.trips";
    /// Probes of an unhealthy endpoint, by [`dsql.probe.result`](super::attribute::DSQL_PROBE_RESULT)
    /// (counter).
    pub const DSQL_CLIENT_ENDPOINT_PROBES: &str = "dsql.client.endpoint.probes";
    /// Tokens signed by a `SigningProvider`, or not (`error.type`) (counter).
    pub const DSQL_AUTH_TOKEN_SIGNINGS: &str = "dsql.auth.token.signings";
    /// Refreshes of a `CachingProvider` (calls to the provider it wraps),
    /// failed ones with `error.type` (counter).
    pub const DSQL_AUTH_TOKEN_REFRESHES: &str = "dsql.auth.token.refreshes";
}

/// Attribute names: metric labels and span fields. Prometheus shows them
/// with dots turned into underscores (`db_system_name`).
pub mod attribute {
    /// The database system: always [`POSTGRESQL`](super::value::POSTGRESQL).
    pub const DB_SYSTEM_NAME: &str = "db.system.name";
    /// The database name.
    pub const DB_NAMESPACE: &str = "db.namespace";
    /// An operation's name, when the application named it
    /// (`Operation::named`); keep names few and fixed.
    pub const DB_OPERATION_NAME: &str = "db.operation.name";
    /// The SQLSTATE of a failure the server answered.
    pub const DB_RESPONSE_STATUS_CODE: &str = "db.response.status_code";
    /// Set on failures only: the error class (`conflict`, `reconnect`,
    /// `reauthenticate`, `throttled`, `outcome_unknown`, `fatal`), or
    /// `cancelled` for an operation dropped midway (a timeout above); for
    /// token failures the kind of `TokenError` (`credentials`,
    /// `credentials_expired`, `signing`, `expired`, `provider`,
    /// `wrong_scope`); for a connect attempt (span) the kind of
    /// `ConnectError` (`token`, `tls`, `insecure`, `postgres`, `timeout`,
    /// `rate_limit`).
    pub const ERROR_TYPE: &str = "error.type";
    /// The endpoint host.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// The endpoint port.
    pub const SERVER_PORT: &str = "server.port";
    /// The pool's name (`pool_name` on the pool builder; by default
    /// `host:port/database`, as OpenTelemetry suggests).
    pub const DB_CLIENT_CONNECTION_POOL_NAME: &str = "db.client.connection.pool.name";
    /// [`IDLE`](super::value::IDLE) or [`USED`](super::value::USED).
    pub const DB_CLIENT_CONNECTION_STATE: &str = "db.client.connection.state";

    /// What was retried: [`OPERATION`](super::value::OPERATION) or
    /// [`CONNECT`](super::value::CONNECT).
    pub const DSQL_RETRY_KIND: &str = "dsql.retry.kind";
    /// Why a connection left service: `lifetime`, `closed`, `broken`,
    /// `abandoned`, `not_idle`, `endpoint_unhealthy`, `failback`
    /// (`Retirement::as_str`).
    pub const DSQL_RETIREMENT_REASON: &str = "dsql.retirement.reason";
    /// [`PASSED`](super::value::PASSED) or [`FAILED`](super::value::FAILED).
    pub const DSQL_PROBE_RESULT: &str = "dsql.probe.result";
    /// Whether an operation is marked idempotent (span field).
    pub const DSQL_OPERATION_IDEMPOTENT: &str = "dsql.operation.idempotent";
    /// Attempts an operation took, replays included (span field).
    pub const DSQL_ATTEMPTS: &str = "dsql.attempts";
}

/// Attribute values.
pub mod value {
    /// `db.system.name` of DSQL (it speaks PostgreSQL's protocol).
    pub const POSTGRESQL: &str = "postgresql";
    /// A connection in the pool, ready to be checked out.
    pub const IDLE: &str = "idle";
    /// A connection checked out.
    pub const USED: &str = "used";
    /// A retried operation.
    pub const OPERATION: &str = "operation";
    /// A retried connect.
    pub const CONNECT: &str = "connect";
    /// A probe that passed.
    pub const PASSED: &str = "passed";
    /// A probe that failed.
    pub const FAILED: &str = "failed";
    /// `error.type` of an operation dropped before it ended.
    pub const CANCELLED: &str = "cancelled";
}

/// Span names (`tracing`), each with `otel.kind = "client"` where it is a
/// call to the database, so that an OpenTelemetry layer
/// (`tracing-opentelemetry`) exports it as a database client span.
pub mod span {
    /// One operation as its caller sees it, replays included: fields
    /// `otel.name` (the operation's name, else `postgresql`), `otel.kind`,
    /// `db.system.name`, `db.namespace`, `server.address`, `server.port`,
    /// `db.operation.name` (when named), `dsql.operation.idempotent`, and
    /// when it ends `dsql.attempts`, with `db.response.status_code`,
    /// `error.type` and `otel.status_code` on failure.
    pub const OPERATION: &str = "dsql.operation";
    /// One connect attempt (token, TCP, TLS, authentication): fields
    /// `otel.name` (`connect`), `otel.kind`, `db.system.name`,
    /// `server.address`, `server.port`, `dsql.user`, `dsql.action`,
    /// `dsql.tls`, with `db.response.status_code`, `error.type` and
    /// `otel.status_code` on failure.
    pub const CONNECT: &str = "dsql.connect";
    /// A connection's socket task (debug level): `server.address`.
    pub const CONNECTION: &str = "dsql.connection";
    /// A probe of an unhealthy endpoint: `server.address`.
    pub const PROBE: &str = "dsql.probe";
    /// A token signing (debug level): `host`, `user`, `action`.
    pub const TOKEN_SIGN: &str = "dsql.token.sign";
}
