//! What a request is: work against a connection that can be replayed.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_postgres::{Client, Transaction};

use crate::classify::{Classify, ErrorClass};
use crate::error::{BoxError, Error, Phase};

/// A boxed, sendable future borrowing from `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type ClientFn<T> = dyn for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<T, BoxError>> + Send + Sync;
type TransactionFn<T> =
    dyn for<'c, 't> Fn(&'c mut Transaction<'t>) -> BoxFuture<'c, Result<T, BoxError>> + Send + Sync;

/// Work to run against a connection, replayable as a whole.
///
/// - [`Operation::transaction`]: a closure run inside `BEGIN … COMMIT`. A
///   conflict (`40001`) or a connection lost before `COMMIT` was sent rolls
///   it back; replaying it is always safe. A connection lost *during*
///   `COMMIT` leaves the outcome unknown: it is replayed only if marked
///   [`idempotent`](Self::idempotent).
/// - [`Operation::new`]: a closure over the client in autocommit mode. Each
///   statement commits on its own, so a lost connection leaves the outcome
///   unknown unless the operation is marked idempotent (reads, upserts by
///   key).
///
/// Closures return a boxed future (`Box::pin(async move { … })`): a plain
/// `async` closure cannot borrow the transaction it is given. Their error
/// can be any error type; a `tokio_postgres::Error` in its source chain is
/// what classification looks at.
///
/// ```
/// use dsql_tower::Operation;
///
/// let transfer = Operation::transaction(|tx| {
///     Box::pin(async move {
///         tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
///         tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", &[]).await?;
///         Ok::<_, tokio_postgres::Error>(())
///     })
/// })
/// .named("transfer");
///
/// let count = Operation::new(|client| {
///     Box::pin(async move {
///         let row = client.query_one("SELECT count(*) FROM accounts", &[]).await?;
///         Ok::<i64, tokio_postgres::Error>(row.get(0))
///     })
/// })
/// .idempotent();
/// # let _ = (transfer, count);
/// ```
pub struct Operation<T> {
    body: Body<T>,
    idempotent: bool,
    name: Cow<'static, str>,
}

enum Body<T> {
    Client(Arc<ClientFn<T>>),
    Transaction(Arc<TransactionFn<T>>),
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Self {
            body: match &self.body {
                Body::Client(f) => Body::Client(Arc::clone(f)),
                Body::Transaction(f) => Body::Transaction(Arc::clone(f)),
            },
            idempotent: self.idempotent,
            name: self.name.clone(),
        }
    }
}

impl<T> fmt::Debug for Operation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field(
                "kind",
                &match self.body {
                    Body::Client(_) => "autocommit",
                    Body::Transaction(_) => "transaction",
                },
            )
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl<T: Send + 'static> Operation<T> {
    /// Statements in autocommit mode, run by `f` on the client.
    pub fn new<F, E>(f: F) -> Self
    where
        F: for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<T, E>> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            body: Body::Client(Arc::new(move |client| {
                let future = f(client);
                Box::pin(async move { future.await.map_err(Into::into) })
            })),
            idempotent: false,
            name: Cow::Borrowed("operation"),
        }
    }

    /// A transaction: `f` runs between `BEGIN` and `COMMIT`, and the whole
    /// transaction is replayed on conflicts.
    pub fn transaction<F, E>(f: F) -> Self
    where
        F: for<'c, 't> Fn(&'c mut Transaction<'t>) -> BoxFuture<'c, Result<T, E>> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            body: Body::Transaction(Arc::new(move |tx| {
                let future = f(tx);
                Box::pin(async move { future.await.map_err(Into::into) })
            })),
            idempotent: false,
            name: Cow::Borrowed("transaction"),
        }
    }
}

impl<T> Operation<T> {
    /// Marks the operation as safe to run more than once (reads, upserts
    /// by key, writes keyed by a unique request id), so it is replayed even
    /// when a lost connection leaves its outcome unknown.
    ///
    /// The key must be enforced by a unique constraint. A guard such as
    /// `INSERT … WHERE NOT EXISTS (…)` is not enough: under snapshot
    /// isolation the replay may not yet see the first attempt's `COMMIT`, and
    /// both attempts then apply. The chaos soak (`dsql-bench soak`) found
    /// this. With a unique key the late replay gets a conflict and is
    /// replayed again, and that replay sees the first attempt's row.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Names the operation in traces.
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether the operation is marked idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether the operation runs in a transaction.
    pub fn is_transaction(&self) -> bool {
        matches!(self.body, Body::Transaction(_))
    }

