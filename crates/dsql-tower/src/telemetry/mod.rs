//! What spans (and, with the `metrics` feature, metrics) say, in
//! OpenTelemetry's terms ([`semconv`](crate::semconv)): the server a
//! lifecycle talks to, an error's type, and each operation's record.

mod operation;

use std::sync::Arc;

pub(crate) use self::operation::OperationTelemetry;
use crate::classify::ErrorClass;

/// The server a lifecycle connects to, as spans and metrics name it: never
/// the user, a password or a query.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) host: Arc<str>,
    pub(crate) port: u16,
    pub(crate) namespace: Arc<str>,
}

impl Peer {
    pub(crate) fn of(config: &tokio_postgres::Config) -> Arc<Self> {
        let host = config
            .get_hosts()
            .iter()
            .find_map(|host| match host {
                tokio_postgres::config::Host::Tcp(host) => Some(host.as_str()),
                _ => None,
            })
            .unwrap_or("");
        Arc::new(Self {
            host: host.into(),
            port: port_of(config),
            namespace: config.get_dbname().or(config.get_user()).unwrap_or("").into(),
        })
    }
}

/// The port `config` connects to (PostgreSQL's default if none is set).
pub(crate) fn port_of(config: &tokio_postgres::Config) -> u16 {
    config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(dsql_auth::DEFAULT_PORT)
}

/// `error.type` of a failure of class `class`: one of a few fixed words.
pub(crate) fn error_type(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Conflict => "conflict",
        ErrorClass::Reconnect => "reconnect",
        ErrorClass::Reauthenticate => "reauthenticate",
        ErrorClass::Throttled => "throttled",
        ErrorClass::OutcomeUnknown => "outcome_unknown",
        ErrorClass::Fatal => "fatal",
    }
}
