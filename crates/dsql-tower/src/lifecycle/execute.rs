//! Running one operation on one connection, and recording what it did.

use std::error::Error as StdError;

use super::DsqlConnection;
use crate::classify::{Classify, ErrorClass, SharedClassifier};
use crate::error::{BoxError, Error, Phase};
use crate::failover::is_region_failure;
use crate::failover::lease::Outcome;
use crate::operation::{Body, Effects, Operation};

/// Runs `operation` once on `connection`.
///
/// Records in the operation what the attempt did that may have taken
/// effect ([`Effects`], observed on the wire and from whether `COMMIT` was
/// answered, never inferred from the class), classifies a failure once,
/// and marks the connection broken when the failure leaves it unusable. A
/// lost answer (an unanswered statement in autocommit, an unanswered
/// `COMMIT`) makes the error [`ErrorClass::OutcomeUnknown`] unless the
/// classifier calls it fatal.
///
/// If the returned future is dropped midway, the connection stays marked
/// in flight: it is retired as abandoned, and its query cancelled.
pub(super) async fn execute<T>(
    connection: &mut DsqlConnection,
    operation: &Operation<T>,
    classifier: &SharedClassifier,
) -> Result<T, Error> {
    let attempt = operation.attempt();
    let before = connection.pg().progress();
    // Until the attempt ends, assume the worst: a dropped attempt may have
    // sent statements, or its COMMIT.
    attempt.set(match operation.body() {
        Body::Client(_) => Effects::StatementUnanswered,
        Body::Transaction(_) => Effects::None,
    });
    if let Some(host) = connection.pg().endpoint_host() {
        attempt.telemetry().endpoint(host);
    }
    connection.set_in_flight(true);
    let result = run(connection, operation).await;
    connection.set_in_flight(false);
    let (phase, error) = match result {
        Ok(value) => {
            attempt.set(Effects::None);
            if let (Some(endpoint), Body::Transaction(_)) = (connection.pg().endpoint(), operation.body()) {
                endpoint.record(Outcome::Committed);
            }
            return Ok(value);
        }
        Err(failure) => failure,
    };
    let answered = has_db_error(&*error);
    let effects = match (operation.body(), phase) {
        (Body::Transaction(_), Phase::Commit) if !answered => Effects::CommitUnanswered,
        (Body::Transaction(_), _) => Effects::None,
        (Body::Client(_), _) => {
            let after = connection.pg().progress();
            if after.completed > before.completed {
                Effects::StatementCompleted
            } else if after.sent > before.sent && !answered {
                Effects::StatementUnanswered
            } else {
                Effects::None
            }
        }
    };
    attempt.set(effects);
    let class = settle(classifier.classify(&*error), effects);
    if let Some(endpoint) = connection.pg().endpoint()
        && is_region_failure(class)
    {
        endpoint.record(Outcome::Failed);
    }
    if class.discards_connection() || connection.pg().is_closed() {
        connection.mark_broken();
    }
    Err(Error::new(class, phase, error).with_effects(effects))
}

/// The class of an attempt's error, given what it did: an answer lost
/// after work was sent is an unknown outcome, whatever the error says,
/// unless the classifier calls it fatal.
fn settle(class: ErrorClass, effects: Effects) -> ErrorClass {
    if effects.is_unanswered() && class != ErrorClass::Fatal {
        ErrorClass::OutcomeUnknown
    } else {
        class
    }
}

async fn run<T>(connection: &mut DsqlConnection, operation: &Operation<T>) -> Result<T, (Phase, BoxError)> {
    match operation.body() {
        Body::Client(f) => f(connection).await.map_err(|error| (Phase::Execute, error)),
        Body::Transaction(f) => {
            let mut tx = connection
                .transaction()
                .await
                .map_err(|error| (Phase::Execute, error.into()))?;
            match f(&mut tx).await {
                Ok(value) => {
                    operation.attempt().set(Effects::CommitUnanswered);
                    tx.commit().await.map_err(|error| (Phase::Commit, error.into()))?;
                    Ok(value)
                }
                Err(error) => {
                    // A failed rollback means a lost connection, which the
                    // caller sees through `Client::is_closed`.
                    let _ = tx.rollback().await;
                    Err((Phase::Execute, error))
                }
            }
        }
    }
}

/// Whether the server answered: a PostgreSQL error in the chain.
fn has_db_error(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<tokio_postgres::error::DbError>()
            || error
                .downcast_ref::<tokio_postgres::Error>()
                .is_some_and(|error| error.as_db_error().is_some())
        {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_answer_is_an_unknown_outcome_unless_fatal() {
        use ErrorClass::*;
        assert_eq!(settle(Reconnect, Effects::CommitUnanswered), OutcomeUnknown);
        assert_eq!(
            settle(Conflict, Effects::CommitUnanswered),
            OutcomeUnknown,
            "a hostile classifier"
        );
        assert_eq!(settle(Reconnect, Effects::StatementUnanswered), OutcomeUnknown);
        assert_eq!(settle(Fatal, Effects::CommitUnanswered), Fatal);
        assert_eq!(settle(Reconnect, Effects::None), Reconnect);
        assert_eq!(settle(Conflict, Effects::StatementCompleted), Conflict);
    }
}
