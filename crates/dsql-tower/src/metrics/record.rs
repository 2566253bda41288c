//! The recording calls of the session, the pool, the connect stack and the
//! failover: names from `semconv`, labels from what each event knows (never
//! a token, a user or a query).
//!
//! Each call looks its metric up in the recorder installed now (a map
//! lookup) rather than keeping handles, so that a recorder installed after
//! a pool was built still gets everything.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Label, counter, histogram};
use tokio_postgres::error::SqlState;

use crate::classify::ErrorClass;
use crate::error::Error;
use crate::lifecycle::Retirement;
use crate::semconv::{attribute, metric, value};
use crate::telemetry::{Peer, error_type};

/// `server.address` (`endpoint`, else the configured host) and
/// `server.port`.
fn server(peer: &Peer, endpoint: Option<Arc<str>>) -> [Label; 2] {
    [
        Label::new(
            attribute::SERVER_ADDRESS,
            endpoint.unwrap_or_else(|| Arc::clone(&peer.host)),
        ),
        Label::new(attribute::SERVER_PORT, peer.port.to_string()),
    ]
}

/// `error.type`, and `db.response.status_code` when the server answered.
fn failure(labels: &mut Vec<Label>, error_type: &'static str, code: Option<&SqlState>) {
    labels.push(Label::from_static_parts(attribute::ERROR_TYPE, error_type));
    if let Some(code) = code {
        labels.push(Label::new(
            attribute::DB_RESPONSE_STATUS_CODE,
            code.code().to_owned(),
        ));
    }
}

/// An operation ended after `took`: `db.client.operation.duration`.
pub(crate) fn operation_ended(
    peer: &Peer,
    endpoint: Option<&Arc<str>>,
    name: Option<&str>,
    failed: Option<(&'static str, Option<&SqlState>)>,
    took: Duration,
) {
    let mut labels = vec![
        Label::from_static_parts(attribute::DB_SYSTEM_NAME, value::POSTGRESQL),
        Label::new(attribute::DB_NAMESPACE, Arc::clone(&peer.namespace)),
    ];
    labels.extend(server(peer, endpoint.cloned()));
    if let Some(name) = name {
        labels.push(Label::new(attribute::DB_OPERATION_NAME, name.to_owned()));
    }
    if let Some((error_type, code)) = failed {
        failure(&mut labels, error_type, code);
    }
    histogram!(metric::DB_CLIENT_OPERATION_DURATION, labels).record(took.as_secs_f64());
}

/// A retry of class `class`, of a connect or of an operation.
pub(crate) fn retried(class: ErrorClass, connect: bool) {
    let kind = if connect { value::CONNECT } else { value::OPERATION };
    let labels = vec![
        Label::from_static_parts(attribute::ERROR_TYPE, error_type(class)),
        Label::from_static_parts(attribute::DSQL_RETRY_KIND, kind),
    ];
    counter!(metric::DSQL_CLIENT_RETRIES, labels).increment(1);
}

/// A lifecycle opened a connection (to `endpoint`, through a failover), or
/// failed to.
pub(crate) fn connected(peer: &Peer, endpoint: Option<&str>, error: Option<&Error>) {
    let mut labels = server(peer, endpoint.map(Arc::from)).to_vec();
    if let Some(error) = error {
        failure(&mut labels, error_type(error.class()), error.code());
    }
    counter!(metric::DSQL_CLIENT_CONNECTS, labels).increment(1);
}

/// A lifecycle retired a connection.
pub(crate) fn retired(peer: &Peer, why: Retirement) {
    let mut labels = server(peer, None).to_vec();
    labels.push(Label::from_static_parts(
        attribute::DSQL_RETIREMENT_REASON,
        why.as_str(),
    ));
    counter!(metric::DSQL_CLIENT_CONNECTION_RETIREMENTS, labels).increment(1);
}

/// A connect waited `wait` for the connect rate limit of `endpoint`.
pub(crate) fn rate_limited(endpoint: Option<&Arc<str>>, wait: Duration) {
    let labels: Vec<Label> = endpoint
        .map(|host| Label::new(attribute::SERVER_ADDRESS, Arc::clone(host)))
        .into_iter()
        .collect();
    histogram!(metric::DSQL_CLIENT_CONNECT_RATE_LIMIT_WAIT_TIME, labels).record(wait.as_secs_f64());
}

/// An endpoint was declared unhealthy.
pub(crate) fn endpoint_tripped(host: &str) {
    let labels = vec![Label::new(attribute::SERVER_ADDRESS, host.to_owned())];
    counter!(metric::DSQL_CLIENT_ENDPOINT_TRIPS, labels).increment(1);
}

/// A probe of an unhealthy endpoint passed or failed.
pub(crate) fn endpoint_probed(host: &str, passed: bool) {
    let result = if passed { value::PASSED } else { value::FAILED };
    let labels = vec![
        Label::new(attribute::SERVER_ADDRESS, host.to_owned()),
        Label::from_static_parts(attribute::DSQL_PROBE_RESULT, result),
    ];
    counter!(metric::DSQL_CLIENT_ENDPOINT_PROBES, labels).increment(1);
}
