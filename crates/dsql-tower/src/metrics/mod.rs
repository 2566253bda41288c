//! Metrics (feature `metrics`), named by OpenTelemetry's semantic
//! conventions for database clients, version 1.42.0
//! ([`semconv`](crate::semconv) has every name).
//!
//! They are recorded through the [`metrics`](https://docs.rs/metrics)
//! facade: services built on tower, axum and bb8 mostly use it, with
//! `metrics-exporter-prometheus` for a `/metrics` endpoint, and bridges
//! to OpenTelemetry exist (`metrics-exporter-opentelemetry`); the facade
//! costs nothing until a recorder is installed. Without the feature
//! neither the dependency nor any recording code is compiled.
//!
//! | OpenTelemetry name | Prometheus series (see below) | type | attributes | where | stability |
//! |---|---|---|---|---|---|
//! | `db.client.operation.duration` | `db_client_operation_duration_seconds_{bucket,sum,count}` | histogram, s | `db.system.name`, `db.namespace`, `server.address`, `server.port`, `db.operation.name`¹, `db.response.status_code`², `error.type`² | session, pool | stable |
//! | `db.client.connection.count` | `db_client_connection_count` | gauge | `db.client.connection.pool.name`, `db.client.connection.state` (`idle`, `used`) | pool | development |
//! | `db.client.connection.max` | `db_client_connection_max` | gauge | pool name | pool | development |
//! | `db.client.connection.pending_requests` | `db_client_connection_pending_requests` | gauge | pool name | pool | development |
//! | `db.client.connection.wait_time` | `db_client_connection_wait_time_seconds_{bucket,sum,count}` | histogram, s | pool name | pool | development |
//! | `db.client.connection.create_time` | `db_client_connection_create_time_seconds_{bucket,sum,count}` | histogram, s | pool name | pool | development |
//! | `db.client.connection.use_time` | `db_client_connection_use_time_seconds_{bucket,sum,count}` | histogram, s | pool name | pool | development |
//! | `db.client.connection.timeouts` | `db_client_connection_timeouts_total` | counter | pool name | pool | development |
//! | `dsql.client.retries` | `dsql_client_retries_total` | counter | `error.type` (the class), `dsql.retry.kind` (`operation`, `connect`) | `RetryPolicy` | DSQL |
//! | `dsql.client.connects` | `dsql_client_connects_total` | counter | `server.address`, `server.port`, `error.type`², `db.response.status_code`² | session, pool | DSQL |
//! | `dsql.client.connection.retirements` | `dsql_client_connection_retirements_total` | counter | `server.address`, `server.port`, `dsql.retirement.reason` | session, pool | DSQL |
//! | `dsql.client.connect.rate_limit.wait_time` | `dsql_client_connect_rate_limit_wait_time_seconds_{bucket,sum,count}` | histogram, s | `server.address` | connect stack | DSQL |
//! | `dsql.client.endpoint.trips` | `dsql_client_endpoint_trips_total` | counter | `server.address` | failover | DSQL |
//! | `dsql.client.endpoint.probes` | `dsql_client_endpoint_probes_total` | counter | `server.address`, `dsql.probe.result` (`passed`, `failed`) | failover | DSQL |
//! | `dsql.auth.token.signings` | `dsql_auth_token_signings_total` | counter | `server.address`, `error.type`² | `SigningProvider` | DSQL |
//! | `dsql.auth.token.refreshes` | `dsql_auth_token_refreshes_total` | counter | `server.address`, `error.type`² | `CachingProvider` | DSQL |
//!
//! ¹ when the application named the operation
//! ([`Operation::named`](crate::Operation::named)). ² on failures only.
//! `error.type` is the [`ErrorClass`](crate::ErrorClass) in snake case
//! (`conflict`, `reconnect`, `reauthenticate`, `throttled`,
//! `outcome_unknown`, `fatal`), `cancelled` for an operation dropped
//! midway, or the kind of token error; `db.response.status_code` is the
//! SQLSTATE.
//!
//! What is measured:
//! - an operation is what its caller called: one `run`, `transaction` or
//!   call of a session or pool service, every replay and the waits for a
//!   connection included, from its first attempt to its last (OpenTelemetry
//!   describes the logical call, not each attempt); its outcome is the last
//!   attempt's. Attempts beyond the first are counted by
//!   `dsql.client.retries` (conflicts replayed: `error.type="conflict"`,
//!   `dsql.retry.kind="operation"`);
//! - the pool series are a pool's ([`PoolMetrics`]; `dsql-bb8` names each
//!   pool with `pool_name`, by default `host:port/database`); a connection
//!   counts as `used` from checkout to return;
//! - connects count each connection opened after the connect stack's
//!   retries, or each failure; the retries themselves are in
//!   `dsql.client.retries` with `dsql.retry.kind="connect"`.
//!
//! No metric carries a token, a user, a query or a parameter value.
//!
//! # Prometheus
//!
//! `metrics-exporter-prometheus` turns dots into underscores. With
//! `with_recommended_naming(true)` it also appends the unit (`_seconds`,
//! from [`describe`]) and `_total` to counters, which is what
//! OpenTelemetry's own Prometheus exporter shows for these names, so one
//! dashboard serves both; the table's second column is that rendering
//! (without it: no `_seconds`, no `_total`). Give it buckets, or it renders
//! histograms as summaries, which cannot be aggregated across instances:
//!
//! ```no_run
//! use metrics_exporter_prometheus::PrometheusBuilder;
//!
//! # fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let prometheus = PrometheusBuilder::new()
//!     .with_recommended_naming(true)
//!     // OpenTelemetry's advice for db.client.operation.duration.
//!     .set_buckets(&[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0])?
//!     .install_recorder()?;
//! // Install it before building sessions and pools: they describe the
//! // metrics (units) to the recorder in place (or call `describe` again).
//! dsql_tower::metrics::describe();
//! // … then serve `prometheus.render()` at GET /metrics, and call
//! // `prometheus.run_upkeep()` every few seconds.
//! # Ok(())
//! # }
//! ```

