//! Observing an operation: the one span (and duration) of all its attempts.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tracing::{Instrument, Span};

use super::Lifecycle;
use crate::error::Error;
use crate::operation::{Attempt, Operation};

/// One attempt of an operation, about to run in the operation's span; see
/// [`Lifecycle::observe`].
pub struct Observation {
    record: Arc<Attempt>,
    span: Span,
}

impl<M> Lifecycle<M> {
    /// Starts an attempt of `operation` (a call of a service such as
    /// [`Session`](crate::Session) or the pool's): the operation's span, a
    /// `dsql.operation` database client span opened at its first attempt,
    /// covers every attempt, since a retry layer above replays the request
    /// that shares its record. When the last copy of the request is
    /// dropped, the span gets the last attempt's outcome and, with the
    /// `metrics` feature, `db.client.operation.duration` is recorded
    /// ([`semconv`](crate::semconv) has the names).
    ///
    /// ```no_run
    /// # use dsql_tower::{Error, Operation, lifecycle::Lifecycle};
    /// # async fn example<M: dsql_tower::connect::ConnectService>(lifecycle: &Lifecycle<M>, operation: Operation<u64>)
    /// # -> Result<u64, Error> {
    /// let observation = lifecycle.observe(&operation);
    /// observation
    ///     .run(async {
    ///         let mut connection = lifecycle.open().await?;
    ///         lifecycle.execute(&mut connection, &operation).await
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn observe<T>(&self, operation: &Operation<T>) -> Observation {
        let record = operation.record();
        let span = record
            .telemetry()
            .begin(&self.peer, operation.given_name(), operation.is_idempotent());
        Observation { record, span }
    }
}

impl Observation {
    /// Runs the attempt `attempt` (checkout and execution) in the
    /// operation's span, and records its outcome.
    pub async fn run<T, F>(self, attempt: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>>,
    {
        let result = attempt.instrument(self.span).await;
        self.record.telemetry().end(&result);
        result
    }
}

impl fmt::Debug for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observation").field("span", &self.span).finish()
    }
}