    /// The operation's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the operation once on `client` and classifies a failure with
    /// `classifier`, taking the phase into account: a lost connection is a
    /// safe [`ErrorClass::Reconnect`] before `COMMIT` was sent in a
    /// transaction, and [`ErrorClass::OutcomeUnknown`] during `COMMIT` or in
    /// autocommit mode, unless the operation is idempotent.
    ///
    /// Whoever holds the connection should drop it when the error's class
    /// [discards the connection](ErrorClass::discards_connection) or the
    /// client is closed.
    pub async fn execute(&self, client: &mut Client, classifier: &dyn Classify) -> Result<T, Error> {
        self.run(client).await.map_err(|(phase, error)| {
            let class = settle(classifier.classify(&*error), phase, self);
            Error::new(class, phase, error)
        })
    }

    /// Runs the operation once on `client`; on failure, says in which phase.
    pub async fn run(&self, client: &mut Client) -> Result<T, (Phase, BoxError)> {
        match &self.body {
            Body::Client(f) => f(client).await.map_err(|error| (Phase::Execute, error)),
            Body::Transaction(f) => {
                let mut tx = client
                    .transaction()
                    .await
                    .map_err(|error| (Phase::Execute, error.into()))?;
                match f(&mut tx).await {
                    Ok(value) => {
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
}

/// The class of an operation's error, given where it happened.
fn settle<T>(class: ErrorClass, phase: Phase, operation: &Operation<T>) -> ErrorClass {
    let lost = matches!(class, ErrorClass::Reconnect | ErrorClass::OutcomeUnknown);
    if !lost {
        return class;
    }
    let maybe_applied = match phase {
        Phase::Commit => true,
        Phase::Execute => !operation.is_transaction(),
        Phase::Connect | Phase::Unknown => false,
    };
    if maybe_applied && !operation.is_idempotent() {
        ErrorClass::OutcomeUnknown
    } else {
        ErrorClass::Reconnect
    }
}

/// Runs an [`Operation`] through any service that accepts it: waits until
/// the service is ready, then calls it.
///
/// Services of this crate accept `Operation<T>` for every `T`, so
/// `service.ready()` alone cannot tell which `T` is meant; `run` takes the
/// operation, and with it the type.
///
/// ```no_run
/// use dsql_tower::{Operation, OperationExt};
/// # async fn example(mut service: dsql_tower::Session<dsql_tower::connect::ConnectStack<dsql_auth::SharedTokenProvider>>)
/// # -> Result<(), dsql_tower::Error> {
/// let one: i32 = service
///     .run(Operation::new(|client| Box::pin(async move {
///         Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0))
///     })))
///     .await?;
/// # Ok(())
/// # }
/// ```
pub trait OperationExt<T>: tower::Service<Operation<T>> {
    /// Waits for readiness, then runs `operation`.
    fn run(&mut self, operation: Operation<T>) -> tower::util::Oneshot<&mut Self, Operation<T>>
    where
        Self: Sized,
    {
        tower::util::Oneshot::new(self, operation)
    }
}

impl<S, T> OperationExt<T> for S where S: tower::Service<Operation<T>> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn autocommit() -> Operation<()> {
        Operation::new(|_client| Box::pin(async { Ok::<_, std::io::Error>(()) }))
    }

    fn transaction() -> Operation<()> {
        Operation::transaction(|_tx| Box::pin(async { Ok::<_, std::io::Error>(()) }))
    }

    #[test]
    fn a_lost_connection_is_an_unknown_outcome_only_when_work_may_have_landed() {
        use ErrorClass::*;
        let cases = [
            (transaction(), Phase::Execute, Reconnect),
            (transaction(), Phase::Commit, OutcomeUnknown),
            (transaction().idempotent(), Phase::Commit, Reconnect),
            (autocommit(), Phase::Execute, OutcomeUnknown),
            (autocommit().idempotent(), Phase::Execute, Reconnect),
            (autocommit(), Phase::Connect, Reconnect),
        ];
        for (operation, phase, expected) in cases {
            assert_eq!(
                settle(Reconnect, phase, &operation),
                expected,
                "{operation:?} {phase:?}"
            );
        }
        // Other classes are not changed by the phase.
        assert_eq!(settle(Conflict, Phase::Commit, &transaction()), Conflict);
        assert_eq!(settle(Fatal, Phase::Execute, &autocommit()), Fatal);
    }
}