mod pool;
mod record;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

pub(crate) use self::pool::PoolSlot;
pub use self::pool::{PendingRequest, PoolMetrics};
pub(crate) use self::record::{
    connected, endpoint_probed, endpoint_tripped, operation_ended, rate_limited, retired, retried,
};
use crate::semconv::metric;

/// Tells the installed recorder each metric's unit and description (a
/// Prometheus exporter shows them as `# HELP` lines and, with recommended
/// naming, appends the unit). Sessions and pools call it when built; call
/// it yourself if you install a recorder after building them. Idempotent.
pub fn describe() {
    let seconds = [
        (
            metric::DB_CLIENT_OPERATION_DURATION,
            "Duration of database client operations, replays included.",
        ),
        (
            metric::DB_CLIENT_CONNECTION_WAIT_TIME,
            "The time it took to obtain an open connection from the pool.",
        ),
        (
            metric::DB_CLIENT_CONNECTION_CREATE_TIME,
            "The time it took to create a new connection.",
        ),
        (
            metric::DB_CLIENT_CONNECTION_USE_TIME,
            "The time between borrowing a connection and returning it to the pool.",
        ),
        (
            metric::DSQL_CLIENT_CONNECT_RATE_LIMIT_WAIT_TIME,
            "The time a connect waited for the endpoint's connect rate limit.",
        ),
    ];
    for (name, description) in seconds {
        describe_histogram!(name, Unit::Seconds, description);
    }
    let gauges = [
        (
            metric::DB_CLIENT_CONNECTION_COUNT,
            "The number of connections that are currently in the state described by the state attribute.",
        ),
        (
            metric::DB_CLIENT_CONNECTION_MAX,
            "The maximum number of open connections allowed.",
        ),
        (
            metric::DB_CLIENT_CONNECTION_PENDING_REQUESTS,
            "The number of current pending requests for an open connection.",
        ),
    ];
    for (name, description) in gauges {
        describe_gauge!(name, Unit::Count, description);
    }
    let counters = [
        (
            metric::DB_CLIENT_CONNECTION_TIMEOUTS,
            "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
        ),
        (
            metric::DSQL_CLIENT_RETRIES,
            "Retries of operations and connects, by error class.",
        ),
        (
            metric::DSQL_CLIENT_CONNECTS,
            "Connections opened, or failures to, after the connect stack's retries.",
        ),
        (
            metric::DSQL_CLIENT_CONNECTION_RETIREMENTS,
            "Connections retired, by reason.",
        ),
        (
            metric::DSQL_CLIENT_ENDPOINT_TRIPS,
            "Times an endpoint of a multi-region cluster was declared unhealthy.",
        ),
        (
            metric::DSQL_CLIENT_ENDPOINT_PROBES,
            "Probes of an unhealthy endpoint, by result.",
        ),
        (
            metric::DSQL_AUTH_TOKEN_SIGNINGS,
            "DSQL authentication tokens signed, or failures to.",
        ),
        (
            metric::DSQL_AUTH_TOKEN_REFRESHES,
            "Refreshes of a token cache, failed ones with their error type.",
        ),
    ];
    for (name, description) in counters {
        describe_counter!(name, Unit::Count, description);
    }
}

#[cfg(test)]
mod tests;
