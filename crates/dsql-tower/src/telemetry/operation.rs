//! One operation as its caller sees it, across its attempts: its span and
//! (feature `metrics`) its duration.
//!
//! OpenTelemetry's database conventions describe the logical call, retries
//! included, not each attempt. Attempts are made by whatever sits above
//! the session or the pool (tower's `Retry`, `DsqlPool::run`), which only
//! the operation's shared record ([`Attempt`](crate::operation::Attempt))
//! outlives: the span opens at the first attempt, and the operation ends
//! when the last copy of the request is dropped (with `Retry` and `run`,
//! when the call returns), with the outcome of its last attempt.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio_postgres::error::SqlState;
use tracing::Span;
use tracing::field::Empty;

use super::Peer;
use crate::error::Error;
use crate::semconv::value;

/// The record of one operation, shared by its attempts.
#[derive(Debug, Default)]
pub(crate) struct OperationTelemetry {
    span: OnceLock<Span>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    attempts: u32,
    outcome: Outcome,
    /// The endpoint of the last attempt, when a failover chose another
    /// than the configured one.
    endpoint: Option<Arc<str>>,
    #[cfg(feature = "metrics")]
    metrics: Option<Started>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Started {
    at: std::time::Instant,
    peer: Arc<Peer>,
    name: Option<Cow<'static, str>>,
}

#[derive(Debug, Default)]
enum Outcome {
    /// An attempt is under way (or was dropped midway).
    #[default]
    Running,
    Succeeded,
    Failed {
        error_type: &'static str,
        code: Option<SqlState>,
    },
}

impl OperationTelemetry {
    /// An attempt starts: returns the operation's span, opened at the first
    /// attempt. `name` is the name the application gave, if any.
    pub(crate) fn begin(&self, peer: &Arc<Peer>, name: Option<&Cow<'static, str>>, idempotent: bool) -> Span {
        let span = self.span.get_or_init(|| {
            let name = name.map(|name| &**name);
            tracing::info_span!(
                "dsql.operation",
                otel.name = name.unwrap_or(value::POSTGRESQL),
                otel.kind = "client",
                db.system.name = value::POSTGRESQL,
                db.namespace = %peer.namespace,
                server.address = %peer.host,
                server.port = peer.port,
                db.operation.name = name,
                dsql.operation.idempotent = idempotent,
                dsql.attempts = Empty,
                db.response.status_code = Empty,
                error.type = Empty,
                otel.status_code = Empty,
            )
        });
        let mut state = self.lock();
        state.attempts += 1;
        state.outcome = Outcome::Running;
        #[cfg(feature = "metrics")]
        state.metrics.get_or_insert_with(|| Started {
            at: std::time::Instant::now(),
            peer: Arc::clone(peer),
            name: name.cloned(),
        });
        span.clone()
    }

    /// The attempt under way runs on `host` (a failover's endpoint).
    pub(crate) fn endpoint(&self, host: &str) {
        let mut state = self.lock();
        if state.endpoint.as_deref() != Some(host) {
            state.endpoint = Some(host.into());
            if let Some(span) = self.span.get() {
                span.record("server.address", host);
            }
        }
    }

    /// The attempt under way ended with `result`.
    pub(crate) fn end<T>(&self, result: &Result<T, Error>) {
        self.lock().outcome = match result {
            Ok(_) => Outcome::Succeeded,
            Err(error) => Outcome::Failed {
                error_type: super::error_type(error.class()),
                code: error.code().cloned(),
            },
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for OperationTelemetry {
    /// The operation ends: its outcome goes on the span, and its duration
    /// to the metrics.
    fn drop(&mut self) {
        let Some(span) = self.span.get() else {
            return; // never run
        };
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        span.record("dsql.attempts", state.attempts);
        let failure = match &state.outcome {
            Outcome::Succeeded => None,
            Outcome::Running => Some((value::CANCELLED, None)),
            Outcome::Failed { error_type, code } => Some((*error_type, code.as_ref())),
        };
        if let Some((error_type, code)) = failure {
            span.record("error.type", error_type);
            if let Some(code) = code {
                span.record("db.response.status_code", code.code());
            }
            span.record("otel.status_code", "ERROR");
        }
        #[cfg(feature = "metrics")]
        if let Some(started) = &state.metrics {
            crate::metrics::operation_ended(
                &started.peer,
                state.endpoint.as_ref(),
                started.name.as_deref(),
                failure,
                started.at.elapsed(),
            );
        }
    }
}
